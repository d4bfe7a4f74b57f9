// A list's scattered effects (Sources/Store/Types/ListValue+Scattered.swift): items at many positions
// removed by one effect (LREM), and put back by its inverse. Against an array model in memory; through
// the store as one log record (replayed, rolled back when the log fails, and all or nothing when the
// log is cut inside it).

import Glibc
import Testing

@testable import Store

@Suite struct ListScatteredTests {
    static func items(_ list: ListValue) -> [[UInt8]] { ListValueTests.items(list) }

    static func removeEffect(_ indexes: [Int]) -> ElementEffect {
        ElementEffect(.remove, position: Int64(indexes.first ?? 0), ListValue.packedIndexes(indexes),
                      ListValue.scatteredField(count: indexes.count))
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func scatteredRemovalsAndTheirInversesAgreeWithAnArray(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for round in 0..<40 {
            let size = Int.random(in: 1...(round % 4 == 0 ? 3000 : 200), using: &generator)
            let model = (0..<size).map { ListValueTests.item(&generator, $0) }
            let list = ListValue()
            for item in model { item.withUnsafeBytes { _ = list.apply(.add, position: -1, Element($0)) } }
            // Runs of neighbours (whole nodes among them) and lone items, from either end.
            var indexes: [Int] = []
            var index = Int.random(in: 0..<size, using: &generator)
            while index < size {
                indexes.append(index)
                index += Int.random(in: 0..<10, using: &generator) < 6 ? 1 : Int.random(in: 2...300, using: &generator)
            }
            var inverse = ElementInverse(recording: true)
            let applied = Self.removeEffect(indexes).withElement {
                list.apply(.remove, position: Int64(indexes[0]), $0, inverse: &inverse)
            }
            #expect(applied)
            let removed = Set(indexes)
            let kept = model.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            #expect(Self.items(list) == kept)
            #expect(list.count == kept.count)
            // The inverse puts every item back where it was; its own inverse removes them again.
            let undo = inverse.effect
            var again = ElementInverse(recording: true)
            #expect(undo.withElement { list.apply(undo.operation, position: undo.position, $0, inverse: &again) })
            #expect(Self.items(list) == model)
            let redo = again.effect
            #expect(redo.withElement { list.apply(redo.operation, position: redo.position, $0) })
            #expect(Self.items(list) == kept)
        }
    }

    @Test func malformedScatteredEffectsChangeNothing() {
        let list = ListValue()
        for item in ["a", "b", "c", "d"] { bytes(item).withUnsafeBytes { _ = list.apply(.add, position: -1, Element($0)) } }
        let bad: [ElementEffect] = [
            Self.removeEffect([2, 1]),  // not ascending
            Self.removeEffect([1, 1]),  // repeated
            Self.removeEffect([1, 4]),  // past the end
            ElementEffect(.remove, position: 0, ListValue.packedIndexes([0, 1]), ListValue.scatteredField(count: 3)),  // 2, not 3
            ElementEffect(.remove, position: 0, ListValue.packedIndexes([0, 1]), ListValue.scatteredField(count: 0)),
            ElementEffect(.remove, position: 0, ListValue.packedIndexes([0, 1]),
                          ListValue.rangeField(count: 2) + ListValue.rangeField(count: 2)),  // marker not 1
            ElementEffect(.add, position: 0, [0, 1, 120, 9, 1, 121], ListValue.scatteredField(count: 2)),  // index 9 out of range
            ElementEffect(.add, position: 0, [0, 5, 120], ListValue.scatteredField(count: 1)),  // item cut short
        ]
        for effect in bad {
            #expect(!effect.withElement { list.apply(effect.operation, position: effect.position, $0) }, "\(effect)")
            #expect(Self.items(list) == ["a", "b", "c", "d"].map(bytes))
        }
    }

    static func list(_ store: DurableStore, _ key: String) -> [[UInt8]]? { ListRangeTests.list(store, key) }

    /// Removing 20,000 scattered items is one small record: replay gives the same list.
    @Test func aLargeScatteredRemovalIsOneRecordAndReplays() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let model = (0..<60_000).map { Array(($0 % 3 == 0 ? "x" : "item-\($0)").utf8) }
            let indexes = Array(stride(from: 0, to: model.count, by: 3))
            let kept = model.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
                try ListRangeTests.push(store, "l", model)
                #expect(store.writeBuffered() == .ok)
                let before = readFile(directory + "/database.wal")!.count
                _ = try store.apply(Self.removeEffect(indexes), to: bytes("l"), type: .list, now: 1)
                #expect(store.writeBuffered() == .ok)
                let grown = readFile(directory + "/database.wal")!.count - before
                #expect(grown < indexes.count * 3 + 200, "the removal wrote \(grown) bytes to the log")
                #expect(Self.list(store, "l") == kept)
                try store.close(compacting: .never)
            }
            let reopened = try reopenStore(configuration: .test(directory, fsync: .everysec))
            #expect(Self.list(reopened, "l") == kept)
            reopened.checkInvariants()
            try reopened.close(compacting: .never)
        }
    }

    /// The log fails under a scattered removal: it is rolled back with the list's own inverse.
    @Test func aFailedWriteRollsAScatteredRemovalBack() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let model = (0..<1000).map { Array("v\($0 % 7)".utf8) }
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                try ListRangeTests.push(store, "l", model)
                #expect(store.writeBuffered() == .ok)
                faults.writeError.withLock { $0 = ENOSPC }
                _ = try store.apply(Self.removeEffect(Array(stride(from: 2, to: 1000, by: 7))), to: bytes("l"), type: .list, now: 1)
                _ = try store.apply(Self.removeEffect(Array(0..<(1000 - 143))), to: bytes("l"), type: .list, now: 1)
                #expect(Self.list(store, "l")?.count == 0 || Self.list(store, "l") == nil)
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

    /// The log cut at every 5th byte inside a scattered record: the list is before it or after it.
    @Test func aCutLogHoldsAScatteredRemovalWholeOrNotAtAll() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let model = (0..<300).map { Array("w\($0)".utf8) }
            let indexes = Array(stride(from: 1, to: 300, by: 4)) + [298, 299]
            let sorted = Array(Set(indexes)).sorted()
            let kept = model.enumerated().filter { !sorted.contains($0.offset) }.map(\.element)
            var sizes: (before: Int, after: Int) = (0, 0)
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
                try ListRangeTests.push(store, "l", model)
                #expect(store.writeBuffered() == .ok)
                sizes.before = readFile(directory + "/database.wal")!.count
                _ = try store.apply(Self.removeEffect(sorted), to: bytes("l"), type: .list, now: 1)
                #expect(store.writeBuffered() == .ok)
                sizes.after = readFile(directory + "/database.wal")!.count
                try store.close(compacting: .never)
            }
            let full = readFile(directory + "/database.wal")!
            for cut in stride(from: sizes.before, through: sizes.after, by: 5) + [sizes.after] {
                try withTemporaryDirectory { copy in
                    let fd = open(copy + "/database.wal", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    _ = full.withUnsafeBytes { write(fd, $0.baseAddress, cut) }
                    close(fd)
                    let reopened = try reopenStore(configuration: .test(copy, fsync: .everysec))
                    let found = Self.list(reopened, "l")
                    #expect(found == model || (cut == sizes.after && found == kept), "cut at \(cut)")
                    try reopened.close(compacting: .never)
                }
            }
        }
    }
}
