// When the next group-commit fsync starts under `--fsync always` (docs/architecture.md "Group
// commit"). Starting it the moment the previous one ends splits closed-loop clients into two
// groups that take turns: the clients a finished sync just answered send their next writes while
// the next sync, which covers only the others, is already running, so each of them waits for two
// syncs, and 50 clients at `-P 1` got 25 writes per fsync. The gate holds the next sync briefly
// after one ends, until as many writes are waiting as that sync answered plus those already
// waiting (the answered clients coming back), or until a quarter of the last sync's duration has
// passed, whichever comes first. A lone client is never held (its write alone completes the
// expected group); clients that do not come back cost at most a quarter of a sync in latency.
// A pure value: the caller reads the clock and counts mutations.

struct SyncGate {
    /// The most a sync is held, whatever the last one took.
    static let maximumHoldNanoseconds: UInt64 = 1_000_000

    /// Mutations the held sync waits for (counted from the end of the last sync), or nil: not held.
    private(set) var expectedWrites: Int?
    /// Monotonic time at which a held sync starts anyway.
    private(set) var deadline: UInt64 = 0

    /// A sync finished.
    /// - Parameters:
    ///   - answered: mutations it made durable (the clients now free to write again).
    ///   - waiting: mutations made since it started (they wait for the next one).
    ///   - duration: how long it took, in nanoseconds.
    ///   - now: monotonic nanoseconds.
    /// - Returns: how long to hold the next sync (nil: start it now).
    @discardableResult
    mutating func syncFinished(answered: Int, waiting: Int, duration: UInt64, now: UInt64) -> UInt64? {
        let hold = min(duration / 4, Self.maximumHoldNanoseconds)
        guard answered > 0, hold > 0 else {
            self.expectedWrites = nil
            return nil
        }
        self.expectedWrites = waiting + answered
        self.deadline = now + hold
        return hold
    }

    /// Whether a sync may start now, with `waiting` mutations made since the last one ended.
    mutating func mayStart(waiting: Int, now: UInt64) -> Bool {
        guard let expected = self.expectedWrites else { return true }
        guard waiting >= expected || now >= self.deadline else { return false }
        self.expectedWrites = nil
        return true
    }
}
