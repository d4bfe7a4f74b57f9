// A TCP connection on the loop: reads into the loop's shared buffer and hands the bytes to a
// delegate; queues output (bytes and file regions) and writes it with write/writev/sendfile,
// asking for EPOLLOUT only while output is pending; stops reading past a high-water mark of
// unsent output. It must not interpret the bytes: framing belongs to the delegate.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Receives a connection's events, on the loop thread.
public protocol ConnectionDelegate: AnyObject {
    /// Bytes arrived. `bytes` is valid only during the call: copy what must be kept.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer shut down its sending side. Output can still be written. Default: ``Connection/close()``.
    func connectionDidReadEOF(_ connection: Connection)
    /// Unsent output fell below the low-water mark after reading had paused for it: a delegate
    /// that stopped producing (backpressure) may continue. Default: nothing.
    func connectionDidDrain(_ connection: Connection)
    /// An outbound connection completed its connect. Default: nothing.
    func connectionDidConnect(_ connection: Connection)
    /// The connection idled past the loop's idle timeout. Default: ``Connection/abort()``.
    func connectionDidTimeOut(_ connection: Connection)
    /// The descriptor is closed; ``Connection/closeError`` says why if it failed. Called once.
    func connectionDidClose(_ connection: Connection)
}

extension ConnectionDelegate {
    public func connectionDidReadEOF(_ connection: Connection) { connection.close() }
    public func connectionDidDrain(_ connection: Connection) {}
    public func connectionDidConnect(_ connection: Connection) {}
    public func connectionDidTimeOut(_ connection: Connection) { connection.abort() }
    public func connectionDidClose(_ connection: Connection) {}
}

/// A byte range of an open file, queued for sending with sendfile(2).
public struct FileRegion {
    public var descriptor: Descriptor
    public var offset: Int
    public var end: Int
    /// Close the file descriptor once sent (or when the connection closes first).
    public var closeWhenDone: Bool

    public init(descriptor: Descriptor, offset: Int, count: Int, closeWhenDone: Bool) {
        self.descriptor = descriptor
        self.offset = offset
        self.end = offset + count
        self.closeWhenDone = closeWhenDone
    }
}

/// A non-blocking TCP connection registered with an ``EventLoop``. Loop thread only.
public final class Connection: EventHandler {
    public enum State: Equatable, Sendable {
        case connecting, open, closing, closed
    }

    private enum Chunk {
        case bytes([UInt8])
        case file(FileRegion)
    }

    /// The socket.
    public let descriptor: Descriptor
    /// The peer's address, if known.
    public let peer: SocketAddress?
    /// The loop that owns this connection.
    public unowned let loop: EventLoop
    /// Receives events. Released when the connection closes (breaking any cycle).
    public var delegate: ConnectionDelegate?
    /// Stop reading once this many bytes (or more) are queued unsent.
    public var highWaterMark = 256 * 1024
    /// Resume reading once the queue falls to this many bytes.
    public var lowWaterMark = 64 * 1024
    /// The most bytes read per readiness event, so one busy peer cannot starve the others.
    public var readBudgetPerWakeup = 256 * 1024
    /// Whether the loop's idle sweep may time this connection out.
    public var idleTimeoutEnabled = true
    /// Monotonic time (ns) of the last byte read or written.
    public private(set) var lastActivity: UInt64
    public private(set) var state: State
    /// Why the connection closed, if a system call failed.
    public private(set) var closeError: IOError?
    /// The peer has shut down its side (read returned 0).
    public private(set) var readEOF = false
    /// While corked, queued output is held back (e.g. until the writes it acknowledges are durable).
    public private(set) var isCorked = false

    // Invariant: outputIndex <= output.count; queuedChunkBytes is the unsent byte count of
    // `chunks`, whose first element has had `chunkOffset` bytes sent. Bytes in `chunks` go out
    // before those in `output`.
    private var output: [UInt8] = []
    private var outputIndex = 0
    private var chunks: [Chunk] = []
    private var chunkOffset = 0
    private var queuedChunkBytes = 0
    private var readPausedForBackpressure = false
    private var readPausedByOwner = false
    private var interest: Interest = []

    /// Adopts an accepted, non-blocking socket and registers it for reading.
    /// - Throws: ``IOError`` from epoll_ctl; the descriptor is then closed.
    public init(loop: EventLoop, descriptor: Descriptor, peer: SocketAddress?, delegate: ConnectionDelegate?) throws(IOError) {
        self.loop = loop
        self.descriptor = descriptor
        self.peer = peer
        self.delegate = delegate
        self.state = .open
        self.lastActivity = loop.now
        self.interest = .read
        do {
            try loop.register(self, descriptor: descriptor, interest: .read)
        } catch {
            Sys.close(descriptor)
            self.state = .closed
            throw error
        }
    }

    private init(loop: EventLoop, connecting descriptor: Descriptor, to peer: SocketAddress, delegate: ConnectionDelegate) throws(IOError) {
        self.loop = loop
        self.descriptor = descriptor
        self.peer = peer
        self.delegate = delegate
        self.state = .connecting
        self.lastActivity = loop.now
        self.interest = .write
        do {
            try loop.register(self, descriptor: descriptor, interest: .write)
        } catch {
            Sys.close(descriptor)
            self.state = .closed
            throw error
        }
    }

    /// Opens a non-blocking outbound connection. The delegate hears ``ConnectionDelegate/connectionDidConnect(_:)``
    /// or, on failure, ``ConnectionDelegate/connectionDidClose(_:)`` with ``closeError`` set.
    /// - Throws: ``IOError`` if the socket cannot be created or the connect fails at once.
    public static func connect(loop: EventLoop, to address: SocketAddress, delegate: ConnectionDelegate) throws(IOError) -> Connection {
        let fd = try Sys.socket(domain: address.family, type: CInt(SOCK_STREAM.rawValue))
        do {
            try Sys.setsockopt(fd, level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            _ = try Sys.connect(fd, address)
        } catch {
            Sys.close(fd)
            throw error
        }
        // Even an immediate success is reported through writability, so the delegate always
        // hears connectionDidConnect from the loop, never from inside this call.
        return try Connection(loop: loop, connecting: fd, to: address, delegate: delegate)
    }

    /// Bytes queued and not yet written.
    public var pendingOutputBytes: Int { self.queuedChunkBytes + self.output.count - self.outputIndex }

    // MARK: Output

    /// Queues bytes. They are written by ``flush()`` (called after every read dispatch).
    public func write<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        guard self.state == .open || self.state == .connecting else { return }
        self.output.append(contentsOf: bytes)
    }

    /// Lets a producer append replies straight into the output buffer (no intermediate copy).
    /// On entry the buffer holds only unsent bytes, so its count measures the backlog.
    public func withOutputBuffer<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        if self.outputIndex > 0 {
            // Amortised O(1) per byte: only a partial write leaves a sent prefix behind.
            self.output.removeFirst(self.outputIndex)
            self.outputIndex = 0
        }
        return try body(&self.output)
    }

    /// Queues a file range to be sent with sendfile(2) after the bytes queued so far.
    public func write(file region: FileRegion) {
        guard self.state == .open, region.end > region.offset else {
            if region.closeWhenDone { Sys.close(region.descriptor) }
            return
        }
        if self.outputIndex < self.output.count {
            self.chunks.append(.bytes(Array(self.output[self.outputIndex...])))
            self.queuedChunkBytes += self.output.count - self.outputIndex
        }
        self.output.removeAll(keepingCapacity: true)
        self.outputIndex = 0
        self.chunks.append(.file(region))
        self.queuedChunkBytes += region.end - region.offset
    }

    /// Drops every byte queued and not yet written (e.g. held replies that must not be sent after
    /// all). Files queued are closed.
    public func discardPendingOutput() {
        for chunk in self.chunks {
            if case .file(let region) = chunk, region.closeWhenDone { Sys.close(region.descriptor) }
        }
        self.chunks = []
        self.chunkOffset = 0
        self.queuedChunkBytes = 0
        self.output.removeAll(keepingCapacity: true)
        self.outputIndex = 0
    }

    /// Holds queued output back until ``uncork()``.
    public func cork() { self.isCorked = true }

    /// Releases held output and writes it.
    public func uncork() {
        guard self.isCorked else { return }
        self.isCorked = false
        self.flush()
    }

    /// Writes as much queued output as the socket takes now; asks for writability for the rest.
    public func flush() {
        guard self.state == .open || self.state == .closing else { return }
        if !self.isCorked {
            do {
                try self.writeQueued()
            } catch {
                self.fail(error)
                return
            }
        }
        let pending = self.pendingOutputBytes
        if pending == 0 {
            if self.state == .closing {
                self.finishClose()
                return
            }
            self.releaseOutputIfLarge()
        }
        if !self.readPausedForBackpressure && pending >= self.highWaterMark {
            self.readPausedForBackpressure = true
        } else if self.readPausedForBackpressure && pending <= self.lowWaterMark {
            self.readPausedForBackpressure = false
            self.updateInterest()
            self.delegate?.connectionDidDrain(self)
            return
        }
        self.updateInterest()
    }

    private func writeQueued() throws(IOError) {
        // Bounded work per wake-up: a peer that keeps the socket writable cannot hold the loop.
        for _ in 0..<16 {
            if self.chunks.isEmpty {
                guard self.outputIndex < self.output.count else { return }
                let result = try Self.write(self.descriptor, self.output, from: self.outputIndex)
                guard case .processed(let n) = result else { return }
                self.lastActivity = self.loop.now
                self.outputIndex += n
                if self.outputIndex == self.output.count {
                    self.output.removeAll(keepingCapacity: true)
                    self.outputIndex = 0
                    return
                }
                continue
            }
            switch self.chunks[0] {
            case .bytes(let head):
                // Gather the head chunk and what follows it (the next byte chunk, or the output
                // buffer) into one writev.
                let result: IOResult<Int>
                if self.chunks.count > 1, case .bytes(let next) = self.chunks[1] {
                    result = try Self.writev(self.descriptor, head, from: self.chunkOffset, next, from: 0)
                } else if self.chunks.count == 1 && self.outputIndex < self.output.count {
                    result = try Self.writev(self.descriptor, head, from: self.chunkOffset, self.output, from: self.outputIndex)
                } else {
                    result = try Self.write(self.descriptor, head, from: self.chunkOffset)
                }
                guard case .processed(var n) = result else { return }
                self.lastActivity = self.loop.now
                // Consume n bytes across the head chunk, then the next chunk or the output buffer.
                let inHead = min(n, head.count - self.chunkOffset)
                self.chunkOffset += inHead
                self.queuedChunkBytes -= inHead
                n -= inHead
                if self.chunkOffset == head.count {
                    self.chunks.removeFirst()
                    self.chunkOffset = 0
                    if n > 0 {
                        if !self.chunks.isEmpty {
                            self.chunkOffset = n
                            self.queuedChunkBytes -= n
                        } else {
                            self.outputIndex += n
                        }
                    }
                }
            case .file(var region):
                var offset = region.offset
                let result = try Sys.sendfile(self.descriptor, region.descriptor, offset: &offset, count: min(region.end - region.offset, 1 << 30))
                guard case .processed(let n) = result else { return }
                if n == 0 {
                    // The file is shorter than promised (it shrank while being sent): the peer can
                    // never get the bytes it was told to expect, so end the connection rather than
                    // leave it waiting.
                    throw IOError(errno: EIO, call: "sendfile (file shrank)")
                }
                self.lastActivity = self.loop.now
                region.offset = offset
                self.queuedChunkBytes -= n
                if region.offset >= region.end {
                    if region.closeWhenDone { Sys.close(region.descriptor) }
                    self.chunks.removeFirst()
                } else {
                    self.chunks[0] = .file(region)
                }
            }
        }
    }

    // Array's withUnsafeBytes rethrows untyped errors, so the typed error travels out in a Result.
    private static func write(_ fd: Descriptor, _ a: [UInt8], from start: Int) throws(IOError) -> IOResult<Int> {
        try a.withUnsafeBytes { raw in
            Result { () throws(IOError) in try Sys.write(fd, UnsafeRawBufferPointer(rebasing: raw[start...])) }
        }.get()
    }

    private static func writev(
        _ fd: Descriptor, _ a: [UInt8], from aStart: Int, _ b: [UInt8], from bStart: Int
    ) throws(IOError) -> IOResult<Int> {
        try a.withUnsafeBytes { ra in
            b.withUnsafeBytes { rb in
                var iov = (
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: ra.baseAddress! + aStart), iov_len: ra.count - aStart),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: rb.baseAddress.map { $0 + bStart }), iov_len: rb.count - bStart))
                return withUnsafeBytes(of: &iov) { raw in
                    Result { () throws(IOError) in try Sys.writev(fd, raw.bindMemory(to: iovec.self)) }
                }
            }
        }.get()
    }

    private func releaseOutputIfLarge() {
        if self.output.capacity > 64 * 1024 { self.output = [] }
    }

    /// Frees buffers while nothing is pending, so an idle connection holds no heap beyond itself.
    public func releaseIdleBuffers() {
        if self.pendingOutputBytes == 0 {
            self.output = []
            self.outputIndex = 0
            self.chunks = []
        }
    }

    // MARK: Reading

    /// Stops reading until ``resumeReading()`` (the owner's own backpressure).
    public func pauseReading() {
        self.readPausedByOwner = true
        self.updateInterest()
    }

    /// Resumes reading after ``pauseReading()``.
    public func resumeReading() {
        self.readPausedByOwner = false
        self.updateInterest()
    }

    public func handleReadable() {
        guard self.state == .open, self.interest.contains(.read) else {
            // Readiness we did not ask for is an error or hang-up being reported.
            if self.state != .closed && !self.interest.contains(.write) { self.probeError() }
            return
        }
        var budget = self.readBudgetPerWakeup
        let buffer = self.loop.readBuffer
        while budget > 0 && self.state == .open && !self.readEOF && !self.readPausedByOwner && !self.readPausedForBackpressure {
            let result: IOResult<Int>
            do {
                result = try Sys.read(self.descriptor, into: buffer)
            } catch {
                self.fail(error)
                return
            }
            guard case .processed(let n) = result else { break }
            self.lastActivity = self.loop.now
            if n == 0 {
                self.readEOF = true
                self.updateInterest()
                self.delegate?.connectionDidReadEOF(self)
                break
            }
            budget -= n
            self.delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            // A short read almost always means the socket is drained: skip the read that would
            // only say EAGAIN (level-triggered epoll wakes us again if not).
            if n < buffer.count { break }
        }
        self.flush()
    }

    public func handleWritable() {
        switch self.state {
        case .connecting:
            let err = (try? Sys.getsockopt(self.descriptor, level: SOL_SOCKET, name: SO_ERROR)) ?? EIO
            if err != 0 {
                self.fail(IOError(errno: err, call: "connect"))
                return
            }
            self.state = .open
            self.updateInterest()
            self.delegate?.connectionDidConnect(self)
            self.flush()
        case .open, .closing:
            if !self.interest.contains(.write) {
                if !self.interest.contains(.read) { self.probeError() }
                return
            }
            self.flush()
        case .closed:
            return
        }
    }

    /// Called for readiness nobody asked for: epoll reports EPOLLERR/EPOLLHUP whatever the
    /// interest. A pending socket error or a full hang-up ends the connection; otherwise (a
    /// spurious wake-up) nothing happens.
    private func probeError() {
        let err = (try? Sys.getsockopt(self.descriptor, level: SOL_SOCKET, name: SO_ERROR)) ?? 0
        if err == 0 {
            // The event may be stale: fetched in this batch before another handler changed our
            // interest (pauseReading). Only a hang-up still pending now ends the connection.
            let revents = (try? Sys.poll(self.descriptor, events: 0, timeoutMilliseconds: 0)) ?? 0
            guard revents & Int16(POLLHUP | POLLERR) != 0 else { return }
        }
        self.fail(IOError(errno: err == 0 ? ECONNRESET : err, call: "epoll (hang-up)"))
    }

    // MARK: Closing

    /// Closes after every queued byte is written (uncorked first if corked by the caller's choice
    /// to close). Reading stops at once.
    public func close() {
        switch self.state {
        case .closed, .closing: return
        case .connecting:
            self.finishClose()
        case .open:
            self.state = .closing
            self.flush()
        }
    }

    /// Closes at once, discarding queued output.
    public func abort() {
        guard self.state != .closed else { return }
        self.finishClose()
    }

    private func fail(_ error: IOError) {
        self.closeError = error
        self.finishClose()
    }

    private func finishClose() {
        // State is settled before any call-out, so a delegate that calls back in finds it closed.
        self.state = .closed
        self.loop.deregister(self.descriptor)
        Sys.close(self.descriptor)
        for chunk in self.chunks {
            if case .file(let region) = chunk, region.closeWhenDone { Sys.close(region.descriptor) }
        }
        self.chunks = []
        self.output = []
        self.outputIndex = 0
        self.queuedChunkBytes = 0
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self)
    }

    private func updateInterest() {
        guard self.state != .closed else { return }
        var wanted: Interest = []
        if self.state == .connecting {
            wanted = .write
        } else {
            if self.state == .open && !self.readEOF && !self.readPausedByOwner && !self.readPausedForBackpressure {
                wanted.insert(.read)
            }
            if !self.isCorked && self.pendingOutputBytes > 0 { wanted.insert(.write) }
        }
        guard wanted != self.interest else { return }
        do {
            try self.loop.setInterest(wanted, for: self.descriptor)
            self.interest = wanted
        } catch {
            self.fail(error)
        }
    }
}
