// The outbound side of the async connection API: connect by host name with a deadline and get
// the same inbound sequence / outbound writer pair that `EventLoop.serve` hands a handler
// (AsyncConnection.swift). The connect itself is Connection.connect(loop:host:port:timeout:…)
// (Connection+Resolve.swift: the lookup off the loop, one deadline for lookup and connect); this
// file only carries its outcome to the awaiting task, exactly once, whichever of success,
// failure, timeout or the task's cancellation comes first.

import Synchronization

extension AsyncConnection {
    /// Connects to `host` (a name looked up off the loop thread, a numeric address, or
    /// `localhost`) on `port` through the loop behind `loop`, and returns the connection's async
    /// face: ``inbound`` frames what the peer sends with `framing()`'s framer, ``outbound``
    /// writes to it, exactly as for a connection ``EventLoop/serve(at:framing:highWatermark:lowWatermark:handler:)``
    /// accepts. Any task, any thread; a task running on the loop's executor
    /// (``LoopExecutor/taskExecutor``) then reads and writes without hops.
    ///
    /// ```swift
    /// let thread = try EventLoop().start()
    /// let connection = try await AsyncConnection.connect(loop: thread.handle, host: "localhost", port: 7000,
    ///                                                    framing: { Lines() })
    /// try await connection.outbound.write("ping\n")
    /// for try await line in connection.inbound { print(line); break }
    /// connection.outbound.close()
    /// ```
    /// - Parameters:
    ///   - loop: the handle of the loop that will own the connection.
    ///   - timeout: one deadline for the name lookup and the connect.
    ///   - framing: makes the connection's framer (called once, on the loop thread).
    ///   - highWatermark: buffered inbound messages past which reading pauses.
    ///   - lowWatermark: buffered messages at or below which it resumes.
    /// - Throws: ``IOError``: `getaddrinfo` when the name does not resolve, `ECONNREFUSED` when
    ///   nobody listens, `ETIMEDOUT` when the deadline passes first; `CancellationError` when the
    ///   task is cancelled before the connection opened (a connect in flight is then abandoned).
    public static func connect<Framer: InboundFramer>(
        loop: LoopHandle, host: String, port: Int, timeout: Duration = .seconds(10),
        framing: @escaping @Sendable () -> Framer, highWatermark: Int = 16, lowWatermark: Int = 4
    ) async throws -> AsyncConnection<Message> where Framer.Message == Message, Framer: Sendable {
        precondition(lowWatermark >= 0 && lowWatermark < highWatermark, "need 0 <= lowWatermark < highWatermark")
        let pending = PendingConnect<Message>()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<AsyncConnection<Message>, any Error>) in
                guard pending.arm(continuation) else { return }  // cancelled already: resumed
                loop.execute { eventLoop in
                    pending.start(on: eventLoop, host: host, port: port, timeout: timeout, framer: framing(),
                                  highWatermark: highWatermark, lowWatermark: lowWatermark)
                }
            }
        } onCancel: {
            if pending.resolve(.failure(CancellationError())) {
                loop.execute { _ in pending.abandon() }
            }
        }
    }
}

/// One async connect in flight. The continuation is shared with the cancellation handler (any
/// thread) under a mutex; `connection` is the loop thread's alone.
private final class PendingConnect<Message: Sendable>: @unchecked Sendable {
    private enum Slot {
        case idle
        case waiting(UnsafeContinuation<AsyncConnection<Message>, any Error>)
        case done
    }
    private let slot = Mutex(Slot.idle)
    /// Loop thread only: the connection once its connect has started.
    private var connection: Connection?
    /// Loop thread only: the task was cancelled (a connect that starts later is closed at once).
    private var abandoned = false

    /// Stores the continuation; false if the task was cancelled first (then it is resumed here).
    func arm(_ continuation: UnsafeContinuation<AsyncConnection<Message>, any Error>) -> Bool {
        let armed = self.slot.withLock { slot -> Bool in
            guard case .idle = slot else { return false }
            slot = .waiting(continuation)
            return true
        }
        if !armed { continuation.resume(throwing: CancellationError()) }
        return armed
    }

    /// Resumes the waiting task with `result` if nothing has yet; returns whether this did.
    /// A resolution before `arm` (cancellation) marks the slot done, and `arm` resumes.
    @discardableResult
    func resolve(_ result: Result<AsyncConnection<Message>, any Error>) -> Bool {
        let continuation = self.slot.withLock { slot -> UnsafeContinuation<AsyncConnection<Message>, any Error>?? in
            switch slot {
            case .done: return nil
            case .idle:
                slot = .done
                return .some(nil)
            case .waiting(let continuation):
                slot = .done
                return .some(continuation)
            }
        }
        guard let continuation else { return false }
        continuation?.resume(with: result)
        return true
    }

    /// Loop thread: starts the connect.
    func start<Framer: InboundFramer>(on loop: EventLoop, host: String, port: Int, timeout: Duration, framer: Framer,
                                      highWatermark: Int, lowWatermark: Int) where Framer.Message == Message {
        let state = AsyncConnectionState<Message>(loop: loop, highWatermark: highWatermark, lowWatermark: lowWatermark)
        let bridge = AsyncConnectionBridge(state: state, framer: framer, peer: nil) { [self] connection in
            self.connection = nil
            // Cancelled while connecting and the open won the race to the loop: nobody will
            // use it, so close it.
            if !self.resolve(.success(connection)) { connection.outbound.close() }
        }
        bridge.failedBeforeOpen = { [self] error in
            self.connection = nil
            self.resolve(.failure(error))
        }
        Connection.connect(loop: loop, host: host, port: port, timeout: timeout, delegate: bridge) { [self] result in
            switch result {
            case .success(let connection):
                if self.abandoned { connection.close() } else if connection.state == .connecting { self.connection = connection }
            case .failure(let error):
                self.resolve(.failure(error))
            }
        }
    }

    /// Loop thread: the task was cancelled; a connect still in flight is closed.
    func abandon() {
        self.abandoned = true
        self.connection?.close()
        self.connection = nil
    }
}
