// Fuzz target: the kv line protocol's command path, bytes in as a client would send them,
// through the session the server runs (Services' KVSession) against a real store; then a restart
// must recover exactly what the commands left. Every reply is whole lines holding no CR
// (docs/protocol.md: a value with CR or LF is refused on the line protocol).
// Input: [read pattern][flags: bit 0 = clean close, bit 1 = small output limit][request bytes...].

import FuzzSupport
import Services

private let greeting = Array("ping\n".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKVLine(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pattern = input.byte() % 32
    let flags = input.byte()
    // A first `ping` line pins the connection to the line protocol whatever the input begins with.
    let bytes = greeting + Array(input.rest)
    bytes.withUnsafeBytes { raw in
        KVHarness.run(raw, pattern: pattern, outputLimit: flags & 2 == 0 ? 1 << 20 : 64, closeCleanly: flags & 1 == 1) {
            outcome in
            let output = outcome.output
            require(output.starts(with: "PONG\n".utf8), "the greeting's reply is not PONG: \(printable(output))")
            require(output.last == UInt8(ascii: "\n"), "output does not end in a whole line: \(printable(output))")
            require(!output.contains(13), "a line-protocol reply holds a CR: \(printable(output))")
        }
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzKVLine) }
}
