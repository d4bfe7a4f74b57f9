// SWAPDB in the store (Sources/Store/Databases.swift): the two databases' tables trade places and the
// log takes one kind-14 record whatever they hold; replay, compaction (values left on disk included:
// they follow their keys to the other database) and a failed sync's rollback all agree with a model.

import Glibc
import Testing
@testable import Store

@Suite struct DatabaseSwapTests {
    static let now: Int64 = 1_700_000_000_000

    func contents(_ store: DurableStore, _ database: Int) -> [String: String] {
        store.withDatabase(database) {
            var result: [String: String] = [:]
            let keyspace = store.keyspace
            for index in 0..<keyspace.count {
                result[String(decoding: keyspace.key(at: index), as: UTF8.self)] = String(decoding: keyspace.value(at: index), as: UTF8.self)
            }
            return result
        }
    }

    /// One small record for a swap of databases of any size; replayed, and compacted, to the same state.
    @Test func aSwapIsOneSmallRecordReplayedAndCompacted() throws {
        try withTemporaryDirectory { directory in
            var model: [Int: [String: String]] = [0: [:], 1: [:], 2: [:]]
            do {
                let store = try DurableStore(configuration: .test(directory))
                for i in 0..<500 {
                    _ = try store.withDatabase(1) { () throws(StoreError) in try store.set(bytes("v\(i)"), forKey: bytes("one\(i)")) }
                    model[1]!["one\(i)"] = "v\(i)"
                }
                _ = try store.set(bytes("zero"), forKey: bytes("z"))
                model[0]!["z"] = "zero"
                _ = try store.set(bytes("ttl"), forKey: bytes("t"), deadline: 4_000_000_000_000, now: Self.now)
                model[0]!["t"] = "ttl"
                #expect(store.writeBuffered() == .ok)
                let before = readFile(directory + "/database.wal")!.count
                _ = try store.swapDatabases(1, 0, now: Self.now)
                (model[0], model[1]) = (model[1], model[0])
                #expect(store.writeBuffered() == .ok)
                var expected: [UInt8] = []
                Record.swapDatabases(first: 1, second: 0).encode(into: &expected)
                #expect(Array(readFile(directory + "/database.wal")![before...]) == expected)
                #expect(expected.count == 21)
                _ = try store.swapDatabases(2, 1, now: Self.now)
                (model[1], model[2]) = (model[2], model[1])
                _ = try store.set(bytes("after"), forKey: bytes("z"))  // database 0 is what database 1 held
                model[0]!["z"] = "after"
                _ = try store.withDatabase(2) { () throws(StoreError) in try store.removeValue(forKey: bytes("z")) }
                model[2]!["z"] = nil
                #expect(store.writeBuffered() == .ok)
                for database in 0...2 { #expect(self.contents(store, database) == model[database]!) }
                #expect(store.withDatabase(2) { store.expiry(forKey: bytes("t"), now: Self.now) } == .at(milliseconds: 4_000_000_000_000))
                store.checkInvariants()
            }
            do {
                let store = try reopenStore(configuration: .test(directory))
                for database in 0...2 { #expect(self.contents(store, database) == model[database]!, "replayed \(database)") }
                try store.close(compacting: .always)
            }
            let text = String(decoding: readFile(directory + "/database.txt")!, as: UTF8.self)
            #expect(text.contains("#!db\t2\n"))
            let store = try reopenStore(configuration: .test(directory))
            defer { try? store.close() }
            for database in 0...2 { #expect(self.contents(store, database) == model[database]!, "compacted \(database)") }
            #expect(store.withDatabase(2) { store.expiry(forKey: bytes("t"), now: Self.now) } == .at(milliseconds: 4_000_000_000_000))
        }
    }

    /// Values a compaction leaves on disk belong to a database: a swap replayed by the compaction moves
    /// them with their keys, and a later value of the same name in database 0 is its own.
    @Test func valuesLeftOnDiskFollowTheirKeysThroughASwap() throws {
        try withTemporaryDirectory { directory in
            var configuration = DurableStore.Configuration(directory: directory, fsync: .no, compactionThresholdBytes: 64 << 20)
            configuration.diskValueThresholdBytes = 8
            let big = "a value long enough to stay on disk"
            do {
                let store = try DurableStore(configuration: configuration)
                _ = try store.set(bytes(big + " 0"), forKey: bytes("k"))
                _ = try store.set(bytes(big + " gone"), forKey: bytes("d"))
                #expect(store.writeBuffered() == .ok)
                let job = try #require(try startCompaction(store))  // database.txt holds k and d
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
                _ = try store.swapDatabases(0, 3, now: Self.now)
                _ = try store.set(bytes(big + " new 0"), forKey: bytes("k"))
                _ = try store.withDatabase(3) { () throws(StoreError) in try store.removeValue(forKey: bytes("d")) }
                _ = try store.withDatabase(3) { () throws(StoreError) in
                    try store.set(bytes(big + " in 3"), forKey: bytes("x"))
                }
                _ = try store.swapDatabases(3, 4, now: Self.now)
                _ = try store.set(bytes(big + " d in 0"), forKey: bytes("d"))
                #expect(store.writeBuffered() == .ok)
                let second = try #require(try startCompaction(store))  // database.txt and the log, replayed
                let secondResult = second.run()
                #expect(throws: Never.self) { try secondResult.get() }
                store.finishCompaction(second, result: secondResult)
            }
            let store = try reopenStore(configuration: configuration)
            defer { try? store.close() }
            #expect(self.contents(store, 0) == ["k": big + " new 0", "d": big + " d in 0"])
            #expect(self.contents(store, 3) == [:])
            #expect(self.contents(store, 4) == ["k": big + " 0", "x": big + " in 3"])
        }
    }

    /// A failed sync under `always` takes a swap back, with the writes around it.
    @Test func aFailedSyncTakesASwapBack() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
            defer { try? store.close() }
            _ = try store.set(bytes("0"), forKey: bytes("k"))
            _ = try store.withDatabase(5) { () throws(StoreError) in try store.set(bytes("5"), forKey: bytes("k")) }
            writeAndSync(store)
            _ = try store.withDatabase(5) { () throws(StoreError) in try store.set(bytes("5b"), forKey: bytes("j")) }
            _ = try store.swapDatabases(0, 5, now: Self.now)
            _ = try store.set(bytes("0c"), forKey: bytes("k"))
            _ = try store.withDatabase(5) { () throws(StoreError) in try store.removeAll() }
            _ = try store.swapDatabases(5, 6, now: Self.now)
            #expect(store.writeBuffered() == .ok)
            faults.fdatasyncError.withLock { $0 = EIO }
            let failing = try #require(store.makeSyncJob())
            #expect(store.completeSync(failing, result: failing.run()).failedSequences != nil)
            faults.fdatasyncError.withLock { $0 = nil }
            #expect(self.contents(store, 0) == ["k": "0"])
            #expect(self.contents(store, 5) == ["k": "5"])
            #expect(self.contents(store, 6) == [:])
            store.checkInvariants()
        }
    }

    @Test func swapRecordsRoundTripAndRejectBadIndexes() {
        let record = Record.group([.swapDatabases(first: 0, second: 15), .database(index: 3, [.clear])])
        var encoded: [UInt8] = []
        record.encode(into: &encoded)
        encoded.withUnsafeBytes { raw in
            #expect(Record.decode(raw) == .record(record, size: encoded.count))
        }
        for bad in [Record.swapDatabases(first: 2, second: 2), .swapDatabases(first: 0, second: 1 << 17),
                    .database(index: 2, [.swapDatabases(first: 0, second: 1)])] {
            var bytes: [UInt8] = []
            bad.encode(into: &bytes)
            bytes.withUnsafeBytes { raw in
                if case .record = Record.decode(raw) { Issue.record("\(bad) decoded") }
            }
        }
    }
}
