// Fuzz target: the kv RESP command path. The input is a list of commands, one a line, arguments
// separated by spaces (so mutations stay commands); each is sent as a RESP multibulk frame,
// through the session the server runs (Services' KVSession) against a real store, in arbitrary
// reads. The output must be well-formed RESP (RESP2, or RESP3 after HELLO 3) with exactly one
// reply per command unless the session closed (QUIT, SHUTDOWN); then a restart must recover
// exactly what the commands left.
// Input: [read pattern][flags: bit 0 = clean close, bit 1 = small output limit][commands...].

import FuzzSupport
import Services

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKVRESP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pattern = input.byte() % 32
    let flags = input.byte()
    var frames: [UInt8] = []
    var commands = 0
    for line in input.rest.split(separator: UInt8(ascii: "\n")) {
        let arguments = line.split(separator: UInt8(ascii: " "))
        guard !arguments.isEmpty else { continue }
        frames += Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            frames += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10]
        }
        commands += 1
    }
    guard commands > 0 else { return 0 }
    frames.withUnsafeBytes { raw in
        KVHarness.run(raw, pattern: pattern, outputLimit: flags & 2 == 0 ? 1 << 20 : 64, closeCleanly: flags & 1 == 1) {
            outcome in
            switch RESPReader.readAll(outcome.output) {
            case .failure(let error):
                require(false, "malformed RESP output \(error): \(printable(outcome.output))")
            case .success(let replies):
                if outcome.result == .close {
                    require(replies.count <= commands, "\(replies.count) replies to \(commands) commands")
                } else {
                    require(replies.count == commands, "\(replies.count) replies to \(commands) commands: "
                            + printable(outcome.output))
                }
            }
            if case .failure(let error) = RESPReader.readAll(outcome.monitorOutput) {
                require(false, "malformed MONITOR output \(error): \(printable(outcome.monitorOutput))")
            }
        }
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzKVRESP) }
}
