// EventLoop.waitForPostFirst (Sources/Reactor/EventLoop+PostWait.swift): the next wait first
// waits for a post alone, up to a deadline, leaving ready descriptors unread; a post ends it at
// once, and it never outlasts the loop's own wake-up deadline. And dispatchWroteOutput, which
// says whether the iteration's dispatch sent replies no cork held back.

import Foundation
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct PostWaitTests {
        /// Registers a handler that reads the byte the test writes to `descriptor` and hands
        /// `served` the time it was read.
        static func readOneByte(on loop: EventLoop, from descriptor: Descriptor,
                                served: @escaping (UInt64) -> Void) throws {
            let handler = ClosureHandler()
            handler.onReadable = {
                var byte: UInt8 = 0
                _ = Glibc.read(descriptor.rawValue, &byte, 1)
                served(Sys.monotonicNanoseconds())
            }
            try loop.register(handler, descriptor: descriptor, interest: .read)
        }

        /// A descriptor made readable before the wait is served only once the wait's deadline
        /// has passed: no post came, so the loop did not poll the descriptors meanwhile.
        @Test func aReadyDescriptorWaitsForTheDeadlineWhenNoPostComes() throws {
            let loop = try EventLoop()
            let (a0, a1) = try makeSocketPair()
            defer { Sys.close(a1) }
            var deadline: UInt64 = 0
            var servedAt: UInt64 = 0
            try Self.readOneByte(on: loop, from: a0) { [unowned loop] in
                servedAt = $0
                loop.stop()
            }
            var hookRuns = 0
            loop.addBeforeSleepHook { [unowned loop] in
                hookRuns += 1
                guard hookRuns == 1 else { return }
                deadline = Sys.monotonicNanoseconds() + 40_000_000
                loop.waitForPostFirst(noLaterThan: deadline + 5_000_000)
                loop.waitForPostFirst(noLaterThan: deadline)  // the earliest wins
                try? writeAll(a1.rawValue, [1], deadline: .now + .seconds(5))
            }
            loop.handle.execute { _ in }  // the first iteration
            #expect(try runLoop(loop))
            loop.deregisterAndClose(a0)
            #expect(servedAt >= deadline, "served \(Int64(deadline) - Int64(servedAt)) ns before the wait's deadline")
        }

        /// A post from another thread ends the wait at once: the posted task and the descriptor
        /// that became ready meanwhile are served long before the wait's deadline.
        @Test func aPostEndsTheWaitAtOnce() throws {
            let loop = try EventLoop()
            let (a0, a1) = try makeSocketPair()
            defer { Sys.close(a1) }
            let handle = loop.handle
            let taskRan = Shared(false)
            var servedAt: UInt64 = 0
            var waitStarted: UInt64 = 0
            try Self.readOneByte(on: loop, from: a0) { [unowned loop] in
                servedAt = $0
                if taskRan.current { loop.stop() }
            }
            var hookRuns = 0
            loop.addBeforeSleepHook { [unowned loop] in
                hookRuns += 1
                guard hookRuns == 1 else {
                    if taskRan.current && servedAt != 0 { loop.stop() }
                    return
                }
                waitStarted = Sys.monotonicNanoseconds()
                loop.waitForPostFirst(noLaterThan: waitStarted + 20_000_000_000)
                try? writeAll(a1.rawValue, [1], deadline: .now + .seconds(5))
                Thread { handle.execute { _ in taskRan.with { $0 = true } } }.start()
            }
            loop.handle.execute { _ in }  // the first iteration
            #expect(try runLoop(loop, timeout: .seconds(15)))
            loop.deregisterAndClose(a0)
            #expect(taskRan.current)
            #expect(servedAt != 0 && servedAt - waitStarted < 5_000_000_000, "the post did not end the wait")
        }

        /// The wait never outlasts the deadline wakeNoLaterThan set for the same wait.
        @Test func theWaitEndsAtTheLoopsOwnWakeDeadline() throws {
            let loop = try EventLoop()
            var hookRuns: [UInt64] = []
            var deadline: UInt64 = 0
            loop.addBeforeSleepHook { [unowned loop] in
                hookRuns.append(Sys.monotonicNanoseconds())
                if hookRuns.count == 1 {
                    deadline = hookRuns[0] + 30_000_000
                    loop.waitForPostFirst(noLaterThan: hookRuns[0] + 20_000_000_000)
                    loop.wakeNoLaterThan(deadline)
                } else {
                    loop.stop()
                }
            }
            loop.handle.execute { _ in }  // the first iteration
            #expect(try runLoop(loop, timeout: .seconds(15)))
            #expect(hookRuns.count == 2)
            if hookRuns.count == 2 {
                #expect(hookRuns[1] >= deadline, "woke before the deadline")
                #expect(hookRuns[1] - hookRuns[0] < 5_000_000_000, "the post wait outlasted the wake deadline")
            }
        }

        /// dispatchWroteOutput: true after an iteration whose dispatch sent a reply, false after
        /// one whose reply a cork held back.
        @Test func dispatchWroteOutputTellsSentRepliesFromHeldOnes() throws {
            let loop = try EventLoop()
            let (a0, a1) = try makeSocketPair()
            defer { Sys.close(a1) }
            final class Echo: ConnectionDelegate {
                var corks = false
                func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
                    if self.corks { connection.cork() }
                    connection.write(Array(bytes))
                }
            }
            let echo = Echo()
            let connection = try Connection(loop: loop, descriptor: a0, peer: nil, delegate: echo)
            defer { connection.abort() }
            var seen: [Bool] = []
            loop.addBeforeSleepHook { [unowned loop] in
                seen.append(loop.dispatchWroteOutput)
                switch seen.count {
                case 1:
                    try? writeAll(a1.rawValue, [1], deadline: .now + .seconds(5))  // answered
                case 2:
                    echo.corks = true
                    try? writeAll(a1.rawValue, [2], deadline: .now + .seconds(5))  // held back
                default:
                    loop.stop()
                }
            }
            loop.handle.execute { _ in }  // the first iteration
            #expect(try runLoop(loop))
            #expect(seen == [false, true, false], "\(seen)")
        }
    }
}
