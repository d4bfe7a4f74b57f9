// Random sequences of set / set-with-deadline / delete / expire / persist / clear / advance the clock /
// active expiry / compaction / failed log writes / restart, against a Dictionary model: the store must agree
// with the model at every step, its table invariants must hold, and its byte account must be exact.

import Glibc
import Testing

@testable import Store

@Suite struct PropertyTests {
    /// The model: what each key holds and until when (a key is live while `now <= deadline`).
    typealias Model = [String: (value: [UInt8], deadline: Int64?)]

    static func live(_ model: Model, now: Int64) -> [String: [UInt8]] {
        model.compactMapValues { entry in
            if let deadline = entry.deadline, now > deadline { return nil }
            return entry.value
        }
    }

    /// Seeds 6 and 7 set `diskValueThresholdBytes`, which compaction no longer reads (it writes from the
    /// live table, SnapshotCapture.swift): they are two more seeds.
    @Test(arguments: [(UInt64(1), FsyncPolicy.everysec), (2, .always), (3, .no), (4, .everysec), (5, .always),
                      (6, .everysec), (7, .no)])
    func theStoreAgreesWithADictionaryModelAtEveryStep(seed: UInt64, fsync: FsyncPolicy) throws {
        try withTemporaryDirectory { directory in
            var generator = SeededGenerator(seed: seed)
            let clock = ManualClock()
            let faults = Faults()
            var configuration = DurableStore.Configuration(
                directory: directory, fsync: fsync, compactionThresholdBytes: 1 << 20, clock: clock.read)
            if seed >= 6 { configuration.diskValueThresholdBytes = 16 }
            var store: DurableStore? = try DurableStore(configuration: configuration, io: faults.io)
            var model: Model = [:]
            let universe = (0..<60).map { "key:\($0)" }
            let values: [[UInt8]] = [[], bytes("v"), [UInt8](repeating: 0x41, count: 30),
                                     [UInt8](repeating: 0x0A, count: 200), bytes("tab\tand\\back")]

            /// Makes everything buffered durable, as the server does once per loop iteration.
            func flush(_ store: DurableStore) {
                #expect(store.writeBuffered() == .ok)
                if let job = store.makeSyncJob() { #expect(store.completeSync(job, result: job.run()) == .ok) }
            }

            /// One random mutation applied to both.
            func mutate(_ store: DurableStore, _ model: inout Model) throws {
                let key = universe.randomElement(using: &generator)!
                let now = clock.now
                switch Int.random(in: 0..<10, using: &generator) {
                case 0..<3:
                    let value = values.randomElement(using: &generator)!
                    _ = try store.set(value, forKey: bytes(key))
                    model[key] = (value, nil)
                case 3..<5:
                    let value = values.randomElement(using: &generator)!
                    let deadline = now + Int64.random(in: -5...200, using: &generator)
                    _ = try store.set(value, forKey: bytes(key), deadline: deadline, now: now)
                    model[key] = deadline <= now ? nil : (value, deadline)
                case 5..<7:
                    let removed = try store.removeValue(forKey: bytes(key), now: now) != nil
                    #expect(removed == (Self.live(model, now: now)[key] != nil))
                    model[key] = nil
                case 7:
                    let deadline = now + Int64.random(in: -5...200, using: &generator)
                    let changed = try store.expire(bytes(key), at: deadline, now: now) != nil
                    let present = Self.live(model, now: now)[key] != nil
                    #expect(changed == present)
                    if present { model[key] = deadline <= now ? nil : (model[key]!.value, deadline) }
                case 8:
                    _ = try store.persist(bytes(key), now: now)
                    if Self.live(model, now: now)[key] != nil { model[key]!.deadline = nil }
                default:
                    if Int.random(in: 0..<8, using: &generator) == 0 {
                        _ = try store.removeAll()
                        model = [:]
                    } else {
                        _ = try store.set(bytes("x"), forKey: bytes(key))
                        model[key] = (bytes("x"), nil)
                    }
                }
            }

            for step in 0..<700 {
                switch Int.random(in: 0..<100, using: &generator) {
                case 0..<60:
                    try mutate(store!, &model)
                    if Int.random(in: 0..<4, using: &generator) == 0 { flush(store!) }
                case 60..<70:
                    clock.advance(by: Int64.random(in: 0...80, using: &generator))
                case 70..<76:
                    _ = store!.expireCycle(now: clock.now, budget: Int.random(in: 1...20, using: &generator))
                case 76..<82:
                    // A failed write: every unflushed mutation is rolled back, the model with it.
                    flush(store!)
                    let before = model
                    faults.writeError.withLock { $0 = ENOSPC }
                    for _ in 0..<Int.random(in: 1...6, using: &generator) {
                        try mutate(store!, &model)
                    }
                    let buffered = store!.bufferedBytes
                    let outcome = store!.writeBuffered()
                    faults.writeError.withLock { $0 = nil }
                    #expect((outcome.failedSequences != nil) == (buffered > 0))
                    model = before
                    // Keys that expired meanwhile stay expired in the model's logical view.
                case 82..<88:
                    // Half the time with the last records written but not synced: under `always` the
                    // store then holds appends (a mutation meanwhile stays buffered) until a sync has
                    // covered the log, and the next call rotates.
                    if Bool.random(using: &generator) { flush(store!) } else { #expect(store!.writeBuffered() == .ok) }
                    var job = try store!.beginCompaction()
                    if job == nil {
                        try mutate(store!, &model)
                        flush(store!)
                        job = try store!.beginCompaction()
                    }
                    let started = try #require(job)
                    if Bool.random(using: &generator) { try mutate(store!, &model) }
                    store!.finishCompaction(started, result: started.run())
                case 88..<94:
                    // Crash: everything flushed survives, a clock that moved on drops what expired.
                    flush(store!)
                    store = nil
                    store = try reopenStore(configuration: configuration, io: faults.io)
                default:
                    flush(store!)
                    try store!.close()
                    store = nil
                    store = try reopenStore(configuration: configuration, io: faults.io)
                }

                let now = clock.now
                let current = store!
                current.checkInvariants()  // the table's invariants and its exact byte account
                let expected = Self.live(model, now: now)
                for key in universe {
                    let actual = current.value(forKey: bytes(key), now: now)
                    #expect(actual == expected[key], "step \(step) seed \(seed): \(key)")
                    if actual != nil {
                        let expiry: KeyExpiry = model[key]!.deadline.map { .at(milliseconds: $0) } ?? .never
                        #expect(current.expiry(forKey: bytes(key), now: now) == expiry, "step \(step): \(key)")
                    }
                }
                // Reading every key expired whatever had passed its deadline: the counts agree exactly.
                #expect(current.count == expected.count, "step \(step) seed \(seed)")
            }
        }
    }
}
