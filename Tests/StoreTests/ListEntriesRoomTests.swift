// A list node's block keeps spare room before and after its entries (Sources/Store/Types/ListEntries.swift):
// random inserts and removals at the front, the back and in between against an array model, the
// entries read forwards and backwards after each step; the spare room stays bounded and `trim()`
// gives it back. And in a list, only the head and tail nodes keep any.

import Testing

@testable import Store

@Suite struct ListEntriesRoomTests {
    static func forwards(_ entries: borrowing ListEntries) -> [[UInt8]] {
        var items: [[UInt8]] = []
        entries.forEach { bytes, _ in
            items.append([UInt8](bytes))
            return true
        }
        return items
    }

    static func backwards(_ entries: borrowing ListEntries) -> [[UInt8]] {
        var items: [[UInt8]] = []
        var end = entries.byteCount
        while end > 0 {
            let (bytes, start) = entries.entry(endingAt: end)
            items.append([UInt8](bytes))
            end = start
        }
        return items.reversed()
    }

    @Test(arguments: [1, 2, 3])
    func randomChangesMatchTheModel(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var entries = ListEntries()
        var model: [[UInt8]] = []
        for step in 0..<3000 {
            let roll = Int.random(in: 0..<10, using: &generator)
            if roll < 6 || model.isEmpty {
                // Mostly small items, sometimes one longer than a spare step (a two-byte length).
                let length = Int.random(in: 0..<10, using: &generator) == 0 ? Int.random(in: 128...600, using: &generator)
                    : Int.random(in: 0...20, using: &generator)
                let item = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let index = roll < 3 ? 0 : roll < 5 ? model.count : Int.random(in: 0...model.count, using: &generator)
                let offset = entries.offset(of: index)
                item.withUnsafeBytes { entries.insert($0, atOffset: offset) }
                model.insert(item, at: index)
            } else if roll < 9 {
                let index = roll == 6 ? 0 : roll == 7 ? model.count - 1 : Int.random(in: 0..<model.count, using: &generator)
                let removed = min(Int.random(in: 1...3, using: &generator), model.count - index)
                entries.remove(atOffset: entries.offset(of: index), entries: removed)
                model.removeSubrange(index..<(index + removed))
            } else {
                entries.trim()
                #expect(entries.allocatedBytes == entries.byteCount, "step \(step): trim leaves no spare room")
            }
            #expect(entries.count == model.count, "step \(step)")
            #expect(Self.forwards(entries) == model, "step \(step): forwards")
            #expect(Self.backwards(entries) == model, "step \(step): backwards")
            let packed = model.reduce(0) { $0 + ListEntries.entryBytes($1.count) }
            #expect(entries.byteCount == packed, "step \(step): used bytes")
            // Growth adds at most one spare step; removals keep at most twice that and a quarter more.
            let spare = entries.allocatedBytes - entries.byteCount
            #expect(spare >= 0 && spare <= 2 * ListEntries.spareStep + entries.byteCount / 4 + 600, "step \(step): spare \(spare)")
            if model.isEmpty { #expect(entries.allocatedBytes == 0, "step \(step): an empty block is freed") }
            if step % 500 == 0 {
                let copy = entries.duplicate()
                #expect(Self.forwards(copy) == model && copy.allocatedBytes == entries.allocatedBytes)
            }
        }
    }

    /// Pushes at the head take the room in front: a run of them reallocates once per several items,
    /// seen as the block's size changing far less often than its contents.
    @Test func headPushesUseTheRoomInFront() {
        var entries = ListEntries()
        let item = [UInt8](repeating: 7, count: 16)
        var sizes = Set<Int>()
        for _ in 0..<200 {
            item.withUnsafeBytes { entries.insert($0, atOffset: 0) }
            sizes.insert(entries.allocatedBytes)
        }
        #expect(entries.count == 200)
        #expect(sizes.count < 50, "\(sizes.count) block sizes for 200 pushes")
        // Pops from the tail leave the block's size alone until the spare room is large.
        let before = entries.allocatedBytes
        for _ in 0..<10 { entries.remove(atOffset: entries.offset(of: entries.count - 1)) }
        #expect(entries.allocatedBytes == before && entries.count == 190)
    }

    /// In a list of many nodes built from both ends, only the head and tail nodes hold spare room:
    /// the byte account is the items' packed bytes plus at most two nodes' spare.
    @Test func onlyTheEndNodesKeepSpareRoom() {
        let list = ListValue()
        let item = [UInt8](repeating: 0x62, count: 16)
        for round in 0..<20_000 {
            item.withUnsafeBytes { _ = list.apply(.add, position: round % 2 == 0 ? 0 : -1, Element($0)) }
        }
        #expect(list.nodeCount > 20)
        let packed = list.count * ListEntries.entryBytes(item.count)
        let fixed = ListValue.headerBytes + list.nodeCount * ListValue.nodeBytes
        #expect(list.usedBytes >= fixed + packed)
        #expect(list.usedBytes <= fixed + packed + 2 * (2 * ListEntries.spareStep + 8192 / 4))
        #expect(list.nodes.dropFirst().dropLast().allSatisfy { $0.entries.allocatedBytes == $0.entries.byteCount })
    }
}
