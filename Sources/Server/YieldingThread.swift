// A thread for throughput work that must never hold up the loop: compaction. It runs at the
// lowest CPU priority the kernel offers an unprivileged thread (SCHED_IDLE), so when it shares a
// core with the loop (a server pinned to one CPU, or every core busy) the scheduler switches to
// the loop the moment the loop has an event, instead of letting the compaction finish a time
// slice of several milliseconds first. A Dispatch worker cannot be lowered this way: it is shared
// with other queues, and an unprivileged thread cannot raise its priority back.


/// Starts one-off threads whose work yields the CPU to every normal thread.
enum YieldingThread {
    /// Linux's SCHED_IDLE policy (<sched.h> declares it only under _GNU_SOURCE).
    static let idlePolicy: Int32 = 5

    /// Runs `body` once on a new detached thread that lowers itself to ``idlePolicy`` first.
    /// - Returns: false if no thread could be created (the caller runs `body` some other way).
    static func run(_ body: @escaping @Sendable () -> Void) -> Bool {
        Self.detached {
            YieldingThread.lower()
            body()
        }
    }

    /// Runs `body` once on a new detached thread. - Returns: false if none could be created.
    static func detached(_ body: @escaping @Sendable () -> Void) -> Bool {
        Sys.startDetachedThread(body)
    }

    /// Puts the calling thread under SCHED_IDLE (nice 19 where the policy is refused).
    static func lower() {
        if !Sys.setThreadSchedulingPolicy(Self.idlePolicy) {
            Sys.setThreadNiceness(19)
        }
    }
}
