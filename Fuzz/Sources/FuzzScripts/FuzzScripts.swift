// Fuzz target: scripts and their arguments through EVAL, EVALSHA, FCALL and the rest of the
// scripting commands, as a connection sends them (KVSession, the command table, the one Lua
// interpreter, a real store). The input is a list of requests, one a line, arguments separated by
// tabs (so scripts keep their spaces), a vertical tab (0x0B) in one standing for a line feed (a
// library's `#!lua name=…` line ends with one); an argument `@sha` stands for the SHA-1 of the last script
// an EVAL or SCRIPT LOAD line carried, so that EVALSHA finds it. After every request: exactly one
// well-formed reply; nothing left on Lua's stack, no script running or busy, no atomic group open;
// the sandbox as it was built (no global added, removed or replaced, no library table changed:
// ScriptEngine+Invariants.swift). At the end the log is written, no undo entry is left, and a
// restart recovers exactly the keys the scripts left.
// A script that loops forever is stopped as the server stops one: past busy-reply-threshold (here
// 20 ms of a clock that advances 1 ms at every reading) its hook asks to serve the others, and
// this target's control kills it then.
// Input: [flags: bit 0 = RESP3 (HELLO 3 first)][requests…].

@testable import FuzzSupport
@testable import Services
@testable import Store

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScripts(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    var requests: [[[UInt8]]] = flags & 1 == 1 ? [[Array("HELLO".utf8), Array("3".utf8)]] : []
    var lastSHA: [UInt8] = []
    for line in input.rest.split(separator: UInt8(ascii: "\n")) {
        var arguments = line.split(separator: UInt8(ascii: "\t")).map { $0.map { $0 == 0x0B ? 0x0A : $0 } }
        guard !arguments.isEmpty else { continue }
        for i in arguments.indices where arguments[i] == Array("@sha".utf8) { arguments[i] = lastSHA }
        let name = arguments[0].map { $0 | 0x20 }
        if arguments.count > 1 && (name == Array("eval".utf8) || name == Array("eval_ro".utf8)) {
            lastSHA = SHA1.hex(arguments[1])
        } else if arguments.count > 2 && name == Array("script".utf8) {
            lastSHA = SHA1.hex(arguments[2])
        }
        requests.append(arguments)
    }
    guard !requests.isEmpty, requests.count <= 64 else { return 0 }
    ScriptsHarness.run(requests)
    return 0
}

enum ScriptsHarness {
    static func run(_ requests: [[[UInt8]]]) {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let before: [StoreContext.Entry]
        do {
            let context: StoreContext
            do {
                context = try StoreContext(directory: scratch.path, clientID: 7)
            } catch {
                fatalError("cannot open a store in a fresh directory: \(error)")
            }
            let state = context.state
            state.busyReplyThresholdMilliseconds = 20
            let commands = CommandContext(
                store: context.context.store, state: state, control: KillingControl(context.context.control, state))
            var ticks = 0
            var session = KVSession(maxValueBytes: 4096, clientID: 7, now: {
                ticks += 1
                return (FuzzClock.seconds + ticks / 1_000_000, ticks % 1_000_000 * 1000)
            })
            var baseline: [String]?
            var output: [UInt8] = []
            for request in requests {
                var frame = Array("*\(request.count)\r\n".utf8)
                for argument in request { frame += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
                frame.withUnsafeBytes { session.receive($0) }
                var result = ProcessResult.needMoreData
                repeat {
                    result = session.process(context: commands, output: &output, outputLimit: 1 << 20)
                } while result != .needMoreData && result != .close
                switch RESPReader.readAll(output) {
                case .failure(let error): require(false, "malformed reply \(error): \(printable(output))")
                case .success(let replies):
                    require(replies.count == 1 || (result == .close && replies.count <= 1),
                            "\(replies.count) replies to \(printable(Array(request.joined(separator: [32])))): \(printable(output))")
                }
                output.removeAll(keepingCapacity: true)
                require(!context.store.inAtomicGroup, "an atomic group left open")
                if let engine = state.startedScripts {
                    require(engine.stackDepth == 0, "\(engine.stackDepth) values left on Lua's stack")
                    require(engine.run == nil && state.busyScript == nil, "a script left running")
                    let fingerprint = engine.sandboxFingerprint()
                    if let baseline {
                        require(fingerprint == baseline, "the sandbox changed: "
                                + "\(Set(fingerprint).symmetricDifference(baseline).sorted().prefix(8))")
                    } else {
                        baseline = fingerprint
                    }
                }
                if result == .close { break }
            }
            session.release(context: commands)
            before = context.contents()
            if case .failed(_, let error) = context.store.writeBuffered() {
                require(false, "writing the log failed: \(error)")
            }
            require(context.store.undo.pointee.isEmpty, "undo entries left after the log was written")
        }
        let store: DurableStore
        do {
            store = try DurableStore(configuration: DurableStore.Configuration(
                directory: scratch.path, fsync: .no, clock: { FuzzClock.milliseconds }))
        } catch {
            require(false, "recovering what the scripts wrote failed: \(error)")
            return
        }
        let after = StoreContext.contents(of: store)
        require(before == after, "recovered \(after.count) keys, the scripts left \(before.count)")
    }
}

/// The fuzz control, except that a script past busy-reply-threshold is killed when it asks to
/// serve the other connections (SCRIPT KILL's flag, set as if another client had sent it).
final class KillingControl: ServerControl {
    let inner: any ServerControl
    let state: ServerState

    init(_ inner: any ServerControl, _ state: ServerState) {
        self.inner = inner
        self.state = state
    }

    func serveWhileBusy(skipping: Int) { self.state.startedScripts?.run?.killed = true }
    func facts() -> ServerFacts { self.inner.facts() }
    func statistics() -> [(name: String, value: String)] { self.inner.statistics() }
    func configuration() -> [(name: String, value: String)] { self.inner.configuration() }
    func apply(_ change: ConfigChange) -> String? { self.inner.apply(change) }
    func resetStatistics() { self.inner.resetStatistics() }
    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest { self.inner.requestCompaction(replyWhenDone: replyWhenDone) }
    func shutdown(save: Bool?) { self.inner.shutdown(save: save) }
    func makeRoom(forBytes bytes: Int) -> Bool { self.inner.makeRoom(forBytes: bytes) }
    func settleMemory() { self.inner.settleMemory() }
    func log(_ level: ScriptLogLevel, _ message: String) {}
    func persistFunctionLibrary(_ name: [UInt8], code: [UInt8]?) -> String? { nil }
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzScripts) }
}
