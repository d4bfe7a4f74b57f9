// Compaction: its output, and a crash between every two of its steps.

import Glibc
import Synchronization
import Testing

@testable import Store

@Suite struct CompactionTests {
    @Test func compactionWritesAValidSnapshotAndEmptiesTheLog() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            for index in 0..<100 {
                _ = try store.set(bytes("value\t\(index)\n"), forKey: bytes("key\(index)"))
            }
            _ = try store.removeValue(forKey: bytes("key7"))
            #expect(store.writeBuffered() == .ok)
            #expect(!store.needsCompaction, "below the threshold")

            let job = try #require(try startCompaction(store))
            #expect(listing(directory) == ["database.wal", "database.wal.1"])
            #expect(readFile(directory + "/database.wal") == [])
            #expect(try store.beginCompaction() == nil, "one compaction at a time")
            // Mutations during the compaction go to the new log.
            _ = try store.set(bytes("during"), forKey: bytes("key7"))
            #expect(store.writeBuffered() == .ok)

            let result = job.run()
            #expect(throws: Never.self) { try result.get() }
            store.finishCompaction(job, result: result)
            #expect(listing(directory) == ["database.txt", "database.wal"])

            let loaded = Keyspace()
            #expect(try Snapshot.load(path: directory + "/database.txt", io: .system, into: loaded))
            let snapshot = dictionary(loaded)
            #expect(snapshot.count == 99)
            #expect(snapshot[bytes("key8")] == bytes("value\t8\n"))
            #expect(snapshot[bytes("key7")] == nil, "the snapshot is the state as of the rotation")
            #expect(readFile(directory + "/database.txt")!.starts(with: bytes("# reactord snapshot, 99 keys\n")))

            try store.close()
            #expect(listing(directory) == ["database.txt", "database.wal"])
            #expect(readFile(directory + "/database.wal") == [], "close() compacts: the log is empty after it")
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(reopened.count == 100)
            #expect(reopened.value(forKey: bytes("key7")) == bytes("during"))
            let statistics = Dictionary(uniqueKeysWithValues: reopened.statistics().map { ($0.name, $0.value) })
            #expect(statistics["keys"] == "100")
            #expect(statistics["log_bytes"] == "0")
        }
    }

    @Test func needsCompactionOncePastTheThreshold() throws {
        try withTemporaryDirectory { directory in
            let configuration = DurableStore.Configuration(directory: directory, fsync: .no, compactionThresholdBytes: 4096)
            let store = try DurableStore(configuration: configuration)
            while !store.needsCompaction {
                _ = try store.set([UInt8](repeating: 0x61, count: 100), forKey: bytes("k\(store.lastSequence)"))
                #expect(store.writeBuffered() == .ok)
            }
            let job = try #require(try startCompaction(store))
            #expect(!store.needsCompaction)
            store.finishCompaction(job, result: job.run())
            #expect(!store.needsCompaction)
        }
    }

    /// Puts keys `first..<last` through the store, each set written and (under always) synced.
    func fill(_ store: DurableStore, _ range: Range<Int>) throws {
        for index in range {
            _ = try store.set(bytes("v\(index)"), forKey: bytes("k\(index)"))
            if index % 3 == 0 {
                _ = try store.removeValue(forKey: bytes("k\(index)"))
                _ = try store.set(bytes("again\(index)"), forKey: bytes("k\(index)"))
            }
        }
        #expect(store.writeBuffered() == .ok)
        if let job = store.makeSyncJob() {
            #expect(store.completeSync(job, result: job.run()) == .ok)
        }
    }

    func expectKeys(_ store: DurableStore, _ range: Range<Int>, _ comment: Comment) {
        #expect(store.count == range.count, comment)
        for index in range {
            let expected = index % 3 == 0 ? "again\(index)" : "v\(index)"
            #expect(store.value(forKey: bytes("k\(index)")) == bytes(expected), comment)
        }
    }

    @Test(arguments: CompactionStep.allCases)
    func aCrashAtAnyStepOfCompactionLosesNothing(step: CompactionStep) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                try self.fill(store, 0..<50)
                faults.crashAt.withLock { $0 = step }
                do {
                    if let job = try store.beginCompaction() {
                        // Mutations while the snapshot is being written land in the new log.
                        try self.fill(store, 50..<60)
                        let result = job.run()
                        store.finishCompaction(job, result: result)
                    }
                } catch {
                    #expect(step == .rotated, "only the rotation step throws out of beginCompaction: \(error)")
                }
            }  // the process "dies" here: nothing more runs
            let log = RecordingLog()
            let afterCrash = try DurableStore(configuration: .test(directory, fsync: .always), logger: log.logger)
            let expectedKeys = step == .rotated ? 0..<50 : 0..<60
            self.expectKeys(afterCrash, expectedKeys, "after a crash at \(step)")
            #expect(!fileExists(directory + "/database.txt.tmp"), "the temporary snapshot is removed")
            // A leftover segment asks for a compaction; the store keeps working, and survives two more opens.
            #expect(afterCrash.needsCompaction == listing(directory).contains { $0.hasPrefix("database.wal.") })
            try self.fill(afterCrash, expectedKeys.upperBound..<70)
            _ = consume afterCrash
            let second = try DurableStore(configuration: .test(directory, fsync: .always))
            self.expectKeys(second, 0..<70, "after reopening twice, crash at \(step)")
            try second.close()
            #expect(listing(directory) == ["database.txt", "database.wal"])
            let third = try DurableStore(configuration: .test(directory))
            self.expectKeys(third, 0..<70, "after a clean close following a crash at \(step)")
        }
    }

    @Test func aFailedCompactionKeepsItsSegmentAndTheNextOneCoversIt() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let store = try DurableStore(configuration: .test(directory), io: faults.io)
            try self.fill(store, 0..<20)
            let job = try #require(try startCompaction(store))
            faults.writeError.withLock { $0 = ENOSPC }
            let result = job.run()
            faults.writeError.withLock { $0 = nil }
            #expect(throws: StoreError.self) { try result.get() }
            store.finishCompaction(job, result: result)
            #expect(listing(directory) == ["database.wal", "database.wal.1"], "segment kept, temporary removed")
            try self.fill(store, 20..<30)
            let second = try #require(try startCompaction(store))
            #expect(listing(directory) == ["database.wal", "database.wal.1", "database.wal.2"])
            store.finishCompaction(second, result: second.run())
            #expect(listing(directory) == ["database.txt", "database.wal"])
            _ = consume store
            self.expectKeys(try DurableStore(configuration: .test(directory)), 0..<30, "after two compactions")
        }
    }
}

/// Starting a compaction must not sync anything on the caller's (the loop's) thread. Under every policy
/// the log's last records are synced before the rotation (so no record of the new log can reach the disk
/// before the segment's last one): the store holds further appends until a SyncJob has covered the log,
/// then rotates; the next SyncJob fsyncs the directory before the new log, so under `always` its records
/// are acknowledged only once the new log's name is durable.
@Suite struct CompactionSyncTests {
    @Test(arguments: [FsyncPolicy.no, .everysec, .always])
    func theCallerNeverSyncsTheSegmentOrTheDirectory(policy: FsyncPolicy) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            var configuration = DurableStore.Configuration.test(directory, fsync: policy)
            let store = try DurableStore(configuration: configuration, io: faults.io)
            for index in 0..<100 { _ = try store.set(bytes("v\(index)"), forKey: bytes("k\(index)")) }
            #expect(store.writeBuffered() == .ok)
            let walSize = fileSize(directory + "/database.wal")
            let syncs = { faults.fdatasyncCalls.withLock { $0 } + faults.fsyncCalls.withLock { $0 } }
            var byCaller = 0
            var before = syncs()
            #expect(try store.beginCompaction() == nil, "the written records wait for their sync")
            _ = try store.set(bytes("held"), forKey: bytes("k100"))
            #expect(store.writeBuffered() == .ok)
            #expect(fileSize(directory + "/database.wal") == walSize, "appends are held until the sync")
            #expect(store.durableSequence == (policy == .always ? 0 : 100), "the held record is not acknowledged")
            byCaller += syncs() - before
            let sync = try #require(store.makeSyncJob())
            #expect(store.completeSync(sync, result: sync.run()) == .ok)
            #expect(store.durableSequence == 100, "the held record is not durable yet")
            before = syncs()
            let job = try #require(try store.beginCompaction())
            byCaller += syncs() - before
            #expect(store.writeBuffered() == .ok)
            #expect(fileSize(directory + "/database.wal")! > 0, "the held record went to the new log")
            let fsyncsBefore = faults.fsyncCalls.withLock { $0 }
            let next = try #require(store.makeSyncJob())
            #expect(store.completeSync(next, result: next.run()) == .ok)
            #expect(faults.fsyncCalls.withLock { $0 } - fsyncsBefore == 1, "the directory, once")
            #expect(store.durableSequence == 101)
            let beforeJob = faults.fdatasyncCalls.withLock { $0 }
            let result = job.run()
            #expect(faults.fdatasyncCalls.withLock { $0 } == beforeJob, "the segment was synced before its rotation")
            #expect(throws: Never.self) { try result.get() }
            store.finishCompaction(job, result: result)
            #expect(byCaller == 0, "the caller synced \(byCaller) times")
            try store.close()
            configuration.fsync = .always
            let reopened = try reopenStore(configuration: configuration)
            #expect(reopened.count == 101)
            #expect(reopened.value(forKey: bytes("k99")) == bytes("v99"))
            #expect(reopened.value(forKey: bytes("k100")) == bytes("held"))
            try reopened.close()
        }
    }

    /// A failed directory fsync after a rotation fails the sync like any other (`always`): the
    /// records of the new log are rolled back and refused, and the next sync tries the directory again.
    @Test func aFailedDirectorySyncAfterARotationRefusesTheNewLogsRecords() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always), io: faults.io)
                defer { try? store.close() }
                _ = try store.set(bytes("1"), forKey: bytes("before"))
                writeAndSync(store)
                let job = try #require(try startCompaction(store))
                _ = try store.set(bytes("2"), forKey: bytes("refused"))
                #expect(store.writeBuffered() == .ok)
                faults.fsyncError.withLock { $0 = EIO }
                let failing = try #require(store.makeSyncJob())
                #expect(store.completeSync(failing, result: failing.run()).failedSequences == 2...2)
                #expect(store.value(forKey: bytes("refused")) == nil)
                #expect(fileSize(directory + "/database.wal") == 0, "the new log is cut back")
                faults.fsyncError.withLock { $0 = nil }
                _ = try store.set(bytes("3"), forKey: bytes("after"))
                #expect(store.writeBuffered() == .ok)
                let fsyncsBefore = faults.fsyncCalls.withLock { $0 }
                let retry = try #require(store.makeSyncJob())
                #expect(store.completeSync(retry, result: retry.run()) == .ok)
                #expect(faults.fsyncCalls.withLock { $0 } - fsyncsBefore == 1, "the directory is tried again")
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            defer { try? reopened.close() }
            #expect(contents(reopened, keys: ["before", "refused", "after"]) == [
                "before": "1", "refused": nil, "after": "3",
            ])
        }
    }

    /// A stop must not wait for a long compaction: a cancelled job fails, removes its temporary
    /// file and keeps its segments, and nothing is lost.
    @Test func aCancelledCompactionLeavesTheSegmentsAndLosesNothing() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .always))
                defer { try? store.close() }
                for i in 0..<2000 { _ = try store.set(bytes("value-\(i)"), forKey: bytes("key-\(i)")) }
                writeAndSync(store)
                let job = try #require(try startCompaction(store))
                job.cancel()
                let result = job.run()
                store.finishCompaction(job, result: result)
                guard case .failure(let error) = result else {
                    Issue.record("a cancelled compaction succeeded")
                    return
                }
                #expect(error.detail == "cancelled by a stop")
                #expect(listing(directory).contains("database.wal.1"))
                #expect(!listing(directory).contains("database.txt.tmp"))
            }
            let reopened = try reopenStore(configuration: .test(directory))
            defer { try? reopened.close() }
            #expect(reopened.count == 2000)
            #expect(reopened.value(forKey: bytes("key-1999")) == bytes("value-1999"))
        }
    }

    /// close() compacts only when that fits in the stop's budget: with none, the log alone keeps
    /// every mutation, and a reopen replays it.
    @Test func closeLeavesTheCompactionOutWhenItWouldOutlastTheBudget() throws {
        try withTemporaryDirectory { directory in
            var configuration = DurableStore.Configuration.test(directory, fsync: .always)
            configuration.shutdownCompactionBudget = .zero
            do {
                let store = try DurableStore(configuration: configuration)
                _ = try store.set(bytes("v"), forKey: bytes("k"))
                try store.close()
            }
            #expect(!listing(directory).contains("database.txt"))
            #expect(readFile(directory + "/database.wal")?.isEmpty == false)
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(reopened.value(forKey: bytes("k")) == bytes("v"))
            try reopened.close()  // the default budget: compacts
            #expect(listing(directory).contains("database.txt"))
            #expect(readFile(directory + "/database.wal") == [])
        }
    }
}

/// Large values through compaction (written from the live table a piece at a time, SnapshotCapture.swift,
/// Snapshot+Writing.swift): what comes out must be exactly what was set, across buffer boundaries, through
/// compactions that read back what earlier ones wrote.
@Suite struct DiskValueCompactionTests {
    /// `count` bytes cycling through all 256 byte values from `start` (every escape the snapshot has).
    static func pattern(_ count: Int, start: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &+ start) }
    }

    @Test func largeValuesSurviveTwoCompactionsAndARestartByteForByte() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let configuration = DurableStore.Configuration(directory: directory, fsync: .no,
                                                           compactionThresholdBytes: 64 << 20, clock: clock.read)
            #expect(configuration.diskValueThresholdBytes == 1 << 20)
            let now = clock.now
            var expected: [String: [UInt8]] = [:]
            var store: DurableStore? = try DurableStore(configuration: configuration)
            func put(_ key: String, _ value: [UInt8], deadline: Int64? = nil) throws {
                _ = try store!.set(value, forKey: bytes(key), deadline: deadline, now: now)
                expected[key] = value
            }
            // Escaped, 3 MiB of all byte values is ~5 MiB: longer than the 1 MiB read buffers.
            try put("binary", Self.pattern(3 << 20, start: 0))
            try put("with-deadline", Self.pattern(1 << 20, start: 7), deadline: now + 600_000)
            try put("overwritten", Self.pattern(2 << 20, start: 1))
            try put("deleted", Self.pattern(2 << 20, start: 2))
            try put("plain", [UInt8](repeating: UInt8(ascii: "a"), count: (1 << 20) + 5))
            // Ends like a deadline field and a CR would, escaped: they must stay value bytes.
            try put("tricky-end", [UInt8](repeating: 0x62, count: 1 << 20) + bytes("\t@1234\r"))
            try put("small", bytes("s"))
            try put("overwritten", bytes("now small"))
            _ = try store!.removeValue(forKey: bytes("deleted"))
            expected["deleted"] = nil
            _ = try store!.expire(bytes("plain"), at: now + 900_000, now: now)
            #expect(store!.writeBuffered() == .ok)

            func compactAndCheck(_ label: String) throws {
                let job = try #require(try startCompaction(store!))
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store!.finishCompaction(job, result: result)
                let loaded = Keyspace()
                #expect(try Snapshot.load(path: directory + "/database.txt", io: .system, into: loaded))
                let snapshot = dictionary(loaded)
                #expect(snapshot.count == expected.count, "\(label)")
                for (key, value) in expected {
                    #expect(snapshot[bytes(key)] == value, "\(label): \(key)")
                }
                for (key, deadline) in [("with-deadline", now + 600_000), ("plain", now + 900_000)] {
                    let index = try #require(loaded.find(bytes(key)))
                    #expect(loaded.deadline(at: index) == deadline, "\(label): \(key)")
                }
                #expect(loaded.find(bytes("binary")).flatMap { loaded.deadline(at: $0) } == nil)
            }
            try compactAndCheck("from the log segment")
            // The second compaction finds them in database.txt (escaped text, copied verbatim).
            try put("small", bytes("t"))
            _ = try store!.persist(bytes("plain"), now: now)
            _ = try store!.expire(bytes("plain"), at: now + 900_000, now: now)
            #expect(store!.writeBuffered() == .ok)
            try compactAndCheck("from database.txt")
            // Replaced and deleted after landing in database.txt: the later record wins.
            try put("binary", bytes("replaced"))
            _ = try store!.removeValue(forKey: bytes("tricky-end"))
            expected["tricky-end"] = nil
            #expect(store!.writeBuffered() == .ok)
            try compactAndCheck("after replacing one and deleting another")

            store = nil  // a crash: recovery reads database.txt and the log
            let reopened = try reopenStore(configuration: configuration)
            #expect(reopened.count == expected.count)
            for (key, value) in expected {
                #expect(reopened.value(forKey: bytes(key), now: now) == value, "\(key)")
            }
        }
    }

    /// A hand-edited database.txt may hold raw bytes the writer escapes: copied as they were, a raw CR
    /// ending a value would be read back as a line-end artefact, and a raw tab with `@digits` after it
    /// as a deadline once the real deadline is gone. (Found by Fuzz/Sources/FuzzSnapshot.)
    @Test func handEditedValuesLeftOnDiskComeOutEscaped() throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/database.txt",
                      bytes("# edited by hand\nered\tgone@by hand\r\r\nk\tabc\t@12\t@1900000000000\ncut\tescape \\x4") + [0x31]
                        + bytes("\\\\ end\n"))
            let clock = ManualClock()
            var configuration = DurableStore.Configuration(directory: directory, fsync: .no, clock: clock.read)
            configuration.diskValueThresholdBytes = 2
            let expected: [String: [UInt8]] = ["ered": bytes("gone@by hand\r"), "k": bytes("abc\t@12"),
                                               "cut": bytes("escape A\\ end")]
            do {
                let store = try DurableStore(configuration: configuration)
                for (key, value) in expected { #expect(store.value(forKey: bytes(key), now: clock.now) == value) }
                _ = try store.persist(bytes("k"), now: clock.now)
                #expect(store.writeBuffered() == .ok)
                let job = try #require(try startCompaction(store))
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
            }
            let reopened = try reopenStore(configuration: configuration)
            for (key, value) in expected {
                #expect(reopened.value(forKey: bytes(key), now: clock.now) == value, "\(key)")
            }
            #expect(reopened.expiry(forKey: bytes("k"), now: clock.now) == .never)
        }
    }

    /// The snapshot is written from memory, never rebuilt from the segment: a segment damaged on disk after
    /// its rotation does not reach it (the live table holds every acknowledged write).
    @Test func aSegmentDamagedAfterItsRotationDoesNotReachTheSnapshot() throws {
        try withTemporaryDirectory { directory in
            let configuration = DurableStore.Configuration(directory: directory, fsync: .no, compactionThresholdBytes: 64 << 20)
            let store = try DurableStore(configuration: configuration)
            _ = try store.set(Self.pattern(3 << 20, start: 3), forKey: bytes("big"))
            #expect(store.writeBuffered() == .ok)
            let job = try #require(try startCompaction(store))
            // Flip one byte deep inside the value, where only the streamed checksum can see it.
            let segment = directory + "/database.wal.1"
            var data = try #require(readFile(segment))
            data[2 << 20] ^= 0xFF
            writeFile(segment, data)
            let result = job.run()
            #expect(throws: Never.self) { try result.get() }
            store.finishCompaction(job, result: result)
            #expect(listing(directory) == ["database.txt", "database.wal"])
            let loaded = Keyspace()
            #expect(try Snapshot.load(path: directory + "/database.txt", io: .system, into: loaded))
            #expect(dictionary(loaded) == [bytes("big"): Self.pattern(3 << 20, start: 3)])
        }
    }
}

/// A compaction hands the kernel its long work a piece at a time (Sources/Store/PageCache.swift),
/// so that its thread, when the scheduler runs it while the loop waits for the same core, gives
/// the core back within a piece: the writeback of the new snapshot (as it is written), and the cached
/// pages of the segment and of the database.txt it replaces (before their last reference goes), in
/// ranges of at most 4 MiB that together cover the files. (The segment itself is synced before its
/// rotation, by a SyncJob: Journal.swift, holdingForRotation.)
@Suite struct CompactionPacingTests {
    enum Call: Equatable {
        case writeback(path: String, offset: Int, count: Int)
        case drop(path: String, offset: Int, count: Int)
        case sync(path: String)
        case unlink(path: String)
    }

    @Test func theKernelGetsTheWritebackAndTheCacheDropsInPieces() throws {
        try withTemporaryDirectory { directory in
            let calls = Mutex<[Call]>([])
            let paths = Mutex<[CInt: String]>([:])
            let system = StoreIO.system
            var io = StoreIO.system
            let name: @Sendable (CInt) -> String = { (fd: CInt) in
                paths.withLock { ($0[fd] ?? "?").split(separator: "/").last.map(String.init) ?? "?" }
            }
            io.open = { (path: String, flags: CInt, mode: mode_t) throws(Errno) -> CInt in
                let fd = try system.open(path, flags, mode)
                paths.withLock { $0[fd] = path }
                return fd
            }
            io.startWriteback = { fd, offset, count in
                calls.withLock { $0.append(.writeback(path: name(fd), offset: offset, count: count)) }
                system.startWriteback(fd, offset, count)
            }
            io.dropCache = { fd, offset, count in
                calls.withLock { $0.append(.drop(path: name(fd), offset: offset, count: count)) }
                system.dropCache(fd, offset, count)
            }
            io.fdatasync = { (fd: CInt) throws(Errno) in
                calls.withLock { $0.append(.sync(path: name(fd))) }
                try system.fdatasync(fd)
            }
            io.fsync = { (fd: CInt) throws(Errno) in
                calls.withLock { $0.append(.sync(path: name(fd))) }
                try system.fsync(fd)
            }
            io.unlink = { (path: String) throws(Errno) in
                calls.withLock { $0.append(.unlink(path: String(path.split(separator: "/").last!))) }
                try system.unlink(path)
            }
            let store = try DurableStore(configuration: .test(directory, fsync: .no), io: io)
            let piece = PageCache.pieceBytes
            func fill(_ byte: UInt8) {
                for index in 0..<160 {
                    _ = try? store.set([UInt8](repeating: byte, count: 64 << 10), forKey: bytes("k\(index)"))
                    if index % 16 == 15 { #expect(store.writeBuffered() == .ok) }
                }
            }
            func compact() throws -> (segment: String, segmentSize: Int) {
                let job = try #require(try startCompaction(store))
                let segment = listing(directory).first { $0.hasPrefix(WriteAheadLog.segmentPrefix) }!
                let size = try #require(fileSize(directory + "/" + segment))
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
                return (segment, size)
            }
            /// The ranges of `kind` for `path`, checked to be pieces of at most 4 MiB, contiguous from 0.
            func covered(_ path: String, drops: Bool, in list: [Call]) -> Int {
                var end = 0
                for call in list {
                    switch call {
                    case .writeback(path, let offset, let count) where !drops,
                         .drop(path, let offset, let count) where drops:
                        #expect(count <= piece && count > 0, "\(path): \(count) bytes in one call")
                        #expect(offset == end, "\(path): a range at \(offset), not at the last one's end, \(end)")
                        end = offset + count
                    default: continue
                    }
                }
                return end
            }

            // A 10 MiB segment, no database.txt yet.
            fill(0x61)
            let first = try compact()
            var list = calls.withLock { $0 }
            #expect(list.contains(.sync(path: "database.wal")), "the log is synced before it is rotated")
            #expect(!list.contains(.sync(path: first.segment)), "and the segment never again")
            let snapshotSize = try #require(fileSize(directory + "/database.txt"))
            #expect(snapshotSize > 2 * piece)
            #expect(covered("database.txt.tmp", drops: false, in: list) >= snapshotSize - piece,
                    "the snapshot's writeback as it was written, all but its last piece")
            #expect(covered(first.segment, drops: true, in: list) == first.segmentSize, "the segment's cache, whole")
            let lastSegmentDrop = list.lastIndex { if case .drop(first.segment, _, _) = $0 { true } else { false } }
            let segmentUnlink = list.firstIndex(of: .unlink(path: first.segment))
            #expect(lastSegmentDrop != nil && segmentUnlink != nil && lastSegmentDrop! < segmentUnlink!,
                    "dropped before the unlink")

            // Again: now the compaction replaces that database.txt.
            calls.withLock { $0.removeAll() }
            fill(0x62)
            _ = try compact()
            list = calls.withLock { $0 }
            #expect(covered("database.txt", drops: true, in: list) == snapshotSize,
                    "the replaced database.txt's cache, whole")
            try store.close()
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(reopened.count == 160)
            #expect(reopened.value(forKey: bytes("k7")) == [UInt8](repeating: 0x62, count: 64 << 10))
        }
    }
}
