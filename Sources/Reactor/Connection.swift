// A TCP connection on the loop: reads into the loop's shared buffer and hands the bytes to a
// delegate; queues output (bytes and open files, an OutputQueue) and writes it with send(2)
// and sendfile(2), asking for EPOLLOUT only while output is pending; stops reading past a
// high-water mark of unsent output; reads in the lane its LanePolicy says. It must not
// interpret the bytes: framing belongs to the delegate.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking stream connection (TCP, or a Unix domain socket) registered with an ``EventLoop``. Loop thread only: every
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

    /// The socket.
    let descriptor: Descriptor
    /// The peer's address, if known.
    public let peer: SocketAddress?
    /// Whole seconds since the connection last read or wrote (as of the loop's current time).
    public var idleSeconds: Int { Int((self.loop.now &- min(self.lastActivity, self.loop.now)) / 1_000_000_000) }
    /// Calls `body` with the socket's descriptor: for socket options the reactor does not set
    /// itself, or to name the socket in a report as `ss -p` and `/proc/<pid>/fd` do. `body`
    /// must not read, write, close it or change its flags: the connection owns it. The number
    /// is reused once the connection closes. Loop thread only.
    public func withUnsafeDescriptor<R>(_ body: (CInt) throws -> R) rethrows -> R {
        assert(self.loop.inLoopThread)
        return try body(self.descriptor.rawValue)
    }
    /// The loop the connection belongs to (its timers, inboxes, stop).
    public unowned let loop: EventLoop
    /// Receives events. Released when the connection closes (breaking any cycle).
    /// (Read at every event; loop thread only and never re-entered, hence no dynamic exclusivity
    /// check, like the properties behind `core`.)
    @exclusivity(unchecked) var delegate: ConnectionDelegate?
    /// Why the connection closed, if a system call failed.
    @exclusivity(unchecked) public private(set) var closeError: IOError?
    /// Whether the loop's idle sweep (``EventLoop/startIdleSweep(timeout:)``) may close it.
    /// Behind `core` too: an owner that sets it after every batch paid a dynamic exclusivity
    /// check each time as a stored property.
    public var idleTimeoutEnabled: Bool {
        get { self.core.pointee.idleTimeoutEnabled }
        set { self.core.pointee.idleTimeoutEnabled = newValue }
    }

    /// The mutable state the read and write paths touch, behind one pointer this connection owns.
    /// As stored properties of the class each access paid a dynamic exclusivity check
    /// (`swift_beginAccess`, about ten per read-and-flush) because they are
    /// public or reached from closures; memory behind a pointer is checked statically. The
    /// output buffer lent by ``outputBuffer`` keeps its exclusivity by the queue's
    /// `isLent` flag instead. Allocated in `init` before registering, freed in `deinit`.
    let core: UnsafeMutablePointer<Core>

    struct Core {
        var state: State
        var lastActivity: UInt64
        var highWaterMark = 256 * 1024
        var lowWaterMark = 64 * 1024
        var lanes = LanePolicy()
        var readEOF = false
        var isCorked = false
        /// Queued on the loop to be flushed after this iteration's dispatch.
        var flushQueued = false, fanOutQueued = false  // the latter: FanOutPacing.swift
        /// Inside ``handleReadable()``: output appended meanwhile is flushed or queued at its end,
        /// once, after the delegate has corked the connection or not.
        var isReading = false
        var output = OutputQueue()
        var readPausedForBackpressure = false
        var readPausedByOwner = false
        /// Always equals the loop's shadow table entry for the descriptor while registered.
        var interest: Interest = []
        /// The backlog last told to the delegate (``ConnectionDelegate/connection(_:didUpdateOutputBacklog:)``).
        var reportedBacklog = 0
        var idleTimeoutEnabled = true
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
    /// The bulk lane's read budget per turn (``LanePolicy/readBudgetPerWakeup``).
    var readBudgetPerWakeup: Int {
        get { self.core.pointee.lanes.readBudgetPerWakeup }
        set { self.core.pointee.lanes.readBudgetPerWakeup = newValue }
    }
    /// The priority lane's read budget per turn (``LanePolicy/priorityReadBudget``).
    var priorityReadBudget: Int {
        get { self.core.pointee.lanes.priorityReadBudget }
        set { self.core.pointee.lanes.priorityReadBudget = newValue }
    }
    /// How long a bulk connection stays quiet before moving back (``LanePolicy/quietBeforePriority``).
    var quietBeforePriority: Duration {
        get { .nanoseconds(Int64(self.core.pointee.lanes.quietBeforePriority)) }
        set { self.core.pointee.lanes.quietBeforePriority = UInt64(max(newValue.nanoseconds, 0)) }
    }
    /// Whether the connection is in the loop's bulk lane (see EventLoop.swift).
    var inBulkLane: Bool { self.core.pointee.lanes.inBulkLane }
    /// Bytes read on a connection's first readable turn in the priority lane.
    static var firstTurnBudget: Int { LanePolicy.firstTurnBudget }
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
            if address.family != AF_UNIX { try Sys.setsockopt(fd, level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1) }
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

    /// Bytes queued and not yet written (file ranges included).
    public var pendingOutputBytes: Int {
        self.core.pointee.output.preconditionNotLent()
        return self.core.pointee.output.pendingBytes
    }

    // MARK: Output

    /// Queues bytes. Wherever it is written on the loop thread (a read callback, a timer, an
    /// inbox, a before-sleep hook), output goes out at the end of the loop's current iteration,
    /// after every ready event is dispatched and before the loop sleeps: one write for all a
    /// connection got in the iteration. ``flush()`` writes at once instead. Held back while
    /// corked; written once connected when queued during an outbound connect.
    public func write<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        assert(self.loop.inLoopThread)
        self.core.pointee.output.preconditionNotLent()
        guard self.core.pointee.state == .open || self.core.pointee.state == .connecting else { return }
        self.core.pointee.output.append(contentsOf: bytes)
        self.flushAtEndOfIteration()
    }

    /// Queues a copy of `bytes` as ``write(_:)`` does (one memcpy, no generic walk) and returns
    /// the bytes now pending, or nil when the connection is not open: the fan-out path, where one
    /// frame goes to many connections and each checks its backlog against a limit; sent with the
    /// loop's next fan-out round (FanOutPacing.swift), or with this connection's own replies.
    public func queueCopy(of bytes: UnsafeRawBufferPointer) -> Int? {
        assert(self.loop.inLoopThread)
        self.core.pointee.output.preconditionNotLent()
        guard self.core.pointee.state == .open else { return nil }
        self.core.pointee.output.append(copying: bytes)
        self.flushWithFanOut()
        return self.core.pointee.output.pendingBytes
    }

    /// Has the loop flush this connection once its current dispatch ends (the rule ``write(_:)``
    /// states). A corked connection is flushed by ``uncork()``; a connecting one when connected.
    @inline(__always)
    private func flushAtEndOfIteration() {
        // flushQueued first: after a batch's first reply it is the only test a reply pays.
        guard !self.core.pointee.flushQueued && self.core.pointee.state == .open && !self.core.pointee.isCorked else { return }
        self.core.pointee.flushQueued = true
        self.loop.flushAfterDispatch(self)
    }

    /// Lets a producer append replies straight into the output buffer, as ``outputBuffer`` does,
    /// from a closure. - Returns: what `body` returns.
    public func withOutputBuffer<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        try body(&self.outputBuffer)
    }

    /// The output buffer itself, for a producer that appends straight into it, in place
    /// (`produce(into: &connection.outputBuffer)`: no copy, no closure). During the access it
    /// holds only unsent bytes (its count is the byte backlog), it may only grow, and nothing else
    /// may be called on the connection's output (it traps). What is appended goes out as
    /// ``write(_:)`` says. Read, it is a copy of the unsent bytes after any queued file.
    public var outputBuffer: [UInt8] {
        get {
            self.core.pointee.output.preconditionNotLent()
            return Array(self.core.pointee.output.output[self.core.pointee.output.outputIndex...])
        }
        _modify {
            assert(self.loop.inLoopThread)
            self.core.pointee.output.preconditionNotLent()
            if self.core.pointee.output.outputIndex > 0 { self.core.pointee.output.dropSentPrefix() }
            self.core.pointee.output.isLent = true
            defer {  // also when the access is abandoned by a throw
                self.core.pointee.output.isLent = false
                // While reading, handleReadable's end decides: a producer that corks after
                // appending (a batch held until its log write) would otherwise be queued for a
                // flush that finds it corked.
                if !self.core.pointee.isReading { self.flushAtEndOfIteration() }
            }
            yield &self.core.pointee.output.output
        }
    }

    /// Queues `count` bytes of `file` from `offset`, to be sent with sendfile(2) after the
    /// bytes queued so far. The connection keeps the file open until they are sent or the
    /// connection closes. If the file turns out shorter than promised, the connection fails
    /// (the peer was told to expect bytes that will never come).
    /// - Parameters:
    ///   - file: an open regular file (``OpenFile/init(adopting:size:)``).
    ///   - offset: the first byte to send; `offset + count` must not pass `file.size`.
    ///   - count: how many bytes; 0 queues nothing.
    public func write(file: OpenFile, offset: Int, count: Int) {
        assert(self.loop.inLoopThread)
        self.core.pointee.output.preconditionNotLent()
        precondition(offset >= 0 && count >= 0 && offset <= file.size - count, "file range outside the file")
        guard self.core.pointee.state == .open, count > 0 else { return }
        self.core.pointee.output.append(file: file, offset: offset, count: count)
        self.flushAtEndOfIteration()
    }

    /// Drops every byte queued and not yet written (e.g. held replies that must not be sent after
    /// all). Files queued are released.
    public func discardPendingOutput() {
        assert(self.loop.inLoopThread)
        self.core.pointee.output.preconditionNotLent()
        self.core.pointee.output.removeAll()
    }

    /// Holds queued output back until ``uncork()`` (e.g. replies that wait for a disk write).
    public func cork() {
        assert(self.loop.inLoopThread)
        self.core.pointee.isCorked = true
    }

    /// Releases held output and writes it (``flush(uncorking:)``); nothing when not corked.
    public func uncork() {
        assert(self.loop.inLoopThread)
        guard self.core.pointee.isCorked else { return }
        self.flush(uncorking: true)
    }

    /// Writes as much queued output as the socket takes now; asks for writability for the rest.
    /// Past ``highWaterMark`` reading pauses until the backlog falls to the low-water mark (a
    /// quarter of it by default), when the delegate hears ``ConnectionDelegate/connectionDidDrain(_:)``.
    /// A backlog that changed is told to the delegate
    /// (``ConnectionDelegate/connection(_:didUpdateOutputBacklog:)``).
    /// - Parameter uncorking: releases held output first (``cork()``), as ``uncork()`` does: a
    ///   producer that knows it corked releases and writes in one call.
    public func flush(uncorking: Bool = false) {
        assert(self.loop.inLoopThread)
        self.core.pointee.output.preconditionNotLent()
        guard self.core.pointee.state == .open || self.core.pointee.state == .closing else { return }
        if uncorking { self.core.pointee.isCorked = false }
        if !self.core.pointee.isCorked {
            do {
                if try self.core.pointee.output.write(to: self.descriptor) {
                    self.core.pointee.lastActivity = self.loop.now
                }
            } catch {
                self.fail(error)
                return
            }
            self.core.pointee.output.checkInvariants()
        }
        var pending = self.core.pointee.output.pendingBytes
        if pending != self.core.pointee.reportedBacklog {
            self.core.pointee.reportedBacklog = pending
            self.delegate?.connection(self, didUpdateOutputBacklog: pending)
            // The delegate may have closed the connection, or queued more output (a producer that
            // streams on once drained): what follows must see the output as it is now, or a buffer
            // released as empty would take those bytes with it.
            guard self.core.pointee.state == .open || self.core.pointee.state == .closing else { return }
            pending = self.core.pointee.output.pendingBytes
        }
        if pending == 0 {
            if self.core.pointee.state == .closing {
                self.finishClose()
                return
            }
            self.core.pointee.output.releaseIfLarge()
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

    /// Frees buffers while nothing is pending, so an idle connection holds no heap beyond itself.
    func releaseIdleBuffers() {
        self.core.pointee.output.preconditionNotLent()
        self.core.pointee.output.releaseIfEmpty()
    }

    // MARK: Reading

    /// Stops reading until ``resumeReading()``: the owner's own backpressure (work for what was
    /// read is still going on elsewhere). Bytes the peer sends meanwhile wait in the kernel, and
    /// a peer that keeps sending is slowed by TCP flow control. Output still goes out, and a hang-up
    /// is still noticed. Loop thread only.
    public func pauseReading() {
        assert(self.loop.inLoopThread)
        self.core.pointee.readPausedByOwner = true
        self.updateInterest()
    }

    /// Resumes reading after ``pauseReading()``. Loop thread only.
    public func resumeReading() {
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
        // Read once: each read of the unowned reference is a checked retain and a release.
        let loop = self.loop
        let turnBudget = self.core.pointee.lanes.startTurn()
        var budget = turnBudget
        var drained = false
        self.core.pointee.isReading = true
        while budget > 0 && self.core.pointee.state == .open && !self.core.pointee.readEOF
            && !self.core.pointee.readPausedByOwner && !self.core.pointee.readPausedForBackpressure
        {
            let buffer = UnsafeMutableRawBufferPointer(rebasing: loop.readBuffer.prefix(budget))
            let result: IOResult<Int>
            do {
                result = try Sys.recv(self.descriptor, into: buffer)
            } catch {
                self.core.pointee.isReading = false
                self.fail(error)
                return
            }
            guard case .processed(let n) = result else {
                drained = true
                break
            }
            self.core.pointee.lastActivity = loop.now
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
        self.core.pointee.isReading = false
        // The budget ran out with the peer still sending: it has a backlog, so it waits in the
        // bulk lane; a bulk connection quiet for long enough is light again (LanePolicy).
        if self.core.pointee.state == .open && !self.core.pointee.readEOF,
           let lane = self.core.pointee.lanes.endTurn(budget: turnBudget, left: budget, drained: drained, now: loop.now)
        {
            self.move(to: lane)
        }
        // Replies wait for the end of the loop's dispatch (EventLoop.flushAfterDispatch). Nothing
        // to write, or held back (corked): the bookkeeping runs now.
        if self.core.pointee.state == .open && !self.core.pointee.isCorked && self.core.pointee.output.pendingBytes > 0 {
            if !self.core.pointee.flushQueued {
                self.core.pointee.flushQueued = true
                loop.flushAfterDispatch(self)
            }
            return
        }
        self.flush()
    }

    /// Has queued output written once the loop's current dispatch ends, with every other
    /// connection's (output queued from outside the connection's own events, such as another
    /// connection's command publishing to it: a batch of them costs one write).
    public func flushSoon() {
        assert(self.loop.inLoopThread)
        guard self.core.pointee.state == .open && !self.core.pointee.flushQueued else { return }
        self.core.pointee.flushQueued = true
        self.loop.flushAfterDispatch(self)
    }

    /// The loop's end-of-dispatch flush (``EventLoop/flushAfterDispatch(_:)``). - Returns:
    /// whether output went out (or waits for writability): false while corked.
    @discardableResult
    func flushAfterDispatch() -> Bool {
        self.core.pointee.flushQueued = false
        self.flush()
        return !self.core.pointee.isCorked
    }

    private func move(to lane: EventLoop.Lane) {
        do {
            try self.loop.move(self.descriptor, to: lane)
            self.core.pointee.lanes.moved(to: lane)
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

    /// Ends an outbound connect still in progress as failed with `error` (its timeout runs out);
    /// a connection past connecting is left alone.
    func failIfConnecting(_ error: IOError) {
        assert(self.loop.inLoopThread)
        if self.core.pointee.state == .connecting { self.fail(error) }
    }

    private func fail(_ error: IOError) {
        self.closeError = error
        self.finishClose()
    }

    private func finishClose() {
        self.core.pointee.output.preconditionNotLent()
        // State is settled before any call-out, so a delegate that calls back in finds it closed.
        self.core.pointee.state = .closed
        self.loop.deregister(self.descriptor)
        Sys.close(self.descriptor)
        self.core.pointee.output.release()  // releases queued files
        let delegate = self.delegate
        self.delegate = nil
        if self.core.pointee.reportedBacklog != 0 {
            self.core.pointee.reportedBacklog = 0
            delegate?.connection(self, didUpdateOutputBacklog: 0)
        }
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
            if !self.core.pointee.isCorked && self.core.pointee.output.pendingBytes > 0 { wanted.insert(.write) }
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
