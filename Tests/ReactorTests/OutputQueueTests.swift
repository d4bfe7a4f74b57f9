// OutputQueue (Sources/Reactor/OutputQueue.swift) as a value over a socketpair: order of bytes and
// file ranges, partial writes, the accounting of what is pending, discarding and releasing; and
// an OpenFile queued on a Connection reaching the peer through sendfile, released once sent.

import Foundation
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct OutputQueueTests {
        /// A temporary file holding `contents`, opened read-only as an OpenFile.
        static func openFile(_ contents: String) throws -> (OpenFile, String) {
            let path = NSTemporaryDirectory() + "outputqueue-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TestFailure("open: errno \(errno)") }
            return (OpenFile(adopting: fd, size: contents.utf8.count), path)
        }

        @Test func bytesAndFileRangesGoOutInTheOrderQueued() throws {
            let (file, path) = try Self.openFile("0123456789")
            defer { unlink(path) }
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(local); Sys.close(peer) }
            var queue = OutputQueue()
            queue.append(contentsOf: Array("head ".utf8))
            queue.append(file: file, offset: 2, count: 5)
            queue.lend { $0.append(contentsOf: Array(" tail".utf8)) }
            #expect(queue.pendingBytes == 15)
            #expect(try queue.write(to: local))
            #expect(queue.pendingBytes == 0)
            #expect(try !queue.write(to: local), "nothing left to write")
            shutdown(local.rawValue, Int32(SHUT_WR))
            let (bytes, eof) = readToEOF(peer.rawValue, deadline: .now + .seconds(5))
            #expect(bytes == Array("head 23456 tail".utf8) && eof)
        }

        @Test func aPartialWriteKeepsTheRestAndItsCount() throws {
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(local); Sys.close(peer) }
            var sendBuffer: CInt = 4096
            setsockopt(local.rawValue, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<CInt>.size))
            var queue = OutputQueue()
            let total = 4 << 20
            queue.append(contentsOf: [UInt8](repeating: 7, count: total))
            #expect(try queue.write(to: local))
            let left = queue.pendingBytes
            #expect(left > 0 && left < total, "the socket took \(total - left) of \(total) bytes")
            // Appending after a partial write compacts the sent prefix away; the count holds.
            queue.lend { buffer in
                #expect(buffer.count == left)
                buffer.append(1)
            }
            #expect(queue.pendingBytes == left + 1)
            queue.removeAll()
            #expect(queue.pendingBytes == 0)
        }

        @Test func buffersAreReleasedWhenLargeOrIdle() {
            var queue = OutputQueue()
            queue.append(contentsOf: [UInt8](repeating: 1, count: 100 * 1024))
            queue.releaseIfEmpty()
            #expect(queue.pendingBytes == 100 * 1024, "pending bytes are never released")
            queue.removeAll()
            #expect(queue.bufferCapacity >= 100 * 1024, "discarding keeps the capacity")
            queue.releaseIfLarge()
            #expect(queue.bufferCapacity == 0)
            queue.append(contentsOf: [1, 2, 3])
            queue.removeAll()
            queue.releaseIfLarge()
            #expect(queue.bufferCapacity > 0, "a small buffer is kept for the next reply")
            queue.releaseIfEmpty()
            #expect(queue.bufferCapacity == 0)
        }

        @Test func lendingIsFlagged() {
            var queue = OutputQueue()
            #expect(!queue.isLent)
            let wasLent = queue.lend { _ in true }
            #expect(wasLent && !queue.isLent)
        }

        @Test func queuedFileRangeReachesThePeerAndTheFileIsReleased() throws {
            let (opened, path) = try Self.openFile("hello")
            defer { unlink(path) }
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = RecordingDelegate()
            delegate.onClose = { _ in loop.stop() }
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            weak var released: OpenFile?
            do {
                let file = opened
                released = file
                connection.write(Array("OK 3\n".utf8))
                connection.write(file: file, offset: 1, count: 3)
            }
            _ = consume opened
            #expect(released != nil, "the connection let go of a file it has not sent")
            connection.close()  // the socketpair may take it all at once: then it is closed already
            if connection.state != .closed { #expect(try runLoop(loop)) }
            #expect(delegate.closeCount == 1 && delegate.closeError == nil)
            #expect(released == nil)
            let (bytes, eof) = readToEOF(peer.rawValue, deadline: .now + .seconds(5))
            #expect(bytes == Array("OK 3\nell".utf8))
            #expect(eof)
        }
    }
}
