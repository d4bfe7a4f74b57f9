// While a group-commit sync runs on the sync thread, an iteration that answered no one has the
// loop wait for the sync's result before polling the sockets again (Sources/Server/GroupCommit.swift,
// Reactor's EventLoop.waitForPostFirst), up to the pause a read may wait (InlineSyncGuard.swift);
// so does SyncGate's hold on the next sync, with its clock running. With that bound at 0 neither
// does.

import Foundation
import Reactor
@testable import Server
import Store
import Testing

@Suite struct SyncWaitTests {
    /// Rounds of one held write each, every sync slowed to 5 ms, within a bound of 50 ms (the
    /// first syncs run on the sync thread all the same: InlineSyncGuard.initialRequired): the
    /// iterations that start them answered no one, so the loop waits for their results.
    @Test func aSyncOnTheThreadHasTheLoopWaitForItsResult() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(5_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        commit.inlineGuard.fastNanoseconds = 50_000_000
        let rounds = InlineSyncGuard.initialRequired
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv)
        #expect(sent == rounds)
        #expect(commit.counts.inlineSyncs == 0)
        #expect(commit.counts.postWaits >= rounds / 2, "\(commit.counts.postWaits) waits for \(commit.counts.threadSyncs) syncs")
    }

    @Test func noWaitWhenReadsMayNotWait() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(5_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        commit.inlineGuard.fastNanoseconds = 0
        let rounds = 6
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv)
        #expect(sent == rounds)
        #expect(commit.counts.postWaits == 0 && commit.counts.holdWaits == 0)
    }

    /// Two connections answered by the first sync, one of which never writes again: SyncGate holds
    /// each next sync for it (Sources/Server/SyncGate.swift), and the loop waits through the hold
    /// instead of polling the sockets for it; the other's writes still go out, each after its hold.
    @Test func aHeldSyncHasTheLoopWaitThroughTheHold() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(2_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        commit.inlineGuard.fastNanoseconds = 50_000_000
        let silent = GroupCommitTests.Held()
        let rounds = 6
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv, beforeFirst: {
            try kv.data.set(Array("s".utf8), forKey: Array("silent".utf8))
            commit.hold(silent, until: kv.data.lastMutationSequence)
        })
        #expect(sent == rounds)
        // Every sync after the first is held for the silent connection.
        #expect(commit.counts.holdWaits >= rounds - 1, "\(commit.counts.holdWaits) waits through a hold for \(commit.counts.threadSyncs) syncs")
    }

    /// Syncs of 40 ms against the default bound: once one is known to take longer than the
    /// bound, none is waited for from its start. The first, of unknown length, may be; so may one
    /// the loop woke for in its last 500 µs for something else (a housekeeping timer), which on a
    /// busy machine, with the syncs stretched, happened once in a few runs. Waited for from their
    /// starts, every one of the syncs would be.
    @Test func noWaitFromTheStartOfASyncKnownToBeSlow() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(40_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        let rounds = 5
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv)
        #expect(sent == rounds)
        #expect(commit.counts.threadSyncs >= rounds && commit.counts.postWaits <= 2, "\(commit.counts.postWaits) waits")
    }
}
