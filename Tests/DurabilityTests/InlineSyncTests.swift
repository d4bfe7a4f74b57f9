// Group-commit syncs on the loop thread (Sources/Server/InlineSyncGuard.swift, GroupCommit.swift):
// while syncs are fast they run inline, with the replies they make durable sent in the same
// iteration and the records those sends lead to written at once; a slow one sends the next ones
// back to the sync thread, and a disk that syncs slowly never stalls the loop: reads are answered
// while a write's sync runs.

import Dispatch
import Foundation
import Glibc
import Logging
import Reactor
@testable import Server
import Store
import Testing

@Suite struct InlineSyncGuardTests {
    @Test func syncsRunInlineOnlyAfterARunOfFastOnesAndASlowInlineOneDoublesTheRunNeeded() {
        var guardValue = InlineSyncGuard()
        guardValue.fastNanoseconds = 1_000
        #expect(!guardValue.mayRunInline, "the first sync runs on the thread: nothing is known of the disk")
        for _ in 0..<(InlineSyncGuard.initialRequired - 1) { guardValue.syncFinished(nanoseconds: 500, inline: false) }
        #expect(!guardValue.mayRunInline)
        guardValue.syncFinished(nanoseconds: 1_000, inline: false)
        #expect(guardValue.mayRunInline)
        // A slow sync on the loop thread: back to the thread, and twice the run needed.
        guardValue.syncFinished(nanoseconds: 1_001, inline: true)
        #expect(!guardValue.mayRunInline)
        #expect(guardValue.required == 2 * InlineSyncGuard.initialRequired)
        for _ in 0..<(2 * InlineSyncGuard.initialRequired - 1) { guardValue.syncFinished(nanoseconds: 10, inline: false) }
        #expect(!guardValue.mayRunInline)
        guardValue.syncFinished(nanoseconds: 10, inline: false)
        #expect(guardValue.mayRunInline)
        // A slow sync on the thread stalled no one: back to the thread, the run needed unchanged.
        guardValue.syncFinished(nanoseconds: 5_000, inline: false)
        #expect(!guardValue.mayRunInline && guardValue.required == 2 * InlineSyncGuard.initialRequired)
    }

    @Test func aLongFastRunEarnsTheDoublingBackAndTheRunNeededIsBounded() {
        var guardValue = InlineSyncGuard()
        guardValue.fastNanoseconds = 1_000
        for _ in 0..<20 {
            for _ in 0..<InlineSyncGuard.maximumRequired { guardValue.syncFinished(nanoseconds: 1, inline: false) }
            guardValue.syncFinished(nanoseconds: 2_000, inline: true)
        }
        #expect(guardValue.required <= InlineSyncGuard.maximumRequired)
        let before = guardValue.required
        for _ in 0..<InlineSyncGuard.recoveryRun { guardValue.syncFinished(nanoseconds: 1, inline: true) }
        #expect(guardValue.required == max(before / 2, InlineSyncGuard.initialRequired))
    }

    @Test func aRunForgivesARareShortOverrunButNotTwoCloseTogetherNorALongOne() {
        var guardValue = InlineSyncGuard()
        guardValue.fastNanoseconds = 1_000
        for _ in 0..<InlineSyncGuard.toleratedEvery { guardValue.syncFinished(nanoseconds: 900, inline: false) }
        #expect(guardValue.mayRunInline)
        // Up to twice the bound, after a run of `toleratedEvery` fast ones: the run goes on.
        guardValue.syncFinished(nanoseconds: 2_000, inline: true)
        #expect(guardValue.mayRunInline && guardValue.required == InlineSyncGuard.initialRequired)
        // A second one before `toleratedEvery` more: slow, as any.
        for _ in 0..<(InlineSyncGuard.toleratedEvery - 2) { guardValue.syncFinished(nanoseconds: 900, inline: true) }
        guardValue.syncFinished(nanoseconds: 1_500, inline: true)
        #expect(!guardValue.mayRunInline && guardValue.required == 2 * InlineSyncGuard.initialRequired)
        // Far enough apart, each is forgiven.
        for _ in 0..<3 {
            for _ in 0..<InlineSyncGuard.toleratedEvery { guardValue.syncFinished(nanoseconds: 900, inline: false) }
            guardValue.syncFinished(nanoseconds: 1_500, inline: false)
        }
        #expect(guardValue.mayRunInline && guardValue.fastInARow == 3 * (InlineSyncGuard.toleratedEvery + 1))
        // Over twice the bound ends the run however rare.
        guardValue.syncFinished(nanoseconds: 2_001, inline: false)
        #expect(!guardValue.mayRunInline && guardValue.fastInARow == 0)
    }

    @Test func noSyncRunsInlineWhenTheBoundIsZero() {
        var guardValue = InlineSyncGuard()
        guardValue.fastNanoseconds = 0
        for _ in 0..<100 { guardValue.syncFinished(nanoseconds: 0, inline: false) }
        #expect(!guardValue.mayRunInline)
    }
}

@Suite struct InlineSyncTests {
    /// A store under `--fsync always` whose fdatasync records the thread it ran on, and sleeps
    /// `delay` microseconds first (0: it does not sync at all, the test is about where syncs run).
    static func makeParts(threads: Shared<[pthread_t]>, delay: Shared<UInt32>)
        throws -> (TemporaryDirectory, EventLoop, KVTestParts) {
        let dir = try TemporaryDirectory()
        var io = StoreIO.system
        io.fdatasync = { (_: CInt) throws(Errno) in
            threads.with { $0.append(pthread_self()) }
            let microseconds = delay.current
            if microseconds > 0 { usleep(microseconds) }
        }
        let loop = try EventLoop()
        let store = try DurableStore(configuration: .init(directory: dir.path, fsync: .always), io: io)
        threads.with { $0.removeAll() }  // only the syncs of the test's writes
        return (dir, loop, KVTestParts(store: store, loop: loop))
    }

    /// Each send writes the next key and holds again, `rounds` times: as a client at `-P 1` whose
    /// next request was already read. The loop stops when the last send comes, or at a 20 s
    /// watchdog: nothing else wakes it. `beforeFirst` runs before the first write (another
    /// connection's writes and holds, say).
    static func runRounds(_ rounds: Int, _ loop: EventLoop, _ kv: KVTestParts,
                          beforeRound: @escaping (Int) -> Void = { _ in },
                          beforeFirst: () throws -> Void = {}) throws -> Int {
        let commit = kv.persistence.groupCommit
        let held = GroupCommitTests.Held()
        var sent = 0
        held.onSend = {
            #expect(commit.isDurable(kv.data.lastMutationSequence), "a reply left before its write was durable")
            sent += 1
            guard sent < rounds else {
                kv.persistence.close { loop.stop() }
                return
            }
            beforeRound(sent)
            try? kv.data.set(Array("v\(sent)".utf8), forKey: Array("k\(sent)".utf8))
            commit.hold(held, until: kv.data.lastMutationSequence)
        }
        try beforeFirst()
        try kv.data.set(Array("v0".utf8), forKey: Array("k0".utf8))
        commit.hold(held, until: kv.data.lastMutationSequence)
        loop.handle.execute { _ in }  // one wake-up: the iteration's end writes and syncs the record
        let watchdog = loop.scheduleTimer(after: .seconds(20)) { kv.persistence.close { loop.stop() } }
        try loop.run()
        loop.cancelTimer(watchdog)
        return sent
    }

    @Test func fastSyncsRunOnTheLoopThreadAndWhatTheirSendsWroteIsWrittenWithoutAnotherWakeUp() throws {
        let threads = Shared<[pthread_t]>([])
        let (dir, loop, kv) = try Self.makeParts(threads: threads, delay: Shared(0))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        commit.inlineGuard.fastNanoseconds = 1_000_000_000  // every sync counts as fast
        let rounds = 40
        let started = ContinuousClock.now
        let sent = try Self.runRounds(rounds, loop, kv)
        #expect(sent == rounds, "\(sent) of \(rounds) sends before the watchdog: the loop slept with records buffered")
        #expect(ContinuousClock.now - started < .seconds(15))
        let loopThread = pthread_self()
        let ranOnLoop = threads.current.map { pthread_equal($0, loopThread) != 0 }
        // The first syncs ran on the sync thread (nothing known of the disk), every later one inline.
        let first = InlineSyncGuard.initialRequired
        #expect(ranOnLoop.count >= rounds)
        #expect(ranOnLoop.prefix(first).allSatisfy { !$0 }, "\(ranOnLoop)")
        #expect(ranOnLoop.dropFirst(first).prefix(rounds - first).allSatisfy { $0 }, "\(ranOnLoop)")
        #expect(commit.counts.inlineSyncs >= rounds - first && commit.counts.threadSyncs == first)
    }

    @Test func aSlowSyncOnTheLoopThreadSendsTheNextOnesBackToTheSyncThread() throws {
        let threads = Shared<[pthread_t]>([])
        let delay = Shared<UInt32>(0)
        let (dir, loop, kv) = try Self.makeParts(threads: threads, delay: delay)
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        // Fast: no sleep at all, which a busy machine stretches by far less than 50 ms.
        commit.inlineGuard.fastNanoseconds = 50_000_000
        let first = InlineSyncGuard.initialRequired
        let slowFrom = first + 4, slowUntil = first + 8
        let rounds = slowUntil + 2 * first + 4
        let sent = try Self.runRounds(rounds, loop, kv) { round in
            delay.with { $0 = (slowFrom..<slowUntil).contains(round) ? 100_000 : 0 }
        }
        #expect(sent == rounds)
        let loopThread = pthread_self()
        let ranOnLoop = threads.current.map { pthread_equal($0, loopThread) != 0 }
        try #require(ranOnLoop.count >= rounds, "\(ranOnLoop)")
        // Round r's write is synced by sync r (one write per sync: each waits for the last).
        #expect(ranOnLoop[first..<slowFrom].allSatisfy { $0 }, "fast: inline \(ranOnLoop)")
        #expect(ranOnLoop[slowFrom], "the first slow sync ran inline: nothing foretold it \(ranOnLoop)")
        #expect(ranOnLoop[(slowFrom + 1)..<slowUntil].allSatisfy { !$0 }, "slow: on the thread \(ranOnLoop)")
        // Fast again: twice the run (the slow one stalled the loop) on the thread, then inline.
        let back = slowUntil + 2 * first
        #expect(ranOnLoop[slowUntil..<back].allSatisfy { !$0 }, "\(ranOnLoop)")
        #expect(ranOnLoop[back..<rounds].allSatisfy { $0 }, "\(ranOnLoop)")
    }

    /// The real server with every sync slowed to 300 ms (Benchmarks/slowfsync.c): while a SET
    /// waits for its sync, another client's GETs are answered, round after round.
    @Test func readsAreAnsweredWhileAWritesSlowSyncRuns() throws {
        let dir = try TemporaryDirectory()
        let process = try ReactordProcess(
            arguments: ["--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                        "--data-dir", dir.path, "--fsync", "always", "--log-level", "error"],
            environment: ["LD_PRELOAD": try KVDurabilityTests.buildSlowFsync(into: dir), "SLOW_FSYNC_US": "300000"])
        defer { process.kill() }
        let port = try process.readyKVPort()
        let writer = try RESPTestClient(port: port)
        let reader = try RESPTestClient(port: port)
        #expect(try reader.call("SET", "r", "read me") == .simple("OK"))
        for round in 0..<6 {
            try writer.client.send(RESPValue.command([Array("SET".utf8), Array("w\(round)".utf8), Array("x".utf8)]))
            for _ in 0..<3 { #expect(try reader.call("GET", "r") == .bulk(Array("read me".utf8))) }
            #expect(writer.client.readSome() == nil, "round \(round): the SET was answered before the reads: its sync held them")
            #expect(try writer.read() == .simple("OK"))
        }
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 10) == 0)
    }
}
