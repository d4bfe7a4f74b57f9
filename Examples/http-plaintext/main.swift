// An HTTP/1.1 server in TechEmpower's plaintext shape on the Reactor: `GET /plaintext` answers
// "Hello, World!", anything else 404; keep-alive and pipelining as HTTPRequestFramer frames them,
// a malformed request its 4xx/5xx and a close. Port from the first argument (0: the kernel's).

import Glibc
import Reactor
import ReactorHTTP

final class Plaintext: ConnectionDelegate {
    static let hello = Array("Hello, World!".utf8)
    static let headers = [(name: "Content-Type", value: "text/plain"), (name: "Server", value: "reactor")]
    private var framer = HTTPRequestFramer()
    private var writer = HTTPResponseWriter()

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        do {
            try self.framer.frame(bytes) { request in
                let found = request.method == "GET" && request.target == "/plaintext"
                connection.withOutputBuffer {
                    self.writer.writeResponse(status: found ? 200 : 404, headers: Self.headers, body: found ? Self.hello : [],
                                              keepAlive: request.keepAlive, version: request.version, into: &$0)
                }
                if !request.keepAlive { connection.close() }
            }
        } catch {
            connection.withOutputBuffer { self.writer.writeError(error, into: &$0) }
            connection.close()
        }
    }
}

let loop = try EventLoop()
let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0
let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: port)) { _ in Plaintext() }
print("http-plaintext: listening on \(listener.localAddress)")
fflush(nil)  // stdout may be a pipe: the port line must not wait in a buffer
try loop.run()
