// The thread the group commit's fdatasync runs on when it does not run on the loop thread
// (InlineSyncGuard.swift: the disk is slow, or not yet known to be fast). Its own thread, not a
// Dispatch worker, so its priority can be lowered for good: at nice 10, when it shares a core with
// the loop (a server pinned to one CPU, or every core busy), waking from a sync no longer preempts
// the loop in the middle of an iteration: a GET probe's p99 during durable writes on a server
// pinned to one CPU fell with durable throughput unchanged (Benchmarks/README.md, "GET latency
// during durable writes", has the figures). An fdatasync needs little CPU, so the lower weight
// costs it a little waiting only when the loop is busy. Unlike
// compaction's thread (YieldingThread.swift) it is not SCHED_IDLE: replies wait for it, and a
// thread under SCHED_IDLE gets almost no CPU on a host whose cores are all busy.

import Dispatch
import Synchronization

/// A serial worker on a thread of its own at ``niceness``, running `perform` on each job submitted, in
/// order; the thread ends after ``stop()`` once the jobs before it have run. A job is a value handed to
/// the one function given at the start, not a closure: group commit submits one per group, and a
/// closure per group was an allocation on the loop thread and a release on this one.
final class SyncThread<Job: Sendable>: Sendable {
    static var niceness: Int32 { 10 }

    /// Jobs submitted and not yet taken; nil: stop there.
    private let jobs = Mutex<[Job?]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let perform: @Sendable (Job) -> Void

    /// Starts the thread. - Returns: nil if it could not be created (the caller uses a queue).
    init?(perform: @escaping @Sendable (Job) -> Void) {
        self.perform = perform
        let started = YieldingThread.detached { [self] in
            Sys.setThreadNiceness(Self.niceness)
            self.serve()
        }
        guard started else { return nil }
    }

    /// Queues `job` for the thread. Any thread.
    func submit(_ job: Job) {
        self.jobs.withLock { $0.append(job) }
        self.ready.signal()
    }

    /// Ends the thread once the jobs already submitted have run. Any thread.
    func stop() {
        self.jobs.withLock { $0.append(nil) }
        self.ready.signal()
    }

    private func serve() {
        while true {
            self.ready.wait()
            guard let job = self.jobs.withLock({ $0.removeFirst() }) else { return }
            self.perform(job)
        }
    }
}
