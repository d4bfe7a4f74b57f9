// An embedding example: an echo server. Every byte received goes straight back. It listens on
// 127.0.0.1 (port from the first argument, 0 by default) or on a Unix domain socket (an argument
// `unix:PATH`), prints the address bound, and on SIGINT or SIGTERM stops accepting, sends what it
// still owes its clients and exits.

import Glibc
import Reactor

/// One per connection: what arrives is written back, and goes out at the end of the loop's turn.
final class Echo: ConnectionDelegate {
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.write(bytes)
    }
}

@main
struct EchoServer {
    static func main() throws {
        let argument = CommandLine.arguments.dropFirst().first ?? "0"
        let address = argument.hasPrefix("unix:")
            ? try SocketAddress(unixDomainSocketPath: String(argument.dropFirst(5)))
            : try SocketAddress(host: "127.0.0.1", port: Int(argument) ?? 0)
        let loop = try EventLoop()
        let listener = try Listener(loop: loop, address: address) { _ in Echo() }
        let signals = loop.stopGracefullyOnSignals()
        print("echo-server: listening on \(listener.localAddress)")
        fflush(nil)  // stdout may be a pipe: the address line must not wait in a buffer
        try loop.run()
        signals.cancel()
        print("echo-server: stopped")
    }
}
