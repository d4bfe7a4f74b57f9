// Bounded waits: on a descriptor (poll(2) with a deadline) and on a condition nothing can signal
// (re-checked every few milliseconds until a deadline). No test sleeps and hopes.

#if canImport(Glibc)
import Glibc
#endif

/// Milliseconds left before `deadline`, for poll(2) (at least 0).
package func millisecondsLeft(_ deadline: ContinuousClock.Instant) -> CInt {
    let left = deadline - .now
    if left <= .zero { return 0 }
    return CInt(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
}

/// Waits until `fd` has any of `events` (or an error/hang-up), or the deadline passes.
package func pollFor(_ fd: CInt, events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
    while true {
        var p = pollfd(fd: fd, events: events, revents: 0)
        let r = poll(&p, 1, millisecondsLeft(deadline))
        if r > 0 { return true }
        if r == 0 { return false }
        if errno != EINTR { return false }
    }
}

/// Re-evaluates `condition` every 5 ms until it holds or `seconds` pass (for state no descriptor
/// can signal: /proc, another thread's counters, a server's INFO).
/// - Returns: whether the condition came true in time.
package func pollFor(within seconds: Int64 = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try !condition() {
        if ContinuousClock.now >= deadline { return false }
        _ = poll(nil, 0, 5)
    }
    return true
}
