// When the next group-commit fsync starts under `--fsync always` (docs/architecture.md "Group
// commit"). Starting it the moment the previous one ends splits closed-loop clients into two
// groups that take turns: the clients a finished sync just answered send their next writes while
// the next sync, which covers only the others, is already running, so each of them waits for two
// syncs, and half as many writes share each fsync (Benchmarks/README.md). The gate holds the next sync briefly
// after one ends, until as many writes are waiting as that sync answered plus those already
// waiting (the answered clients coming back), or until the hold (a quarter of the last sync's
// duration, at most 1 ms) has passed, whichever comes first. The hold's clock starts when the sync
// ends if writes are already waiting, else at the first write that comes back: a hold with nothing
// waiting delays no one (there is nothing to sync), and letting it expire empty spent the gate, so
// the first client back started a sync alone and the clients split into two groups again. A lone
// client is never held (its write alone completes the expected group); a write that does not
// complete the group waits at most the hold, counted from when the gate first saw it waiting.
// A pure value: the caller reads the clock and counts mutations.

struct SyncGate {
    /// The most a sync is held, whatever the last one took.
    static let maximumHoldNanoseconds: UInt64 = 1_000_000

    /// Mutations the held sync waits for (counted from the end of the last sync), or nil: not held.
    private(set) var expectedWrites: Int?
    /// Monotonic time at which a held sync starts anyway; 0: none yet (held with nothing waiting,
    /// the hold's clock starts at the first write). The loop need not wake for the gate while 0.
    private(set) var deadline: UInt64 = 0
    /// How long the current hold lasts once its clock starts.
    private var hold: UInt64 = 0

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
            self.deadline = 0
            return nil
        }
        self.expectedWrites = waiting + answered
        self.hold = hold
        self.deadline = waiting > 0 ? now + hold : 0
        return hold
    }

    /// Whether a sync may start now, with `waiting` mutations made since the last one ended.
    /// The first call that sees a write waiting starts the hold's clock if it has not started.
    mutating func mayStart(waiting: Int, now: UInt64) -> Bool {
        guard let expected = self.expectedWrites else { return true }
        // Nothing to sync: keep holding, however long, so the group forms when the clients return.
        guard waiting > 0 else { return false }
        if self.deadline == 0 { self.deadline = now + self.hold }
        guard waiting >= expected || now >= self.deadline else { return false }
        self.expectedWrites = nil
        self.deadline = 0
        return true
    }
}
