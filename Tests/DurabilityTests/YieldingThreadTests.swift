// The compaction's thread (Sources/Server/YieldingThread.swift): it runs its work under
// SCHED_IDLE, so a loop sharing its core is switched to as soon as it has an event, and the
// thread that started it keeps its own policy. The sync thread (SyncThread.swift): one thread at
// nice 10 running the fdatasync jobs in order.

import Dispatch
@testable import Server
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct YieldingThreadTests {
    @Test func workRunsUnderTheIdlePolicyOnAnotherThread() throws {
        let policy = Mutex<Int32?>(nil)
        let sameThread = Mutex<Bool?>(nil)
        let caller = pthread_self()
        let done = DispatchSemaphore(value: 0)
        let started = YieldingThread.run {
            policy.withLock { $0 = sched_getscheduler(0) }
            sameThread.withLock { $0 = pthread_equal(pthread_self(), caller) != 0 }
            done.signal()
        }
        #expect(started)
        #expect(done.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(policy.withLock { $0 } == YieldingThread.idlePolicy)
        #expect(sameThread.withLock { $0 } == false)
        // The caller (the loop, in the server) is left as it was.
        #expect(sched_getscheduler(0) == SCHED_OTHER)
    }

    @Test func syncJobsRunInOrderOnOneThreadAtNiceTenUntilStopped() throws {
        let callerNice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        let seen = Mutex<[(job: Int, nice: Int32, thread: pthread_t)]>([])
        let done = DispatchSemaphore(value: 0)
        let late = DispatchSemaphore(value: 0)
        let worker = try #require(SyncThread<Int> { job in
            guard job >= 0 else {
                late.signal()
                return
            }
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            seen.withLock { $0.append((job, nice, pthread_self())) }
            if job == 99 { done.signal() }
        })
        for job in 0..<100 { worker.submit(job) }
        #expect(done.wait(timeout: .now() + .seconds(10)) == .success)
        let runs = seen.withLock { $0 }
        #expect(runs.map(\.job) == Array(0..<100))
        // Nice 10, unless the test itself runs nicer than that (and may not raise its priority).
        #expect(runs.allSatisfy { $0.nice == SyncThread<Int>.niceness || ($0.nice == callerNice && callerNice > SyncThread<Int>.niceness) })
        #expect(runs.allSatisfy { pthread_equal($0.thread, runs[0].thread) != 0 })
        #expect(pthread_equal(runs[0].thread, pthread_self()) == 0)
        // The caller keeps its own niceness.
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == callerNice)
        // After stop, jobs submitted later never run.
        worker.stop()
        worker.submit(-1)
        #expect(late.wait(timeout: .now() + .milliseconds(200)) == .timedOut)
    }
}
