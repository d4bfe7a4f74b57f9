// Deadlines through the durable store: lazy and active expiry logged as deletes, deadlines surviving a
// crash, database.txt's `@deadline` field, and the clock-dependent rules of recovery.

import Glibc
import Testing

@testable import Store

@Suite struct ExpiryTests {
    func open(_ directory: String, _ clock: ManualClock, fsync: FsyncPolicy = .everysec, io: StoreIO = .system) throws
        -> DurableStore
    {
        try DurableStore(
            configuration: .init(directory: directory, fsync: fsync, compactionThresholdBytes: 1 << 20, clock: clock.read),
            io: io)
    }

    @Test func aKeyDisappearsAtItsDeadlineAndItsExpiryIsLoggedAsADelete() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.open(directory, clock)
            let now = clock.now
            _ = try store.set(bytes("v"), forKey: bytes("k"), deadline: now + 1000, now: now)
            #expect(store.expiry(forKey: bytes("k"), now: now) == .at(milliseconds: now + 1000))
            #expect(store.value(forKey: bytes("k"), now: now + 1000) == bytes("v"), "alive at its deadline")
            #expect(store.writeBuffered() == .ok)
            let logged = readFile(directory + "/database.wal")!.count
            #expect(store.value(forKey: bytes("k"), now: now + 1001) == nil)
            #expect(store.count == 0, "removed on access")
            #expect(store.expiredKeyCount == 1)
            #expect(store.bufferedBytes > 0, "the expiry is a logged delete")
            #expect(store.writeBuffered() == .ok)
            var tail: [UInt8] = []
            Record.delete(key: bytes("k")).encode(into: &tail)
            #expect(Array(readFile(directory + "/database.wal")![logged...]) == tail)
        }
    }

    @Test func theOldAPIsReadTheConfiguredClock() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.open(directory, clock)
            _ = try store.set(bytes("v"), forKey: bytes("k"), deadline: clock.now + 10, now: clock.now)
            #expect(store.value(forKey: bytes("k")) == bytes("v"))
            clock.advance(by: 11)
            #expect(store.value(forKey: bytes("k")) == nil)
            _ = try store.set(bytes("v"), forKey: bytes("gone"), deadline: clock.now + 10, now: clock.now)
            clock.advance(by: 11)
            #expect(try store.removeValue(forKey: bytes("gone")) == nil, "an expired key is not there to delete")
        }
    }

    @Test func expirePersistAndSetManageDeadlines() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try self.open(directory, clock)
            let now = clock.now
            #expect(try store.expire(bytes("missing"), at: now + 5, now: now) == nil)
            _ = try store.set(bytes("1"), forKey: bytes("a"))
            #expect(store.expiry(forKey: bytes("a"), now: now) == .never)
            #expect(try store.persist(bytes("a"), now: now) == nil, "no deadline to clear")
            #expect(try store.expire(bytes("a"), at: now + 5, now: now) != nil)
            #expect(store.keysWithExpiry == 1)
            #expect(try store.persist(bytes("a"), now: now) != nil)
            #expect(store.expiry(forKey: bytes("a"), now: now + 10) == .never)
            _ = try store.expire(bytes("a"), at: now + 5, now: now)
            _ = try store.set(bytes("2"), forKey: bytes("a"))
            #expect(store.expiry(forKey: bytes("a"), now: now) == .never, "SET clears the deadline")
            #expect(try store.expire(bytes("a"), at: now, now: now) != nil, "a deadline not in the future deletes")
            #expect(store.expiry(forKey: bytes("a"), now: now) == .missing)
            _ = try store.set(bytes("3"), forKey: bytes("b"))
            _ = try store.set(bytes("4"), forKey: bytes("b"), deadline: now - 1, now: now)
            #expect(store.count == 0, "SET with a deadline in the past removes the key")
            #expect(store.keysWithExpiry == 0)
            store.checkInvariants()
        }
    }

    @Test(arguments: [FsyncPolicy.always, .everysec])
    func deadlinesAndExpiriesSurviveACrash(fsync: FsyncPolicy) throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let start = clock.now
            do {
                let store = try self.open(directory, clock, fsync: fsync)
                _ = try store.set(bytes("v"), forKey: bytes("ttl"), deadline: start + 60_000, now: start)
                _ = try store.set(bytes("v"), forKey: bytes("expired"), deadline: start + 10, now: start)
                _ = try store.set(bytes("v"), forKey: bytes("persisted"), deadline: start + 10, now: start)
                _ = try store.persist(bytes("persisted"), now: start)
                _ = try store.set(bytes("v"), forKey: bytes("expire"))
                _ = try store.expire(bytes("expire"), at: start + 30_000, now: start)
                clock.advance(by: 20)
                // Active expiry reclaims "expired" and logs it.
                #expect(store.expireCycle(now: clock.now, budget: 100) == ExpireCycleResult(examined: 3, expired: 1))
                #expect(store.writeBuffered() == .ok)
                if let job = store.makeSyncJob() { #expect(store.completeSync(job, result: job.run()) == .ok) }
                #expect(store.durableSequence == store.lastSequence)
            }  // crash
            // Even with the clock turned back, the expired key stays gone: its delete is in the log.
            clock.milliseconds.withLock { $0 = start }
            let reopened = try self.open(directory, clock)
            #expect(reopened.expiry(forKey: bytes("ttl"), now: start) == .at(milliseconds: start + 60_000))
            #expect(reopened.expiry(forKey: bytes("expire"), now: start) == .at(milliseconds: start + 30_000))
            #expect(reopened.expiry(forKey: bytes("persisted"), now: start) == .never)
            #expect(reopened.expiry(forKey: bytes("expired"), now: start) == .missing)
            #expect(reopened.count == 3)
        }
    }

    @Test func keysPastTheirDeadlineAtRecoveryAreDroppedButALaterPersistWins() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let start = clock.now
            do {
                let store = try self.open(directory, clock)
                _ = try store.set(bytes("v"), forKey: bytes("short"), deadline: start + 10, now: start)
                _ = try store.set(bytes("v"), forKey: bytes("saved"), deadline: start + 10, now: start)
                _ = try store.persist(bytes("saved"), now: start)
                #expect(store.writeBuffered() == .ok)
            }
            clock.advance(by: 1000)
            let reopened = try self.open(directory, clock)
            #expect(reopened.count == 1)
            #expect(reopened.value(forKey: bytes("saved"), now: clock.now) == bytes("v"))
            #expect(reopened.keysWithExpiry == 0)
        }
    }

    @Test func theSnapshotCarriesDeadlinesAndDropsExpiredKeys() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let start = clock.now
            let store = try self.open(directory, clock)
            _ = try store.set(bytes("alice"), forKey: bytes("session:9"), deadline: 1_900_000_000_000, now: start)
            _ = try store.set(bytes("x"), forKey: bytes("soon"), deadline: start + 5, now: start)
            _ = try store.set(bytes("tab\tvalue"), forKey: bytes("plain"))
            #expect(store.writeBuffered() == .ok)
            clock.advance(by: 10)
            let job = try #require(try startCompaction(store))
            store.finishCompaction(job, result: job.run())
            let text = String(decoding: readFile(directory + "/database.txt")!, as: UTF8.self)
            #expect(text.contains("session:9\talice\t@1900000000000\n"))
            #expect(text.contains("plain\ttab\\tvalue\n"))
            #expect(!text.contains("soon"), "expired before the compaction ran")
            #expect(text.hasPrefix("# reactord snapshot, 2 keys\n"))
        }
    }

    @Test func aHandWrittenDeadlineLoadsAndAPastOneIsDropped() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock(1_800_000_000_000)
            writeFile(directory + "/database.txt", bytes(
                "future\tv\t@1900000000000\npast\tv\t@1700000000000\nnot a deadline\tv\t@12x\nraw\ta\tb\n"))
            let store = try self.open(directory, clock)
            #expect(store.expiry(forKey: bytes("future"), now: clock.now) == .at(milliseconds: 1_900_000_000_000))
            #expect(store.expiry(forKey: bytes("past"), now: clock.now) == .missing)
            #expect(store.value(forKey: bytes("not a deadline"), now: clock.now) == bytes("v\t@12x"))
            #expect(store.value(forKey: bytes("raw"), now: clock.now) == bytes("a\tb"))
            #expect(store.count == 3)
        }
    }

    @Test func aTornExpiryRecordAtTheEndIsDroppedAndTheRestKept() throws {
        try withTemporaryDirectory { source in
            let clock = ManualClock()
            let now = clock.now
            do {
                let store = try self.open(source, clock)
                _ = try store.set(bytes("v"), forKey: bytes("k"))
                #expect(store.writeBuffered() == .ok)
                _ = try store.expire(bytes("k"), at: now + 100_000, now: now)
                #expect(store.writeBuffered() == .ok)
            }
            let full = readFile(source + "/database.wal")!
            var expireRecord: [UInt8] = []
            Record.expire(key: bytes("k"), deadline: now + 100_000).encode(into: &expireRecord)
            #expect(Array(full.suffix(expireRecord.count)) == expireRecord)
            let lastStart = full.count - expireRecord.count
            for cut in lastStart...full.count {
                try withTemporaryDirectory { directory in
                    writeFile(directory + "/database.wal", Array(full[..<cut]))
                    let store = try self.open(directory, clock)
                    let expected: KeyExpiry = cut == full.count ? .at(milliseconds: now + 100_000) : .never
                    #expect(store.expiry(forKey: bytes("k"), now: now) == expected, "cut at \(cut)")
                }
            }
        }
    }

    @Test func manyKeysExpiringTogetherAreReclaimedInBoundedStepsAndTheirMemoryReturned() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let now = clock.now
            let store = try self.open(directory, clock, fsync: .no)
            let emptyBytes = store.usedBytes
            for index in 0..<20_000 {
                _ = try store.set(bytes("value"), forKey: bytes("k\(index)"), deadline: now + 1000, now: now)
            }
            _ = try store.set(bytes("value"), forKey: bytes("keeper"))
            #expect(store.writeBuffered() == .ok)
            #expect(store.expireCycle(now: now, budget: 500) == ExpireCycleResult(examined: 500, expired: 0))
            var steps = 0
            while true {
                let result = store.expireCycle(now: now + 1001, budget: 500)
                #expect(result.examined <= 500)
                steps += 1
                #expect(store.writeBuffered() == .ok)
                if !result.worthRepeating { break }
            }
            #expect(steps == 41, "20,000 keys in steps of 500, then one that finds nothing")
            #expect(store.count == 1)
            #expect(store.expiredKeyCount == 20_000)
            store.checkInvariants()
            for _ in 0..<10_000 where store.usedBytes > emptyBytes + 64 {
                _ = store.expireCycle(now: now + 1001, budget: 1000)
            }
            #expect(store.usedBytes == emptyBytes + 64, "the table shrinks back to its minimum as the cycle finishes resizes")
        }
    }

    @Test func randomKeyAndScanSkipExpiredKeys() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let now = clock.now
            let store = try self.open(directory, clock)
            for index in 0..<50 {
                _ = try store.set([], forKey: bytes("dead\(index)"), deadline: now + 1, now: now)
            }
            _ = try store.set([], forKey: bytes("alive"))
            #expect(store.randomKey(now: now + 2) == bytes("alive"))
            for index in 0..<50 {
                _ = try store.set([], forKey: bytes("dead\(index)"), deadline: now + 1, now: now)
            }
            var cursor: UInt64 = 0
            var keys: [[UInt8]] = []
            repeat {
                let page = store.scan(cursor: cursor, count: 10, pattern: nil, now: now + 2)
                keys += page.keys
                cursor = page.cursor
            } while cursor != 0
            #expect(keys == [bytes("alive")])
            #expect(store.keys(matching: bytes("*"), now: now + 2) == [bytes("alive")])
            #expect(store.keys(matching: bytes("dead1?"), now: now) .count == 10)
            let page = store.scan(cursor: 0, count: 1000, pattern: bytes("dead4*"), now: now)
            #expect(Set(page.keys) == Set((40..<50).map { bytes("dead\($0)") } + [bytes("dead4")]))
        }
    }
}
