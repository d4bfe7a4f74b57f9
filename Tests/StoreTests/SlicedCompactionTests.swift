// Compaction writes the snapshot from the live table a slice at a time, a key about to change written
// first (Sources/Store/SnapshotCapture.swift). Against a model: random writes, deletes, renames, expiries
// (lazy and active), SWAPDB, FLUSHDB, MOVE and set-element writes in three databases, interleaved with
// slices of a compaction of a few entries each. Checked at every step: a crash (the directory copied as it
// stands) recovers the model; at the end of each compaction, the snapshot alone is the model as of the
// rotation, and the snapshot plus the new log is the model now.

import Glibc
import Testing

@testable import Store

@Suite struct SlicedCompactionTests {
    init() { TestTypes.register() }

    enum Held: Equatable, CustomStringConvertible {
        case string([UInt8])
        case set(Set<[UInt8]>)

        var description: String {
            switch self {
            case .string(let value): return "string \(String(decoding: value, as: UTF8.self))"
            case .set(let members): return "set \(members.map { String(decoding: $0, as: UTF8.self) }.sorted())"
            }
        }
    }

    struct Entry: Equatable {
        var held: Held
        var deadline: Int64?
    }

    /// Database → key → value and deadline.
    typealias Model = [Int: [[UInt8]: Entry]]

    static let databases = 3

    /// The model's keys live at `now` (a key lives while `now <= deadline`), empty databases left out.
    static func live(_ model: Model, now: Int64) -> Model {
        var result: Model = [:]
        for (database, entries) in model {
            let alive = entries.filter { $0.value.deadline.map { now <= $0 } ?? true }
            if !alive.isEmpty { result[database] = alive }
        }
        return result
    }

    /// What `root` (database 0's keyspace, and through it every other) holds live at `now`.
    static func contents(of root: Keyspace, now: Int64) -> Model {
        var result: Model = [:]
        for (database, keyspace) in root.allDatabases {
            for index in 0..<keyspace.count {
                let deadline = keyspace.deadline(at: index)
                if let deadline, now > deadline { continue }
                let held: Held
                if let object = keyspace.collection(at: index) {
                    var members = Set<[UInt8]>()
                    object.forEachElement { element in
                        members.insert([UInt8](element.first))
                        return true
                    }
                    held = .set(members)
                } else {
                    held = .string([UInt8](keyspace.value(at: index)))
                }
                result[database, default: [:]][[UInt8](keyspace.key(at: index))] = Entry(held: held, deadline: deadline)
            }
        }
        return result
    }

    /// Copies the directory's files as they stand (a crash of the process: everything written is in
    /// the files) and opens a store on the copy.
    static func recoverCopy(of directory: String, clock: ManualClock) throws -> Model {
        try withTemporaryDirectory("sliced-crash") { copy in
            for name in listing(directory) where name.hasPrefix("database") {
                writeFile(copy + "/" + name, readFile(directory + "/" + name)!)
            }
            let store = try DurableStore(
                configuration: DurableStore.Configuration(directory: copy, fsync: .no, clock: clock.read))
            defer { try? store.close(compacting: .never) }
            store.checkInvariants()
            return Self.contents(of: store.root, now: clock.now)
        }
    }

    /// Writing a small set asks for its object, which expands a compact slot (KeyTable+Compact.swift):
    /// the slice puts it back, so a compaction does not leave every small set expanded.
    @Test func aSmallSetKeepsItsCompactFormThroughACompaction() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            for member in ["1", "2", "3"] {
                _ = try store.apply(ElementEffect(.add, bytes(member)), to: bytes("small"), type: .set, now: 0)
            }
            #expect(store.writeBuffered() == .ok)
            func isCompact() throws -> Bool {
                let index = try #require(store.root.find(bytes("small")))
                return Slot.isCompact(store.root.table.pointee.slot(index))
            }
            #expect(try isCompact())
            let job = try #require(try startCompaction(store))
            let result = job.run()
            #expect(throws: Never.self) { try result.get() }
            store.finishCompaction(job, result: result)
            #expect(try isCompact(), "the slice put the slot back in its compact form")
            let loaded = Keyspace()
            #expect(try Snapshot.load(path: directory + "/database.txt", io: .system, into: loaded))
            #expect(Self.contents(of: loaded, now: 0)[0]?[bytes("small")]?.held == .set([bytes("1"), bytes("2"), bytes("3")]))
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8, 9, 10])
    func theSnapshotIsTheRotationsStateAndRecoveryTheModelsAtEveryStep(seed: UInt64) throws {
        try withTemporaryDirectory { directory in
            var generator = SeededGenerator(seed: seed)
            let clock = ManualClock()
            let configuration = DurableStore.Configuration(directory: directory, fsync: .no, clock: clock.read)
            let store = try DurableStore(configuration: configuration)
            var model: Model = [:]
            let universe = (0..<40).map { bytes("key:\($0)") }
            let values: [[UInt8]] = [bytes("v"), [UInt8](repeating: 0x41, count: 50), bytes("tab\tnew\nline"), []]
            let members = (0..<6).map { bytes("m\($0)") }

            /// The live entry of `key` in `database` (an expired one is gone: any command sees it absent).
            func entry(_ database: Int, _ key: [UInt8]) -> Entry? {
                guard let found = model[database]?[key] else { return nil }
                if let deadline = found.deadline, clock.now > deadline {
                    model[database]?[key] = nil
                    return nil
                }
                return found
            }

            func mutate() throws {
                let database = Int.random(in: 0..<Self.databases, using: &generator)
                let key = universe.randomElement(using: &generator)!
                let now = clock.now
                let choice = Int.random(in: 0..<100, using: &generator)
                switch choice {
                case 0..<25:
                    let value = values.randomElement(using: &generator)!
                    let deadline: Int64? = Bool.random(using: &generator) ? nil : now + Int64.random(in: 1...300, using: &generator)
                    _ = try store.withDatabase(database) { () throws(StoreError) in
                        try store.set(value, forKey: key, deadline: deadline, now: now)
                    }
                    model[database, default: [:]][key] = Entry(held: .string(value), deadline: deadline)
                case 25..<35:
                    _ = try store.withDatabase(database) { () throws(StoreError) in try store.removeValue(forKey: key, now: now) }
                    model[database]?[key] = nil
                case 35..<45:
                    let destination = universe.randomElement(using: &generator)!
                    _ = try store.withDatabase(database) { () throws(StoreError) in
                        try store.rename(key, to: destination, now: now)
                    }
                    if let moved = entry(database, key), key != destination {
                        model[database]?[key] = nil
                        model[database, default: [:]][destination] = moved
                    }
                case 45..<52:
                    let deadline = now + Int64.random(in: -2...300, using: &generator)
                    _ = try store.withDatabase(database) { () throws(StoreError) in
                        try store.expire(key, at: deadline, now: now)
                    }
                    if entry(database, key) != nil {
                        if deadline <= now { model[database]?[key] = nil } else { model[database]?[key]?.deadline = deadline }
                    }
                case 52..<56:
                    _ = try store.withDatabase(database) { () throws(StoreError) in try store.persist(key, now: now) }
                    if entry(database, key) != nil { model[database]?[key]?.deadline = nil }
                case 56..<74:
                    let member = members.randomElement(using: &generator)!
                    let adding = Int.random(in: 0..<3, using: &generator) > 0
                    _ = try store.withDatabase(database) { () throws(StoreError) in
                        try store.apply(ElementEffect(adding ? .add : .remove, member), to: key, type: .set, now: now)
                    }
                    if let found = entry(database, key) {
                        if case .set(var held) = found.held {  // a string: the wrong type, nothing changes
                            if adding { held.insert(member) } else { held.remove(member) }
                            model[database]?[key] = held.isEmpty ? nil : Entry(held: .set(held), deadline: found.deadline)
                        }
                    } else if adding {
                        model[database, default: [:]][key] = Entry(held: .set([member]), deadline: nil)
                    }
                case 74..<78:
                    let other = (database + Int.random(in: 1..<Self.databases, using: &generator)) % Self.databases
                    _ = try store.swapDatabases(database, other, now: now)
                    (model[database], model[other]) = (model[other], model[database])
                case 78..<80:
                    _ = try store.withDatabase(database) { () throws(StoreError) in try store.removeAll() }
                    model[database] = nil
                case 80..<86:
                    let other = (database + Int.random(in: 1..<Self.databases, using: &generator)) % Self.databases
                    let outcome = try store.transfer(key, from: database, to: other, copying: false, replacing: false, now: now)
                    if let moved = entry(database, key), entry(other, key) == nil {
                        #expect(outcome != .missing && outcome != .destinationExists)
                        model[database]?[key] = nil
                        model[other, default: [:]][key] = moved
                    }
                case 86..<94:
                    clock.advance(by: Int64.random(in: 1...40, using: &generator))
                default:
                    _ = store.expireCycle(now: clock.now, budget: 1_000_000)  // every database
                }
            }

            func check(_ label: String) throws {
                #expect(store.writeBuffered() == .ok)
                store.checkInvariants()
                let expected = Self.live(model, now: clock.now)
                #expect(Self.contents(of: store.root, now: clock.now) == expected, "\(label): the store")
                #expect(try Self.recoverCopy(of: directory, clock: clock) == expected, "\(label): a crash")
            }

            for round in 0..<6 {
                for _ in 0..<Int.random(in: 20...120, using: &generator) { try mutate() }
                try check("round \(round), before the compaction")
                let job = try #require(try startCompaction(store))
                let rotation = (now: clock.now, state: Self.live(model, now: clock.now))
                var steps = 0
                while store.isWritingSnapshot {
                    if Int.random(in: 0..<3, using: &generator) == 0 {
                        store.writeSnapshotSlice(maximumEntries: Int.random(in: 1...4, using: &generator))
                    } else {
                        try mutate()
                    }
                    steps += 1
                    if steps % 7 == 0 { try check("round \(round), step \(steps) of the compaction") }
                }
                let result = job.run()
                #expect(throws: Never.self) { try result.get() }
                store.finishCompaction(job, result: result)
                #expect(listing(directory) == ["database.txt", "database.wal"], "round \(round)")

                let snapshot = try #require(readFile(directory + "/database.txt"))
                let count = rotation.state.values.reduce(0) { $0 + $1.count }
                #expect(snapshot.starts(with: bytes("# reactord snapshot, \(count) keys\n")), "round \(round)")
                let loaded = Keyspace()
                #expect(try Snapshot.load(path: directory + "/database.txt", io: .system, into: loaded))
                #expect(Self.contents(of: loaded, now: rotation.now) == rotation.state,
                        "round \(round): the snapshot is the state as of the rotation")
                try check("round \(round), after the compaction")
            }
            try store.close()
            let reopened = try reopenStore(configuration: configuration)
            #expect(Self.contents(of: reopened.root, now: clock.now) == Self.live(model, now: clock.now))
        }
    }
}
