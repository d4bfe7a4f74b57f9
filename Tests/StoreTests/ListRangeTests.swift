// A list's ranged effects (Sources/Store/Types/ListValue+Ranges.swift): many items added or removed
// by one effect. Against an array model in memory (ranges across node boundaries, whole nodes, both
// ends); through the store as one log record (replayed, rolled back when the log fails, and all or
// nothing when the log is cut inside it); items long enough for multi-byte back-lengths.

import Glibc
import Testing

@testable import Store

@Suite struct ListRangeTests {
    static func items(_ list: ListValue) -> [[UInt8]] { ListValueTests.items(list) }

    static func add(_ items: [[UInt8]], at position: Int64, to list: ListValue) -> Bool {
        let packed = ListValue.packedItems(items)
        let field = ListValue.rangeField(count: items.count)
        return packed.withUnsafeBytes { p in field.withUnsafeBytes { f in list.apply(.add, position: position, Element(p, f)) } }
    }

    static func remove(_ count: Int, at position: Int64, from list: ListValue) -> Bool {
        let field = ListValue.rangeField(count: count)
        return field.withUnsafeBytes { f in list.apply(.remove, position: position, Element(UnsafeRawBufferPointer(start: nil, count: 0), f)) }
    }

    @Test(arguments: [UInt64(5), 6, 7])
    func rangesAgreeWithAnArray(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let list = ListValue()
        var model: [[UInt8]] = []
        var serial = 0
        for step in 0..<600 {
            let growing = (step / 100) % 2 == 0
            if Int.random(in: 0..<10, using: &generator) < (growing ? 7 : 3) || model.isEmpty {
                let n = Int.random(in: 1...(step % 5 == 0 ? 400 : 20), using: &generator)
                let items = (0..<n).map { _ in serial += 1; return ListValueTests.item(&generator, serial) }
                let index = [0, model.count, Int.random(in: 0...model.count, using: &generator)][step % 3]
                let position = step % 2 == 0 ? Int64(index) : Int64(index - model.count - 1)
                #expect(Self.add(items, at: position, to: list))
                model.insert(contentsOf: items, at: index)
            } else {
                let index = [0, Int.random(in: 0..<model.count, using: &generator)][step % 2]
                let n = Int.random(in: 1...(step % 4 == 0 ? model.count + 5 : 30), using: &generator)
                let position = step % 3 == 0 ? Int64(index - model.count) : Int64(index)
                #expect(Self.remove(n, at: position, from: list))
                model.removeSubrange(index..<min(model.count, index + n))
            }
            if step % 20 == 0 { ListValueTests.check(list, model, &generator) }
            #expect(list.count == model.count)
        }
        ListValueTests.check(list, model, &generator)
        // The byte account is exact: a list rebuilt item by item accounts for the same bytes.
        let rebuilt = ListValue()
        list.forEachElement { element in rebuilt.apply(.add, position: -1, element) }
        #expect(rebuilt.count == list.count && Self.items(rebuilt) == model)
    }

    @Test func malformedRangesChangeNothing() {
        let list = ListValue()
        #expect(Self.add([bytes("a"), bytes("b")], at: 0, to: list))
        let packed = ListValue.packedItems([bytes("x"), bytes("y")])
        let three = ListValue.rangeField(count: 3)
        let zero = ListValue.rangeField(count: 0)
        packed.withUnsafeBytes { p in
            three.withUnsafeBytes { f in #expect(!list.apply(.add, position: 0, Element(p, f))) }  // 2 items, not 3
            zero.withUnsafeBytes { f in #expect(!list.apply(.add, position: 0, Element(p, f))) }
            let cut = UnsafeRawBufferPointer(rebasing: p[0..<(p.count - 1)])
            ListValue.rangeField(count: 2).withUnsafeBytes { f in #expect(!list.apply(.add, position: 0, Element(cut, f))) }
        }
        #expect(!Self.remove(1, at: 2, from: list))
        #expect(!Self.remove(1, at: -3, from: list))
        #expect(Self.items(list) == [bytes("a"), bytes("b")])
        // Items whose lengths take two and three bytes, read from both ends.
        let long = [[UInt8](repeating: 1, count: 200), [UInt8](repeating: 2, count: 20_000), [UInt8](repeating: 3, count: 127)]
        #expect(Self.add(long, at: 1, to: list))
        #expect(Self.items(list) == [bytes("a")] + long + [bytes("b")])
        var backward: [[UInt8]] = []
        list.forEachReversed(from: list.count - 1, downTo: 0) { backward.append([UInt8]($0)); return true }
        #expect(backward == ([bytes("a")] + long + [bytes("b")]).reversed())
    }

    static func list(_ store: DurableStore, _ key: String) -> [[UInt8]]? {
        let found = bytes(key).withUnsafeBytes { store.withCollection(forKey: $0, type: .list, now: 1) { Self.items($0 as! ListValue) } }
        if case .found(let items) = found { return items }
        return nil
    }

    /// A ranged removal through the store (which has the list record its inverse: the items, packed).
    static func applyRange(_ store: DurableStore, _ key: String, remove count: Int, at index: Int) throws {
        _ = try store.apply(ElementEffect(.remove, position: Int64(index), [], ListValue.rangeField(count: count)),
                            to: bytes(key), type: .list, now: 1)
    }

    static func push(_ store: DurableStore, _ key: String, _ items: [[UInt8]]) throws {
        _ = try store.apply(ElementEffect(.add, position: -1, ListValue.packedItems(items), ListValue.rangeField(count: items.count)),
                            to: bytes(key), type: .list, now: 1)
    }

    /// Trimming 100,000 items is one small record: replay brings back the trimmed list.
    @Test func aLargeTrimIsOneRecordAndReplays() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let model = (0..<100_000).map { Array("item-\($0)".utf8) }
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
                try Self.push(store, "l", model)
                #expect(store.writeBuffered() == .ok)
                let before = readFile(directory + "/database.wal")!.count
                store.beginAtomicGroup()
                try Self.applyRange(store, "l", remove: 10, at: model.count - 10)
                try Self.applyRange(store, "l", remove: 50_000, at: 0)
                store.endAtomicGroup()
                #expect(store.writeBuffered() == .ok)
                let grown = readFile(directory + "/database.wal")!.count - before
                #expect(grown < 200, "trimming wrote \(grown) bytes to the log")
                #expect(Self.list(store, "l") == Array(model[50_000..<99_990]))
                try store.close(compacting: .never)
            }
            let reopened = try reopenStore(configuration: .test(directory, fsync: .everysec))
            #expect(Self.list(reopened, "l") == Array(model[50_000..<99_990]))
            reopened.checkInvariants()
            try reopened.close(compacting: .never)
        }
    }

    /// The log fails under a ranged removal and a ranged add: both are rolled back with the inverses
    /// the list recorded, the list is as before them, and the file holds neither.
    @Test func aFailedWriteRollsRangesBack() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let model = (0..<1000).map { Array("v\($0)".utf8) }
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                try Self.push(store, "l", model)
                #expect(store.writeBuffered() == .ok)
                faults.writeError.withLock { $0 = ENOSPC }
                try Self.applyRange(store, "l", remove: 300, at: 100)
                try Self.push(store, "l", [bytes("new1"), bytes("new2")])
                try Self.applyRange(store, "l", remove: 700, at: 0)
                #expect(Self.list(store, "l")?.count == 2)
                guard case .failed = store.writeBuffered() else {
                    Issue.record("the write should have failed")
                    return
                }
                #expect(Self.list(store, "l") == model)
                faults.writeError.withLock { $0 = nil }
                store.checkInvariants()
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(Self.list(reopened, "l") == model)
            try reopened.close(compacting: .never)
        }
    }

    /// The log cut at every byte inside a ranged record: the reopened list is either before the
    /// record or after it, never in between.
    @Test func aCutLogHoldsARangeWholeOrNotAtAll() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let model = (0..<300).map { Array("w\($0)".utf8) }
            let added = (0..<40).map { Array("added\($0)".utf8) }
            var sizes: (before: Int, after: Int) = (0, 0)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
                try Self.push(store, "l", model)
                try Self.applyRange(store, "l", remove: 150, at: 20)
                #expect(store.writeBuffered() == .ok)
                sizes.before = readFile(directory + "/database.wal")!.count
                try Self.push(store, "l", added)
                #expect(store.writeBuffered() == .ok)
                sizes.after = readFile(directory + "/database.wal")!.count
                try store.close(compacting: .never)
            }
            let full = readFile(directory + "/database.wal")!
            let trimmed = Array(model[0..<20] + model[170...])
            for cut in stride(from: sizes.before, through: sizes.after, by: 7) {
                try withTemporaryDirectory { copy in
                    let fd = open(copy + "/database.wal", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    _ = full.withUnsafeBytes { write(fd, $0.baseAddress, cut) }
                    close(fd)
                    let reopened = try reopenStore(configuration: .test(copy, fsync: .everysec))
                    let found = Self.list(reopened, "l")
                    #expect(found == trimmed || (cut == sizes.after && found == trimmed + added), "cut at \(cut)")
                    try reopened.close(compacting: .never)
                }
            }
        }
    }
}
