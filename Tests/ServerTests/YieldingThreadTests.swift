// The compaction's thread (Sources/Server/YieldingThread.swift): it runs its work under
// SCHED_IDLE, so a loop sharing its core is switched to as soon as it has an event, and the
// thread that started it keeps its own policy.

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
}
