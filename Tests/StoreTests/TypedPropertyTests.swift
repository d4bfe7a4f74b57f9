// Random sequences of typed mutations (strings, set, hash, list and sorted-set element effects, whole values, rename, copy,
// delete, expire, persist) with the clock moving, active expiry, failed log writes (rolled back), compactions
// and restarts, against a dictionary of typed values: the store agrees with the model at every step, its
// table invariants and exact byte account hold, and the typed records and database.txt blocks round-trip
// through recovery and through compaction (which replays the durable log off the loop thread).

import Glibc
import Testing

@testable import Store

@Suite struct TypedPropertyTests {
    enum Value: Equatable {
        case string([UInt8])
        case set(Set<[UInt8]>)
        case hash([[UInt8]: [UInt8]])
        case list([[UInt8]])
        case zset([[UInt8]: Double])

        var type: ValueType {
            switch self {
            case .string: .string
            case .set: .set
            case .hash: .hash
            case .list: .list
            case .zset: .zset
            }
        }
    }

    typealias Model = [String: (value: Value, deadline: Int64?)]

    static func live(_ model: Model, now: Int64) -> [String: Value] {
        model.compactMapValues { entry in
            if let deadline = entry.deadline, now > deadline { return nil }
            return entry.value
        }
    }

    /// What the store holds at `key`, typed.
    static func read(_ store: DurableStore, _ key: String, now: Int64) -> Value? {
        switch store.type(ofKey: bytes(key), now: now) {
        case nil: return nil
        case .string?: return store.value(forKey: bytes(key), now: now).map { .string($0) }
        case .set?:
            guard case .found(let members) = bytes(key).withUnsafeBytes({
                store.withCollection(forKey: $0, type: .set, now: now) { Set(($0 as! SetValue).members) }
            }) else { return nil }
            return .set(members)
        case .hash?:
            guard case .found(let fields) = bytes(key).withUnsafeBytes({
                store.withCollection(forKey: $0, type: .hash, now: now) { TestTypes.fields(of: $0) }
            }) else { return nil }
            return .hash(fields)
        case .list?, .zset?:
            let type = store.type(ofKey: bytes(key), now: now)!
            var elements: [([UInt8], [UInt8])] = []
            _ = bytes(key).withUnsafeBytes {
                store.withCollection(forKey: $0, type: type, now: now) { object in
                    object.forEachElement { elements.append(([UInt8]($0.first), [UInt8]($0.second))); return true }
                }
            }
            if type == .list { return .list(elements.map(\.0)) }
            return .zset(Dictionary(elements.map { ($0.0, $0.1.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }) },
                                    uniquingKeysWith: { $1 }))
        }
    }

    /// Seed 4 sets `diskValueThresholdBytes`, which compaction no longer reads (it writes from the live
    /// table, SnapshotCapture.swift): one more seed.
    @Test(arguments: [(UInt64(1), FsyncPolicy.everysec), (2, .always), (3, .no), (4, .everysec)])
    func theStoreAgreesWithATypedModelThroughFailuresRestartsAndCompactions(seed: UInt64, fsync: FsyncPolicy) throws {
        TestTypes.register()
        // The real sorted set, as every server started in this process registers it (BuiltInTypes.swift).
        CollectionTypes.register(.zset) { SortedSetValue() }
        try withTemporaryDirectory { directory in
            var generator = SeededGenerator(seed: seed)
            let clock = ManualClock()
            let faults = Faults()
            var configuration = DurableStore.Configuration(
                directory: directory, fsync: fsync, compactionThresholdBytes: 1 << 20, clock: clock.read)
            if seed == 4 { configuration.diskValueThresholdBytes = 16 }
            var store: DurableStore? = try DurableStore(configuration: configuration, io: faults.io)
            var model: Model = [:]
            let universe = (0..<24).map { "key:\($0)" }
            let members: [[UInt8]] = [[], bytes("a"), bytes("b"), bytes("tab\there"), [0, 0xFF, 10], bytes("e"),
                                      bytes("f"), [UInt8](repeating: 0x41, count: 40)]

            func flush(_ store: DurableStore) {
                #expect(store.writeBuffered() == .ok)
                if let job = store.makeSyncJob() { #expect(store.completeSync(job, result: job.run()) == .ok) }
            }

            func mutate(_ store: DurableStore, _ model: inout Model) throws {
                let key = universe.randomElement(using: &generator)!
                let now = clock.now
                let current = Self.live(model, now: now)[key]
                let member = members.randomElement(using: &generator)!
                switch Int.random(in: 0..<17, using: &generator) {
                case 0, 1:
                    let value = members.randomElement(using: &generator)!
                    let deadline: Int64? = Bool.random(using: &generator) ? now + Int64.random(in: 1...200, using: &generator) : nil
                    _ = try store.set(value, forKey: bytes(key), deadline: deadline, now: now)
                    model[key] = (.string(value), deadline)
                case 2, 3, 4:
                    // SADD / SREM of one member (the store works out the inverse it keeps for rollback).
                    let add = Int.random(in: 0..<3, using: &generator) > 0
                    let outcome = try store.apply(ElementEffect(add ? .add : .remove, member), to: bytes(key), type: .set, now: now)
                    switch current {
                    case .set(var set)?:
                        let changed = add ? set.insert(member).inserted : set.remove(member) != nil
                        model[key] = set.isEmpty ? nil : (.set(set), model[key]!.deadline)
                        if !changed { #expect(outcome == .unchanged) }
                    case nil:
                        model[key] = add ? (.set([member]), nil) : nil
                        if !add { #expect(outcome == .unchanged) }
                    case let other?:
                        #expect(outcome == .wrongType(other.type))
                    }
                case 5, 6:
                    // HSET / HDEL of one field.
                    let add = Bool.random(using: &generator)
                    let value = members.randomElement(using: &generator)!
                    var fields: [[UInt8]: [UInt8]] = [:]
                    if case .hash(let held)? = current { fields = held }
                    let outcome = try store.apply(ElementEffect(add ? .add : .remove, member, value), to: bytes(key),
                                                  type: .hash, now: now)
                    switch current {
                    case nil, .hash?:
                        if add, case .changed(_, _, let replaced) = outcome { #expect(replaced == (fields[member] != nil)) }
                        if add { fields[member] = value } else { fields[member] = nil }
                        model[key] = fields.isEmpty ? nil : (.hash(fields), model[key]?.deadline)
                    case let other?:
                        #expect(outcome == .wrongType(other.type))
                    }
                case 13, 14:
                    // LPUSH / RPUSH / LINSERT-like adds and removals at a position of a list.
                    var items: [[UInt8]] = []
                    if case .list(let held)? = current { items = held }
                    let add = items.isEmpty || Bool.random(using: &generator)
                    let index = add ? Int.random(in: 0...items.count, using: &generator)
                        : Int.random(in: 0..<items.count, using: &generator)
                    let fromTail = Bool.random(using: &generator)
                    let position = !fromTail ? Int64(index) : Int64(index - items.count - (add ? 1 : 0))
                    let outcome = try store.apply(ElementEffect(add ? .add : .remove, position: position, member),
                                                  to: bytes(key), type: .list, now: now)
                    switch current {
                    case nil, .list?:
                        if add { items.insert(member, at: index) } else { items.remove(at: index) }
                        model[key] = items.isEmpty ? nil : (.list(items), model[key]?.deadline)
                    case let other?:
                        #expect(outcome == .wrongType(other.type))
                    }
                case 15, 16:
                    // ZADD / ZREM of one member.
                    var scores: [[UInt8]: Double] = [:]
                    if case .zset(let held)? = current { scores = held }
                    let add = Int.random(in: 0..<3, using: &generator) > 0
                    let score = Double(Int.random(in: -3...3, using: &generator)) / 2
                    let outcome = try store.apply(ElementEffect(add ? .add : .remove, member, withUnsafeBytes(of: score) { [UInt8]($0) }),
                                                  to: bytes(key), type: .zset, now: now)
                    switch current {
                    case nil, .zset?:
                        if add, case .changed(_, _, let replaced) = outcome { #expect(replaced == (scores[member] != nil)) }
                        if add { scores[member] = score } else { scores[member] = nil }
                        model[key] = scores.isEmpty ? nil : (.zset(scores), model[key]?.deadline)
                    case let other?:
                        #expect(outcome == .wrongType(other.type))
                    }
                case 7:
                    // A whole value (RESTORE-like), a set or a hash.
                    let deadline: Int64? = Bool.random(using: &generator) ? now + Int64.random(in: 1...200, using: &generator) : nil
                    let chosen = Array(members.shuffled(using: &generator).prefix(Int.random(in: 1...7, using: &generator)))
                    if Bool.random(using: &generator) {
                        _ = try store.setCollection(TestTypes.set(chosen), forKey: bytes(key), deadline: deadline, now: now)
                        model[key] = (.set(Set(chosen)), deadline)
                    } else {
                        let pairs = chosen.map { ($0, $0.reversed() as [UInt8]) }
                        _ = try store.setCollection(TestTypes.hash(pairs), forKey: bytes(key), deadline: deadline, now: now)
                        model[key] = (.hash(Dictionary(pairs, uniquingKeysWith: { $1 })), deadline)
                    }
                case 8, 9:
                    let other = universe.randomElement(using: &generator)!
                    let isRename = Bool.random(using: &generator)
                    let sequence = isRename ? try store.rename(bytes(key), to: bytes(other), now: now)
                        : try store.copy(bytes(key), to: bytes(other), now: now)
                    #expect((sequence != nil) == (current != nil))
                    if current != nil && key != other {
                        model[other] = model[key]
                        if isRename { model[key] = nil }
                    }
                case 10:
                    _ = try store.removeValue(forKey: bytes(key), now: now)
                    model[key] = nil
                case 11:
                    let deadline = now + Int64.random(in: -5...200, using: &generator)
                    _ = try store.expire(bytes(key), at: deadline, now: now)
                    if current != nil { model[key] = deadline <= now ? nil : (current!, deadline) }
                case 12:
                    _ = try store.persist(bytes(key), now: now)
                    if current != nil { model[key]!.deadline = nil }
                default:
                    if Int.random(in: 0..<10, using: &generator) == 0 {
                        _ = try store.removeAll()
                        model = [:]
                    }
                }
                // Drop what expired in the model: keys past their deadline are gone for every later step.
                model = model.filter { $0.value.deadline.map { now <= $0 } ?? true }
            }

            var stepsWithCollections = 0
            for step in 0..<600 {
                switch Int.random(in: 0..<100, using: &generator) {
                case 0..<62:
                    try mutate(store!, &model)
                    if Int.random(in: 0..<4, using: &generator) == 0 { flush(store!) }
                case 62..<70:
                    clock.advance(by: Int64.random(in: 0...60, using: &generator))
                    model = model.filter { $0.value.deadline.map { clock.now <= $0 } ?? true }
                case 70..<75:
                    _ = store!.expireCycle(now: clock.now, budget: Int.random(in: 1...20, using: &generator))
                case 75..<81:
                    // A failed write: every unflushed mutation is rolled back, typed ones included.
                    flush(store!)
                    let before = model
                    faults.writeError.withLock { $0 = ENOSPC }
                    for _ in 0..<Int.random(in: 1...6, using: &generator) { try mutate(store!, &model) }
                    let buffered = store!.bufferedBytes
                    let outcome = store!.writeBuffered()
                    faults.writeError.withLock { $0 = nil }
                    #expect((outcome.failedSequences != nil) == (buffered > 0))
                    model = before.filter { $0.value.deadline.map { clock.now <= $0 } ?? true }
                case 81..<88:
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
                current.checkInvariants()
                let expected = Self.live(model, now: now)
                for key in universe {
                    #expect(Self.read(current, key, now: now) == expected[key], "step \(step) seed \(seed): \(key)")
                    if expected[key] != nil {
                        let expiry: KeyExpiry = model[key]!.deadline.map { .at(milliseconds: $0) } ?? .never
                        #expect(current.expiry(forKey: bytes(key), now: now) == expiry, "step \(step): \(key)")
                    }
                }
                #expect(current.count == expected.count, "step \(step) seed \(seed)")
                if current.keyspace.collectionCount > 0 { stepsWithCollections += 1 }
            }
            #expect(stepsWithCollections > 100, "the sequence hardly held collections")
            // A last clean stop writes database.txt from the live keyspace: it holds blocks and loads back.
            flush(store!)
            try store!.close()
            let text = String(decoding: readFile(directory + "/database.txt") ?? [], as: UTF8.self)
            let holdsCollections = Self.live(model, now: clock.now).values.contains { if case .string = $0 { false } else { true } }
            #expect(["set", "hash", "list", "zset"].contains { text.contains("\n#!\($0)\t") } || !holdsCollections, "\(text)")
            store = try reopenStore(configuration: configuration, io: faults.io)
            let expected = Self.live(model, now: clock.now)
            for key in universe { #expect(Self.read(store!, key, now: clock.now) == expected[key], "reopened: \(key)") }
        }
    }
}
