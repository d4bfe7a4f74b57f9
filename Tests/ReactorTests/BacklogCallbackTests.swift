// The backlog report (`connection(_:didUpdateOutputBacklog:)`) is a call out of `flush()` in the
// middle of its work: output a delegate queues from there must reach the peer, not be released
// with a buffer flush() still believed empty.

import CLinux
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Streams a trailer once everything before it has drained, from inside the backlog report.
private final class TrailerOnDrain: ConnectionDelegate {
    let trailer: [UInt8]
    private(set) var wroteTrailer = false
    init(trailer: [UInt8]) { self.trailer = trailer }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {
        if bytes == 0 && !self.wroteTrailer {
            self.wroteTrailer = true
            connection.write(self.trailer)
        }
    }
}

extension ReactorTests {
    @Suite struct BacklogCallbackTests {
        @Test func outputQueuedFromTheBacklogReportReachesThePeer() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let trailer = Array("TAIL".utf8)
            let delegate = TrailerOnDrain(trailer: trailer)
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }
            // Larger than the socket buffers, so the first flush leaves a backlog, and larger than
            // the size past which a drained buffer is released.
            let body = 4 << 20
            connection.write([UInt8](repeating: 7, count: body))
            connection.flush()
            #expect(connection.pendingOutputBytes > 0)

            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            var received: [UInt8] = []
            received.reserveCapacity(body + trailer.count)
            // Each round reads what the socket holds and lets the connection write more; every
            // round moves bytes until the trailer is through, so the bound is never reached
            // unless bytes are lost.
            for _ in 0..<200_000 where received.count < body + trailer.count {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(peer.rawValue, $0.baseAddress, $0.count) }
                if n > 0 { received.append(contentsOf: chunk[0..<n]) }
                if n <= 0 && delegate.wroteTrailer && connection.pendingOutputBytes == 0 { break }
                connection.flush()
            }
            #expect(delegate.wroteTrailer)
            #expect(received.count == body + trailer.count, "received \(received.count) of \(body + trailer.count)")
            #expect(Array(received.suffix(trailer.count)) == trailer)
        }
    }
}
