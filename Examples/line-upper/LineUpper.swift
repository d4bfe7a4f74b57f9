// An embedding example: a tool running its own protocol on the Reactor library. It upper-cases
// every line it receives, on 127.0.0.1 (port from the first argument, 0 by default), and prints
// the port it bound. The whole program is the few dozen lines below.

import Reactor

/// Per connection: keeps the unfinished line, answers every finished one. The connection holds
/// it until it closes, so nobody else has to.
final class UpperCaser: ConnectionDelegate {
    private var partial: [UInt8] = []

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                connection.write(self.partial.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 } + [byte])
                self.partial.removeAll(keepingCapacity: true)
            } else if self.partial.count < 4096 {
                self.partial.append(byte)
            }
        }
        // The connection flushes what was written once this call returns.
    }
}

@main
struct LineUpper {
    static func main() throws {
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: port)) { _ in UpperCaser() }
        loop.startIdleSweep(timeout: .seconds(60))
        print("line-upper: listening on \(listener.localAddress)")
        try loop.run()
    }
}
