// Connection over real socketpairs: bytes reach the delegate, queued output reaches the peer,
// a hang-up reaches connectionDidReadEOF/connectionDidClose, large outputs survive partial
// writes in order, and backpressure keeps the queue bounded.

import CLinux
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct ConnectionTests {
        @Test func connectionDeliversBytesToDelegateAndWritesQueuedOutput() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            try writeAll(peer.rawValue, Array("hello\n".utf8), deadline: .now + .seconds(5))

            let delegate = RecordingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            // Unowned: the delegate owns this closure (a strong capture would be a cycle, which
            // LeakSanitizer reports).
            delegate.onRead = { [unowned delegate] connection in
                if delegate.received == Array("hello\n".utf8) {
                    connection.write(Array("world\n".utf8))
                    connection.flush()
                }
            }
            var peerReceived: [UInt8] = []
            let peerHandler = ClosureHandler(onReadable: {
                var buffer = [UInt8](repeating: 0, count: 1024)
                let n = buffer.withUnsafeMutableBytes { Glibc.read(peer.rawValue, $0.baseAddress, $0.count) }
                if n > 0 { peerReceived.append(contentsOf: buffer[0..<n]) }
                if peerReceived.count >= 6 { loop.stop() }
            })
            try loop.register(peerHandler, descriptor: peer, interest: .read)
            defer { loop.deregister(peer) }

            #expect(try runLoop(loop))
            #expect(delegate.received == Array("hello\n".utf8))
            #expect(peerReceived == Array("world\n".utf8))
            #expect(connection.pendingOutputBytes == 0)
            #expect(delegate.closeCount == 0)
            connection.abort()
            #expect(delegate.closeCount == 1)
            #expect(connection.state == .closed)
        }

        @Test func peerHangUpReachesReadEOFAndClose() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            try writeAll(peer.rawValue, Array("last words".utf8), deadline: .now + .seconds(5))
            Sys.close(peer)

            let delegate = RecordingDelegate()
            delegate.onClose = { _ in loop.stop() }
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)

            #expect(try runLoop(loop))
            #expect(delegate.received == Array("last words".utf8))
            #expect(delegate.readEOFCount == 1)
            #expect(delegate.closeCount == 1)
            #expect(delegate.closeError == nil)
            #expect(connection.state == .closed)
        }

        @Test func halfClosedPeerStillGetsOutputQueuedAfterEOF() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            try writeAll(peer.rawValue, Array("question".utf8), deadline: .now + .seconds(5))
            Sys.shutdown(peer, how: CInt(SHUT_WR))

            let delegate = RecordingDelegate()
            delegate.onEOF = { connection in
                connection.write(Array("answer".utf8))
            }
            delegate.onClose = { _ in loop.stop() }
            _ = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)

            #expect(try runLoop(loop))
            #expect(delegate.readEOFCount == 1)
            #expect(delegate.closeError == nil)
            let (bytes, eof) = readToEOF(peer.rawValue, deadline: .now + .seconds(5))
            #expect(bytes == Array("answer".utf8))
            #expect(eof)
        }

        @Test func connectionPausedByAnotherHandlerInTheSameBatchStaysOpen() throws {
            let loop = try EventLoop()
            var iterations = 0
            loop.addBeforeSleepHook { [unowned loop] in  // the loop owns its hooks: no cycle
                iterations += 1
                if iterations == 1 { loop.stop() }
            }
            let (local1, peer1) = try makeSocketPair()
            let (local2, peer2) = try makeSocketPair()
            defer { Sys.close(peer1); Sys.close(peer2) }
            // Both readable before the first wait: their events come in one batch.
            try writeAll(peer1.rawValue, Array("one".utf8), deadline: .now + .seconds(5))
            try writeAll(peer2.rawValue, Array("two".utf8), deadline: .now + .seconds(5))
            let first = RecordingDelegate()
            let second = RecordingDelegate()
            let c1 = try Connection(loop: loop, descriptor: local1, peer: nil, delegate: first)
            let c2 = try Connection(loop: loop, descriptor: local2, peer: nil, delegate: second)
            defer { c1.abort(); c2.abort() }
            // Whichever reads first pauses the other, whose event is already in the batch.
            var pausedOther = false
            first.onRead = { _ in if !pausedOther { pausedOther = true; c2.pauseReading() } }
            second.onRead = { _ in if !pausedOther { pausedOther = true; c1.pauseReading() } }

            #expect(try runLoop(loop))
            #expect(first.closeCount == 0 && second.closeCount == 0,
                    "a readiness event that arrived before pauseReading closed the connection: \(String(describing: first.closeError ?? second.closeError))")
            #expect(c1.state == .open && c2.state == .open)
            // Exactly one of them read; the paused one reads once resumed.
            #expect(first.received.isEmpty != second.received.isEmpty)
        }

        /// A byte of a deterministic stream, so a reordering or a dropped byte is caught anywhere.
        static func patternByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: (i &* 7) % 251 &+ i >> 16) }

        @Test func largeQueuedOutputReachesSlowReaderCompleteAndInOrder() throws {
            let total = 8 << 20
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = RecordingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }

            connection.write((0..<total).map(Self.patternByte))
            connection.flush()
            #expect(connection.pendingOutputBytes > 0, "the socket took 8 MiB at once: no partial write happened")

            // The slow reader: a small read per wake-up, so the writer meets EAGAIN many times.
            var received = 0
            var mismatchAt: Int?
            var buffer = [UInt8](repeating: 0, count: 8192)
            let reader = ClosureHandler(onReadable: {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(peer.rawValue, $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                for i in 0..<n where mismatchAt == nil && buffer[i] != Self.patternByte(received + i) {
                    mismatchAt = received + i
                }
                received += n
                if received >= total || mismatchAt != nil { loop.stop() }
            })
            try loop.register(reader, descriptor: peer, interest: .read)
            defer { loop.deregister(peer) }

            #expect(try runLoop(loop, timeout: .seconds(60)))
            #expect(mismatchAt == nil)
            #expect(received == total)
            #expect(connection.pendingOutputBytes == 0)
            #expect(delegate.closeCount == 0)
            #expect(delegate.backlogReports.first.map { $0 > 0 } == true)
            #expect(delegate.backlogReports.last == 0, "the drained backlog is reported")
            #expect(zip(delegate.backlogReports, delegate.backlogReports.dropFirst()).allSatisfy { $0 != $1 },
                    "only changes are reported")
        }

        @Test func theBacklogIsReportedAfterAFlushAndBackToZeroAtTheClose() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = RecordingDelegate()
            var reportsAtClose: [Int] = []
            delegate.onClose = { _ in reportsAtClose = delegate.backlogReports }
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            connection.write([UInt8](repeating: 1, count: 4 << 20))
            #expect(delegate.backlogReports.isEmpty, "nothing is reported before a write attempt")
            connection.flush()
            #expect(delegate.backlogReports == [connection.pendingOutputBytes])
            connection.flush()
            #expect(delegate.backlogReports.count == 1, "an unchanged backlog is not reported again")
            connection.abort()
            #expect(reportsAtClose.last == 0, "the backlog is 0 before the delegate hears of the close")
            #expect(delegate.closeCount == 1)
        }

        @Test func backpressureKeepsPendingOutputBelowHighWaterMarkPlusOneBatch() throws {
            let total = 8 << 20
            let batch = 16 * 1024
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = RecordingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }

            var produced = 0
            var maxPending = 0
            var pendingAtDrain: [Int] = []
            // A producer that respects backpressure: it writes while the queue is below the
            // high-water mark and otherwise waits for connectionDidDrain.
            func produce(_ connection: Connection) {
                while produced < total {
                    while produced < total && connection.pendingOutputBytes < connection.highWaterMark {
                        let count = min(batch, total - produced)
                        connection.write((produced..<(produced + count)).map(Self.patternByte))
                        produced += count
                        maxPending = max(maxPending, connection.pendingOutputBytes)
                    }
                    connection.flush()
                    if connection.pendingOutputBytes >= connection.highWaterMark { return }
                }
            }
            delegate.onDrain = { connection in
                pendingAtDrain.append(connection.pendingOutputBytes)
                produce(connection)
            }

            var received = 0
            var mismatchAt: Int?
            var buffer = [UInt8](repeating: 0, count: 8192)
            let reader = ClosureHandler(onReadable: {
                maxPending = max(maxPending, connection.pendingOutputBytes)
                let n = buffer.withUnsafeMutableBytes { Glibc.read(peer.rawValue, $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                for i in 0..<n where mismatchAt == nil && buffer[i] != Self.patternByte(received + i) {
                    mismatchAt = received + i
                }
                received += n
                if received >= total || mismatchAt != nil { loop.stop() }
            })
            try loop.register(reader, descriptor: peer, interest: .read)
            defer { loop.deregister(peer) }

            produce(connection)
            #expect(try runLoop(loop, timeout: .seconds(60)))
            #expect(mismatchAt == nil)
            #expect(received == total)
            #expect(delegate.drainCount > 0, "backpressure never engaged")
            #expect(maxPending <= connection.highWaterMark + batch)
            #expect(pendingAtDrain.allSatisfy { $0 <= connection.lowWaterMark })
        }
    }
}
