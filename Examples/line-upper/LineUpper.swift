// An embedding example: a tool serving its own protocol on the Reactor library. Every line it
// receives comes back upper-cased; a line over 4 KiB gets an error and the connection closes.
// It listens on 127.0.0.1 (port from the first argument, 0 by default) and prints the port bound.

import Glibc
import LineFraming
import Reactor

/// One per connection. The connection holds it until it closes, so nothing else has to.
final class UpperCaser: ConnectionDelegate {
    private var framer = LineFramer(maxLineBytes: 4096)

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let result = self.framer.scan(bytes) { line in
            connection.write(line.raw.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 })
            return true
        }
        if result == .tooLong {
            connection.write("ERR line too long\n".utf8)
            connection.close()
        }
        // The connection flushes what was written once this call returns.
    }
}

@main
struct LineUpper {
    static func main() throws {
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0
        let loop = try EventLoop()
        let address = try SocketAddress(host: "127.0.0.1", port: port)
        let listener = try Listener(loop: loop, address: address) { _ in UpperCaser() }
        loop.startIdleSweep(timeout: .seconds(60))
        print("line-upper: listening on \(listener.localAddress)")
        fflush(nil)  // stdout may be a pipe: the port line must not wait in a buffer
        try loop.run()
    }
}
