// AsyncConnection.connect (Sources/Reactor/AsyncConnection+Connect.swift) over loopback TCP: an
// echo round trip by host name (from a task on the connection's loop and from one on another
// loop), and each way a connect can fail — refused, no answer until the deadline, a name that
// does not resolve, the task cancelled — surfacing as the awaited call's error. The client tasks
// run on a loop's executor, never the global one (the suite's synchronous tests block its few
// threads), and the tests poll for their outcome with a deadline.

import CLinux
@testable import Reactor
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a client task ended with, as text the test can compare (errors are not Equatable).
private enum Outcome: Sendable, Equatable {
    case ok(String)
    case failed(errno: CInt?, call: String?, cancelled: Bool)
}

private func outcome(of error: any Error) -> Outcome {
    if let io = error as? IOError { return .failed(errno: io.errno, call: io.call, cancelled: false) }
    return .failed(errno: nil, call: nil, cancelled: error is CancellationError)
}

/// Runs `body` as a task on `thread`'s loop executor and waits (polled, bounded) for its outcome.
private func run(on thread: LoopThread, within seconds: Int64 = 20,
                 _ body: @escaping @Sendable () async throws -> String) throws -> Outcome {
    let result = Shared<Outcome?>(nil)
    Task(executorPreference: thread.executor.taskExecutor) {
        let final: Outcome
        do { final = .ok(try await body()) } catch { final = outcome(of: error) }
        result.with { $0 = final }
    }
    _ = pollFor(within: seconds) { result.current != nil }
    guard let final = result.current else { throw TestFailure("the client task did not finish") }
    return final
}

/// A loop on its own thread echoing lines through `serve`; returns it and its port.
private func startEchoServer() throws -> (LoopThread, Int) {
    let loop = try EventLoop()
    let listener = try loop.serve(at: SocketAddress(host: "127.0.0.1", port: 0), framing: { Lines(maxLineBytes: 100) }) { connection in
        for try await line in connection.inbound { try await connection.outbound.write(line + [0x0A]) }
    }
    let port = Int(listener.localAddress.port)
    return (try loop.start(), port)
}

/// A port nothing listens on (bound, then closed: the kernel refuses connects to it).
private func closedPort() throws -> Int {
    let (fd, address) = try Sys.boundSocket(SocketAddress(host: "127.0.0.1", port: 0), type: CInt(SOCK_STREAM.rawValue))
    Sys.close(fd)
    return Int(address.port)
}

/// Connects, sends `count` lines, reads them back, closes; "peerPort lines".
@Sendable private func echoRoundTrip(loop: LoopHandle, port: Int, count: Int) async throws -> String {
    let connection = try await AsyncConnection.connect(loop: loop, host: "localhost", port: port, timeout: .seconds(10),
                                                       framing: { Lines(maxLineBytes: 100) })
    for i in 0..<count { try await connection.outbound.write("line \(i)\n") }
    var got: [String] = []
    for try await line in connection.inbound {
        got.append(String(decoding: line, as: UTF8.self))
        if got.count == count { break }
    }
    connection.outbound.close()
    return "\(connection.peer?.port ?? 0) \(got == (0..<count).map { "line \($0)" })"
}

extension ReactorTests {
    @Suite struct AsyncConnectTests {
        @Test func connectsByNameAndEchoesFromTheConnectionsLoopAndFromAnother() throws {
            let (server, port) = try startEchoServer()
            defer { try? server.stopAndJoin() }
            let client = try EventLoop().start()
            defer { try? client.stopAndJoin() }
            let other = try EventLoop().start()
            defer { try? other.stopAndJoin() }
            let handle = client.handle
            // The task runs on the connection's loop: reads and writes take the fast paths.
            #expect(try run(on: client) { try await echoRoundTrip(loop: handle, port: port, count: 500) } == .ok("\(port) true"))
            // The task runs on another loop: everything goes through the connection loop's mailbox.
            #expect(try run(on: other) { try await echoRoundTrip(loop: handle, port: port, count: 500) } == .ok("\(port) true"))
        }

        @Test func aRefusedConnectThrowsECONNREFUSED() throws {
            let port = try closedPort()
            let client = try EventLoop().start()
            defer { try? client.stopAndJoin() }
            let handle = client.handle
            let result = try run(on: client) {
                _ = try await AsyncConnection.connect(loop: handle, host: "127.0.0.1", port: port, framing: { Lines() })
                return "connected"
            }
            #expect(result == .failed(errno: ECONNREFUSED, call: "connect", cancelled: false))
        }

        @Test func aConnectWithNoAnswerThrowsETIMEDOUTAtItsDeadline() throws {
            // A listener that never accepts, with the smallest backlog: once its queue is full the
            // kernel drops further SYNs, so those connects hang until their deadline.
            let (fd, address) = try Sys.boundSocket(SocketAddress(host: "127.0.0.1", port: 0), type: CInt(SOCK_STREAM.rawValue), afterBind: { fd throws(IOError) in
                try Sys.listen(fd, backlog: 0)
            })
            defer { Sys.close(fd) }
            let client = try EventLoop().start()
            defer { try? client.stopAndJoin() }
            let handle = client.handle
            let port = Int(address.port)
            let result = try run(on: client) {
                var held: [AsyncConnection<[UInt8]>] = []  // the ones the queue took stay open
                defer { for connection in held { connection.outbound.close() } }
                for _ in 0..<6 {
                    let started = ContinuousClock.now
                    do {
                        held.append(try await AsyncConnection.connect(loop: handle, host: "127.0.0.1", port: port,
                                                                      timeout: .milliseconds(300), framing: { Lines() }))
                    } catch let error as IOError where error.errno == ETIMEDOUT {
                        return ContinuousClock.now - started >= .milliseconds(300) ? "timed out at the deadline" : "early"
                    }
                }
                return "never timed out"
            }
            #expect(result == .ok("timed out at the deadline"))
        }

        @Test func aNameThatDoesNotResolveThrowsTheLookupsError() throws {
            let client = try EventLoop().start()
            defer { try? client.stopAndJoin() }
            let handle = client.handle
            let result = try run(on: client) {
                _ = try await AsyncConnection.connect(loop: handle, host: "no-such-host.invalid", port: 80, timeout: .seconds(5), framing: { Lines() })
                return "connected"
            }
            guard case .failed(let code, let call, _) = result else {
                Issue.record("connected to no-such-host.invalid")
                return
            }
            // Without a resolver the lookup can also run into the deadline.
            #expect(call?.hasPrefix("getaddrinfo no-such-host.invalid") == true || code == ETIMEDOUT, "\(result)")
        }

        @Test func cancellingTheTaskEndsAConnectInFlight() throws {
            let (fd, address) = try Sys.boundSocket(SocketAddress(host: "127.0.0.1", port: 0), type: CInt(SOCK_STREAM.rawValue), afterBind: { fd throws(IOError) in
                try Sys.listen(fd, backlog: 0)
            })
            defer { Sys.close(fd) }
            let client = try EventLoop().start()
            defer { try? client.stopAndJoin() }
            let handle = client.handle
            let taskExecutor = client.executor.taskExecutor
            let port = Int(address.port)
            let result = try run(on: client) {
                var held: [AsyncConnection<[UInt8]>] = []
                defer { for connection in held { connection.outbound.close() } }
                // Fill the accept queue (short deadlines), then one with a long deadline, cancelled.
                for _ in 0..<6 {
                    do {
                        held.append(try await AsyncConnection.connect(loop: handle, host: "127.0.0.1", port: port,
                                                                      timeout: .milliseconds(200), framing: { Lines() }))
                    } catch { break }
                }
                let started = ContinuousClock.now
                let attempt = Task(executorPreference: taskExecutor) { () async throws -> Void in
                    _ = try await AsyncConnection.connect(loop: handle, host: "127.0.0.1", port: port, timeout: .seconds(60), framing: { Lines() })
                }
                try await Task.sleep(for: .milliseconds(50))
                attempt.cancel()
                do {
                    try await attempt.value
                    return "connected"
                } catch is CancellationError {
                    return ContinuousClock.now - started < .seconds(30) ? "cancelled" : "cancelled late"
                }
            }
            #expect(result == .ok("cancelled"))
        }
    }
}
