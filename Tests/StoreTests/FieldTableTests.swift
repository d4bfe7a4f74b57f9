// FieldTable (Sources/Store/Types/HashTable.swift), the large hash encoding, on its own: its rebuilds
// (growth, shrinking) move entries a bounded step per write while reads see both arrays, checked
// against a dictionary at every step, and against the step bound itself.

import Testing

@testable import Store

@Suite struct FieldTableTests {
    typealias Model = [[UInt8]: [UInt8]]

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func set(_ table: inout FieldTable, _ field: [UInt8], _ value: [UInt8]) -> Bool {
        field.withUnsafeBytes { f in value.withUnsafeBytes { v in table.set(f, v) } }
    }

    static func remove(_ table: inout FieldTable, _ field: [UInt8]) -> Bool {
        field.withUnsafeBytes { table.remove($0) }
    }

    static func value(_ table: borrowing FieldTable, _ field: [UInt8]) -> [UInt8]? {
        field.withUnsafeBytes { f in table.entry(for: f).map { [UInt8](FieldTable.value(of: $0)) } }
    }

    static func expectAgrees(_ table: borrowing FieldTable, _ model: Model, _ context: String) {
        #expect(table.count == model.count, "\(context): count")
        var streamed: Model = [:]
        var pairs = 0
        table.forEach { field, value in
            streamed[[UInt8](field)] = [UInt8](value)
            pairs += 1
            return true
        }
        #expect(pairs == model.count && streamed == model, "\(context): streamed pairs")
        let positions = table.occupiedSlots()
        #expect(positions.count == model.count, "\(context): occupied positions")
        var entryBytes = 0
        for (field, value) in model { entryBytes += 8 + field.count + value.count }
        #expect(table.entryBytes == entryBytes, "\(context): entry bytes")
        #expect(table.usedBytes == (table.capacity + table.retiringCapacity) * 8 + entryBytes, "\(context): used bytes")
    }

    /// Random sets and removals over a pool that makes the table grow and shrink repeatedly; every
    /// read is checked while rebuilds are under way, and the whole table every few hundred steps.
    @Test(arguments: [21, 22, 23])
    func randomOperationsAgreeWithADictionaryThroughRebuilds(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        var table = FieldTable()
        var model: Model = [:]
        var stepsMigrating = 0
        for step in 0..<30_000 {
            // Phases: grow to a few thousand fields, then drain, twice.
            let growing = (step / 7_500) % 2 == 0
            let field = Self.bytes("f\(Int.random(in: 0..<5_000, using: &g))")
            if Int.random(in: 0..<10, using: &g) < (growing ? 8 : 2) {
                let value = Self.bytes("v\(step)" + String(repeating: "x", count: Int.random(in: 0..<20, using: &g)))
                let changed = Self.set(&table, field, value)
                #expect(changed == (model[field] != value), "step \(step): set")
                model[field] = value
            } else {
                let removed = Self.remove(&table, field)
                #expect(removed == (model.removeValue(forKey: field) != nil), "step \(step): remove")
            }
            if table.isMigrating { stepsMigrating += 1 }
            let probe = Self.bytes("f\(Int.random(in: 0..<5_000, using: &g))")
            #expect(Self.value(table, probe) == model[probe], "step \(step): read while migrating=\(table.isMigrating)")
            if step % 500 == 0 { Self.expectAgrees(table, model, "step \(step)") }
        }
        #expect(stepsMigrating > 200, "rebuilds were not spread over writes")
        Self.expectAgrees(table, model, "end")
        let copy = table.duplicate()
        Self.expectAgrees(copy, model, "copy")
    }

    /// A rebuild moves at most ``FieldTable/migrationEntries`` entries per write: the entries in the
    /// retiring array fall by no more than that between writes, and a table that grows to 200,000
    /// fields is never rebuilt in one step.
    @Test func eachWriteMovesABoundedNumberOfEntries() {
        var table = FieldTable()
        var rebuildsSeen = 0
        var wasMigrating = false
        for i in 0..<200_000 {
            let before = table.retiringCount
            _ = Self.set(&table, Self.bytes("field:\(i)"), Self.bytes("value"))
            if table.isMigrating {
                let after = table.retiringCount
                if wasMigrating {
                    #expect(before - after <= FieldTable.migrationEntries, "write \(i) moved \(before - after) entries")
                }
                if !wasMigrating { rebuildsSeen += 1 }
            }
            wasMigrating = table.isMigrating
            if i % 997 == 0 && i > 0 {
                // Reads find every field whichever array holds it.
                #expect(Self.value(table, Self.bytes("field:\(i / 2)")) == Self.bytes("value"))
            }
        }
        // 8 → 2^19 slots: sixteen doublings, the later ones each spread over many writes.
        #expect(rebuildsSeen >= 10, "only \(rebuildsSeen) rebuilds were spread over writes")
        #expect(table.count == 200_000)
    }
}
