// The reactor's one clock, read the one way the loop reads it (clock_gettime, no Foundation).
// Time in the reactor is an instant in CLOCK_MONOTONIC nanoseconds (`EventLoop.now`,
// `EventLoop.wakeNoLaterThan`, this) or a `Duration` (timers, the idle sweep). Any thread.

/// The system's monotonic clock, as the loop reads it.
public enum SystemClock {
    /// CLOCK_MONOTONIC in nanoseconds: for intervals and deadlines, never for dates. The same
    /// clock as ``EventLoop/now``, read afresh.
    public static func monotonicNanoseconds() -> UInt64 { Sys.monotonicNanoseconds() }
}
