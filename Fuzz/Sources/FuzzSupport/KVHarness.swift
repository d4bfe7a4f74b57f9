// Drives one kv connection the way the server does (KVSession: protocol sniffing, framing, the
// command table) against a StoreContext, with the input cut into arbitrary reads and the output
// drained under backpressure; then restarts the store and checks that it recovered exactly what
// the connection left in it.

import Services
import Store

public enum KVHarness {
    /// What one connection produced.
    public struct Outcome {
        /// Every reply byte, in order.
        public var output: [UInt8] = []
        /// The last ``ProcessResult``: `.close` when the session asked to close.
        public var result = ProcessResult.needMoreData
        /// What MONITOR pushed to this connection.
        public var monitorOutput: [UInt8] = []
    }

    /// Feeds `bytes` to a fresh session in reads cut by `pattern` (see ``chunks(of:pattern:)``),
    /// calls `check` with what came out, then writes the store's log, restarts it (by a clean
    /// close with compaction into database.txt when `closeCleanly`, else as after a crash, from
    /// the log alone) and requires the recovered keys, values and deadlines to equal those the
    /// connection left.
    public static func run(
        _ bytes: UnsafeRawBufferPointer, pattern: UInt8, outputLimit: Int, closeCleanly: Bool,
        check: (Outcome) -> Void
    ) {
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
            var session = KVSession(maxLineBytes: 1024, maxValueBytes: 4096, clientID: 7, now: FuzzClock.now)
            var outcome = Outcome()
            var output: [UInt8] = []
            feeding: for chunk in chunks(of: bytes, pattern: pattern) {
                session.receive(chunk)
                while true {
                    outcome.result = session.process(
                        context: context.context, output: &output, outputLimit: outputLimit)
                    outcome.output += output
                    output.removeAll(keepingCapacity: true)
                    if outcome.result == .close { break feeding }
                    if outcome.result == .needMoreData { break }
                }
            }
            session.release(context: context.context)
            outcome.monitorOutput = context.monitorOutput
            check(outcome)

            before = context.contents()
            if case .failed(_, let error) = context.store.writeBuffered() {
                require(false, "writing the log failed: \(error)")
            }
            if closeCleanly {
                do {
                    try context.store.close()
                } catch {
                    require(false, "closing the store failed: \(error)")
                }
            }
        }
        // The context (and its store, holding the directory's lock) is gone: recover.
        let store: DurableStore
        do {
            store = try DurableStore(configuration: DurableStore.Configuration(
                directory: scratch.path, fsync: .no, clock: { FuzzClock.milliseconds }))
        } catch {
            require(false, "recovering what the commands wrote failed: \(error)")
            return
        }
        let after = StoreContext.contents(of: store)
        require(before == after, "recovered \(after.count) keys, the connection left \(before.count): "
                + "first difference at key \(printable(Self.firstDifference(before, after)))")
    }

    private static func firstDifference(_ a: [StoreContext.Entry], _ b: [StoreContext.Entry]) -> [UInt8] {
        for (x, y) in zip(a, b) where x != y { return x.key }
        return (a.count > b.count ? a.last : b.last)?.key ?? []
    }
}
