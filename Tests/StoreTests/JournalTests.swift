// The journal's explicit state and sequence numbers, as the server reads them: every transition a sync, a
// failed write, a failed cut-back and a compaction waiting for a sync take it through, and what recovery
// finds in the file afterwards.

import Glibc
import Synchronization
import Testing

@testable import Store

@Suite struct JournalTests {
    /// An errno ftruncate fails with while it is set (a cut-back that fails).
    final class TruncateFault: Sendable {
        private let error = Mutex<CInt?>(nil)
        func withLock<R>(_ body: (inout CInt?) -> R) -> R { self.error.withLock { body(&$0) } }
    }

    /// The faults' I/O with ftruncate failing while the returned fault is set.
    static func failingTruncate(_ faults: Faults) -> (StoreIO, TruncateFault) {
        let truncateError = TruncateFault()
        var io = faults.io
        let system = StoreIO.system
        io.ftruncate = { (fd: CInt, length: Int) throws(Errno) in
            if let code = truncateError.withLock({ $0 }) { throw Errno(code) }
            try system.ftruncate(fd, length)
        }
        return (io, truncateError)
    }

    @Test func aSyncTakesTheJournalFromIdleToSyncingAndBackAndAdvancesItsSequences() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory, fsync: .always))
            #expect(store.journal.state == .idle)
            _ = try store.set(bytes("1"), forKey: bytes("a"))
            _ = try store.set(bytes("2"), forKey: bytes("b"))
            #expect(store.journal.sequences == Journal.Sequences(appended: 2, written: 0, synced: 0, durable: 0))
            #expect(store.writeBuffered() == .ok)
            #expect(store.journal.sequences == Journal.Sequences(appended: 2, written: 2, synced: 0, durable: 0))
            let job = try #require(store.makeSyncJob())
            #expect(store.journal.state == .syncing(through: 2))
            #expect(store.makeSyncJob() == nil, "one sync at a time")
            #expect(store.completeSync(job, result: job.run()) == .ok)
            #expect(store.journal.state == .idle)
            #expect(store.journal.sequences == Journal.Sequences(appended: 2, written: 2, synced: 2, durable: 2))
            #expect(store.durableSequence == 2 && store.lastSequence == 2)
        }
    }

    @Test func underEverysecAWriteIsDurableAndTheSyncOnlyMarksItSynced() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
            _ = try store.set(bytes("1"), forKey: bytes("a"))
            #expect(store.writeBuffered() == .ok)
            #expect(store.journal.sequences == Journal.Sequences(appended: 1, written: 1, synced: 0, durable: 1))
            let job = try #require(store.makeSyncJob())
            #expect(store.completeSync(job, result: job.run()) == .ok)
            #expect(store.journal.sequences.synced == 1)
        }
    }

    @Test func aFailedCutBackMustBeRedoneBeforeTheNextAppendAndHoldsSyncsOff() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let (io, truncateError) = Self.failingTruncate(faults)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: io)
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                writeAndSync(store)
                let synced = readFile(directory + "/database.wal")!.count

                faults.writeError.withLock { $0 = EIO }
                faults.partialWriteBytes.withLock { $0 = 5 }
                truncateError.withLock { $0 = EIO }
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(store.writeBuffered().failedSequences == 2...2)
                #expect(store.journal.state == .mustTruncate(at: synced, syncing: nil))
                #expect(readFile(directory + "/database.wal")!.count == synced + 5, "the partial frame is still there")
                #expect(store.makeSyncJob() == nil, "a sync would make the partial frame durable")

                faults.writeError.withLock { $0 = nil }
                truncateError.withLock { $0 = nil }
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(store.writeBuffered() == .ok)
                #expect(store.journal.state == .idle)
                writeAndSync(store)
                #expect(store.durableSequence == 3)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c"]) == ["a": "1", "b": nil, "c": "3"])
        }
    }

    @Test func aCloseRedoesAFailedCutBackBeforeItsSync() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let (io, truncateError) = Self.failingTruncate(faults)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: io)
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                writeAndSync(store)
                let synced = readFile(directory + "/database.wal")!.count
                // A whole record written, then its sync fails and so does the cut-back: the client is
                // answered with an error while the complete frame is still in the file.
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
                let job = try #require(store.makeSyncJob())
                faults.fdatasyncError.withLock { $0 = EIO }
                truncateError.withLock { $0 = EIO }
                #expect(store.completeSync(job, result: job.run()).failedSequences == 2...2)
                #expect(store.journal.state == .mustTruncate(at: synced, syncing: nil))
                #expect(readFile(directory + "/database.wal")!.count > synced, "the refused record is still there")

                faults.fdatasyncError.withLock { $0 = nil }
                truncateError.withLock { $0 = nil }
                try store.close(compacting: .never)
                #expect(readFile(directory + "/database.wal")!.count == synced)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b"]) == ["a": "1", "b": nil])
        }
    }

    @Test func aFailedSyncCutsBackPastAnEarlierFailedCutBack() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let (io, truncateError) = Self.failingTruncate(faults)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: io)
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                writeAndSync(store)
                let synced = readFile(directory + "/database.wal")!.count
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
                let job = try #require(store.makeSyncJob())

                // While the sync runs, a write fails and so does its cut-back.
                faults.writeError.withLock { $0 = EIO }
                truncateError.withLock { $0 = EIO }
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(store.writeBuffered().failedSequences == 3...3)
                guard case .mustTruncate(let offset, syncing: 2) = store.journal.state else {
                    Issue.record("expected mustTruncate with the sync in flight, got \(store.journal.state)")
                    return
                }
                #expect(offset > synced)

                // The sync fails too; its own cut-back (to the last synced size) succeeds and supersedes,
                // but is not durable while fdatasync fails: it is made so before the next append.
                faults.writeError.withLock { $0 = nil }
                truncateError.withLock { $0 = nil }
                faults.fdatasyncError.withLock { $0 = EIO }
                #expect(store.completeSync(job, result: job.run()).failedSequences == 2...3)
                #expect(store.journal.state == .mustTruncate(at: synced, syncing: nil))
                #expect(readFile(directory + "/database.wal")!.count == synced)

                faults.fdatasyncError.withLock { $0 = nil }
                _ = try store.set(bytes("4"), forKey: bytes("d"))
                writeAndSync(store)
                #expect(readFile(directory + "/database.wal")!.count > synced)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c", "d"]) == ["a": "1", "b": nil, "c": nil, "d": "4"])
        }
    }

    @Test func aCompactionUnderAlwaysHoldsAppendsUntilTheWrittenRecordsAreSynced() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory, fsync: .always))
            _ = try store.set(bytes("1"), forKey: bytes("a"))
            #expect(store.writeBuffered() == .ok)
            #expect(try store.beginCompaction() == nil)
            #expect(store.journal.state == .holdingForRotation(syncing: nil))

            _ = try store.set(bytes("2"), forKey: bytes("b"))
            #expect(store.writeBuffered() == .ok)
            #expect(store.journal.sequences.written == 1, "held in the buffer")
            let job = try #require(store.makeSyncJob())
            #expect(store.journal.state == .holdingForRotation(syncing: 1))
            #expect(store.completeSync(job, result: job.run()) == .ok)
            #expect(store.journal.state == .holdingForRotation(syncing: nil))

            let compaction = try #require(try store.beginCompaction())
            #expect(store.journal.state == .idle)
            #expect(store.isCompacting)
            store.finishCompaction(compaction, result: compaction.run())
            #expect(!store.isCompacting)
            writeAndSync(store)
            #expect(store.durableSequence == 2)
            try store.close()
            #expect(store.journal.state == .closed)
        }
    }
}
