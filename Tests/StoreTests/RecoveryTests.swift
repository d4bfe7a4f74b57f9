// Opening a data directory: restart, torn tails, corruption, directory checks.

import Glibc
import Testing

@testable import Store

@Suite struct RecoveryTests {
    @Test func restartKeepsEveryAcknowledgedMutation() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always))
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(try store.removeValue(forKey: bytes("b")) == 4)
                #expect(try store.removeValue(forKey: bytes("missing")) == nil)
                #expect(store.lastSequence == 4)
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 0, "under always, written is not yet durable")
                let job = try #require(store.makeSyncJob())
                #expect(store.makeSyncJob() == nil, "one sync in flight at a time")
                #expect(store.completeSync(job, result: job.run()) == .ok)
                #expect(store.durableSequence == 4)
                #expect(store.makeSyncJob() == nil, "nothing left to sync")
            }  // dropped without close(): a crash
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c"]) == ["a": "1", "b": nil, "c": "3"])
            #expect(reopened.count == 2)
        }
    }

    @Test func removeAllIsLoggedAndReplayed() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory))
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                #expect(try store.removeAll() == 3)
                #expect(store.count == 0)
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                #expect(store.writeBuffered() == .ok)
                #expect(store.durableSequence == 4)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c"]) == ["a": nil, "b": nil, "c": "3"])
        }
    }

    @Test func theLogIsCreatedAndEmptyOnFirstOpenAndTheDirectoryIsMadeIfMissing() throws {
        try withTemporaryDirectory { directory in
            let nested = directory + "/a/b/data/"
            let store = try DurableStore(configuration: .test(nested))
            #expect(listing(directory + "/a/b/data") == ["database.wal"])
            #expect(readFile(directory + "/a/b/data/database.wal") == [])
            #expect(store.count == 0)
        }
    }

    @Test func anUnusableDirectoryFailsClearly() throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/plain-file", [])
            do throws(StoreError) {
                _ = try DurableStore(configuration: .test(directory + "/plain-file/data"))
                Issue.record("opened a directory below a regular file")
            } catch {
                #expect(error.description.contains(directory + "/plain-file"), "\(error)")
                #expect(error.errno == Errno(ENOTDIR) || error.errno == Errno(EEXIST), "\(error)")
            }
        }
    }

    @Test func aSecondStoreOnTheSameDirectoryIsRefused() throws {
        try withTemporaryDirectory { directory in
            let first = try DurableStore(configuration: .test(directory))
            #expect(throws: StoreError.self) { try DurableStore(configuration: .test(directory)) }
            _ = first
        }
    }

    /// Writes `count` records (one write each) and returns the log's size before the last one.
    func makeLog(in directory: String, count: Int) throws -> (lastRecordStart: Int, size: Int) {
        let store = try DurableStore(configuration: .test(directory))
        var lastStart = 0
        for index in 0..<count {
            lastStart = readFile(directory + "/database.wal")!.count
            _ = try store.set(bytes("value \(index)\r\n\0"), forKey: bytes("key\(index)"))
            #expect(store.writeBuffered() == .ok)
        }
        return (lastStart, readFile(directory + "/database.wal")!.count)
    }

    @Test func aLogCutAtEveryByteOfItsLastRecordRecoversEverythingBefore() throws {
        try withTemporaryDirectory { source in
            let (lastStart, size) = try self.makeLog(in: source, count: 4)
            let full = readFile(source + "/database.wal")!
            #expect(size > lastStart + 8)
            for cut in lastStart..<size {
                try withTemporaryDirectory { directory in
                    writeFile(directory + "/database.wal", Array(full[..<cut]))
                    let log = RecordingLog()
                    do {
                        let store = try DurableStore(configuration: .test(directory), logger: log.logger)
                        #expect(store.count == 3, "cut at \(cut)")
                        #expect(store.value(forKey: bytes("key2")) == bytes("value 2\r\n\0"))
                        #expect(store.value(forKey: bytes("key3")) == nil)
                        #expect(log.warnings.count == (cut > lastStart ? 1 : 0), "cut at \(cut): \(log.warnings)")
                        #expect(readFile(directory + "/database.wal")!.count == lastStart, "cut back to the last good record")
                        // Appending continues cleanly after the cut.
                        _ = try store.set(bytes("after"), forKey: bytes("key3"))
                        #expect(store.writeBuffered() == .ok)
                    }
                    let log2 = RecordingLog()
                    let reopened = try DurableStore(configuration: .test(directory), logger: log2.logger)
                    #expect(reopened.count == 4)
                    #expect(reopened.value(forKey: bytes("key3")) == bytes("after"))
                    #expect(log2.warnings.isEmpty)
                }
            }
        }
    }

    @Test func aZeroFilledTailIsTreatedAsTorn() throws {
        try withTemporaryDirectory { directory in
            let (_, size) = try self.makeLog(in: directory, count: 2)
            let full = readFile(directory + "/database.wal")!
            writeFile(directory + "/database.wal", full + [UInt8](repeating: 0, count: 4096))
            let log = RecordingLog()
            let store = try DurableStore(configuration: .test(directory), logger: log.logger)
            #expect(store.count == 2)
            #expect(log.warnings.count == 1)
            #expect(readFile(directory + "/database.wal")!.count == size)
        }
    }

    @Test func aCorruptMiddleRecordRefusesToStartNamingFileAndOffset() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            var starts: [Int] = []
            for index in 0..<5 {
                starts.append(readFile(directory + "/database.wal")!.count)
                _ = try store.set(bytes("v\(index)"), forKey: bytes("k\(index)"))
                #expect(store.writeBuffered() == .ok)
            }
            _ = consume store
            let original = readFile(directory + "/database.wal")!
            // Damage the payload, the checksum, or the length of record 2 (followed by good records).
            for damagedByte in [starts[2] + 12, starts[2] + 5, starts[2]] {
                var damaged = original
                damaged[damagedByte] ^= 0x01
                writeFile(directory + "/database.wal", damaged)
                do throws(StoreError) {
                    _ = try DurableStore(configuration: .test(directory))
                    Issue.record("opened a log with a corrupt middle record (byte \(damagedByte))")
                } catch {
                    #expect(error.description.contains(directory + "/database.wal"), "\(error)")
                    #expect(error.description.contains("offset \(starts[2])"), "\(error)")
                }
                #expect(readFile(directory + "/database.wal") == damaged, "a refused log is left untouched")
            }
        }
    }

    /// A rotated segment cut short (a power cut after its rename was durable and before its tail was):
    /// dropped with a warning and cut back when nothing later holds records; refused, naming the segment
    /// and offset, when the log holds later records (a gap in the history).
    @Test(arguments: [false, true])
    func aTornTailOfARotatedSegmentIsDroppedUnlessLaterRecordsFollow(laterRecords: Bool) throws {
        try withTemporaryDirectory { directory in
            let (lastStart, _) = try self.makeLog(in: directory, count: 3)
            let full = readFile(directory + "/database.wal")!
            writeFile(directory + "/database.wal.1", Array(full.dropLast()))
            writeFile(directory + "/database.wal", laterRecords ? Array(full.prefix(lastStart)) : [])
            let log = RecordingLog()
            do throws(StoreError) {
                let store = try DurableStore(configuration: .test(directory), logger: log.logger)
                #expect(!laterRecords, "opened a torn rotated segment followed by later records")
                #expect(store.count == 2)
                #expect(log.warnings.count == 1, "\(log.warnings)")
                #expect(readFile(directory + "/database.wal.1")!.count == lastStart)
            } catch {
                #expect(laterRecords, "\(error)")
                #expect(error.description.contains(directory + "/database.wal.1"), "\(error)")
                #expect(error.description.contains("offset \(lastStart)"), "\(error)")
            }
        }
    }
}
