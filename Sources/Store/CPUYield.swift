// Long loops of the compaction thread (loading database.txt, replaying segments, writing the
// snapshot) give the CPU away every so often. That thread runs under SCHED_IDLE, but on a core the
// loop keeps busy the scheduler still picks it now and then for a whole time slice, which it keeps
// until the next timer tick (4 ms at HZ 250): the loop, runnable, waited that long. A sched_yield(2)
// every 1,024 keys or records (a stretch far shorter than a time slice, so the loop never waits a
// whole tick) hands the core back to a loop that is waiting for it; with nobody waiting it returns
// at once (docs/architecture.md, "Persistence").

#if canImport(Glibc)
import Glibc
#endif

/// Counts units of work and yields the CPU once every ``period`` of them.
struct CPUYield {
    static let period = 1024
    private var count = 0

    @inline(__always)
    mutating func tick() {
        self.count &+= 1
        if self.count & (Self.period - 1) == 0 { sched_yield() }
    }
}
