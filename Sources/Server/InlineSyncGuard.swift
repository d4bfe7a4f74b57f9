// Whether a group-commit sync under `--fsync always` may run on the loop thread (GroupCommit.swift).
// Inline, a sync costs the loop no hand-off: no wake-up of the sync thread, no message back through
// the loop's inbox, no second thread scheduled for each group, as Redis pays its fsync in its one
// thread. But the loop serves nothing while it runs: a GET waits for the disk too. So a sync runs
// inline only while the disk has been syncing fast: after `required` syncs in a row (wherever they
// ran) that each took at most `fastNanoseconds`. One slower sync sends the next ones back to the
// sync thread, where the loop goes on serving reads while the disk works; one that stalled the loop
// (it ran inline) also doubles `required`, so a disk that is only sometimes slow (shared with other
// writers) stalls the loop ever more rarely, and mostly stays on the thread. A long fast run earns
// the doubling back. A disk that syncs in milliseconds (Benchmarks/slowfsync.c) never gets a sync
// on the loop thread: the first syncs always run on the thread, and none of them is fast.
// A run forgives a rare overrun: one sync in `toleratedEvery` that takes up to twice the bound
// (a read that meets it waits a millisecond at most) goes on counting as fast. A disk whose syncs
// are mostly fast but not every one (a percent or two over the bound) otherwise never earned a run
// long enough, and every sync paid the thread's hand-off: two more context switches and a wake-up
// message each, a cost that at one write per sync is nearly half the write's (Benchmarks/README.md,
// "Durable writes: the loop's wake-ups and the inline bound", has the figures).
// A pure value: the caller measures each sync.

struct InlineSyncGuard {
    /// A sync this long or shorter counts as fast: a pause a read may wait, half the millisecond
    /// a read is answered within while durable writes run. (A quarter of it, a busy iteration's
    /// length, kept nearly every sync on the thread on a disk whose median sync is below even
    /// that: Benchmarks/README.md.)
    static let defaultFastNanoseconds: UInt64 = 500_000
    /// Fast syncs in a row before the first inline one, and after a slow one that ran on the thread.
    static let initialRequired = 8
    /// The most fast syncs in a row ever required.
    static let maximumRequired = 4_096
    /// A run of this many fast syncs halves `required` (down to ``initialRequired``).
    static let recoveryRun = 1_024
    /// A run forgives one sync over the bound, up to this many times it, in this many syncs.
    static let toleratedOverrun: UInt64 = 2
    static let toleratedEvery = 16

    /// The longest sync that counts as fast; 0: no sync runs inline.
    var fastNanoseconds = Self.defaultFastNanoseconds
    /// Fast syncs since the last slow one.
    private(set) var fastInARow = 0
    /// Fast syncs in a row needed before syncs run inline.
    private(set) var required = Self.initialRequired
    /// Syncs since the run's start or its last forgiven overrun (at most ``toleratedEvery``).
    private var sinceOverrun = 0

    /// Whether the next sync may run on the loop thread.
    var mayRunInline: Bool { self.fastNanoseconds > 0 && self.fastInARow >= self.required }

    /// A sync took `nanoseconds`; `inline`: it ran on the loop thread.
    mutating func syncFinished(nanoseconds: UInt64, inline: Bool) {
        if nanoseconds > self.fastNanoseconds {
            guard nanoseconds <= self.fastNanoseconds &* Self.toleratedOverrun,
                  self.sinceOverrun >= Self.toleratedEvery
            else {
                if inline { self.required = min(self.required * 2, Self.maximumRequired) }
                self.fastInARow = 0
                self.sinceOverrun = 0
                return
            }
            self.sinceOverrun = 0
        } else if self.sinceOverrun < Self.toleratedEvery {
            self.sinceOverrun += 1
        }
        self.fastInARow += 1
        if self.fastInARow % Self.recoveryRun == 0 { self.required = max(self.required / 2, Self.initialRequired) }
        // Stays far from overflow, and still at or above any `required`.
        if self.fastInARow >= 2 * Self.maximumRequired { self.fastInARow = Self.maximumRequired }
    }
}
