// A connection for async/await code, in the spirit of SwiftNIO's NIOAsyncChannel: inbound
// messages as an AsyncSequence with backpressure, an outbound writer that keeps order and
// flushes, and a server that hands each accepted connection to an async closure.
//
// Mechanism. A bridge delegate on the loop thread frames what the connection reads
// (InboundFramer.swift) into a buffer shared with the consumer under a mutex. Past
// `highWatermark` buffered messages the bridge pauses reading (Connection.pauseReading): the
// kernel's buffer fills, and the peer's TCP window closes. The consumer taking the buffer down
// to `lowWatermark` resumes it. Writes queue on the connection and are flushed with the loop's
// end-of-dispatch flush; a write that leaves the connection's backlog past its high-water mark
// suspends until it drains. The server runs each handler as a task whose executor preference is
// the loop (LoopExecutor.swift): its nonisolated code runs on the loop thread, so `next()` and
// `write` take their fast paths there (no hop, no mailbox); from any other executor they go
// through the loop's mailbox and stay correct.

import Synchronization

/// The connection was closed (by either side) before the operation could finish.
public struct ConnectionClosedError: Error, Sendable, Equatable {
    public init() {}
}

/// A connection's async face (see the file header). Sendable: use it from any task.
public final class AsyncConnection<Message: Sendable>: Sendable {
    /// The messages the peer sends, in order; ends when the peer shuts down its side, and
    /// throws the framing or socket error that ended it. Iterate it once (one consumer).
    public let inbound: Inbound
    /// Writes to the peer.
    public let outbound: Writer
    /// The peer's address, if known.
    public let peer: SocketAddress?

    fileprivate init(state: AsyncConnectionState<Message>, peer: SocketAddress?) {
        self.inbound = Inbound(state: state)
        self.outbound = Writer(state: state)
        self.peer = peer
    }

    /// The inbound messages as an `AsyncSequence`.
    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = Message
        fileprivate let state: AsyncConnectionState<Message>

        public func makeAsyncIterator() -> Iterator { Iterator(state: self.state) }

        public struct Iterator: AsyncIteratorProtocol {
            @usableFromInline let state: AsyncConnectionState<Message>
            /// The next message, nil once the peer has shut down its side.
            /// - Throws: the error that ended the connection (``ConnectionClosedError`` if it
            ///   was closed locally, `CancellationError` if the waiting task is cancelled).
            // Inlinable: the caller's module specializes it for its message type, so the step
            // into AsyncConnectionState costs no generic metadata lookups.
#if compiler(>=6.2)
            @inlinable
            public nonisolated(nonsending) mutating func next() async throws -> Message? { try await self.state.next() }
#else
            @inlinable
            public mutating func next() async throws -> Message? { try await self.state.next() }
#endif
        }
    }

    /// Writes bytes to the connection, in the order called, and closes it.
    public struct Writer: Sendable {
        @usableFromInline let state: AsyncConnectionState<Message>

        /// Queues `bytes` and has them flushed. Returns once queued, unless the connection's
        /// unsent backlog is past its high-water mark: then once it has drained below the low one.
        /// - Throws: ``ConnectionClosedError`` if the connection is closed.
#if compiler(>=6.2)
        @inlinable
        public nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
            try await self.state.write(bytes)
        }
#else
        @inlinable
        public func write(_ bytes: [UInt8]) async throws {
            try await self.state.write(bytes)
        }
#endif

        /// Queues the UTF-8 bytes of `text` (see ``write(_:)``).
        public func write(_ text: String) async throws {
            try await self.state.write(Array(text.utf8))
        }

        /// Closes the connection once queued output is written. Idempotent.
        public func close() { self.state.close() }
    }
}

/// What a consumer about to wait found under the lock.
enum ParkOutcome { case parked, ready, cancelled }

/// What the consumer, the writer and the loop share. The loop-thread-only parts (the connection,
/// the framer) are reached only on the loop thread, through `onLoop`.
@usableFromInline
final class AsyncConnectionState<Message: Sendable>: @unchecked Sendable {
    struct Shared {
        var buffer: [Message] = []
        var head = 0
        var finished = false
        var error: (any Error)?
        var readPaused = false
        var reader: UnsafeContinuation<Message?, any Error>?
        var writers: [UnsafeContinuation<Void, any Error>] = []
        var count: Int { self.buffer.count - self.head }
    }

    let executor: LoopExecutor
    let handle: LoopHandle
    let highWatermark: Int
    let lowWatermark: Int
    let shared = Mutex(Shared())
    /// Loop thread only (the bridge sets and clears it).
    var connection: Connection?

    init(loop: EventLoop, highWatermark: Int, lowWatermark: Int) {
        precondition(lowWatermark >= 0 && lowWatermark < highWatermark, "need 0 <= lowWatermark < highWatermark")
        self.executor = loop.executor
        self.handle = loop.handle
        self.highWatermark = highWatermark
        self.lowWatermark = lowWatermark
    }

    /// Runs `body` on the loop thread: now if this is it, else through the mailbox.
    private func onLoop(_ body: @escaping @Sendable (AsyncConnectionState) -> Void) {
        if self.executor.isOnLoopThread {
            body(self)
        } else {
            self.handle.execute { [self] _ in body(self) }
        }
    }

    // MARK: Consumer side

    // `nonisolated(nonsending)` (Swift 6.2): these run on the caller's executor, the loop for a
    // handler `serve` started, instead of hopping to the generic one and back, which under a
    // task executor preference costs a status-record lookup per hop. Older compilers hop.
#if compiler(>=6.2)
    @usableFromInline @_specialize(where Message == [UInt8])
    nonisolated(nonsending) func next() async throws -> Message? {
        if let ready = try self.takeReady() { return ready }
        // Inherits the executor too (the plain form hops to the generic one and back).
        return try await _unsafeInheritExecutor_withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in self.park(reader: continuation) }
        } onCancel: {
            self.cancelReader()
        }
    }
#else
    @usableFromInline
    func next() async throws -> Message? {
        if let ready = try self.takeReady() { return ready }
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in self.park(reader: continuation) }
        } onCancel: {
            self.cancelReader()
        }
    }
#endif

    /// The consumer waits for ``deliver(_:)`` or the end, unless a message came meanwhile.
    private func park(reader continuation: UnsafeContinuation<Message?, any Error>) {
        let outcome = self.shared.withLock { shared -> ParkOutcome in
            if shared.count > 0 || shared.finished { return .ready }  // changed meanwhile
            if Task.isCancelled { return .cancelled }
            shared.reader = continuation
            return .parked  // the bridge resumes it
        }
        switch outcome {
        case .parked: break
        case .cancelled: continuation.resume(throwing: CancellationError())
        case .ready:
            do { continuation.resume(returning: try self.takeReady()) } catch { continuation.resume(throwing: error) }
        }
    }

    /// The consumer's task was cancelled: a parked reader is resumed with the error.
    private func cancelReader() {
        let reader = self.shared.withLock { shared -> UnsafeContinuation<Message?, any Error>? in
            defer { shared.reader = nil }
            return shared.reader
        }
        reader?.resume(throwing: CancellationError())
    }

    /// The next buffered message, nil if none is buffered and the stream has not ended (or it
    /// ended cleanly and nothing is buffered: then callers see nil from `next()` too).
    @_specialize(where Message == [UInt8])
    private func takeReady() throws -> Message? {
        var resume = false
        let message: Message? = try self.shared.withLock { shared throws -> Message? in
            guard shared.count > 0 else {
                if let error = shared.error { throw error }
                return nil
            }
            let message = shared.buffer[shared.head]
            shared.head += 1
            if shared.head == shared.buffer.count {
                shared.buffer.removeAll(keepingCapacity: shared.buffer.count <= 64)
                shared.head = 0
            } else if shared.head >= 64 && shared.head * 2 >= shared.buffer.count {
                shared.buffer.removeFirst(shared.head)
                shared.head = 0
            }
            if shared.readPaused && shared.count <= self.lowWatermark {
                shared.readPaused = false
                resume = true
            }
            return message
        }
        if resume {
            self.onLoop { state in state.connection?.resumeReading() }
        }
        return message
    }

    // MARK: Writer side

#if compiler(>=6.2)
    @usableFromInline @_specialize(where Message == [UInt8])
    nonisolated(nonsending) func write(_ bytes: [UInt8]) async throws {
        if self.executor.isOnLoopThread {
            if try self.queue(bytes) { return }
            try await withUnsafeThrowingContinuation { continuation in self.park(writer: continuation) }
            return
        }
        try await withUnsafeThrowingContinuation { continuation in self.queueFromElsewhere(bytes, continuation) }
    }
#else
    @usableFromInline
    func write(_ bytes: [UInt8]) async throws {
        if self.executor.isOnLoopThread {
            if try self.queue(bytes) { return }
            try await withUnsafeThrowingContinuation { continuation in self.park(writer: continuation) }
            return
        }
        try await withUnsafeThrowingContinuation { continuation in self.queueFromElsewhere(bytes, continuation) }
    }
#endif

    /// Off the loop thread: queues through the mailbox; the writer goes on once queued (or drained).
    private func queueFromElsewhere(_ bytes: [UInt8], _ continuation: UnsafeContinuation<Void, any Error>) {
        self.handle.execute { [self] _ in
            do {
                if try self.queue(bytes) { continuation.resume() } else { self.park(writer: continuation) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Loop thread: queues and schedules the flush. Returns whether the writer may go on now
    /// (false: the backlog is past the high-water mark even after writing what the socket took).
    private func queue(_ bytes: [UInt8]) throws -> Bool {
        guard let connection = self.connection, connection.state == .open else { throw ConnectionClosedError() }
        connection.write(bytes)
        guard connection.pendingOutputBytes >= connection.highWaterMark else {
            connection.flushSoon()
            return true
        }
        connection.flush()
        return connection.state != .open || connection.pendingOutputBytes < connection.highWaterMark
    }

    /// Loop thread: the writer waits for ``outputDrained()`` or the close.
    private func park(writer: UnsafeContinuation<Void, any Error>) {
        if self.connection == nil {
            writer.resume(throwing: ConnectionClosedError())
            return
        }
        self.shared.withLock { $0.writers.append(writer) }
    }

    func close() {
        self.onLoop { state in state.connection?.close() }
    }

    // MARK: Loop side (the bridge)

    /// Loop thread: a message arrived.
    @_specialize(where Message == [UInt8])
    func deliver(_ message: Message) {
        let reader = self.shared.withLock { shared -> UnsafeContinuation<Message?, any Error>? in
            if let reader = shared.reader {
                shared.reader = nil
                return reader
            }
            shared.buffer.append(message)
            if !shared.readPaused && shared.count >= self.highWatermark {
                shared.readPaused = true
                self.connection?.pauseReading()
            }
            return nil
        }
        reader?.resume(returning: message)
    }

    /// Loop thread: the inbound stream ended (EOF: `error` nil; else why).
    func finish(error: (any Error)?) {
        let reader = self.shared.withLock { shared -> UnsafeContinuation<Message?, any Error>? in
            guard !shared.finished else { return nil }
            shared.finished = true
            shared.error = error
            defer { shared.reader = nil }
            return shared.reader
        }
        if let error { reader?.resume(throwing: error) } else { reader?.resume(returning: nil) }
    }

    /// Loop thread: the backlog fell to the low-water mark, or the connection closed.
    func releaseWriters(closed: Bool) {
        let writers = self.shared.withLock { shared in
            defer { shared.writers = [] }
            return shared.writers
        }
        for writer in writers {
            if closed { writer.resume(throwing: ConnectionClosedError()) } else { writer.resume() }
        }
    }
}

/// The connection's delegate: frames on the loop thread and feeds the shared state.
final class AsyncConnectionBridge<Framer: InboundFramer>: ConnectionDelegate {
    let state: AsyncConnectionState<Framer.Message>
    var framer: Framer
    let start: (AsyncConnection<Framer.Message>) -> Void
    let peer: SocketAddress?
    /// An outbound connection's failure before it opened (AsyncConnection+Connect.swift).
    var failedBeforeOpen: ((any Error) -> Void)?

    init(state: AsyncConnectionState<Framer.Message>, framer: Framer, peer: SocketAddress?,
         start: @escaping (AsyncConnection<Framer.Message>) -> Void) {
        self.state = state
        self.framer = framer
        self.peer = peer
        self.start = start
    }

    func connectionDidOpen(_ connection: Connection) {
        self.state.connection = connection
        self.failedBeforeOpen = nil
        self.start(AsyncConnection(state: self.state, peer: self.peer ?? connection.peer))
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        do {
            try self.framer.frame(bytes) { self.state.deliver($0) }
        } catch {
            // Reading stops; the handler may still answer (a 400, an error line) before its
            // return closes the connection.
            self.state.finish(error: error)
            connection.pauseReading()
        }
    }

    func connectionDidReadEOF(_ connection: Connection) {
        // Half-close: the consumer sees the end; its replies may still go out.
        self.state.finish(error: nil)
    }

    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {
        if bytes <= connection.lowWaterMark { self.state.releaseWriters(closed: false) }
    }

    func connectionDidClose(_ connection: Connection) {
        if let failed = self.failedBeforeOpen {
            self.failedBeforeOpen = nil
            failed(connection.closeError ?? ConnectionClosedError())
        }
        self.state.connection = nil
        self.state.finish(error: connection.closeError ?? ConnectionClosedError())
        self.state.releaseWriters(closed: true)
    }
}

extension EventLoop {
    /// Listens on `address` and runs `handler` for each accepted connection, as a task on the
    /// loop's executor (``LoopExecutor``); the connection is closed when `handler` returns or
    /// throws (after its queued output is written). Loop thread (or set-up) only.
    ///
    /// ```swift
    /// let loop = try EventLoop()
    /// _ = try loop.serve(at: SocketAddress(host: "127.0.0.1", port: 7000), framing: { Lines() }) { connection in
    ///     for try await line in connection.inbound { try await connection.outbound.write(line + [10]) }
    /// }
    /// try loop.run()
    /// ```
    /// - Parameters:
    ///   - framing: makes each connection's framer.
    ///   - highWatermark: buffered messages past which reading pauses.
    ///   - lowWatermark: buffered messages at or below which it resumes.
    /// - Returns: the listener (``Listener/close()`` stops accepting).
    /// - Throws: ``IOError`` from bind or listen.
    @discardableResult
    public func serve<Framer: InboundFramer>(
        at address: SocketAddress, framing: @escaping () -> Framer, highWatermark: Int = 16, lowWatermark: Int = 4,
        handler: @escaping @Sendable (AsyncConnection<Framer.Message>) async throws -> Void
    ) throws(IOError) -> Listener {
        let executor = self.executor.taskExecutor
        return try Listener(loop: self, address: address) { [unowned self] peer in
            let state = AsyncConnectionState<Framer.Message>(loop: self, highWatermark: highWatermark, lowWatermark: lowWatermark)
            return AsyncConnectionBridge(state: state, framer: framing(), peer: peer) { connection in
                Task(executorPreference: executor) {
                    do { try await handler(connection) } catch {}
                    connection.outbound.close()
                }
            }
        }
    }
}
