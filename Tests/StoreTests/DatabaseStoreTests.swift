// Numbered databases in the store (Sources/Store/Databases.swift): database 0's log and database.txt
// are byte for byte what they were before databases existed; another database's writes are kind-12
// records and `#!db` sections that replay and reload into the right database; MOVE, SWAPDB and
// FLUSHALL are atomic groups; a failed sync rolls every database back.

import Glibc
import Testing
@testable import Store

@Suite struct DatabaseStoreTests {
    func value(_ store: DurableStore, _ database: Int, _ key: String) -> String? {
        store.withDatabase(database) { store.value(forKey: bytes(key)).map { String(decoding: $0, as: UTF8.self) } }
    }

    /// A server that only used database 0 writes today's records and today's database.txt.
    @Test func databaseZeroOnlyWritesTheSeedFormat() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            _ = try store.set(bytes("v1"), forKey: bytes("k"))
            _ = try store.withDatabase(0) { () throws(StoreError) in try store.set(bytes("v2"), forKey: bytes("j")) }
            _ = try store.set(bytes("x"), forKey: bytes("t"), deadline: 1_796_000_000_000, now: 1_700_000_000_000)
            _ = try store.removeValue(forKey: bytes("j"))
            _ = try store.removeAllDatabases()
            _ = try store.set(bytes("after"), forKey: bytes("k"))
            #expect(store.writeBuffered() == .ok)
            var expected: [UInt8] = []
            for record: Record in [
                .set(key: bytes("k"), value: bytes("v1")), .set(key: bytes("j"), value: bytes("v2")),
                .setWithDeadline(key: bytes("t"), value: bytes("x"), deadline: 1_796_000_000_000),
                .delete(key: bytes("j")), .clear, .set(key: bytes("k"), value: bytes("after")),
            ] {
                record.encode(into: &expected)
            }
            #expect(readFile(directory + "/database.wal") == expected)
            try store.close(compacting: .always)
            #expect(readFile(directory + "/database.txt") == bytes("# reactord snapshot, 1 keys\n#!segments\t1\nk\tafter\n"))
        }
    }

    /// Writes in database 3 are one kind-12 record each, replayed into database 3 after a crash,
    /// and written after a `#!db<TAB>3` line by a compaction, reloaded into database 3.
    @Test func anotherDatabaseSurvivesReplayAndCompaction() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory))
                _ = try store.set(bytes("zero"), forKey: bytes("k"))
                try store.withDatabase(3) { () throws(StoreError) in
                    _ = try store.set(bytes("three"), forKey: bytes("k"))
                    _ = try store.set(bytes("ttl"), forKey: bytes("t"), deadline: 4_000_000_000_000, now: 1_700_000_000_000)
                }
                _ = try store.withDatabase(3) { () throws(StoreError) in try store.removeValue(forKey: bytes("nope")) }
                #expect(store.writeBuffered() == .ok)
                var expected: [UInt8] = []
                Record.set(key: bytes("k"), value: bytes("zero")).encode(into: &expected)
                Record.database(index: 3, [
                    .set(key: bytes("k"), value: bytes("three")),
                    .setWithDeadline(key: bytes("t"), value: bytes("ttl"), deadline: 4_000_000_000_000),
                ]).encode(into: &expected)
                #expect(readFile(directory + "/database.wal") == expected, "one record for the block, none for a no-op")
                #expect(store.databaseSizes().map { [$0.index, $0.keys, $0.withDeadline] } == [[0, 1, 0], [3, 2, 1]])
            }
            do {
                let store = try reopenStore(configuration: .test(directory))
                #expect(self.value(store, 0, "k") == "zero")
                #expect(self.value(store, 3, "k") == "three")
                #expect(self.value(store, 3, "t") == "ttl")
                #expect(self.value(store, 0, "t") == nil)
                try store.close(compacting: .always)
            }
            let text = String(decoding: readFile(directory + "/database.txt")!, as: UTF8.self)
            #expect(text.hasPrefix("# reactord snapshot, 3 keys\n#!segments\t"))
            #expect(text.contains("\nk\tzero\n#!db\t3\n"), "\(text.debugDescription)")
            let store = try reopenStore(configuration: .test(directory))
            defer { try? store.close() }
            #expect(self.value(store, 0, "k") == "zero")
            #expect(self.value(store, 3, "k") == "three")
            #expect(store.withDatabase(3) { store.expiry(forKey: bytes("t"), now: 1_700_000_000_000) } == .at(milliseconds: 4_000_000_000_000))
        }
    }

    /// MOVE, COPY … DB, SWAPDB and FLUSHALL replay to the same state; MOVE is one group frame.
    @Test func moveSwapAndFlushAllReplay() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory))
                _ = try store.set(bytes("a"), forKey: bytes("m"), deadline: 4_000_000_000_000, now: 1_700_000_000_000)
                #expect(store.writeBuffered() == .ok)
                let moveStart = readFile(directory + "/database.wal")!.count
                #expect(try store.transfer(bytes("m"), from: 0, to: 2, copying: false, replacing: false, now: 1_700_000_000_000) != .missing)
                #expect(store.writeBuffered() == .ok)
                #expect(readFile(directory + "/database.wal")![moveStart + 8] == Record.kindGroup)
                #expect(try store.transfer(bytes("m"), from: 2, to: 5, copying: true, replacing: false, now: 1_700_000_000_000) != .missing)
                #expect(try store.transfer(bytes("m"), from: 2, to: 5, copying: true, replacing: false, now: 1_700_000_000_000) == .destinationExists)
                #expect(try store.transfer(bytes("nope"), from: 2, to: 5, copying: true, replacing: false, now: 1_700_000_000_000) == .missing)
                _ = try store.withDatabase(1) { () throws(StoreError) in try store.set(bytes("one"), forKey: bytes("o")) }
                _ = try store.swapDatabases(1, 2, now: 1_700_000_000_000)
                _ = try store.swapDatabases(0, 5, now: 1_700_000_000_000)
                _ = try store.withDatabase(7) { () throws(StoreError) in try store.set(bytes("gone"), forKey: bytes("g")) }
                _ = try store.removeAllDatabases()
                _ = try store.withDatabase(9) { () throws(StoreError) in try store.set(bytes("nine"), forKey: bytes("n")) }
                #expect(store.writeBuffered() == .ok)
            }
            // Before the FLUSHALL: 0 {m (from 5)}, 1 {m}, 2 {o}, 5 {}, 7 {g}. After it only database 9's n.
            let store = try reopenStore(configuration: .test(directory))
            defer { try? store.close() }
            #expect(store.databaseSizes().map { [$0.index, $0.keys] } == [[9, 1]])
            #expect(self.value(store, 9, "n") == "nine")
            let cut = readFile(directory + "/database.wal")!
            // The state just before the FLUSHALL, replayed from the log cut there.
            var offset = 0
            var frames: [Int] = []
            while offset < cut.count {
                frames.append(offset)
                offset += 8 + Int(UInt32(littleEndian: cut[offset..<(offset + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
            }
            try withTemporaryDirectory { other in
                writeFile(other + "/database.wal", Array(cut[..<frames[frames.count - 2]]))
                let replayed = try reopenStore(configuration: .test(other))
                defer { try? replayed.close() }
                #expect(replayed.databaseSizes().map { [$0.index, $0.keys] } == [[0, 1], [1, 1], [2, 1], [7, 1]])
                #expect(self.value(replayed, 0, "m") == "a")
                #expect(self.value(replayed, 1, "m") == "a")
                #expect(self.value(replayed, 2, "o") == "one")
                #expect(replayed.withDatabase(1) { replayed.expiry(forKey: bytes("m"), now: 1_700_000_000_000) }
                        == .at(milliseconds: 4_000_000_000_000))
            }
        }
    }

    /// A failed sync under `always` rolls back writes of several databases, each in its own.
    @Test func aFailedSyncRollsBackEveryDatabase() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
            defer { try? store.close() }
            _ = try store.set(bytes("0"), forKey: bytes("k"))
            _ = try store.withDatabase(4) { () throws(StoreError) in try store.set(bytes("4"), forKey: bytes("k")) }
            writeAndSync(store)
            _ = try store.set(bytes("0b"), forKey: bytes("k"))
            _ = try store.withDatabase(4) { () throws(StoreError) in try store.set(bytes("4b"), forKey: bytes("k")) }
            _ = try store.withDatabase(6) { () throws(StoreError) in try store.set(bytes("6"), forKey: bytes("k")) }
            _ = try store.withDatabase(4) { () throws(StoreError) in try store.removeAll() }
            _ = try store.transfer(bytes("k"), from: 0, to: 8, copying: false, replacing: false, now: 1_700_000_000_000)
            #expect(store.writeBuffered() == .ok)
            faults.fdatasyncError.withLock { $0 = EIO }
            let failing = try #require(store.makeSyncJob())
            #expect(store.completeSync(failing, result: failing.run()).failedSequences != nil)
            faults.fdatasyncError.withLock { $0 = nil }
            #expect(self.value(store, 0, "k") == "0")
            #expect(self.value(store, 4, "k") == "4")
            #expect(self.value(store, 6, "k") == nil)
            #expect(self.value(store, 8, "k") == nil)
            #expect(store.databaseSizes().map { [$0.index, $0.keys] } == [[0, 1], [4, 1]])
            store.checkInvariants()
        }
    }

    @Test func databaseRecordsRoundTripAndRejectBadIndexes() {
        let record = Record.database(index: 12, [.set(key: bytes("k"), value: bytes("v")), .clear,
                                                 .group([.delete(key: bytes("a")), .persist(key: bytes("b"))])])
        var encoded: [UInt8] = []
        record.encode(into: &encoded)
        encoded.withUnsafeBytes { raw in
            #expect(Record.decode(raw) == .record(record, size: encoded.count))
        }
        for bad in [Record.database(index: 0, [.clear]), .database(index: 2, [.database(index: 3, [.clear])])] {
            var bytes: [UInt8] = []
            bad.encode(into: &bytes)
            bytes.withUnsafeBytes { raw in
                if case .record = Record.decode(raw) { Issue.record("\(bad) decoded") }
            }
        }
    }
}
