// The primitives an embedding tool builds on, through real sockets on 127.0.0.1 (and a Unix
// domain socket): output written outside a read callback goes out with no flush; pause and
// resume reading; removable inboxes; connect by host name with a timeout; Unix domain sockets;
// a graceful stop that stops accepting, drains what is queued and returns from run().

import CLinux
import Dispatch
import Foundation
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct EmbeddingPrimitivesTests {
        /// Calls `onOpen` when its connection opens, `onRead` with every read.
        final class Scripted: ConnectionDelegate {
            var onOpen: (Connection) -> Void = { _ in }
            var onRead: (Connection, [UInt8]) -> Void = { _, _ in }
            var received: [UInt8] = []
            func connectionDidOpen(_ connection: Connection) { self.onOpen(connection) }
            func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
                self.received.append(contentsOf: bytes)
                self.onRead(connection, Array(bytes))
            }
        }

        @Test func outputWrittenFromATimerOrAnInboxGoesOutWithoutAFlush() throws {
            let loop = try EventLoop()
            let server = Scripted()
            server.onOpen = { connection in
                let inbox = loop.makeInbox { (text: String) in connection.write(text.utf8) }
                loop.scheduleTimer(after: .milliseconds(5)) {
                    connection.write("tick\n".utf8)
                    DispatchQueue.global().async { inbox.post("from another thread\n") }
                }
            }
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in server }
            defer { listener.close() }
            let client = RecordingDelegate()
            let expected = Array("tick\nfrom another thread\n".utf8)
            client.onRead = { [unowned client] _ in if client.received.count >= expected.count { loop.stop() } }
            _ = try Connection.connect(loop: loop, to: listener.localAddress, delegate: client)
            #expect(try runLoop(loop, timeout: .seconds(5)), "output written outside a read callback never went out")
            #expect(client.received == expected)
        }

        @Test func pausedReadingHoldsTheBytesUntilResumed() throws {
            let loop = try EventLoop()
            let server = Scripted()
            var serverConnection: Connection?
            server.onOpen = { connection in
                connection.pauseReading()
                serverConnection = connection
            }
            server.onRead = { connection, _ in
                if server.received == Array("one two".utf8) { loop.stop() }
            }
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in server }
            defer { listener.close() }
            let client = Scripted()
            client.onOpen = { connection in connection.write("one ".utf8) }
            var receivedWhilePaused: [UInt8]?
            let outbound = try Connection.connect(loop: loop, to: listener.localAddress, delegate: client)
            // Many loop turns with the bytes waiting in the kernel; then resume, and more follows.
            loop.scheduleTimer(after: .milliseconds(50)) {
                receivedWhilePaused = server.received
                serverConnection?.resumeReading()
                outbound.write("two".utf8)
            }
            #expect(try runLoop(loop, timeout: .seconds(5)))
            #expect(receivedWhilePaused == [])
            #expect(server.received == Array("one two".utf8))
        }

        @Test func aRemovedInboxDropsItsMessagesAndReleasesItsHandler() throws {
            let loop = try EventLoop()
            final class Captured { let onDeinit: () -> Void; init(_ f: @escaping () -> Void) { self.onDeinit = f }; deinit { self.onDeinit() } }
            var released = false
            var delivered: [Int] = []
            var inbox: Inbox<Int>?
            do {
                let captured = Captured { released = true }
                inbox = loop.makeInbox { (n: Int) in withExtendedLifetime(captured) { delivered.append(n) } }
            }
            let before = loop.inboxCount
            inbox!.post(1)
            loop.drainMailbox()
            inbox!.post(2)  // posted, not yet delivered, when the inbox goes
            loop.removeInbox(inbox!)
            #expect(released, "the handler's captures outlived the inbox")
            inbox!.post(3)
            loop.drainMailbox()
            #expect(delivered == [1])
            #expect(loop.inboxCount == before - 1)
            loop.removeInbox(inbox!)  // twice: nothing
        }

        @Test func connectsByHostNameAndReportsANameThatDoesNotResolve() throws {
            let loop = try EventLoop()
            let server = Scripted()
            server.onRead = { connection, bytes in connection.write(bytes) }
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in server }
            defer { listener.close() }
            let client = Scripted()
            client.onOpen = { connection in connection.write("ping\n".utf8) }
            var lookupFailure: IOError?
            var pending = 2
            client.onRead = { _, _ in
                if client.received == Array("ping\n".utf8) { pending -= 1; if pending == 0 { loop.stop() } }
            }
            var opened: Connection?
            Connection.connect(loop: loop, host: "localhost", port: listener.localAddress.port, timeout: .seconds(5), delegate: client) {
                opened = try? $0.get()
            }
            Connection.connect(loop: loop, host: "no-such-host.invalid", port: 80, timeout: .seconds(3), delegate: Scripted()) { result in
                if case .failure(let error) = result { lookupFailure = error }
                pending -= 1
                if pending == 0 { loop.stop() }
            }
            #expect(try runLoop(loop, timeout: .seconds(10)))
            #expect(client.received == Array("ping\n".utf8))
            #expect(opened?.peer?.isLoopback == true)
            let failure = try #require(lookupFailure)
            #expect(failure.call.hasPrefix("getaddrinfo") || failure.errno == ETIMEDOUT, "\(failure)")
        }

        @Test func aConnectThatGetsNoAnswerEndsAtItsTimeout() throws {
            // A listener that never accepts, with the smallest backlog: once its queue is full
            // the kernel drops further SYNs, so those connects hang until their deadline.
            let (fd, address) = try Sys.boundSocket(SocketAddress(host: "127.0.0.1", port: 0), type: CInt(SOCK_STREAM.rawValue), afterBind: { fd throws(IOError) in
                try Sys.listen(fd, backlog: 0)
            })
            defer { Sys.close(fd) }
            let loop = try EventLoop()
            var errors: [IOError?] = []
            var delegates: [RecordingDelegate] = []
            let attempts = 4
            let started = ContinuousClock.now
            for _ in 0..<attempts {
                let delegate = RecordingDelegate()
                delegates.append(delegate)
                delegate.onClose = { connection in
                    errors.append(connection.closeError)
                    if errors.count == attempts - 1 { loop.stop() }  // one may sit in the queue, open
                }
                Connection.connect(loop: loop, host: "127.0.0.1", port: address.port, timeout: .milliseconds(300), delegate: delegate) { _ in }
            }
            #expect(try runLoop(loop, timeout: .seconds(10)))
            #expect(errors.contains { $0?.errno == ETIMEDOUT }, "\(errors)")
            #expect(ContinuousClock.now - started >= .milliseconds(300))
        }

        @Test func servesAndConnectsOverAUnixDomainSocket() throws {
            let directory = try TemporaryDirectory("reactor-unix")
            let path = directory.file("echo.sock")
            let loop = try EventLoop()
            let server = Scripted()
            server.onRead = { connection, bytes in connection.write(bytes) }
            let listener = try Listener(loop: loop, address: SocketAddress(unixDomainSocketPath: path)) { _ in server }
            defer { listener.close() }
            #expect(listener.localAddress.unixPath == path)
            #expect(listener.localAddress.description == "unix:\(path)")
            let client = Scripted()
            client.onOpen = { connection in connection.write("over a file\n".utf8) }
            client.onRead = { _, _ in if client.received.count == 12 { loop.stop() } }
            let outbound = try Connection.connect(loop: loop, to: SocketAddress(unixDomainSocketPath: path), delegate: client)
            #expect(try runLoop(loop, timeout: .seconds(5)))
            #expect(client.received == Array("over a file\n".utf8))
            #expect(outbound.peer?.unixPath == path)
            #expect(throws: SocketAddressError.self) { try SocketAddress(unixDomainSocketPath: String(repeating: "x", count: 200)) }
        }

        @Test func aGracefulStopClosesTheListenerDrainsQueuedOutputAndReturnsFromRun() throws {
            let loop = try EventLoop()
            let payload = [UInt8](repeating: UInt8(ascii: "z"), count: 16 * 1024 * 1024)
            let server = Scripted()
            // Far more than the socket buffers hold: most of it is still queued at the stop.
            // Only the first client gets it: the probes below, accepted until the stop runs, get nothing.
            var opened = 0
            server.onOpen = { connection in
                opened += 1
                if opened == 1 { connection.write(payload) }
            }
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in server }
            let port = listener.localAddress.port
            let returned = Shared(false)
            nonisolated(unsafe) let loopForThread = loop  // run() is the loop's one user from here on
            let thread = Thread {
                try? loopForThread.run()
                returned.with { $0 = true }
            }
            thread.start()
            let client = try blockingClient(port: port)
            defer { close(client) }
            var first = [UInt8](repeating: 0, count: 1)
            #expect(recv(client, &first, 1, CInt(MSG_WAITALL)) == 1)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            loop.handle.stopGracefully(within: .seconds(10))
            // The listener goes first: a new client is refused once the stop has run.
            #expect(pollFor(within: 10) { (try? blockingClient(port: port)).map { close($0); return false } ?? true })
            #expect(!returned.current, "run() returned with output still queued")
            let (rest, eof) = readToEOF(client, deadline: .now + .seconds(10))
            #expect(rest.count + 1 == payload.count)
            #expect(eof)
            #expect(pollFor(within: 5) { returned.current }, "run() did not return once the last connection closed")
        }

        func blockingClient(port: Int) throws -> CInt {
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            let address = try SocketAddress(host: "127.0.0.1", port: port)
            let r = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            guard r == 0 else { close(fd); throw TestFailure("connect: errno \(errno)") }
            return fd
        }
    }
}
