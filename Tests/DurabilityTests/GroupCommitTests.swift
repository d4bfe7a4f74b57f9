// Group commit without sockets (Sources/Server/GroupCommit.swift): held connections are sent in
// the order they were first held, each hold settled before any connection is called, so one that
// closes or writes again meanwhile only changes data (a closed connection ignores its send); a
// connection waiting for SAVE is sent when the compaction ends, not when its writes are durable.

import Logging
import Reactor
@testable import Server
import Store
import Testing

@Suite struct GroupCommitTests {
    final class Held: HeldConnection {
        var heldUntil: UInt64 = 0
        var awaitingSave = false
        /// As a KVConnection after its close: group commit has dropped it, and a send finds nothing to do.
        var closed = false
        var onSend: () -> Void = {}
        var refusals: [String] = []
        func sendHeld() {
            guard !self.closed else { return }
            self.onSend()
        }
        func refuseHeld(reason: String) { self.refusals.append(reason) }
    }

    /// A loop and the kv parts over a fresh store in a temporary directory (`--fsync always`).
    static func makePersistence() throws -> (TemporaryDirectory, EventLoop, KVTestParts) {
        let dir = try TemporaryDirectory()
        let loop = try EventLoop()
        let store = try DurableStore(configuration: .init(directory: dir.path, fsync: .always))
        return (dir, loop, KVTestParts(store: store, loop: loop))
    }

    /// Runs the loop until `done` says so (checked every 10 ms, at most 10 s), then closes.
    static func run(_ loop: EventLoop, _ persistence: Persistence, until done: @escaping () -> Bool) throws {
        loop.handle.execute { _ in }  // one wake-up: the iteration's end writes and syncs the records
        var stopping = false
        let check = loop.scheduleTimer(after: .milliseconds(10), repeating: .milliseconds(10)) {
            guard done() && !stopping else { return }
            stopping = true
            persistence.close { loop.stop() }
        }
        let watchdog = loop.scheduleTimer(after: .seconds(10)) { persistence.close { loop.stop() } }
        try loop.run()
        loop.cancelTimer(check)
        loop.cancelTimer(watchdog)
    }

    @Test func heldConnectionsAreSentOldestFirstAndOneClosedOrHeldAgainMeanwhileOnlyChangesTheList() throws {
        let (dir, loop, kv) = try Self.makePersistence()
        let persistence = kv.persistence
        defer { dir.remove() }
        let commit = persistence.groupCommit
        var events: [String] = []
        let (first, second, third) = (Held(), Held(), Held())
        try kv.data.set(Array("v".utf8), forKey: Array("k".utf8))
        let sequence = kv.data.lastMutationSequence
        #expect(!commit.isDurable(sequence))
        for connection in [first, second, third] { commit.hold(connection, until: sequence) }
        commit.hold(first, until: sequence)  // held twice: still one entry, still first
        #expect(first.heldUntil == sequence)
        first.onSend = {
            events.append("first")
            #expect(first.heldUntil == 0 && second.heldUntil == 0, "holds are settled before any call")
            // What first's next requests may do: close second (CLIENT KILL), write again.
            second.closed = true
            commit.drop(second)
            try? kv.data.set(Array("w".utf8), forKey: Array("k".utf8))
            commit.hold(first, until: kv.data.lastMutationSequence)
            first.onSend = { events.append("first again") }
        }
        second.onSend = { events.append("second") }
        third.onSend = { events.append("third") }
        try Self.run(loop, persistence) { events.count >= 3 }
        #expect(events == ["first", "third", "first again"])
        #expect(first.refusals.isEmpty && second.refusals.isEmpty && third.refusals.isEmpty)
    }

    @Test func aDroppedConnectionIsNeverSent() throws {
        let (dir, loop, kv) = try Self.makePersistence()
        let persistence = kv.persistence
        defer { dir.remove() }
        let commit = persistence.groupCommit
        let (gone, staying) = (Held(), Held())
        var told: [String] = []
        gone.onSend = { told.append("gone") }
        staying.onSend = { told.append("staying") }
        try kv.data.set(Array("v".utf8), forKey: Array("k".utf8))
        commit.hold(gone, until: kv.data.lastMutationSequence)
        commit.hold(staying, until: kv.data.lastMutationSequence)
        commit.drop(gone)
        #expect(gone.heldUntil == 0)
        try Self.run(loop, persistence) { !told.isEmpty }
        #expect(told == ["staying"])
    }

    @Test func aSaverHeldForALaterWriteIsSentOnlyOnceThatWriteIsDurable() throws {
        let (dir, loop, kv) = try Self.makePersistence()
        let persistence = kv.persistence
        defer { dir.remove() }
        let commit = persistence.groupCommit
        let saver = Held()
        var sends = 0
        saver.onSend = {
            sends += 1
            #expect(commit.isDurable(kv.data.lastMutationSequence), "a reply left before its write was durable")
        }
        commit.holdUntilSaved(saver)
        // The saver's next request, read while the compaction ran: a write no sync has covered yet.
        try kv.data.set(Array("v".utf8), forKey: Array("k".utf8))
        let sequence = kv.data.lastMutationSequence
        commit.hold(saver, until: sequence)
        #expect(!commit.isDurable(sequence))
        commit.saveFinished(failure: nil)
        #expect(sends == 0, "SAVE's end released a write that is not durable")
        #expect(saver.heldUntil == sequence && !saver.awaitingSave)
        try Self.run(loop, persistence) { sends > 0 }
        #expect(sends == 1)
        #expect(saver.heldUntil == 0)
    }

    @Test func aConnectionWaitingForSaveIsSentWhenTheCompactionEndsNotWhenItsWriteIsDurable() throws {
        let (dir, loop, kv) = try Self.makePersistence()
        let persistence = kv.persistence
        defer { dir.remove() }
        let commit = persistence.groupCommit
        let saver = Held()
        var sends = 0
        saver.onSend = {
            sends += 1
            #expect(!saver.awaitingSave)
        }
        try kv.data.set(Array("v".utf8), forKey: Array("k".utf8))
        let sequence = kv.data.lastMutationSequence
        commit.hold(saver, until: sequence)
        #expect(kv.compaction.request(replyWhenDone: true) == .started)
        #expect(kv.compaction.takeSaveRequest())
        commit.holdUntilSaved(saver)
        try Self.run(loop, persistence) { sends > 0 }
        #expect(sends == 1)
        #expect(saver.refusals.isEmpty)
        #expect(saver.heldUntil == 0 && !saver.awaitingSave)
    }
}
