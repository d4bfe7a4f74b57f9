// When each open-loop request is due: request i (over all connections) at start + i/rate. Pure
// arithmetic the loop asks when it wakes and before it sleeps; no clock reads here.

/// Request `i` (0-based, over all connections) is due at `start + i * 1e9 / rate` nanoseconds.
struct OpenLoopSchedule: Sendable {
    let startNanoseconds: UInt64
    let ratePerSecond: Double
    /// Requests on the schedule in all (the -n count, or rate × duration).
    let total: Int

    /// How many requests are due at `now` (every index below it), at most ``total``. The one
    /// test of dueness everyone uses, so rounding can never make two parties disagree.
    @inline(__always)
    func dueCount(at now: UInt64) -> Int {
        guard now >= self.startNanoseconds else { return 0 }
        let elapsed = Double(now - self.startNanoseconds)
        let count = Int(elapsed * self.ratePerSecond / 1e9) + 1
        return min(count, self.total)
    }

    /// When request `index` falls due (the earliest `now` with `dueCount(at: now) > index`).
    @inline(__always)
    func dueTime(_ index: Int) -> UInt64 {
        let t = self.startNanoseconds + UInt64((Double(index) * 1e9 / self.ratePerSecond).rounded(.up))
        return self.dueCount(at: t) > index ? t : t + 1
    }
}
