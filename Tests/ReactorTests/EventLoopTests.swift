// The loop itself: stale events within one epoll batch, cross-thread execute, timers on the
// loop thread, cancelled timers, descriptor leaks and the idle sweep.

import CLinux
import Foundation
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct EventLoopTests {
        @Test func descriptorReusedWithinOneBatchGetsNoStaleEvent() throws {
            let loop = try EventLoop()
            var iteration = 0
            loop.addBeforeSleepHook { iteration += 1 }

            let (a0, a1) = try makeSocketPair()
            let (b0, b1) = try makeSocketPair()
            defer { Sys.close(a1); Sys.close(b1) }
            // Both readable before the loop waits: their events arrive in one epoll_wait batch.
            try writeAll(a1.rawValue, [1], deadline: .now + .seconds(5))
            try writeAll(b1.rawValue, [1], deadline: .now + .seconds(5))

            var replacedInIteration: Int?
            var replacedFD: Descriptor?
            var newPeer: Descriptor?
            var newHandlerIterations: [Int] = []
            var firstHandler: String?
            let newHandler = ClosureHandler()
            newHandler.onReadable = {
                newHandlerIterations.append(iteration)
                loop.stop()
            }

            // Whichever handler runs first closes the other descriptor and puts a new socket at
            // the very same number (dup2 replaces it atomically, so no other thread can take
            // the number in between), then registers a new handler there.
            func replace(_ victim: Descriptor) {
                loop.deregister(victim)
                do {
                    let (n0, n1) = try makeSocketPair()
                    try writeAll(n1.rawValue, [2], deadline: .now + .seconds(5))
                    guard dup2(n0.rawValue, victim.rawValue) == victim.rawValue else {
                        Issue.record("dup2 failed: errno \(errno)")
                        return
                    }
                    Sys.close(n0)
                    newPeer = n1
                    try loop.register(newHandler, descriptor: victim, interest: .read)
                    replacedFD = victim
                    replacedInIteration = iteration
                } catch {
                    Issue.record("replacing the descriptor failed: \(error)")
                }
            }
            let handlerA = ClosureHandler()
            let handlerB = ClosureHandler()
            var callsA = 0
            var callsB = 0
            handlerA.onReadable = {
                callsA += 1
                if firstHandler == nil { firstHandler = "a"; replace(b0) }
            }
            handlerB.onReadable = {
                callsB += 1
                if firstHandler == nil { firstHandler = "b"; replace(a0) }
            }
            try loop.register(handlerA, descriptor: a0, interest: .read)
            try loop.register(handlerB, descriptor: b0, interest: .read)

            #expect(try runLoop(loop))
            let survivor = firstHandler == "a" ? a0 : b0
            loop.deregister(survivor)
            Sys.close(survivor)
            if let fd = replacedFD { loop.deregister(fd); Sys.close(fd) }
            if let fd = newPeer { Sys.close(fd) }

            let replaced = try #require(replacedInIteration)
            let victimCalls = firstHandler == "a" ? callsB : callsA
            #expect(victimCalls == 0, "the closed descriptor's old handler was called")
            #expect(!newHandlerIterations.contains(replaced),
                    "the new handler got the old registration's event in the iteration that replaced it")
            #expect(newHandlerIterations.first.map { $0 > replaced } == true, "the new registration never fired")
        }

        /// wakeNoLaterThan: with nothing else happening the loop wakes at the deadline (not
        /// before) and runs its hooks; the deadline applies to one wait only, so the loop then
        /// sleeps until the next event (here a timer that stops it) instead of spinning.
        @Test func aWakeDeadlineEndsOneSleepWithoutAnyEvent() throws {
            let loop = try EventLoop()
            var hookRuns: [UInt64] = []
            var deadline: UInt64 = 0
            loop.addBeforeSleepHook { [unowned loop] in  // the loop owns its hooks: no cycle
                hookRuns.append(Sys.monotonicNanoseconds())
                if hookRuns.count == 1 {
                    deadline = hookRuns[0] + 30_000_000
                    loop.wakeNoLaterThan(deadline + 5_000_000)
                    loop.wakeNoLaterThan(deadline)  // the earliest wins
                    _ = loop.scheduleTimer(after: .milliseconds(400)) { [unowned loop] in loop.stop() }
                }
            }
            loop.handle.execute { _ in }  // the first iteration
            #expect(try runLoop(loop))
            #expect(hookRuns.count == 3, "iterations: the first, the deadline's, the stopping timer's (\(hookRuns.count))")
            if hookRuns.count >= 2 {
                #expect(hookRuns[1] >= deadline, "woke \(Int64(deadline) - Int64(hookRuns[1])) ns before the deadline")
            }
        }

        @Test func executeFromAnotherThreadRunsOnLoopThread() throws {
            let loop = try EventLoop()
            let loopThread = Shared<pthread_t?>(nil)
            let taskThread = Shared<pthread_t?>(nil)
            let posterThread = Shared<pthread_t?>(nil)
            loop.handle.execute { _ in loopThread.with { $0 = pthread_self() } }
            let handle = loop.handle
            let poster = Thread {
                posterThread.with { $0 = pthread_self() }
                handle.execute { loop in
                    taskThread.with { $0 = pthread_self() }
                    loop.stop()
                }
            }
            poster.start()
            #expect(try runLoop(loop))
            let inLoop = try #require(loopThread.current)
            let ranOn = try #require(taskThread.current)
            let postedFrom = try #require(posterThread.current)
            #expect(pthread_equal(inLoop, ranOn) != 0)
            #expect(pthread_equal(postedFrom, ranOn) == 0)
        }

        @Test func timerCallbackRunsOnLoopThread() throws {
            let loop = try EventLoop()
            let loopThread = Shared<pthread_t?>(nil)
            var timerThread: pthread_t?
            loop.handle.execute { _ in loopThread.with { $0 = pthread_self() } }
            loop.scheduleTimer(after: .milliseconds(5)) {
                timerThread = pthread_self()
                loop.stop()
            }
            #expect(try runLoop(loop))
            let inLoop = try #require(loopThread.current)
            let inTimer = try #require(timerThread)
            #expect(pthread_equal(inLoop, inTimer) != 0)
            #expect(loop.activeTimerCount == 0)
        }

        @Test func repeatingTimerCancelledInItsFirstCallbackNeverFiresAgain() throws {
            let loop = try EventLoop()
            var fired = 0
            var id: TimerID?
            id = loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(1), leeway: .zero) {
                fired += 1
                if let id { loop.cancelTimer(id) }
            }
            loop.scheduleTimer(after: .milliseconds(150)) { loop.stop() }
            #expect(loop.activeTimerCount == 2)
            #expect(try runLoop(loop))
            #expect(fired == 1)
            #expect(loop.activeTimerCount == 0)
        }

        @Test func oneShotTimerFiresOnceAndIsForgotten() throws {
            let loop = try EventLoop()
            var fired = 0
            loop.scheduleTimer(after: .milliseconds(2)) { fired += 1 }
            var markerRan = false
            loop.scheduleTimer(after: .milliseconds(100)) { markerRan = true; loop.stop() }
            #expect(try runLoop(loop))
            #expect(markerRan)
            #expect(fired == 1)
            #expect(loop.activeTimerCount == 0)
        }

        @Test func iterationThatWorksThreeMillisecondsIsCountedAsSlowByBothClocks() throws {
            let loop = try EventLoop()
            loop.measuresBusyTime = true
            // A handler that uses 3 ms of the loop thread's own CPU (counted by the thread's CPU
            // clock, so a descheduled test machine cannot make it shorter).
            @Sendable func spin() {
                var ts = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                let start = Int(ts.tv_sec) * 1_000_000_000 + ts.tv_nsec
                var now = start
                while now - start < 3_000_000 {
                    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                    now = Int(ts.tv_sec) * 1_000_000_000 + ts.tv_nsec
                }
            }
            loop.handle.execute { loop in
                spin()
                loop.stop()
            }
            #expect(try runLoop(loop))
            #expect(EventLoop.Metrics.slowIterationBounds == [1_000_000, 2_000_000, 5_000_000, 10_000_000])
            let metrics = loop.metrics
            #expect(metrics.iterations >= 1)
            #expect(metrics.busyNanoseconds >= 3_000_000)
            #expect(metrics.slowIterations[0] >= 1 && metrics.slowIterations[1] >= 1)
            #expect(metrics.slowIterationsOnCPU[0] >= 1 && metrics.slowIterationsOnCPU[1] >= 1)
            let longest = metrics.longestIteration
            #expect(longest.cpuNanoseconds >= 3_000_000)
            #expect(longest.nanoseconds >= longest.cpuNanoseconds)
            // The wake-up's task ran in the priority lane: that is where the time went.
            #expect(longest.priorityNanoseconds >= 3_000_000)
            #expect(longest.priorityEvents >= 1 && longest.bulkEvents == 0)
            #expect(metrics.costliestIteration.cpuNanoseconds >= 3_000_000)
        }

        @Test func iterationsAreNotTimedUnlessAsked() throws {
            let loop = try EventLoop()
            loop.handle.execute { loop in
                let start = Sys.monotonicNanoseconds()
                while Sys.monotonicNanoseconds() - start < 2_000_000 {}
                loop.stop()
            }
            #expect(try runLoop(loop))
            let metrics = loop.metrics
            #expect(metrics.iterations >= 1, "iterations are counted either way")
            var untimed = EventLoop.Metrics()
            untimed.iterations = metrics.iterations
            #expect(metrics == untimed)
        }

        @Test func twoHundredConnectionsLeakNoDescriptors() throws {
            let countBefore = openDescriptorCount()
            var created = Set<UInt64>()
            do {
                let loop = try EventLoop()
                let server = EchoOnceServer(loop: loop)
                let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { server.accept($0) }
                defer { listener.close() }
                let target = 200
                var clientsClosed = 0
                var clients: [Connection] = []
                for _ in 0..<target {
                    let delegate = RecordingDelegate()
                    delegate.onClose = { _ in
                        clientsClosed += 1
                        if clientsClosed == target && server.closed == target { loop.stop() }
                    }
                    // Unowned: the server owns this closure (a strong capture would be a cycle
                    // holding the loop, which LeakSanitizer reports).
                    server.onClose = { [unowned server] in
                        if clientsClosed == target && server.closed == target { loop.stop() }
                    }
                    let client = try Connection.connect(loop: loop, to: listener.localAddress, delegate: delegate)
                    client.write(Array("ping".utf8))
                    created.insert(inode(of: client.descriptor.rawValue))
                    clients.append(client)
                }
                #expect(try runLoop(loop, timeout: .seconds(30)))
                #expect(clientsClosed == target)
                #expect(server.closed == target)
                #expect(server.accepted == target)
                created.formUnion(server.inodes)
                #expect(clients.allSatisfy { $0.state == .closed })
            }
            #expect(created.count == 400)
            // Other suites in this process open and close descriptors concurrently, so the
            // verdict is per socket: none of the 400 this test made may still be open.
            let stillOpen = created.intersection(openSocketInodes())
            #expect(stillOpen.isEmpty,
                    "\(stillOpen.count) sockets leaked (/proc/self/fd: \(countBefore) before, \(openDescriptorCount()) after)")
        }

        @Test func idleSweepClosesIdleConnectionButNotBusyOne() throws {
            let loop = try EventLoop()
            let (idleLocal, idlePeer) = try makeSocketPair()
            let (busyLocal, busyPeer) = try makeSocketPair()
            defer { Sys.close(idlePeer); Sys.close(busyPeer) }
            let idle = RecordingDelegate()
            let busy = RecordingDelegate()
            let start = ContinuousClock.now
            var idleClosedAfter: Duration?
            idle.onClose = { _ in idleClosedAfter = .now - start }
            let idleConnection = try Connection(loop: loop, descriptor: idleLocal, peer: nil, delegate: idle)
            let busyConnection = try Connection(loop: loop, descriptor: busyLocal, peer: nil, delegate: busy)
            defer { busyConnection.abort(); idleConnection.abort() }

            let sweep = loop.startIdleSweep(timeout: .milliseconds(200))
            let sender = loop.scheduleTimer(after: .milliseconds(25), repeating: .milliseconds(25)) {
                _ = try? writeAll(busyPeer.rawValue, [0x2E], deadline: .now + .seconds(1))
            }
            // Long enough for several sweeps after the idle one expired.
            loop.scheduleTimer(after: .milliseconds(900)) { loop.stop() }
            #expect(try runLoop(loop))
            loop.cancelTimer(sweep)
            loop.cancelTimer(sender)

            #expect(idle.closeCount == 1)
            let closedAfter = try #require(idleClosedAfter)
            #expect(closedAfter >= .milliseconds(200))
            #expect(busy.closeCount == 0, "a connection that keeps sending was timed out")
            #expect(busy.received.count >= 10)
            #expect(loop.activeTimerCount == 0)
        }
    }
}

/// Accepts, reads one message, closes: the server half of the leak test. One delegate serves
/// every connection the listener's factory hands it.
final class EchoOnceServer: ConnectionDelegate {
    let loop: EventLoop
    var accepted = 0
    var closed = 0
    var inodes = Set<UInt64>()
    var onClose: () -> Void = {}
    init(loop: EventLoop) { self.loop = loop }

    func accept(_ peer: SocketAddress) -> ConnectionDelegate? {
        self.accepted += 1
        return self
    }

    func connectionDidOpen(_ connection: Connection) {
        self.inodes.insert(inode(of: connection.descriptor.rawValue))
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        connection.close()
    }

    func connectionDidClose(_ connection: Connection) {
        self.closed += 1
        self.onClose()
    }
}
