// While a group-commit sync runs on the sync thread, an iteration that answered no one has the
// loop wait for the sync's result before polling the sockets again (Sources/Server/GroupCommit.swift,
// Reactor's EventLoop.waitForPostFirst), up to the pause a read may wait (InlineSyncGuard.swift);
// with that bound at 0 it never does.

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
        #expect(commit.inlineSyncs == 0)
        #expect(commit.postWaits >= rounds / 2, "\(commit.postWaits) waits for \(commit.threadSyncs) syncs")
    }

    @Test func noWaitWhenReadsMayNotWait() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(5_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        commit.inlineGuard.fastNanoseconds = 0
        let rounds = 6
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv)
        #expect(sent == rounds)
        #expect(commit.postWaits == 0)
    }

    /// Syncs of 20 ms against the default bound: once one is known to take longer than the
    /// bound, none is waited for from its start (the first, of unknown length, may be).
    @Test func noWaitFromTheStartOfASyncKnownToBeSlow() throws {
        let (dir, loop, kv) = try InlineSyncTests.makeParts(threads: Shared([]), delay: Shared(20_000))
        defer { dir.remove() }
        let commit = kv.persistence.groupCommit
        let rounds = 5
        let sent = try InlineSyncTests.runRounds(rounds, loop, kv)
        #expect(sent == rounds)
        #expect(commit.threadSyncs >= rounds && commit.postWaits <= 1, "\(commit.postWaits) waits")
    }
}
