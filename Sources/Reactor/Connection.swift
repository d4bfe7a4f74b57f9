// A TCP connection on the loop: reads into the loop's shared buffer and hands the bytes to a
// delegate; queues output (bytes and open files) and writes it with write(2) and sendfile(2),
// asking for EPOLLOUT only while output is pending; stops reading past a high-water mark of
// unsent output. It must not interpret the bytes: framing belongs to the delegate.
//
// Output is one contiguous byte buffer that producers append to in place (withOutputBuffer), so
// there is nothing for writev to gather: the only split in the queue is bytes that must go out
// before a file, and sendfile cannot be joined with them in one call.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Receives a connection's events, on the loop thread. The connection holds its delegate
/// strongly until it closes, so a delegate needs no other owner.
public protocol ConnectionDelegate: AnyObject {
    /// The connection is open: accepted by a ``Listener``, or an outbound connect completed.
    /// Output written here (a greeting) goes out at once. Default: nothing.
    func connectionDidOpen(_ connection: Connection)
    /// Bytes arrived. `bytes` is valid only during the call: copy what must be kept.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer shut down its sending side. Output can still be written. Default: ``Connection/close()``.
    func connectionDidReadEOF(_ connection: Connection)
    /// Unsent output fell below the low-water mark after reading had paused for it: a delegate
    /// that stopped producing (backpressure) may continue. Default: nothing.
    func connectionDidDrain(_ connection: Connection)
    /// The descriptor is closed; ``Connection/closeError`` says why if it failed. Called once,
    /// also when the connection idled past the loop's idle timeout or never got registered.
    func connectionDidClose(_ connection: Connection)
}

extension ConnectionDelegate {
    /// Does nothing.
    public func connectionDidOpen(_ connection: Connection) {}
    /// Closes once queued output is written.
    public func connectionDidReadEOF(_ connection: Connection) { connection.close() }
    /// Does nothing.
    public func connectionDidDrain(_ connection: Connection) {}
    /// Does nothing.
    public func connectionDidClose(_ connection: Connection) {}
}

/// A byte range of an open file, queued for sending with sendfile(2). Holding the file keeps
/// its descriptor open until the range is sent or dropped.
struct FileRegion {
    let file: OpenFile
    var offset: Int
    let end: Int
}

/// A non-blocking TCP connection registered with an ``EventLoop``. Loop thread only: every
/// method asserts it in debug builds.
public final class Connection: EventHandler {
    /// Where the connection is in its life.
    public enum State: Equatable, Sendable {
        /// An outbound connect is in progress.
        case connecting
        /// Reading and writing.
        case open
        /// ``Connection/close()`` was called: reading has stopped, queued output is being written.
        case closing
        /// The descriptor is closed; nothing more happens.
        case closed
    }

    private enum Chunk {
        case bytes([UInt8])
        case file(FileRegion)
    }

    /// The socket.
    let descriptor: Descriptor
    /// The peer's address, if known.
    public let peer: SocketAddress?
    /// Whole seconds since the connection last read or wrote (as of the loop's current time).
    public var idleSeconds: Int { Int((self.loop.now &- min(self.lastActivity, self.loop.now)) / 1_000_000_000) }
    /// The socket's descriptor number, for reports such as CLIENT LIST (never for I/O).
    public var descriptorNumber: Int { Int(self.descriptor.rawValue) }
    unowned let loop: EventLoop
    /// Receives events. Released when the connection closes (breaking any cycle).
    /// (Read at every event; loop thread only and never re-entered, hence no dynamic exclusivity
    /// check, like the properties behind `core`.)
    @exclusivity(unchecked) var delegate: ConnectionDelegate?
    /// Why the connection closed, if a system call failed.
    @exclusivity(unchecked) public private(set) var closeError: IOError?
    /// Whether the loop's idle sweep (``EventLoop/startIdleSweep(timeout:)``) may close it.
    public var idleTimeoutEnabled = true

    /// The mutable state the read and write paths touch, behind one pointer this connection owns.
    /// As stored properties of the class each access paid a dynamic exclusivity check
    /// (`swift_beginAccess`, ~100 instructions; about ten per read-and-flush) because they are
    /// public or reached from closures; memory behind a pointer is checked statically. The
    /// output buffer lent by ``withOutputBuffer(_:)`` keeps its exclusivity by the
    /// `lendingOutput` flag instead. Allocated in `init` before registering, freed in `deinit`.
    private let core: UnsafeMutablePointer<Core>

    private struct Core {
        var state: State
        var lastActivity: UInt64
        var highWaterMark = 256 * 1024
        var lowWaterMark = 64 * 1024
        var readBudgetPerWakeup = 32 * 1024
        var priorityReadBudget = 1024
        var inBulkLane = false
        var hasRead = false
        /// In the bulk lane: when the last turn that drained the socket ended (nil after a turn
        /// that used its whole budget).
        var drainedAt: UInt64?
        var quietBeforePriority: UInt64 = 100_000_000
        var readEOF = false
        var isCorked = false
        /// Queued on the loop to be flushed after this iteration's dispatch.
        var flushQueued = false
        // Invariants (asserted by checkInvariants in debug builds): outputIndex <= output.count;
        // queuedChunkBytes is the unsent byte count of `chunks`, whose first element, if bytes, has
        // had `chunkOffset` bytes sent (a file region advances its own offset); chunkOffset is 0
        // unless the head is bytes. Bytes in `chunks` go out before those in `output`. `interest`
        // always equals the loop's shadow table entry for the descriptor while registered.
        var output: [UInt8] = []
        var outputIndex = 0
        var chunks: [Chunk] = []
        var chunkOffset = 0
        var queuedChunkBytes = 0
        var readPausedForBackpressure = false
        var readPausedByOwner = false
        var interest: Interest = []
        /// Set while ``Connection/withOutputBuffer(_:)`` lends `output` out: nothing else may touch
        /// the output queue until it returns (what the runtime exclusivity check used to enforce).
        var lendingOutput = false
        /// The backlog last added to ``Connection/outputGauge``.
        var reportedOutput = 0
        var outputGauge: ByteGauge?
    }

    /// Where this connection's unsent output is counted (a server's memory account), or nil. Kept
    /// current at every ``flush()`` (every queued byte is followed by one) and at the close, so the
    /// total over many connections costs nothing per byte and no walk over connections.
    public var outputGauge: ByteGauge? {
        get { self.core.pointee.outputGauge }
        set {
            self.retractReportedOutput()
            self.core.pointee.outputGauge = newValue
        }
    }

    /// Stop reading once this many bytes (or more) are queued unsent.
    public var highWaterMark: Int {
        get { self.core.pointee.highWaterMark }
        set { self.core.pointee.highWaterMark = newValue }
    }
    /// Resume reading once the queue falls to this many bytes.
    var lowWaterMark: Int {
        get { self.core.pointee.lowWaterMark }
        set { self.core.pointee.lowWaterMark = newValue }
    }
    /// The most bytes read per readiness event in the bulk lane, so one busy peer cannot starve
    /// the others (the loop serves a bounded number of bulk events per iteration).
    var readBudgetPerWakeup: Int {
        get { self.core.pointee.readBudgetPerWakeup }
        set { self.core.pointee.readBudgetPerWakeup = newValue }
    }
    /// The most bytes read per readiness event in the priority lane. A connection that finds more
    /// waiting than this moves to the bulk lane; one that has been quiet there for
    /// ``quietBeforePriority`` and then sends no more than this moves back. Small, because when thousands of connections start
    /// flooding at once each has one priority turn before it is known as a flooder, and a
    /// newcomer among them waits for all those turns: 1 KiB is about twenty pipelined SETs.
    var priorityReadBudget: Int {
        get { self.core.pointee.priorityReadBudget }
        set { self.core.pointee.priorityReadBudget = newValue }
    }
    /// How long a bulk-lane connection must have had nothing waiting (from one turn that drained
    /// its socket to the next) before a small request moves it back to the priority lane.
    /// Moving back at the first drained read would let a flooder that the server keeps up with
    /// bounce between lanes, a priority turn each time, and a few thousand such bounces are what
    /// a newcomer would wait behind. The size condition keeps a flooder that merely waited its
    /// turn in a long bulk rotation where it is.
    var quietBeforePriority: Duration {
        get { .nanoseconds(Int64(self.core.pointee.quietBeforePriority)) }
        set {
            let (seconds, attoseconds) = newValue.components
            self.core.pointee.quietBeforePriority = UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        }
    }
    /// Whether the connection is in the loop's bulk lane (see EventLoop.swift).
    var inBulkLane: Bool { self.core.pointee.inBulkLane }
    /// Bytes read on a connection's first readable turn in the priority lane.
    static let firstTurnBudget = 512
    /// Monotonic time (ns) of the last byte read or written.
    var lastActivity: UInt64 { self.core.pointee.lastActivity }
    /// Where the connection is in its life.
    public var state: State { self.core.pointee.state }
    /// The peer has shut down its side (read returned 0).
    public var readEOF: Bool { self.core.pointee.readEOF }
    /// While corked, queued output is held back (e.g. until the writes it acknowledges are durable).
    var isCorked: Bool { self.core.pointee.isCorked }

    /// Takes ownership of a non-blocking socket and registers it: for reading when `state` is
    /// `.open`, for writability (connect completion) when `.connecting`. If registering fails
    /// the descriptor is closed and the connection is born `.closed` with ``closeError`` set;
    /// the delegate is not told (the caller decides).
    init(loop: EventLoop, descriptor: Descriptor, peer: SocketAddress?, delegate: ConnectionDelegate?, state: State) {
        assert(loop.inLoopThread)
        assert(state == .open || state == .connecting)
        _ = ignoreSIGPIPEOnce
        self.loop = loop
        self.descriptor = descriptor
        self.peer = peer
        self.delegate = delegate
        self.core = .allocate(capacity: 1)
        self.core.initialize(to: Core(state: state, lastActivity: loop.now))
        let interest: Interest = state == .connecting ? .write : .read
        do {
            try loop.register(self, descriptor: descriptor, interest: interest)
            self.core.pointee.interest = interest
        } catch {
            Sys.close(descriptor)
            self.core.pointee.state = .closed
            self.closeError = error
            self.delegate = nil
        }
    }

    deinit {
        self.core.deinitialize(count: 1)
        self.core.deallocate()
    }

    /// Adopts an open, non-blocking socket and registers it for reading.
    /// - Throws: ``IOError`` from epoll_ctl; the descriptor is then closed.
    convenience init(loop: EventLoop, descriptor: Descriptor, peer: SocketAddress?, delegate: ConnectionDelegate?) throws(IOError) {
        self.init(loop: loop, descriptor: descriptor, peer: peer, delegate: delegate, state: .open)
        if let error = self.closeError { throw error }
    }

    /// Adopts an accepted socket for `delegate` and tells it: ``ConnectionDelegate/connectionDidOpen(_:)``,
    /// or ``ConnectionDelegate/connectionDidClose(_:)`` if it could not be registered.
    static func accepted(loop: EventLoop, descriptor: Descriptor, peer: SocketAddress, delegate: ConnectionDelegate) {
        let connection = Connection(loop: loop, descriptor: descriptor, peer: peer, delegate: delegate, state: .open)
        if connection.state == .closed {
            delegate.connectionDidClose(connection)
        } else {
            delegate.connectionDidOpen(connection)
            connection.flush()
        }
    }

    /// Opens a non-blocking outbound connection. The delegate hears ``ConnectionDelegate/connectionDidOpen(_:)``
    /// once it is connected or, on failure, ``ConnectionDelegate/connectionDidClose(_:)`` with
    /// ``closeError`` set. Loop thread only.
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
        // hears connectionDidOpen from the loop, never from inside this call.
        let connection = Connection(loop: loop, descriptor: fd, peer: address, delegate: delegate, state: .connecting)
        if let error = connection.closeError { throw error }
        return connection
    }

    /// Takes this connection's share back out of ``outputGauge`` (the gauge changes, or the output is gone).
    private func retractReportedOutput() {
        self.core.pointee.outputGauge?.bytes -= self.core.pointee.reportedOutput
        self.core.pointee.reportedOutput = 0
    }

    /// ``pendingOutputBytes`` as of the last ``flush()``, for a connection that reports into an
    /// ``outputGauge`` (0 otherwise). Unlike ``pendingOutputBytes`` it may be read at any time,
    /// also while ``withOutputBuffer(_:)`` lends the output out.
    public var reportedOutputBytes: Int { self.core.pointee.reportedOutput }

    /// Bytes queued and not yet written (file ranges included).
    public var pendingOutputBytes: Int {
        self.preconditionOutputNotLent()
        return self.core.pointee.queuedChunkBytes + self.core.pointee.output.count - self.core.pointee.outputIndex
    }

    // MARK: Output

    /// Queues bytes. They are written by ``flush()`` (called after every read dispatch).
    public func write<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        assert(self.loop.inLoopThread)
        self.preconditionOutputNotLent()
        guard self.core.pointee.state == .open || self.core.pointee.state == .connecting else { return }
        self.core.pointee.output.append(contentsOf: bytes)
    }

    /// Lets a producer append replies straight into the output buffer (no intermediate copy).
    /// On entry the buffer holds only unsent bytes, so its count measures the byte backlog.
    /// - Parameter body: appends to the buffer; it must not remove bytes already there.
    /// - Returns: what `body` returns.
    public func withOutputBuffer<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        assert(self.loop.inLoopThread)
        self.preconditionOutputNotLent()
        if self.core.pointee.outputIndex > 0 {
            // Amortised O(1) per byte: only a partial write leaves a sent prefix behind.
            self.core.pointee.output.removeFirst(self.core.pointee.outputIndex)
            self.core.pointee.outputIndex = 0
        }
        self.core.pointee.lendingOutput = true
        defer { self.core.pointee.lendingOutput = false }
        return try body(&self.core.pointee.output)
    }

    /// Traps if the output buffer is lent out (a `withOutputBuffer` body calling back into the
    /// queue): the same overlapping access the runtime exclusivity check trapped on, kept in
    /// release builds because the buffer behind the pointer would otherwise be corrupted silently.
    @inline(__always)
    private func preconditionOutputNotLent() {
        precondition(!self.core.pointee.lendingOutput, "output queue used while withOutputBuffer lends it out")
    }

    /// Queues `count` bytes of `file` from `offset`, to be sent with sendfile(2) after the
    /// bytes queued so far. The connection keeps the file open until they are sent or the
    /// connection closes. If the file turns out shorter than promised, the connection fails
    /// (the peer was told to expect bytes that will never come).
    /// - Parameters:
    ///   - file: a file opened with ``FileRoot/open(_:)``.
    ///   - offset: the first byte to send; `offset + count` must not pass `file.size`.
    ///   - count: how many bytes; 0 queues nothing.
    public func write(file: OpenFile, offset: Int, count: Int) {
        assert(self.loop.inLoopThread)
        self.preconditionOutputNotLent()
        precondition(offset >= 0 && count >= 0 && offset <= file.size - count, "file range outside the file")
        guard self.core.pointee.state == .open, count > 0 else { return }
        if self.core.pointee.outputIndex < self.core.pointee.output.count {
            self.core.pointee.chunks.append(.bytes(Array(self.core.pointee.output[self.core.pointee.outputIndex...])))
            self.core.pointee.queuedChunkBytes += self.core.pointee.output.count - self.core.pointee.outputIndex
        }
        self.core.pointee.output.removeAll(keepingCapacity: true)
        self.core.pointee.outputIndex = 0
        self.core.pointee.chunks.append(.file(FileRegion(file: file, offset: offset, end: offset + count)))
        self.core.pointee.queuedChunkBytes += count
        self.checkInvariants()
    }

    /// Drops every byte queued and not yet written (e.g. held replies that must not be sent after
    /// all). Files queued are released.
    public func discardPendingOutput() {
        assert(self.loop.inLoopThread)
        self.preconditionOutputNotLent()
        self.core.pointee.chunks = []
        self.core.pointee.chunkOffset = 0
        self.core.pointee.queuedChunkBytes = 0
        self.core.pointee.output.removeAll(keepingCapacity: true)
        self.core.pointee.outputIndex = 0
    }

    /// Holds queued output back until ``uncork()`` (e.g. replies that wait for a disk write).
    public func cork() {
        assert(self.loop.inLoopThread)
        self.core.pointee.isCorked = true
    }

    /// Releases held output and writes it.
    public func uncork() {
        assert(self.loop.inLoopThread)
        guard self.core.pointee.isCorked else { return }
        self.core.pointee.isCorked = false
        self.flush()
    }

    /// Writes as much queued output as the socket takes now; asks for writability for the rest.
    /// Past ``highWaterMark`` reading pauses until the backlog falls to ``lowWaterMark``, when
    /// the delegate hears ``ConnectionDelegate/connectionDidDrain(_:)``.
    public func flush() {
        assert(self.loop.inLoopThread)
        self.preconditionOutputNotLent()
        guard self.core.pointee.state == .open || self.core.pointee.state == .closing else { return }
        if !self.core.pointee.isCorked {
            do {
                try self.writeQueued()
            } catch {
                self.fail(error)
                return
            }
            self.checkInvariants()
        }
        let pending = self.pendingOutputBytes
        if let gauge = self.core.pointee.outputGauge {
            gauge.bytes += pending - self.core.pointee.reportedOutput
            self.core.pointee.reportedOutput = pending
        }
        if pending == 0 {
            if self.core.pointee.state == .closing {
                self.finishClose()
                return
            }
            self.releaseOutputIfLarge()
        }
        if !self.core.pointee.readPausedForBackpressure && pending >= self.core.pointee.highWaterMark {
            self.core.pointee.readPausedForBackpressure = true
        } else if self.core.pointee.readPausedForBackpressure && pending <= self.core.pointee.lowWaterMark {
            self.core.pointee.readPausedForBackpressure = false
            self.updateInterest()
            self.delegate?.connectionDidDrain(self)
            return
        }
        self.updateInterest()
    }

    private func writeQueued() throws(IOError) {
        // Bounded work per wake-up: a peer that keeps the socket writable cannot hold the loop.
        for _ in 0..<16 {
            guard let head = self.core.pointee.chunks.first else {
                guard self.core.pointee.outputIndex < self.core.pointee.output.count else { return }
                let written = try Self.write(
                    self.descriptor, self.core.pointee.output, from: self.core.pointee.outputIndex)
                guard case .processed(let n) = written else { return }
                self.core.pointee.lastActivity = self.loop.now
                self.core.pointee.outputIndex += n
                if self.core.pointee.outputIndex == self.core.pointee.output.count {
                    self.core.pointee.output.removeAll(keepingCapacity: true)
                    self.core.pointee.outputIndex = 0
                    return
                }
                continue
            }
            switch head {
            case .bytes(let bytes):
                let written = try Self.write(self.descriptor, bytes, from: self.core.pointee.chunkOffset)
                guard case .processed(let n) = written else { return }
                self.core.pointee.lastActivity = self.loop.now
                self.core.pointee.chunkOffset += n
                self.core.pointee.queuedChunkBytes -= n
                if self.core.pointee.chunkOffset == bytes.count {
                    self.core.pointee.chunks.removeFirst()
                    self.core.pointee.chunkOffset = 0
                }
            case .file(var region):
                var offset = region.offset
                let result = try Sys.sendfile(
                    self.descriptor, region.file.descriptor, offset: &offset, count: min(region.end - region.offset, 1 << 30))
                guard case .processed(let n) = result else { return }
                if n == 0 {
                    // The file is shorter than promised (it shrank while being sent): the peer can
                    // never get the bytes it was told to expect, so end the connection rather than
                    // leave it waiting.
                    throw IOError(errno: EIO, call: "sendfile (file shrank)")
                }
                self.core.pointee.lastActivity = self.loop.now
                region.offset = offset
                self.core.pointee.queuedChunkBytes -= n
                if region.offset >= region.end {
                    self.core.pointee.chunks.removeFirst()  // releases the file: closed unless the caller kept it
                } else {
                    self.core.pointee.chunks[0] = .file(region)
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

    /// The byte accounting and interest invariants listed beside the stored properties. O(queued
    /// chunks), debug builds only.
    private func checkInvariants() {
        #if DEBUG
        assert(self.core.pointee.outputIndex <= self.core.pointee.output.count, "outputIndex past the output buffer")
        var unsent = -self.core.pointee.chunkOffset
        for chunk in self.core.pointee.chunks {
            switch chunk {
            case .bytes(let bytes): unsent += bytes.count
            case .file(let region): unsent += region.end - region.offset
            }
        }
        let core = self.core.pointee
        assert(unsent == core.queuedChunkBytes, "queuedChunkBytes \(core.queuedChunkBytes) but chunks hold \(unsent)")
        if case .file = core.chunks.first { assert(core.chunkOffset == 0, "chunkOffset set with a file at the head") }
        assert(core.state != .closed || (self.pendingOutputBytes == 0 && core.chunks.isEmpty),
               "output kept after close")
        #endif
    }

    private func releaseOutputIfLarge() {
        if self.core.pointee.output.capacity > 64 * 1024 { self.core.pointee.output = [] }
    }

    /// Frees buffers while nothing is pending, so an idle connection holds no heap beyond itself.
    func releaseIdleBuffers() {
        self.preconditionOutputNotLent()
        if self.pendingOutputBytes == 0 {
            self.core.pointee.output = []
            self.core.pointee.outputIndex = 0
            self.core.pointee.chunks = []
        }
    }

    // MARK: Reading

    /// Stops reading until ``resumeReading()`` (the owner's own backpressure).
    func pauseReading() {
        assert(self.loop.inLoopThread)
        self.core.pointee.readPausedByOwner = true
        self.updateInterest()
    }

    /// Resumes reading after ``pauseReading()``.
    func resumeReading() {
        assert(self.loop.inLoopThread)
        self.core.pointee.readPausedByOwner = false
        self.updateInterest()
    }

    func handleReadable() {
        guard self.core.pointee.state == .open, self.core.pointee.interest.contains(.read) else {
            // Readiness we did not ask for is an error or hang-up being reported.
            if self.core.pointee.state != .closed && !self.core.pointee.interest.contains(.write) { self.probeError() }
            return
        }
        // A connection's first turn is smaller still: when thousands of connections start sending at
        // the same instant, a newcomer waits behind one first turn of each before any is known as a
        // flooder.
        let turnBudget = self.core.pointee.inBulkLane ? self.core.pointee.readBudgetPerWakeup
            : self.core.pointee.hasRead ? self.core.pointee.priorityReadBudget : Self.firstTurnBudget
        self.core.pointee.hasRead = true
        var budget = turnBudget
        var drained = false
        while budget > 0 && self.core.pointee.state == .open && !self.core.pointee.readEOF
            && !self.core.pointee.readPausedByOwner && !self.core.pointee.readPausedForBackpressure
        {
            let buffer = UnsafeMutableRawBufferPointer(rebasing: self.loop.readBuffer.prefix(budget))
            let result: IOResult<Int>
            do {
                result = try Sys.read(self.descriptor, into: buffer)
            } catch {
                self.fail(error)
                return
            }
            guard case .processed(let n) = result else {
                drained = true
                break
            }
            self.core.pointee.lastActivity = self.loop.now
            if n == 0 {
                self.core.pointee.readEOF = true
                self.updateInterest()
                self.delegate?.connectionDidReadEOF(self)
                break
            }
            budget -= n
            self.delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            // A short read almost always means the socket is drained: skip the read that would
            // only say EAGAIN (level-triggered epoll wakes us again if not).
            if n < buffer.count {
                drained = true
                break
            }
        }
        // The budget ran out with the peer still sending: it has a backlog, so it waits in the
        // bulk lane. A bulk connection quiet since its last drained turn that sent a small
        // request this time is light again.
        if self.core.pointee.state == .open && !self.core.pointee.readEOF {
            if budget <= 0 {
                self.core.pointee.drainedAt = nil
                if !self.core.pointee.inBulkLane { self.moveLane(toBulk: true) }
            } else if drained && self.core.pointee.inBulkLane {
                if let drainedAt = self.core.pointee.drainedAt,
                   self.loop.now &- drainedAt >= self.core.pointee.quietBeforePriority,
                   turnBudget - budget <= self.core.pointee.priorityReadBudget
                {
                    self.moveLane(toBulk: false)
                } else {
                    self.core.pointee.drainedAt = self.loop.now
                }
            }
        }
        // Replies wait for the end of the loop's dispatch (EventLoop.flushAfterDispatch). Nothing
        // to write, or held back (corked): the bookkeeping runs now.
        if self.core.pointee.state == .open && !self.core.pointee.isCorked && self.pendingOutputBytes > 0 {
            if !self.core.pointee.flushQueued {
                self.core.pointee.flushQueued = true
                self.loop.flushAfterDispatch(self)
            }
            return
        }
        self.flush()
    }

    /// The loop's end-of-dispatch flush (``EventLoop/flushAfterDispatch(_:)``).
    func flushAfterDispatch() {
        self.core.pointee.flushQueued = false
        self.flush()
    }

    private func moveLane(toBulk: Bool) {
        do {
            try self.loop.move(self.descriptor, to: toBulk ? .bulk : .priority)
            self.core.pointee.inBulkLane = toBulk
            self.core.pointee.drainedAt = nil
        } catch {
            self.fail(error)
        }
    }

    func handleWritable() {
        switch self.core.pointee.state {
        case .connecting:
            let err = (try? Sys.getsockopt(self.descriptor, level: SOL_SOCKET, name: SO_ERROR)) ?? EIO
            if err != 0 {
                self.fail(IOError(errno: err, call: "connect"))
                return
            }
            self.core.pointee.state = .open
            self.updateInterest()
            self.delegate?.connectionDidOpen(self)
            self.flush()
        case .open, .closing:
            if !self.core.pointee.interest.contains(.write) {
                if !self.core.pointee.interest.contains(.read) { self.probeError() }
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

    /// Closes after every queued byte is written (once uncorked, if corked). Reading stops at once.
    public func close() {
        assert(self.loop.inLoopThread)
        switch self.core.pointee.state {
        case .closed, .closing: return
        case .connecting:
            self.finishClose()
        case .open:
            self.core.pointee.state = .closing
            self.flush()
        }
    }

    /// Closes at once, discarding queued output.
    public func abort() {
        assert(self.loop.inLoopThread)
        guard self.core.pointee.state != .closed else { return }
        self.finishClose()
    }

    private func fail(_ error: IOError) {
        self.closeError = error
        self.finishClose()
    }

    private func finishClose() {
        self.preconditionOutputNotLent()
        // State is settled before any call-out, so a delegate that calls back in finds it closed.
        self.core.pointee.state = .closed
        self.loop.deregister(self.descriptor)
        Sys.close(self.descriptor)
        self.core.pointee.chunks = []  // releases queued files
        self.core.pointee.chunkOffset = 0
        self.core.pointee.output = []
        self.core.pointee.outputIndex = 0
        self.core.pointee.queuedChunkBytes = 0
        self.retractReportedOutput()
        self.checkInvariants()
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self)
    }

    private func updateInterest() {
        guard self.core.pointee.state != .closed else { return }
        assert(self.loop.registeredInterest(self.descriptor) == self.core.pointee.interest,
               "interest shadow out of step with the loop's")
        var wanted: Interest = []
        if self.core.pointee.state == .connecting {
            wanted = .write
        } else {
            if self.core.pointee.state == .open && !self.core.pointee.readEOF && !self.core.pointee.readPausedByOwner
                && !self.core.pointee.readPausedForBackpressure
            {
                wanted.insert(.read)
            }
            if !self.core.pointee.isCorked && self.pendingOutputBytes > 0 { wanted.insert(.write) }
        }
        guard wanted != self.core.pointee.interest else { return }
        do {
            try self.loop.setInterest(wanted, for: self.descriptor)
            self.core.pointee.interest = wanted
        } catch {
            self.fail(error)
        }
    }
}

/// A running byte count shared by the connections that report into it (``Connection/outputGauge``).
/// Loop thread only.
public final class ByteGauge {
    /// The sum of what every reporting connection holds now, updated at every flush and read.
    /// Behind a pointer: as a stored property it paid a dynamic exclusivity check per access from
    /// other modules (`@exclusivity(unchecked)` holds only within this one); memory behind a
    /// pointer is checked statically.
    public var bytes: Int {
        get { self.storage.pointee }
        set { self.storage.pointee = newValue }
    }
    private let storage: UnsafeMutablePointer<Int>

    public init() {
        self.storage = .allocate(capacity: 1)
        self.storage.initialize(to: 0)
    }

    deinit { self.storage.deallocate() }
}
