// The open-loop clock: a thread that wakes the event loop when requests on the schedule
// (OpenLoopSchedule) fall due while it sleeps. The loop parks in
// epoll_wait with no timeout and Dispatch timers fire at millisecond grain, so the pacer sleeps
// with clock_nanosleep to the next due time instead. It touches no loop state: it only posts to
// an Inbox (the loop's one hand-off boundary), and at most one post is outstanding at a time.

import Reactor
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the pacing thread for one measured phase. Create, ``start()``, and ``stop()`` (which
/// joins the thread) on the loop thread.
final class Pacer {
    /// What the loop and the pacing thread share: the schedule (immutable) and two flags.
    private final class Shared: Sendable {
        let schedule: OpenLoopSchedule
        let inbox: Inbox<UInt8>
        let stopped = Atomic<Bool>(false)
        /// A wake-up is posted and the loop has not taken it yet: no second post.
        let pending = Atomic<Bool>(false)

        init(schedule: OpenLoopSchedule, inbox: Inbox<UInt8>) {
            self.schedule = schedule
            self.inbox = inbox
        }
    }

    /// The pacer never wakes the loop more often than this: when requests fall due faster, the
    /// loop is busy with replies and issues due requests itself before each sleep.
    static let minimumGapNanoseconds: UInt64 = 50_000

    private let shared: Shared
    private var thread: pthread_t?

    /// - Parameter inbox: posted to when requests are due; its handler must call ``taken()``.
    init(schedule: OpenLoopSchedule, inbox: Inbox<UInt8>) {
        self.shared = Shared(schedule: schedule, inbox: inbox)
    }

    /// The loop took the wake-up: the next due time may post again. Loop thread.
    func taken() { self.shared.pending.store(false, ordering: .releasing) }

    /// Starts the pacing thread.
    /// - Throws: ``BenchFailure`` if the thread cannot be created.
    func start() throws(BenchFailure) {
        Self.reduceTimerSlack()
        let box = Unmanaged.passRetained(self.shared).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let shared = Unmanaged<Shared>.fromOpaque(raw!).takeRetainedValue()
            Pacer.pace(shared)
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Shared>.fromOpaque(box).release()
            throw BenchFailure(description: "cannot start the pacing thread: \(String(cString: strerror(rc)))")
        }
        self.thread = thread
    }

    /// Stops and joins the thread (within one sleep, at most 10 ms). Idempotent.
    func stop() {
        self.shared.stopped.store(true, ordering: .releasing)
        if let thread = self.thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }

    private static func pace(_ shared: Shared) {
        let schedule = shared.schedule
        var posted = 0
        while !shared.stopped.load(ordering: .acquiring) {
            let now = SystemClock.monotonicNanoseconds()
            let due = schedule.dueCount(at: now)
            if due > posted && !shared.pending.exchange(true, ordering: .acquiringAndReleasing) {
                shared.inbox.post(0)
                posted = due
            }
            // Sleep to the next due time (or, with everything due, until stopped), never for
            // less than the minimum gap and never past 10 ms, so stop() returns promptly.
            var wake = due < schedule.total ? schedule.dueTime(due) : now + 10_000_000
            wake = max(wake, now + Self.minimumGapNanoseconds)
            wake = min(wake, now + 10_000_000)
            var ts = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
        }
    }

    /// Linux rounds a sleep up by the thread's timer slack (50 µs by default), which adds
    /// straight to every measured latency at low rates. prctl(PR_SET_TIMERSLACK) is variadic and
    /// not callable from Swift, so the slack is set through /proc/self (the process's main
    /// thread, which runs kvbench's loop) just before the pacing thread is created: a new thread
    /// inherits its creator's slack. If that is refused the default stays (sends up to ~50 µs
    /// later; the send lag in the summary shows it). Measured on a 2-core VM: a 200 µs
    /// clock_nanosleep overshoots by ~85 µs on average with the default slack, ~35 µs with 1 ns.
    private static func reduceTimerSlack() {
        let fd = open("/proc/self/timerslack_ns", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = write(fd, "1", 1)
        close(fd)
    }
}
