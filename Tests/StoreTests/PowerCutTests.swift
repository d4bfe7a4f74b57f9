// What a power cut leaves, case by case (the crash-state explorer, CrashExplorerTests.swift, covers them
// wholesale): a zero-filled sector in the log's unsynced tail, and a failed fsync under `everysec`.

import Glibc
import Testing

@testable import Store

@Suite(.serialized) struct PowerCutTests {
    /// A page of the unsynced tail that never reached the disk reads as zeros, while a later one did:
    /// the bad frame covering the zeros and everything after it are dropped with a warning, not refused.
    @Test func aZeroSectorInTheTailIsDroppedWithWhatFollows() throws {
        try withTemporaryDirectory { directory in
            let tornStart: Int
            do {
                let store = try DurableStore(configuration: .test(directory))
                _ = try store.set(bytes("kept"), forKey: bytes("a"))
                #expect(store.writeBuffered() == .ok)
                tornStart = fileSize(directory + "/database.wal")!
                _ = try store.set([UInt8](repeating: 0x5a, count: 3000), forKey: bytes("large"))
                _ = try store.set(bytes("after"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
            }
            var log = readFile(directory + "/database.wal")!
            let sector = (tornStart / 512 + 2) * 512
            for offset in sector..<(sector + 512) { log[offset] = 0 }
            writeFile(directory + "/database.wal", log)
            let warnings = RecordingLog()
            let store = try DurableStore(configuration: .test(directory), logger: warnings.logger)
            #expect(contents(store, keys: ["a", "large", "b"]) == ["a": "kept", "large": nil, "b": nil])
            #expect(warnings.warnings.count == 1, "\(warnings.warnings)")
            #expect(fileSize(directory + "/database.wal") == tornStart)
        }
    }

    /// The same frame damaged by anything but a zero-filled sector, with records after it: synced data
    /// was damaged, and start-up refuses, naming the file and the offset.
    @Test func aDamagedFrameWithoutAZeroSectorIsRefused() throws {
        try withTemporaryDirectory { directory in
            let damagedStart: Int
            do {
                let store = try DurableStore(configuration: .test(directory))
                _ = try store.set(bytes("kept"), forKey: bytes("a"))
                #expect(store.writeBuffered() == .ok)
                damagedStart = fileSize(directory + "/database.wal")!
                _ = try store.set([UInt8](repeating: 0x5a, count: 3000), forKey: bytes("large"))
                _ = try store.set(bytes("after"), forKey: bytes("b"))
                #expect(store.writeBuffered() == .ok)
            }
            var log = readFile(directory + "/database.wal")!
            log[damagedStart + 1000] ^= 0x01
            writeFile(directory + "/database.wal", log)
            do throws(StoreError) {
                _ = try DurableStore(configuration: .test(directory))
                Issue.record("opened a log whose synced data was damaged")
            } catch {
                #expect(error.description.contains("database.wal: at byte offset \(damagedStart): checksum mismatch"),
                        "\(error)")
            }
        }
    }

    /// Under `everysec` a failed fdatasync may have cost records already acknowledged, and no later sync
    /// can vouch for them: writes are refused from then on (the health check reports it), and the clean
    /// stop writes the state from memory, so a restart has every acknowledged write.
    @Test(arguments: [DurableStore.ClosingCompaction.never, .withinBudget])
    func aFailedSyncUnderEverysecRefusesWritesAndTheStopRewritesFromMemory(closing: DurableStore.ClosingCompaction) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                #expect(store.writeBuffered() == .ok)
                faults.fdatasyncError.withLock { $0 = EIO }
                let job = try #require(store.makeSyncJob())
                #expect(store.completeSync(job, result: job.run()) == .ok, "acknowledged already: nothing to answer")
                faults.fdatasyncError.withLock { $0 = nil }
                #expect(store.logWriteFailure != nil)
                #expect(throws: StoreError.self) { try store.set(bytes("2"), forKey: bytes("b")) }
                #expect(store.makeSyncJob() == nil, "no later sync vouches for the lost records")
                #expect(store.journal.sequences.synced == 0)
                try store.close(compacting: closing)
                #expect(fileExists(directory + "/database.txt"), "the state, written from memory")
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b"]) == ["a": "1", "b": nil])
        }
    }
}
