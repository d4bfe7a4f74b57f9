// Listener's accept factory: a refused peer is closed at once, an accepted one is served by a
// delegate nobody but its connection keeps, and making a socket leaves SIGPIPE ignored.

import CLinux
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct ListenerTests {
        /// Says hello when its connection opens; counts its own deinit.
        final class Greeter: ConnectionDelegate {
            let onDeinit: () -> Void
            init(onDeinit: @escaping () -> Void) { self.onDeinit = onDeinit }
            deinit { self.onDeinit() }
            func connectionDidOpen(_ connection: Connection) { connection.write(Array("hello\n".utf8)) }
            func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) { connection.close() }
        }

        @Test func factoryReturningNilRefusesThePeerWithoutServingIt() throws {
            let loop = try EventLoop()
            var asked = 0
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in
                asked += 1
                return nil
            }
            defer { listener.close() }
            let client = RecordingDelegate()
            client.onClose = { _ in loop.stop() }
            _ = try Connection.connect(loop: loop, to: listener.localAddress, delegate: client)

            #expect(try runLoop(loop))
            #expect(asked == 1)
            #expect(client.received.isEmpty)
            #expect(client.closeCount == 1)
        }

        @Test func acceptedDelegateIsHeldByItsConnectionAloneAndHearsOpenFirst() throws {
            let loop = try EventLoop()
            var greeters = 0
            var released = 0
            var peers: [SocketAddress] = []
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { peer in
                greeters += 1
                peers.append(peer)
                return Greeter { released += 1 }
            }
            defer { listener.close() }
            let client = RecordingDelegate()
            // Unowned: the delegate owns this closure (a strong capture would be a cycle).
            client.onRead = { [unowned client] connection in
                if client.received == Array("hello\n".utf8) { connection.write(Array("bye\n".utf8)) }
            }
            client.onClose = { _ in loop.stop() }
            let outbound = try Connection.connect(loop: loop, to: listener.localAddress, delegate: client)

            #expect(try runLoop(loop))
            #expect(greeters == 1)
            #expect(client.received == Array("hello\n".utf8))
            #expect(peers.first?.host == "127.0.0.1")
            #expect(outbound.state == .closed)
            // The server side closed when it read "bye": its connection, and so its delegate, are gone.
            #expect(released == 1)
        }

        @Test func makingASocketLeavesSIGPIPEIgnored() throws {
            let loop = try EventLoop()
            let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { _ in nil }
            listener.close()
            var current = sigaction()
            #expect(sigaction(SIGPIPE, nil, &current) == 0)
            #expect(unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self))
        }
    }
}
