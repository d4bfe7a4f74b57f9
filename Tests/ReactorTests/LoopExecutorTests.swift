// The loop as an executor (Sources/Reactor/LoopExecutor.swift): an actor isolated to the loop
// touches a connection on the loop thread, from a task and from a delegate callback; jobs
// enqueued from other threads run in the order each thread enqueued them; a loop started on its
// own thread stops and joins.

import CLinux
@testable import Reactor
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An actor whose executor is the loop's: it owns a connection and writes to it directly.
private actor LoopBoundWriter {
    let executor: LoopExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { self.executor.asUnownedSerialExecutor() }
    private var connection: Connection?
    private(set) var linesSeen: [String] = []

    init(executor: LoopExecutor) { self.executor = executor }

    func adopt(_ connection: Connection) { self.connection = connection }

    /// Writes `text` on the loop thread (the precondition is the point of the test).
    func send(_ text: String) {
        precondition(self.executor.isOnLoopThread, "actor job off the loop thread")
        self.connection?.write(Array(text.utf8))
        self.connection?.flushSoon()
    }

    func saw(_ line: String) { self.linesSeen.append(line) }
}

/// Forwards what it reads to the actor synchronously: the callback is on the loop thread, outside
/// any task, so `assumeIsolated` goes through the executor's `checkIsolated`.
private final class ForwardingDelegate: ConnectionDelegate {
    let writer: LoopBoundWriter
    init(writer: LoopBoundWriter) { self.writer = writer }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        self.writer.assumeIsolated { $0.saw(text) }
    }
}

extension ReactorTests {
    @Suite struct LoopExecutorTests {
        @Test func actorOnTheLoopExecutorWritesToAConnection() async throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let writer = LoopBoundWriter(executor: loop.executor)
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: ForwardingDelegate(writer: writer))
            let thread = try loop.start()
            // The connection moves into the actor on the loop thread.
            nonisolated(unsafe) let adopted = connection
            thread.handle.execute { _ in writer.assumeIsolated { $0.adopt(adopted) } }

            await writer.send("hello ")
            await writer.send("from the actor\n")
            let deadline = ContinuousClock.now + .seconds(10)
            var received: [UInt8] = []
            while received.count < 21, pollFor(peer.rawValue, events: Int16(POLLIN), until: deadline) {
                var buffer = [UInt8](repeating: 0, count: 256)
                let n = buffer.withUnsafeMutableBytes { Glibc.read(peer.rawValue, $0.baseAddress, $0.count) }
                if n > 0 { received.append(contentsOf: buffer[0..<n]) }
            }
            #expect(String(decoding: received, as: UTF8.self) == "hello from the actor\n")

            try writeAll(peer.rawValue, Array("ping".utf8), deadline: deadline)
            var seen: [String] = []
            for _ in 0..<1000 {
                seen = await writer.linesSeen
                if seen.joined() == "ping" { break }
                try await Task.sleep(for: .milliseconds(5))  // polling with a deadline (1000 tries)
            }
            #expect(seen.joined() == "ping")
            try thread.stopAndJoin()
            #expect(!thread.executor.isOnLoopThread)
        }

        @Test func jobsFromOtherThreadsRunInTheirOrder() async throws {
            let loop = try EventLoop()
            let thread = try loop.start()
            let executor = thread.executor.taskExecutor
            let threads = 4
            let perThread = 500
            let log = Shared<[[Int]]>(Array(repeating: [], count: threads))
            let offLoop = Shared(0)
            await withTaskGroup(of: Void.self) { group in
                for t in 0..<threads {
                    // Each producer enqueues from its own (global executor) thread, one after another.
                    group.addTask {
                        for i in 0..<perThread {
                            Task(executorPreference: executor) {
                                if !executor.serialExecutor.isOnLoopThread { offLoop.with { $0 += 1 } }
                                log.with { $0[t].append(i) }
                            }
                        }
                    }
                }
            }
            #expect(pollFor { log.current.allSatisfy { $0.count == perThread } })
            #expect(offLoop.current == 0)
            for t in 0..<threads { #expect(log.current[t] == Array(0..<perThread)) }
            try thread.stopAndJoin()
        }

        @Test func jobsEnqueuedOnTheLoopDoNotStarveIO() throws {
            // A task that keeps yielding on the loop: each iteration still polls descriptors, so a
            // timer (posted through the mailbox like any event) fires while it spins.
            let loop = try EventLoop()
            let executor = loop.executor.taskExecutor
            let spins = Shared(0)
            let stop = Shared(false)
            loop.scheduleTimer(after: .milliseconds(20)) {
                stop.with { $0 = true }
                loop.stop()
            }
            let task = Task(executorPreference: executor) {
                while !stop.current {
                    spins.with { $0 += 1 }
                    await Task.yield()
                }
            }
            #expect(try runLoop(loop, timeout: .seconds(10)))
            task.cancel()
            #expect(spins.current > 1)
        }

        @Test func startedLoopStopsAndJoins() throws {
            let loop = try EventLoop()
            let ran = Shared(false)
            let thread = try loop.start()
            thread.handle.execute { loop in
                ran.with { $0 = loop.executor.isOnLoopThread }
            }
            #expect(pollFor { ran.current })
            try thread.stopAndJoin()
            try thread.join()  // a second join returns at once
        }
    }
}
