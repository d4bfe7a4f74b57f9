// Injected write and fdatasync failures: failed mutations are rolled back and reported, acknowledged ones
// survive, and writing resumes once the fault clears.

import Glibc
import Testing

@testable import Store

@Suite struct FaultTests {
    @Test(arguments: [0, 7])
    func aFailedWriteRollsBackAndReportsItsMutations(partialBytes: Int) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                #expect(try store.set(bytes("1"), forKey: bytes("a")) == 1)
                #expect(try store.set(bytes("2"), forKey: bytes("b")) == 2)
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 2)
                let sizeBefore = readFile(directory + "/database.wal")!.count

                faults.writeError.withLock { $0 = ENOSPC }
                faults.partialWriteBytes.withLock { $0 = partialBytes }
                #expect(try store.set(bytes("changed"), forKey: bytes("a")) == 3)
                #expect(try store.set(bytes("3"), forKey: bytes("c")) == 4)
                #expect(try store.removeValue(forKey: bytes("b")) == 5)
                #expect(try store.removeAll() == 6)
                #expect(try store.set(bytes("4"), forKey: bytes("d")) == 7)
                #expect(store.count == 1)
                let outcome = store.writeBuffered()
                #expect(outcome.failedSequences == 3...7)
                if case .failed(_, let error) = outcome {
                    #expect(error.errno == Errno(ENOSPC))
                    #expect(error.description.contains("database.wal"))
                    #expect(error.description.contains("No space left on device"))
                }
                // Rolled back in memory; reads keep working; the file is as before.
                #expect(contents(store, keys: ["a", "b", "c", "d"]) == ["a": "1", "b": "2", "c": nil, "d": nil])
                #expect(store.durableSequence == 2)
                #expect(readFile(directory + "/database.wal")!.count == sizeBefore)

                faults.writeError.withLock { $0 = nil }
                #expect(try store.set(bytes("5"), forKey: bytes("e")) == 8, "sequence numbers are not reused")
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 8)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c", "d", "e"]) == [
                "a": "1", "b": "2", "c": nil, "d": nil, "e": "5",
            ])
            #expect(reopened.count == 3)
        }
    }

    @Test func aFailedFdatasyncUnderAlwaysRollsBackEverythingUnsynced() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                writeAndSync(store)
                #expect(store.durableSequence == 1)

                _ = try store.set(bytes("changed"), forKey: bytes("a"))
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
                faults.fdatasyncError.withLock { $0 = EIO }
                let failing = try #require(store.makeSyncJob())
                #expect(failing.sequence == 3)
                let result = failing.run()
                // Written while the sync was in flight: also unsynced, also failed.
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(store.writeBuffered() == .ok)
                _ = try store.set(bytes("4"), forKey: bytes("d"))  // still only buffered
                let outcome = store.completeSync(failing, result: result)
                #expect(outcome.failedSequences == 2...5)
                #expect(contents(store, keys: ["a", "b", "c", "d"]) == ["a": "1", "b": nil, "c": nil, "d": nil])
                #expect(store.durableSequence == 1)

                faults.fdatasyncError.withLock { $0 = nil }
                _ = try store.set(bytes("5"), forKey: bytes("e"))
                writeAndSync(store)
                #expect(store.durableSequence == 6)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c", "d", "e"]) == [
                "a": "1", "b": nil, "c": nil, "d": nil, "e": "5",
            ])
        }
    }

    /// Under `always` a compaction waits for the log's sync with appends held; when that sync fails,
    /// every unsynced mutation (written or still buffered) is refused and the log cut back, and the
    /// rotation that follows carries none of them into the segment the snapshot reads.
    @Test func aFailedSyncWhileACompactionWaitsForItLeavesTheRefusedWritesOutOfTheSegment() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                defer { try? store.close() }
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                writeAndSync(store)
                _ = try store.set(bytes("2"), forKey: bytes("refused-b"))
                #expect(store.writeBuffered() == .ok)
                #expect(try store.beginCompaction() == nil)
                _ = try store.set(bytes("3"), forKey: bytes("refused-c"))
                #expect(store.writeBuffered() == .ok)
                faults.fdatasyncError.withLock { $0 = EIO }
                let failing = try #require(store.makeSyncJob())
                #expect(store.completeSync(failing, result: failing.run()).failedSequences == 2...3)
                faults.fdatasyncError.withLock { $0 = nil }
                #expect(contents(store, keys: ["a", "refused-b", "refused-c"]) == ["a": "1", "refused-b": nil, "refused-c": nil])
                let job = try #require(try startCompaction(store))
                #expect(listing(directory).contains("database.wal.1"))
                #expect(readFile(directory + "/database.wal") == [])
                let segment = try #require(readFile(directory + "/database.wal.1"))
                #expect(!String(decoding: segment, as: UTF8.self).contains("refused"))
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            defer { try? reopened.close() }
            #expect(contents(reopened, keys: ["a", "refused-b", "refused-c"]) == ["a": "1", "refused-b": nil, "refused-c": nil])
        }
    }

    /// CONFIG SET appendfsync at run time: switching to `always` first syncs what `everysec`
    /// already acknowledged, so a later failed sync can only roll back writes made under `always`;
    /// if that first sync fails the policy stays. Switching away makes what was written durable.
    @Test func changingTheFsyncPolicyNeverLetsAFailedSyncTakeAcknowledgedWrites() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                defer { try? store.close() }
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 1)  // acknowledged under everysec, not yet synced

                faults.fdatasyncError.withLock { $0 = EIO }
                #expect(throws: StoreError.self) { try store.changeFsyncPolicy(to: .always) }
                #expect(store.configuration.fsync == .everysec)
                faults.fdatasyncError.withLock { $0 = nil }
                try store.changeFsyncPolicy(to: .always)
                #expect(store.configuration.fsync == .always)

                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 1)  // under always: durable only once synced
                faults.fdatasyncError.withLock { $0 = EIO }
                let failing = try #require(store.makeSyncJob())
                #expect(store.completeSync(failing, result: failing.run()).failedSequences == 2...2)
                faults.fdatasyncError.withLock { $0 = nil }
                #expect(contents(store, keys: ["a", "b"]) == ["a": "1", "b": nil])

                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(store.writeBuffered() == .ok)
                try store.changeFsyncPolicy(to: .no)
                #expect(store.durableSequence == store.lastSequence)  // written: durable under `no`
                #expect(store.makeSyncJob().map { store.completeSync($0, result: $0.run()) } == .ok)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            defer { try? reopened.close() }
            #expect(contents(reopened, keys: ["a", "b", "c"]) == ["a": "1", "b": nil, "c": "3"])
        }
    }

    /// A large value's record is written as soon as it is set (after what was buffered, in sequence
    /// order). A failed write leaves it unapplied (the SET throws) and rolls back the buffered writes
    /// before it, reported by the next writeBuffered(); under `always` a failed fsync takes it back
    /// like any other unsynced write; and whatever succeeded is recovered after a restart.
    @Test func aLargeValueIsWrittenAtOnceAndRolledBackLikeAnyOtherWrite() throws {
        let large = [UInt8](repeating: 0x6C, count: 1 << 20)
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                defer { try? store.close() }
                _ = try store.set(bytes("1"), forKey: bytes("small"))
                let sequence = try store.set(large, forKey: bytes("big"))
                #expect(store.bufferedBytes == 0)  // both records went out with the large one
                let job = try #require(store.makeSyncJob())
                #expect(job.sequence == sequence)
                #expect(store.completeSync(job, result: job.run()) == .ok)

                _ = try store.set(bytes("2"), forKey: bytes("before"))
                faults.writeError.withLock { $0 = ENOSPC }
                #expect(throws: StoreError.self) { try store.set(large + [1], forKey: bytes("big")) }
                faults.writeError.withLock { $0 = nil }
                #expect(store.writeBuffered().failedSequences == 3...4)
                #expect(contents(store, keys: ["before"]) == ["before": nil])
                #expect(store.value(forKey: bytes("big")) == large)

                _ = try store.set(large + [2], forKey: bytes("big"))
                faults.fdatasyncError.withLock { $0 = EIO }
                let failing = try #require(store.makeSyncJob())
                #expect(store.completeSync(failing, result: failing.run()).failedSequences != nil)
                faults.fdatasyncError.withLock { $0 = nil }
                #expect(store.value(forKey: bytes("big")) == large)  // the unsynced replacement was taken back
            }
            let reopened = try reopenStore(configuration: .test(directory))
            defer { try? reopened.close() }
            #expect(reopened.value(forKey: bytes("big")) == large)
            #expect(contents(reopened, keys: ["small", "before"]) == ["small": "1", "before": nil])
        }
    }
}
