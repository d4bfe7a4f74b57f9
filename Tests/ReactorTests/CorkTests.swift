// A corked connection holds its output through flushes until it is released: by `uncork()`, or by
// `flush(uncorking: true)`, which releases and writes in one call (how a kv connection sends the
// replies group commit held for the log).

@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct CorkTests {
        /// What the peer can read now, without waiting (nothing: EAGAIN, an empty result).
        static func readNow(_ fd: CInt) -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: 1024)
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            return n > 0 ? Array(buffer[0..<n]) : []
        }

        @Test(arguments: [false, true])
        func corkedOutputWaitsThroughFlushesUntilReleased(releasingByFlush: Bool) throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            try writeAll(peer.rawValue, Array("ask".utf8), deadline: .now + .seconds(5))

            let delegate = RecordingDelegate()
            var heldBeforeRelease: (pending: Int, peerRead: [UInt8])?
            var afterRelease: (pending: Int, peerRead: [UInt8])?
            delegate.onRead = { connection in
                connection.cork()
                connection.write(Array("held".utf8))
                connection.flush()  // corked: nothing may leave
                heldBeforeRelease = (connection.pendingOutputBytes, Self.readNow(peer.rawValue))
                if releasingByFlush { connection.flush(uncorking: true) } else { connection.uncork() }
                afterRelease = (connection.pendingOutputBytes, Self.readNow(peer.rawValue))
                connection.uncork()  // no longer corked: nothing to release, nothing sent twice
                loop.stop()
            }
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)

            #expect(try runLoop(loop))
            #expect(heldBeforeRelease?.pending == 4)
            #expect(heldBeforeRelease?.peerRead == [])
            #expect(afterRelease?.pending == 0)
            #expect(afterRelease?.peerRead == Array("held".utf8))
            #expect(Self.readNow(peer.rawValue) == [])
            connection.abort()
        }
    }
}
