// A loop per core: several EventLoops, each on a thread of its own, each with its own listener
// bound to the same port with SO_REUSEPORT, so the kernel spreads new connections over them and no
// state is shared between loops (no lock on any request path). A connection lives and dies on
// the loop that accepted it. This is how a tool uses every core; one loop stays the default.

import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs several ``EventLoop``s, one thread each.
///
/// ```swift
/// let group = EventLoopGroup(loopCount: EventLoopGroup.coreCount)
/// try group.run { loop, index in
///     _ = try Listener(loop: loop, address: address, reusePort: true) { _ in Echo() }
/// }
/// ```
public final class EventLoopGroup: Sendable {
    /// The processors online (sysconf), at least 1.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// How many loops ``run(_:)`` starts.
    public let loopCount: Int
    private let state = Mutex<State>(State())

    private struct State {
        var handles: [LoopHandle] = []
        var stopRequested: StopRequest?
    }

    private enum StopRequest {
        case now
        case gracefully(Duration)
    }

    /// - Parameter loopCount: the number of loops (threads), at least 1.
    public init(loopCount: Int = EventLoopGroup.coreCount) {
        precondition(loopCount > 0, "a group needs at least one loop")
        self.loopCount = loopCount
    }

    /// The running loops' handles (empty before ``run(_:)`` has started them).
    public var handles: [LoopHandle] { self.state.withLock { $0.handles } }

    /// Starts ``loopCount`` threads, each making its own loop, calling `setUp` with it and its
    /// index on that thread (open listeners there: each loop needs its own, with
    /// `reusePort: true`), then running it. The set-ups run one after another, loop 0's first,
    /// so a later one can use what an earlier one learnt (the port the kernel gave loop 0).
    /// Returns once every loop has returned (``stop()``, ``stopGracefully(within:)``, a signal).
    /// If a loop cannot be made, or `setUp` throws, every loop is stopped and the first error is
    /// thrown once they have all returned.
    public func run(_ setUp: @escaping @Sendable (EventLoop, Int) throws -> Void) throws {
        let failure = Mutex<(any Error)?>(nil)
        var threads: [pthread_t] = []
        for index in 0..<self.loopCount {
            let setUpDone = DispatchSemaphore(value: 0)
            let body = ThreadBody { [self] in
                do {
                    let loop: EventLoop
                    do {
                        defer { setUpDone.signal() }
                        loop = try EventLoop()
                        self.state.withLock { $0.handles.append(loop.handle) }
                        try setUp(loop, index)
                    }
                    let stop = self.state.withLock { $0.stopRequested }
                    switch stop {
                    case .now?: return
                    case .gracefully(let grace)?: loop.handle.stopGracefully(within: grace)
                    case nil: break
                    }
                    try loop.run()
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    self.stop()
                }
            }
            var thread = pthread_t()
            let context = Unmanaged.passRetained(body).toOpaque()
            let started = pthread_create(&thread, nil, { context in
                Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
            precondition(started == 0, "pthread_create failed: \(started)")
            threads.append(thread)
            setUpDone.wait()
        }
        for thread in threads { pthread_join(thread, nil) }
        self.state.withLock { $0.handles.removeAll() }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Stops every loop after its current iteration. Any thread.
    public func stop() {
        let handles = self.state.withLock { state in
            state.stopRequested = .now
            return state.handles
        }
        for handle in handles { handle.stop() }
    }

    /// Stops every loop gracefully (``EventLoop/stopGracefully(within:)``). Any thread.
    public func stopGracefully(within grace: Duration = .seconds(10)) {
        let handles = self.state.withLock { state in
            state.stopRequested = .gracefully(grace)
            return state.handles
        }
        for handle in handles { handle.stopGracefully(within: grace) }
    }

    /// Stops every loop gracefully when the process gets one of `signals` (see
    /// ``EventLoop/stopGracefullyOnSignals(_:within:)``). Keep the watch. Any thread.
    public func stopGracefullyOnSignals(_ signals: [CInt] = [SIGINT, SIGTERM], within grace: Duration = .seconds(10)) -> SignalWatch {
        SignalWatch(signals: signals) { [self] in self.stopGracefully(within: grace) }
    }
}

/// What a group's thread runs, passed through pthread_create's context pointer.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
