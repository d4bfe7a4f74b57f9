// The Reactor's callback echo server, the NIOEcho counterpart: every byte read is queued back
// and goes out with the loop's end-of-dispatch flush. Usage: ReactorEcho PORT
import Glibc
import Reactor

final class Echo: ConnectionDelegate {
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.withOutputBuffer { $0.append(contentsOf: bytes) }
    }
}

let loop = try EventLoop()
let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 7400
let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: port)) { _ in Echo() }
print("ReactorEcho: listening on \(listener.localAddress)")
fflush(nil)
try loop.run()
