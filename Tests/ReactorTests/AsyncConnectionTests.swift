// The async connection API (Sources/Reactor/AsyncConnection.swift) over loopback TCP: order kept
// under pipelining, backpressure a peer can observe (a consumer that does not read stops the
// loop reading, the kernel buffers fill and the sender's writes block, then everything arrives
// once it reads), the end of the stream, a framing error the handler can answer, and a reset
// surfacing as an error.

import CLinux
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking loopback TCP client socket connected to `port`.
private func connectLoopback(port: Int) throws -> CInt {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else { throw TestFailure("connect: errno \(errno)") }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    return fd
}

/// A loop on its own thread serving `handler` on an ephemeral port.
private func startServer<Framer: InboundFramer>(
    framing: @escaping () -> Framer, highWatermark: Int = 16, lowWatermark: Int = 4,
    handler: @escaping @Sendable (AsyncConnection<Framer.Message>) async throws -> Void
) throws -> (LoopThread, Int) {
    let loop = try EventLoop()
    let listener = try loop.serve(at: SocketAddress(host: "127.0.0.1", port: 0), framing: framing,
                                  highWatermark: highWatermark, lowWatermark: lowWatermark, handler: handler)
    let port = Int(listener.localAddress.port)
    return (try loop.start(), port)
}

/// An actor isolated to a second loop's thread: a handler that hops to it reads and writes from
/// another thread than its connection's loop, through that loop's mailbox. (Not the global
/// executor: the test suite's synchronous tests block its few threads, which would stall it.)
private actor OffLoopEchoer {
    let home: LoopExecutor
    let offLoop: Shared<Int>
    nonisolated var unownedExecutor: UnownedSerialExecutor { self.home.asUnownedSerialExecutor() }

    init(home: LoopExecutor, offLoop: Shared<Int>) {
        self.home = home
        self.offLoop = offLoop
    }

    func echo(_ connection: AsyncConnection<[UInt8]>, executor: LoopExecutor) async throws {
        for try await line in connection.inbound {
            if !executor.isOnLoopThread { self.offLoop.with { $0 += 1 } }
            try await connection.outbound.write(line + [0x0A])
        }
    }
}

extension ReactorTests {
    @Suite struct AsyncConnectionTests {
        @Test func aHandlerOffTheLoopThreadKeepsOrderAndBackpressure() throws {
            let home = try EventLoop()
            let homeThread = try home.start()
            defer { try? homeThread.stopAndJoin() }
            let offLoop = Shared(0)
            let echoer = OffLoopEchoer(home: homeThread.executor, offLoop: offLoop)  // the loop runs: only its thread's handles
            let loop = try EventLoop()
            let executor = loop.executor
            let listener = try loop.serve(at: SocketAddress(host: "127.0.0.1", port: 0), framing: { Lines(maxLineBytes: 100) },
                                          highWatermark: 2, lowWatermark: 1) { connection in
                try await echoer.echo(connection, executor: executor)
            }
            let port = listener.localAddress.port
            let thread = try loop.start()
            defer { try? thread.stopAndJoin() }
            let fd = try connectLoopback(port: port)
            defer { close(fd) }
            let request = (0..<2000).map { "off \($0)\n" }.joined()
            let deadline = ContinuousClock.now + .seconds(20)
            try writeAll(fd, Array(request.utf8), deadline: deadline)
            shutdown(fd, CInt(SHUT_WR))
            let (reply, eof) = readToEOF(fd, deadline: deadline)
            #expect(eof)
            #expect(String(decoding: reply, as: UTF8.self) == request)
            #expect(offLoop.current == 2000, "the handler ran off the loop thread")
        }

        @Test func pipelinedLinesAreAnsweredInOrder() throws {
            let (thread, port) = try startServer(framing: { Lines(maxLineBytes: 100) }) { connection in
                var n = 0
                for try await line in connection.inbound {
                    n += 1
                    try await connection.outbound.write(Array("\(n):".utf8) + line + [0x0A])
                }
            }
            defer { try? thread.stopAndJoin() }
            let fd = try connectLoopback(port: port)
            defer { close(fd) }
            let count = 3000
            let request = (0..<count).map { "line \($0)\r\n" }.joined()
            let deadline = ContinuousClock.now + .seconds(20)
            try writeAll(fd, Array(request.utf8), deadline: deadline)
            shutdown(fd, CInt(SHUT_WR))
            let (reply, eof) = readToEOF(fd, deadline: deadline)
            #expect(eof)
            let expected = (0..<count).map { "\($0 + 1):line \($0)\n" }.joined()
            #expect(String(decoding: reply, as: UTF8.self) == expected)
        }

        @Test func aConsumerThatDoesNotReadStopsTheLoopReadingAndTheSenderBlocks() throws {
            let gate = Shared(false)
            let consumed = Shared(0)
            let (thread, port) = try startServer(framing: { ByteChunks() }, highWatermark: 4, lowWatermark: 1) { connection in
                var total = 0
                for try await chunk in connection.inbound {
                    consumed.with { $0 += 1 }
                    total += chunk.count
                    // The first chunk holds the consumer until the test opens the gate (polled, bounded).
                    for _ in 0..<4000 where !gate.current { try await Task.sleep(for: .milliseconds(5)) }
                }
                try await connection.outbound.write("\(total)\n")
            }
            defer { try? thread.stopAndJoin() }
            let fd = try connectLoopback(port: port)
            defer { close(fd) }
            // Write until the kernel takes no more: the loop stopped reading, so both socket
            // buffers fill and the sender's writes would block.
            let block = [UInt8](repeating: 0x78, count: 64 * 1024)
            var sent = 0
            let bound = 256 * 1024 * 1024
            while sent < bound {
                let n = block.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent += n
                    continue
                }
                #expect(errno == EAGAIN)
                // Blocked: does the socket stay unwritable (the server is not reading)?
                if !pollFor(fd, events: Int16(POLLOUT), until: .now + .milliseconds(300)) { break }
            }
            #expect(sent < bound, "the sender never blocked")
            #expect(consumed.current == 1, "the consumer took only the first chunk")
            // Open the gate: everything sent arrives, and the count comes back.
            gate.with { $0 = true }
            shutdown(fd, CInt(SHUT_WR))
            let (reply, eof) = readToEOF(fd, deadline: .now + .seconds(20))
            #expect(eof)
            #expect(String(decoding: reply, as: UTF8.self) == "\(sent)\n")
            #expect(consumed.current > 1)
        }

        @Test func theEndOfTheStreamAFramingErrorAndAResetSurface() throws {
            let outcomes = Shared<[String]>([])
            let (thread, port) = try startServer(framing: { Lines(maxLineBytes: 8) }) { connection in
                do {
                    for try await line in connection.inbound {
                        try await connection.outbound.write(line + [0x0A])
                    }
                    outcomes.with { $0.append("end") }
                    try await connection.outbound.write("bye\n")
                } catch let error as Lines.LineTooLong {
                    outcomes.with { $0.append("too long") }
                    try await connection.outbound.write("ERR longer than \(error.limit)\n")
                } catch {
                    outcomes.with { $0.append("error: \(error)") }
                }
            }
            defer { try? thread.stopAndJoin() }
            let deadline = ContinuousClock.now + .seconds(10)

            // The peer shuts down its side: the sequence ends, the reply still goes out.
            let a = try connectLoopback(port: port)
            try writeAll(a, Array("hi\n".utf8), deadline: deadline)
            shutdown(a, CInt(SHUT_WR))
            #expect(readToEOF(a, deadline: deadline) == (Array("hi\nbye\n".utf8), true))
            close(a)

            // A line over the limit: the sequence throws it and the handler answers before the close.
            let b = try connectLoopback(port: port)
            try writeAll(b, Array("ok\nmuch too long\n".utf8), deadline: deadline)
            #expect(readToEOF(b, deadline: deadline) == (Array("ok\nERR longer than 8\n".utf8), true))
            close(b)

            // A reset: the sequence throws the socket's error.
            let c = try connectLoopback(port: port)
            try writeAll(c, Array("x\n".utf8), deadline: deadline)
            var reply = [UInt8](repeating: 0, count: 2)
            #expect(pollFor(c, events: Int16(POLLIN), until: deadline))
            #expect(read(c, &reply, 2) == 2)
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(c, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(c)
            #expect(pollFor { outcomes.current.count == 3 })
            let seen = outcomes.current
            #expect(seen.prefix(2) == ["end", "too long"])
            #expect(seen.last?.hasPrefix("error: ") == true, "\(seen)")
        }
    }
}
