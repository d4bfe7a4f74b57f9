// The list type against an array model: random inserts and removals at positions (head, tail, the
// middle, negative positions), with items large enough that the list spans many nodes and small enough
// that nodes hold many items, so that splits, merges and node boundaries are crossed. After each step:
// count, every read (index, forward and reverse ranges), the element stream, a deep copy, a rebuild
// by appends; and through a durable store: log replay and compaction give the same list.

import Testing

@testable import Store

@Suite struct ListValueTests {
    static func items(_ list: ListValue) -> [[UInt8]] {
        var items: [[UInt8]] = []
        list.forEachElement { element in
            items.append([UInt8](element.first))
            return true
        }
        return items
    }

    static func check(_ list: ListValue, _ model: [[UInt8]], _ generator: inout SeededGenerator) {
        #expect(list.count == model.count)
        #expect(Self.items(list) == model)
        guard !model.isEmpty else { return }
        for _ in 0..<3 {
            let index = Int.random(in: 0..<model.count, using: &generator)
            #expect(list.item(at: index) == model[index])
            #expect(list.item(at: index - model.count) == model[index])
            let end = Int.random(in: index..<model.count, using: &generator)
            var forward: [[UInt8]] = []
            list.forEach(from: index, through: end) { forward.append([UInt8]($0)); return true }
            #expect(forward == Array(model[index...end]))
            var backward: [[UInt8]] = []
            list.forEachReversed(from: end, downTo: index) { backward.append([UInt8]($0)); return true }
            #expect(backward == Array(model[index...end].reversed()))
        }
        #expect(list.item(at: model.count) == nil)
        #expect(list.item(at: -model.count - 1) == nil)
    }

    static func item(_ generator: inout SeededGenerator, _ serial: Int) -> [UInt8] {
        let length = Int.random(in: 0...(serial % 7 == 0 ? 900 : 60), using: &generator)
        return Array("\(serial):".utf8) + [UInt8](repeating: UInt8(97 + serial % 26), count: length)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func aListAgreesWithAnArrayAcrossNodeSplitsAndMerges(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let list = ListValue()
        var model: [[UInt8]] = []
        var serial = 0
        var sawSeveralNodes = false
        for step in 0..<3000 {
            // Grow for a while, then shrink, so that lists pass several nodes and come back to one.
            let growing = (step / 500) % 2 == 0
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll < (growing ? 7 : 3) || model.isEmpty {
                serial += 1
                let item = Self.item(&generator, serial)
                let index = [0, model.count, Int.random(in: 0...model.count, using: &generator)][roll % 3]
                let position = roll % 2 == 0 ? Int64(index) : Int64(index - model.count - 1)
                #expect(item.withUnsafeBytes { list.apply(.add, position: position, Element($0)) })
                model.insert(item, at: index)
            } else {
                let index = [0, model.count - 1, Int.random(in: 0..<model.count, using: &generator)][roll % 3]
                let position = roll % 2 == 0 ? Int64(index) : Int64(index - model.count)
                #expect([UInt8]().withUnsafeBytes { list.apply(.remove, position: position, Element($0)) })
                model.remove(at: index)
            }
            sawSeveralNodes = sawSeveralNodes || list.nodeCount > 1
            if step % 50 == 0 || model.count < 3 { Self.check(list, model, &generator) }
        }
        Self.check(list, model, &generator)
        #expect(sawSeveralNodes)

        let copy = list.copy() as! ListValue
        #expect(Self.items(copy) == model && copy.usedBytes == list.usedBytes)
        let rebuilt = ListValue()
        list.forEachElement { element in rebuilt.apply(.add, position: -1, element) }
        #expect(Self.items(rebuilt) == model)
        // The copy shares nothing: changing it leaves the original.
        if !model.isEmpty {
            _ = [UInt8]().withUnsafeBytes { copy.apply(.remove, position: 0, Element($0)) }
            #expect(Self.items(list) == model)
        }
    }

    @Test func positionsOutOfRangeChangeNothing() {
        let list = ListValue()
        let x = bytes("x")
        x.withUnsafeBytes { x in
            #expect(!list.apply(.add, position: 1, Element(x)))
            #expect(!list.apply(.add, position: -2, Element(x)))
            #expect(!list.apply(.remove, position: 0, Element(x)))
            #expect(!list.apply(.remove, position: -1, Element(x)))
            #expect(list.apply(.add, position: -1, Element(x)))
            #expect(!list.apply(.remove, position: 1, Element(x)))
            #expect(!list.apply(.remove, position: -2, Element(x)))
        }
        #expect(list.count == 1 && list.encoding == "quicklist" && list.type == .list)
    }

    /// The byte account follows the packed bytes: each item adds at least its length, and the
    /// account returns to the empty value's when everything is gone.
    @Test func theByteAccountFollowsTheItems() {
        let list = ListValue()
        let empty = list.usedBytes
        let item = [UInt8](repeating: 0x61, count: 100)
        for _ in 0..<1000 { item.withUnsafeBytes { _ = list.apply(.add, position: 0, Element($0)) } }
        #expect(list.usedBytes >= empty + 100_000 && list.usedBytes < empty + 110_000)
        #expect(list.nodeCount > 10)  // 8 KiB nodes by default (list-max-listpack-size -2)
        for _ in 0..<1000 { _ = item.withUnsafeBytes { list.apply(.remove, position: -1, Element($0)) } }
        #expect(list.usedBytes == empty && list.count == 0 && list.nodeCount == 0)
    }

    /// Lists written through the store come back the same from the log (replay) and from database.txt
    /// (after a compaction at the close).
    @Test(arguments: [DurableStore.ClosingCompaction.never, .always])
    func listsSurviveReplayAndCompaction(closing: DurableStore.ClosingCompaction) throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            var generator = SeededGenerator(seed: 11)
            let store = try DurableStore(configuration: .test(directory, fsync: .everysec))
            var models: [String: [[UInt8]]] = [:]
            for step in 0..<2000 {
                let key = "l\(step % 3)"
                var model = models[key] ?? []
                if Int.random(in: 0..<4, using: &generator) > 0 || model.isEmpty {
                    let item = Self.item(&generator, step)
                    let index = Int.random(in: 0...model.count, using: &generator)
                    let effect = ElementEffect(.add, position: Int64(index), item)
                    _ = try store.apply(effect,
                                        to: bytes(key), type: .list, now: 1)
                    model.insert(item, at: index)
                } else {
                    let index = Int.random(in: 0..<model.count, using: &generator)
                    let old = model.remove(at: index)
                    _ = try store.apply(ElementEffect(.remove, position: Int64(index), old),
                                        to: bytes(key), type: .list, now: 1)
                }
                models[key] = model.isEmpty ? nil : model
            }
            try store.close(compacting: closing)
            let reopened = try reopenStore(configuration: .test(directory, fsync: .everysec))
            for key in ["l0", "l1", "l2"] {
                let found = bytes(key).withUnsafeBytes {
                    reopened.withCollection(forKey: $0, type: .list, now: 1) { Self.items($0 as! ListValue) }
                }
                if let model = models[key] {
                    guard case .found(let items) = found else {
                        Issue.record("\(key) is missing")
                        continue
                    }
                    #expect(items == model)
                } else {
                    guard case .missing = found else {
                        Issue.record("\(key) should be missing")
                        continue
                    }
                }
            }
            reopened.checkInvariants()
            try reopened.close(compacting: .never)
        }
    }
}
