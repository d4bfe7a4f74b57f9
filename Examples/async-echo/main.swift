// An echo server written with async/await on the Reactor: each connection is an async closure
// reading byte chunks from `inbound` and writing them back through `outbound`, on the loop's
// executor, with backpressure both ways. The loop runs on a thread of its own (`start()`), the
// way a tool keeps its main thread. Port from the first argument (0: the kernel's).

import Glibc
import Reactor

let loop = try EventLoop()
let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0
let listener = try loop.serve(at: SocketAddress(host: "127.0.0.1", port: port), framing: { ByteChunks() }) { connection in
    for try await chunk in connection.inbound {
        try await connection.outbound.write(chunk)
    }
}
print("async-echo: listening on \(listener.localAddress)")
fflush(nil)  // stdout may be a pipe: the port line must not wait in a buffer
let thread = try loop.start()
try thread.join()
