// The clocks an embedder needs, read the one way the reactor reads them (clock_gettime, no
// Foundation). Any thread.

/// The system clocks.
public enum SystemClock {
    /// CLOCK_MONOTONIC in nanoseconds: for intervals, never for dates.
    public static func monotonicNanoseconds() -> UInt64 { Sys.monotonicNanoseconds() }

    /// CLOCK_REALTIME: seconds and microseconds since the Unix epoch.
    public static func wallClock() -> (seconds: Int, microseconds: Int) { Sys.wallClock() }
}
