// Typed values across a failed log write, a crash and a restart: what rollback puts back and what replay
// rebuilds for collections, RENAME and COPY (UndoLog.swift, DurableStore+Values.swift, Recovery.swift).

import Glibc
import Testing

@testable import Store

@Suite(.serialized) struct TypedDurabilityTests {
    init() { TestTypes.register() }

    /// The members of the test set at `key`, or nil when there is none.
    func members(_ store: DurableStore, _ key: String, now: Int64) -> Set<[UInt8]>? {
        guard case .found(let members) = bytes(key).withUnsafeBytes({
            store.withCollection(forKey: $0, type: .set, now: now) { Set(($0 as! SetValue).members) }
        }) else { return nil }
        return members
    }

    /// EXPIRE, PERSIST or RENAME of a collection, then a removal that empties it, both in one batch whose
    /// write fails: rollback must put back the collection as it was, not the emptied object.
    @Test(arguments: ["expire", "persist", "rename"])
    func rollbackRestoresCollectionEmptiedLaterInTheBatch(operation: String) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
            let now: Int64 = 1_000
            let deadline: Int64? = operation == "persist" ? 90_000 : nil
            _ = try store.setCollection(TestTypes.set([bytes("x")]), forKey: bytes("a"), deadline: deadline, now: now)
            #expect(store.writeBuffered() == .ok)
            faults.writeError.withLock { $0 = ENOSPC }
            var emptied = "a"
            switch operation {
            case "expire": _ = try store.expire(bytes("a"), at: 50_000, now: now)
            case "persist": _ = try store.persist(bytes("a"), now: now)
            default:
                _ = try store.rename(bytes("a"), to: bytes("b"), now: now)
                emptied = "b"
            }
            let removal = try store.apply(ElementEffect(.remove, bytes("x")),
                                          to: bytes(emptied), type: .set, now: now)
            #expect(removal == .changed(sequence: store.lastSequence, keyRemoved: true, replaced: false))
            let outcome = store.writeBuffered()
            faults.writeError.withLock { $0 = nil }
            #expect(outcome.failedSequences != nil)
            #expect(self.members(store, "a", now: now) == [bytes("x")], "\(operation)")
            #expect(store.expiry(forKey: bytes("a"), now: now) == (deadline.map { .at(milliseconds: $0) } ?? .never))
            #expect(self.members(store, "b", now: now) == nil)
            store.checkInvariants()
        }
    }

    /// RENAME over an existing destination, rolled back: both keys as they were, deadlines included.
    @Test func rollbackOfRenameRestoresSourceAndDestination() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
            _ = try store.setCollection(TestTypes.set([bytes("x")]), forKey: bytes("a"), deadline: 80_000, now: 1)
            _ = try store.set(bytes("old"), forKey: bytes("b"), deadline: 90_000, now: 1)
            #expect(store.writeBuffered() == .ok)
            faults.writeError.withLock { $0 = ENOSPC }
            _ = try store.rename(bytes("a"), to: bytes("b"), now: 1)
            _ = try store.set(bytes("new"), forKey: bytes("a"))
            #expect(store.writeBuffered().failedSequences != nil)
            faults.writeError.withLock { $0 = nil }
            #expect(self.members(store, "a", now: 1) == [bytes("x")])
            #expect(store.expiry(forKey: bytes("a"), now: 1) == .at(milliseconds: 80_000))
            #expect(store.value(forKey: bytes("b"), now: 1) == bytes("old"))
            #expect(store.expiry(forKey: bytes("b"), now: 1) == .at(milliseconds: 90_000))
            store.checkInvariants()
        }
    }

    /// A crash after a compaction's rename of database.txt and before its segments are deleted leaves
    /// segments the new snapshot already holds: RENAME and COPY records in them must not replay again.
    @Test(arguments: [CompactionStep.renamed, .syncedDirectory], ["rename", "copy"])
    func segmentsTheSnapshotHoldsAreNotReplayedAfterACrash(step: CompactionStep, operation: String) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                func sync() {
                    #expect(store.writeBuffered() == .ok)
                    if let job = store.makeSyncJob() { #expect(store.completeSync(job, result: job.run()) == .ok) }
                }
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                sync()
                // A first, complete compaction: `a = 1` is in database.txt only.
                let first = try #require(try startCompaction(store))
                store.finishCompaction(first, result: first.run())
                if operation == "rename" { _ = try store.rename(bytes("a"), to: bytes("b"), now: 1) }
                else { _ = try store.copy(bytes("a"), to: bytes("b"), now: 1) }
                _ = try store.set(bytes("x"), forKey: bytes("a"))
                sync()
                faults.crashAt.withLock { $0 = step }
                let crashing = try #require(try startCompaction(store))
                store.finishCompaction(crashing, result: crashing.run())
            }
            let text = String(decoding: readFile(directory + "/database.txt") ?? [], as: UTF8.self)
            #expect(text.contains("\n#!segments\t2\n"), "\(text.debugDescription)")
            #expect(access(directory + "/database.wal.2", F_OK) == 0)
            let reopened = try reopenStore(configuration: .test(directory, fsync: .always))
            #expect(reopened.value(forKey: bytes("a")) == bytes("x"))
            #expect(reopened.value(forKey: bytes("b")) == bytes("1"), "\(operation) after a crash at \(step)")
            // The next compaction drops the covered segment without replaying it, and numbers its own above.
            let job = try #require(try startCompaction(reopened))
            #expect(job.segments == [2, 3])
            reopened.finishCompaction(job, result: job.run())
            try reopened.close()
            let again = try DurableStore(configuration: .test(directory, fsync: .always))
            #expect(again.value(forKey: bytes("a")) == bytes("x"))
            #expect(again.value(forKey: bytes("b")) == bytes("1"))
        }
    }

    /// database.txt without a `#!segments` line (an older server's, or written by hand) covers no
    /// segment: every segment on disk replays, as before.
    @Test func aSnapshotWithoutTheMarkerReplaysEverySegment() throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/database.txt", bytes("# reactord snapshot, 1 keys\na\t1\n"))
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always))
                _ = try store.rename(bytes("a"), to: bytes("b"), now: 1)
                #expect(store.writeBuffered() == .ok)
                try store.close(compacting: .never)
            }
            #expect(rename(directory + "/database.wal", directory + "/database.wal.1") == 0)
            let store = try DurableStore(configuration: .test(directory, fsync: .always))
            #expect(store.value(forKey: bytes("a")) == nil)
            #expect(store.value(forKey: bytes("b")) == bytes("1"))
        }
    }

    /// RENAME onto a destination past its deadline, the source the keyspace's last entry: the expired
    /// destination's removal moves the source's entry, and the rename must still find it.
    @Test func renameOntoAnExpiredDestinationWhenTheSourceIsTheLastEntry() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
            _ = try store.set(bytes("old"), forKey: bytes("b"), deadline: 10, now: 1)
            _ = try store.set(bytes("1"), forKey: bytes("a"), deadline: nil, now: 1)
            #expect(try store.rename(bytes("a"), to: bytes("b"), now: 100) != nil)
            #expect(store.value(forKey: bytes("b"), now: 100) == bytes("1"))
            #expect(store.value(forKey: bytes("a"), now: 100) == nil)
            #expect(store.writeBuffered() == .ok)
            try store.close(compacting: .never)
            let reopened = try reopenStore(configuration: .test(directory, fsync: .everysec))
            #expect(reopened.value(forKey: bytes("b"), now: 100) == bytes("1"))
            reopened.checkInvariants()
        }
    }

    /// An add to an absent key that changes nothing (an insert past the end of a list that is not there)
    /// leaves no key and logs nothing.
    @Test func anAddToAnAbsentKeyThatChangesNothingIsNotLogged() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
            let before = store.lastSequence
            let outcome = try store.apply(ElementEffect(.add, position: 3, bytes("x")),
                                          to: bytes("l"), type: .list, now: 1)
            #expect(outcome == .unchanged)
            #expect(store.lastSequence == before)
            #expect(store.bufferedBytes == 0)
            #expect(store.type(ofKey: bytes("l"), now: 1) == nil)
            #expect(try store.apply(ElementEffect(.add, position: 0, bytes("y")),
                                    to: bytes("l"), type: .list, now: 1) == .changed(sequence: before + 1, keyRemoved: false, replaced: false))
            store.checkInvariants()
        }
    }

    /// A complete, checksum-valid record of a type this server has no implementation of, last in the log:
    /// start-up refuses it, naming the file, offset and type; it is never cut off as a torn tail.
    @Test(arguments: [true, false])
    func aRecordOfAnUnregisteredTypeRefusesStartNeverCutAsATornTail(inSegment: Bool) throws {
        try withTemporaryDirectory { directory in
            var log: [UInt8] = []
            Record.set(key: bytes("a"), value: bytes("1")).encode(into: &log)
            let offset = log.count
            Record.value(key: bytes("z"), type: .zset, deadline: nil).encode(into: &log)
            let path = directory + (inSegment ? "/database.wal.1" : "/database.wal")
            writeFile(path, log)
            // Sorted sets are unregistered until a server started in this process registers the built-in
            // types: with them registered, the record applies and the store opens.
            let registeredBefore = CollectionTypes.isRegistered(.zset)
            do {
                _ = try DurableStore(configuration: .test(directory))
                if !registeredBefore && !CollectionTypes.isRegistered(.zset) {
                    Issue.record("started over a record it cannot apply")
                }
            } catch {
                #expect(!registeredBefore, "refused a registered type: \(error)")
                let message = "\(error)"
                #expect(message.contains("unsupported log record in \(path)"), "\(message)")
                #expect(message.contains("at byte offset \(offset)") && message.contains("zset"), "\(message)")
            }
            #expect(readFile(path) == log, "the record was cut off")
        }
    }

    /// A whole value whose records pass the log's frame limit (1 GiB) could not be one atomic group:
    /// refused whole, nothing applied or logged.
    @Test func aWholeValueOverTheFrameLimitIsRefused() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            let before = store.lastSequence
            let huge = RepeatedMembers(member: [UInt8](repeating: 0x61, count: 64 << 20), count: 17)
            #expect(throws: StoreError.self) {
                _ = try store.setCollection(huge, forKey: bytes("big"), deadline: nil, now: 1)
            }
            #expect(store.lastSequence == before)
            #expect(store.bufferedBytes == 0)
            #expect(store.type(ofKey: bytes("big"), now: 1) == nil)
        }
    }
}

/// A set that reports `count` elements, all the same `member`: a value past a gigabyte of records
/// without a gigabyte of memory. Only its size and elements are read.
final class RepeatedMembers: CollectionValue {
    let member: [UInt8]
    let count: Int
    init(member: [UInt8], count: Int) {
        self.member = member
        self.count = count
    }

    var type: ValueType { .set }
    var encoding: String { "hashtable" }
    var usedBytes: Int { self.member.count * self.count }
    func copy() -> any CollectionValue { RepeatedMembers(member: self.member, count: self.count) }
    func forEachElement(_ body: (Element) -> Bool) {
        for _ in 0..<self.count {
            guard self.member.withUnsafeBytes({ body(Element($0)) }) else { return }
        }
    }
    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse) -> Bool {
        false
    }
}
