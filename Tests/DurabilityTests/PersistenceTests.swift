// Persistence on a loop without sockets: everysec syncs while a compaction runs, and active
// expiry. Group commit's holds are in GroupCommitTests.swift.

import Dispatch
import Logging
import Reactor
import Services
@testable import Server
import Store
import Testing

/// The kv service's parts over `store`, wired as Server.openStore wires them (no server: nothing
/// reaches Control here).
struct KVTestParts {
    let data: StoreAdapter
    let state = ServerState()
    let housekeeping: Housekeeping
    let compaction: CompactionSchedule
    let persistence: Persistence

    init(store: DurableStore, loop: EventLoop) {
        self.data = StoreAdapter(store: store)
        self.housekeeping = Housekeeping(store: store, loop: loop, state: self.state)
        self.compaction = CompactionSchedule(store: store, loop: loop, logger: Logger(label: "test"))
        self.persistence = Persistence(
            store: store, loop: loop, logger: Logger(label: "test"), housekeeping: self.housekeeping,
            compaction: self.compaction)
    }
}

/// `everysec` promises at most about a second of writes lost to a power cut, compactions included:
/// while a compaction runs (here held at its temporary file until the test has seen a sync), the
/// new log is still fdatasynced every second.
@Suite struct EverysecDuringCompactionTests {
    @Test func theNewLogIsSyncedEverySecondWhileACompactionRuns() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let syncs = Shared<Int>(0)
        let syncsWhenHeld = Shared<Int?>(nil)
        let release = DispatchSemaphore(value: 0)
        var io = StoreIO.system
        let fdatasync = io.fdatasync
        io.fdatasync = { (fd: CInt) throws(Errno) in
            try fdatasync(fd)
            syncs.with { $0 += 1 }
        }
        io.compactionStep = { (step: CompactionStep) throws(StoreError) in
            // Only the first compaction is held (the one at close runs on the loop thread).
            guard step == .wroteTemporary, syncsWhenHeld.current == nil else { return }
            syncsWhenHeld.with { $0 = syncs.current }
            release.wait()
        }
        let loop = try EventLoop()
        let store = try DurableStore(configuration: .init(directory: dir.path, fsync: .everysec), io: io)
        let parts = KVTestParts(store: store, loop: loop)
        let persistence = parts.persistence
        try parts.data.set(Array("before".utf8), forKey: Array("a".utf8))
        #expect(parts.compaction.request(replyWhenDone: false) == .started)
        var wroteAfterRotation = false
        var syncedWhileHeld = false
        let check = loop.scheduleTimer(after: .milliseconds(20), repeating: .milliseconds(20)) {
            guard let held = syncsWhenHeld.current else { return }
            if !wroteAfterRotation {
                wroteAfterRotation = true
                try? parts.data.set(Array("during".utf8), forKey: Array("b".utf8))
            } else if syncs.current > held {
                syncedWhileHeld = true
                release.signal()
                persistence.close { loop.stop() }
            }
        }
        let watchdog = loop.scheduleTimer(after: .seconds(5)) {
            release.signal()
            persistence.close { loop.stop() }
        }
        try loop.run()
        loop.cancelTimer(check)
        loop.cancelTimer(watchdog)
        #expect(syncedWhileHeld, "no fdatasync in 5 s while the compaction ran")
        let reopened = try DurableStore(configuration: .init(directory: dir.path))
        defer { try? reopened.close() }
        #expect(reopened.value(forKey: Array("b".utf8)) == Array("during".utf8))
    }
}

/// Active expiry: keys past their deadline that nobody reads are reclaimed by the loop's own
/// timer, and each reclaimed key is logged as a delete, so a restart at a time before the
/// deadline (a clock stepped back) still finds them gone.
@Suite struct ActiveExpiryTests {
    @Test func keysNobodyReadsAreReclaimedByTheLoopAndStayGoneAfterARestart() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = Shared<Int64>(1_800_000_000_000)
        let configuration = DurableStore.Configuration(directory: dir.path, fsync: .no, clock: { clock.current })
        let loop = try EventLoop()
        let store = try DurableStore(configuration: configuration)
        let parts = KVTestParts(store: store, loop: loop)
        let persistence = parts.persistence
        let start = clock.current
        // More keys than one slice can examine, half of them expiring, one key without a deadline.
        for i in 0..<20_000 {
            let deadline = i % 2 == 0 ? start + 1_000 : start + 3_600_000
            _ = try store.set(Array("v".utf8), forKey: Array("key:\(i)".utf8), deadline: deadline, now: start)
        }
        try parts.data.set(Array("stays".utf8), forKey: Array("plain".utf8))
        clock.with { $0 += 2_000 }

        var reclaimed = false
        let check = loop.scheduleTimer(after: .milliseconds(20), repeating: .milliseconds(20)) {
            if store.count == 10_001 {
                reclaimed = true
                persistence.close { loop.stop() }
            }
        }
        let watchdog = loop.scheduleTimer(after: .seconds(20)) { persistence.close { loop.stop() } }
        try loop.run()
        loop.cancelTimer(check)
        loop.cancelTimer(watchdog)
        #expect(reclaimed, "active expiry left \(store.count - 10_001) expired keys after 20 s")
        #expect(store.expiredKeyCount == 10_000)

        // Back before the deadline: only the logged deletes can keep the expired keys away.
        clock.with { $0 = start }
        let reopened = try DurableStore(configuration: configuration)
        defer { try? reopened.close() }
        #expect(reopened.count == 10_001)
        #expect(reopened.value(forKey: Array("key:0".utf8), now: start) == nil)
        #expect(reopened.value(forKey: Array("key:1".utf8), now: start) == Array("v".utf8))
        #expect(reopened.value(forKey: Array("plain".utf8), now: start) == Array("stays".utf8))
    }
}
