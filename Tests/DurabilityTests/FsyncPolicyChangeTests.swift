// CONFIG SET appendfsync through group commit (Sources/Server/GroupCommit.swift keeps the policy):
// asked for while a sync is in flight, the change waits for that sync's result, then applies
// before the replies it made durable go out; once the server is stopping, it is refused.

import Reactor
@testable import Server
import Store
import Testing

@Suite struct FsyncPolicyChangeTests {
    @Test func aChangeAskedForWhileASyncRunsAppliesWhenItsResultComesBack() throws {
        let (dir, loop, kv) = try GroupCommitTests.makePersistence()
        let persistence = kv.persistence
        defer { dir.remove() }
        let store = persistence.store
        let commit = persistence.groupCommit
        let held = GroupCommitTests.Held()
        var policyAtSend: FsyncPolicy?
        held.onSend = { policyAtSend = store.configuration.fsync }
        try kv.data.set(Array("v".utf8), forKey: Array("k".utf8))
        commit.hold(held, until: kv.data.lastMutationSequence)
        var asked = false
        var answer: String? = "not asked"
        // Registered after group commit's hook: at the first iteration's end its sync is in flight.
        loop.addBeforeSleepHook {
            guard !asked, store.journal.isSyncing else { return }
            asked = true
            answer = persistence.setFsyncPolicy("everysec")
            #expect(store.configuration.fsync == .always, "the policy changed with a sync in flight")
        }
        try GroupCommitTests.run(loop, persistence) { policyAtSend != nil }
        #expect(asked)
        #expect(answer == nil)
        #expect(policyAtSend == .everysec, "the held reply went out before the change applied")
        #expect(held.refusals.isEmpty)
        // The run ended with the close: a change now is refused.
        #expect(persistence.setFsyncPolicy("no") == "the server is stopping")
        #expect(persistence.setFsyncPolicy("sometimes") == "argument(s) must be one of the following: always, everysec, no")
    }
}
