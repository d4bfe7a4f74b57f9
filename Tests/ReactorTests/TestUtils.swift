// Helpers for the reactor tests: real descriptors (socketpairs), a watchdog that bounds every
// loop run, and a blocking peer that reads or writes with poll(2) deadlines. No fixed ports and
// no sleeps: every wait is on a condition with a deadline.

import CLinux
import Foundation
@testable import Reactor
import Testing
// TestFailure, Shared and pollFor, for every file of this target.
@_exported import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking, close-on-exec AF_UNIX stream socketpair.
func makeSocketPair() throws -> (Descriptor, Descriptor) {
    var fds: [CInt] = [-1, -1]
    let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
    guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw TestFailure("socketpair: errno \(errno)") }
    return (Descriptor(rawValue: fds[0]), Descriptor(rawValue: fds[1]))
}

/// Writes every byte to a non-blocking descriptor, waiting for writability with a deadline.
func writeAll(_ fd: CInt, _ bytes: [UInt8], deadline: ContinuousClock.Instant) throws {
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { raw in
            Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, CInt(MSG_NOSIGNAL))
        }
        if n > 0 {
            sent += n
        } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
            guard pollFor(fd, events: Int16(POLLOUT), until: deadline) else { throw TestFailure("write timed out") }
        } else {
            throw TestFailure("send failed: errno \(errno)")
        }
    }
}

/// Reads from a non-blocking descriptor until EOF or the deadline. Returns the bytes and whether
/// EOF was seen.
func readToEOF(_ fd: CInt, deadline: ContinuousClock.Instant) -> (bytes: [UInt8], eof: Bool) {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            result.append(contentsOf: buffer[0..<n])
        } else if n == 0 {
            return (result, true)
        } else if errno == EAGAIN || errno == EINTR {
            guard pollFor(fd, events: Int16(POLLIN), until: deadline) else { return (result, false) }
        } else {
            return (result, true)  // ECONNRESET and friends also end the stream
        }
    }
}

/// Runs `loop` on the calling thread until something stops it or `timeout` passes.
/// - Returns: false if the watchdog had to stop it (the test's condition never came true).
func runLoop(_ loop: EventLoop, timeout: Duration = .seconds(10)) throws -> Bool {
    var timedOut = false
    let watchdog = loop.scheduleTimer(after: timeout) {
        timedOut = true
        loop.stop()
    }
    try loop.run()
    loop.cancelTimer(watchdog)
    return !timedOut
}

/// Records the events a connection delegate hears.
final class RecordingDelegate: ConnectionDelegate {
    var received: [UInt8] = []
    var readEOFCount = 0
    var closeCount = 0
    var drainCount = 0
    /// Every backlog the connection reported, in order.
    var backlogReports: [Int] = []
    var closeError: IOError?
    var onRead: ((Connection) -> Void)?
    var onEOF: ((Connection) -> Void)?
    var onClose: ((Connection) -> Void)?
    var onDrain: ((Connection) -> Void)?
    var closeOnEOF = true

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.received.append(contentsOf: bytes)
        self.onRead?(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        self.readEOFCount += 1
        self.onEOF?(connection)
        if self.closeOnEOF { connection.close() }
    }

    func connectionDidDrain(_ connection: Connection) {
        self.drainCount += 1
        self.onDrain?(connection)
    }

    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {
        self.backlogReports.append(bytes)
    }

    func connectionDidClose(_ connection: Connection) {
        self.closeCount += 1
        self.closeError = connection.closeError
        self.onClose?(connection)
    }
}

/// A raw handler for a descriptor the test owns.
final class ClosureHandler: EventHandler {
    var onReadable: () -> Void
    var onWritable: () -> Void
    init(onReadable: @escaping () -> Void = {}, onWritable: @escaping () -> Void = {}) {
        self.onReadable = onReadable
        self.onWritable = onWritable
    }
    func handleReadable() { self.onReadable() }
    func handleWritable() { self.onWritable() }
}

/// The inode numbers of the sockets open in this process (from /proc/self/fd links).
func openSocketInodes() -> Set<UInt64> {
    var inodes = Set<UInt64>()
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return inodes }
    for entry in entries {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
              target.hasPrefix("socket:[") else { continue }
        if let inode = UInt64(target.dropFirst("socket:[".count).dropLast()) { inodes.insert(inode) }
    }
    return inodes
}

/// The number of entries in /proc/self/fd.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// The inode of an open descriptor.
func inode(of fd: CInt) -> UInt64 {
    var st = stat()
    guard fstat(fd, &st) == 0 else { return 0 }
    return UInt64(st.st_ino)
}

/// Every reactor test runs one at a time: several count descriptors or rely on the kernel
/// handing out the lowest free descriptor number.
@Suite(.serialized) struct ReactorTests {}
