// SetTable (Sources/Store/Types/SetTable.swift), the large set encoding, on its own: its rebuilds
// (growth, shrinking, clearing tombstones) move members a bounded step per write while reads see both
// arrays, checked against a Swift Set at every step, and against the step bound itself.

import Testing

@testable import Store

@Suite struct SetTableTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func expectAgrees(_ table: SetTable, _ model: Set<[UInt8]>, _ context: String) {
        #expect(table.count == model.count, "\(context): count")
        var streamed: [[UInt8]] = []
        table.forEach {
            streamed.append([UInt8]($0))
            return true
        }
        #expect(streamed.count == model.count && Set(streamed) == model, "\(context): streamed members")
        var entryBytes = 0
        for member in model { entryBytes += 4 + member.count }
        #expect(table.entryBytes == entryBytes, "\(context): entry bytes")
        #expect(table.usedBytes == 96 + (table.capacity + table.retiringCapacity) * 8 + entryBytes, "\(context): used bytes")
        // A whole SSCAN returns every member.
        var scanned: Set<[UInt8]> = []
        var cursor: UInt64 = 0
        var calls = 0
        repeat {
            cursor = table.scan(cursor: cursor, count: 50) { scanned.insert([UInt8]($0)) }
            calls += 1
        } while cursor != 0 && calls < 1_000_000
        #expect(scanned == model, "\(context): scan while migrating=\(table.isMigrating)")
    }

    /// Random inserts and removals over a pool that makes the table grow and drain repeatedly; every
    /// read is checked while rebuilds are under way, and the whole table every few hundred steps.
    @Test(arguments: [31, 32, 33])
    func randomOperationsAgreeWithASetThroughRebuilds(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        let table = SetTable()
        var model: Set<[UInt8]> = []
        var stepsMigrating = 0
        var checkedWhileMigrating = 0
        for step in 0..<30_000 {
            // Phases: grow to a few thousand members, then drain, twice.
            let growing = (step / 7_500) % 2 == 0
            let member = Self.bytes("m\(Int.random(in: 0..<5_000, using: &g))")
            if Int.random(in: 0..<10, using: &g) < (growing ? 8 : 2) {
                let inserted = member.withUnsafeBytes { table.insert($0) }
                #expect(inserted == model.insert(member).inserted, "step \(step): insert")
            } else {
                let removed = member.withUnsafeBytes { table.remove($0) }
                #expect(removed == (model.remove(member) != nil), "step \(step): remove")
            }
            if table.isMigrating { stepsMigrating += 1 }
            let probe = Self.bytes("m\(Int.random(in: 0..<5_000, using: &g))")
            #expect(probe.withUnsafeBytes { table.contains($0) } == model.contains(probe),
                    "step \(step): read while migrating=\(table.isMigrating)")
            if step % 500 == 0 || (table.isMigrating && step % 97 == 0) {
                if table.isMigrating { checkedWhileMigrating += 1 }
                Self.expectAgrees(table, model, "step \(step)")
            }
        }
        #expect(stepsMigrating > 200, "rebuilds were not spread over writes")
        #expect(checkedWhileMigrating > 3, "the whole table was never checked mid-rebuild")
        Self.expectAgrees(table, model, "end")
        Self.expectAgrees(table.duplicate(), model, "copy")
        // Drained to nothing, and refilled.
        for member in model { #expect(member.withUnsafeBytes { table.remove($0) }) }
        Self.expectAgrees(table, [], "drained")
        #expect(Self.bytes("again").withUnsafeBytes { table.insert($0) })
        Self.expectAgrees(table, [Self.bytes("again")], "refilled")
    }

    /// A rebuild moves at most ``SetTable/migrationEntries`` members per write: the members in the
    /// retiring array fall by no more than that between writes, growing to 200,000 members and
    /// draining back to none, and no growth or shrink happens in one step.
    @Test func eachWriteMovesABoundedNumberOfMembers() {
        let table = SetTable()
        var rebuildsSeen = 0
        var wasMigrating = false
        // A removal may also take its own member out of the retiring array: one more than the moves.
        func check(removing: Bool, _ write: () -> Void, _ label: String) {
            let before = table.retiringCount
            write()
            if table.isMigrating {
                if wasMigrating {
                    let bound = SetTable.migrationEntries + (removing ? 1 : 0)
                    #expect(before - table.retiringCount <= bound, "\(label) moved \(before - table.retiringCount)")
                } else {
                    rebuildsSeen += 1
                }
            }
            wasMigrating = table.isMigrating
        }
        for i in 0..<200_000 {
            check(removing: false, { _ = Self.bytes("member:\(i)").withUnsafeBytes { table.insert($0) } }, "insert \(i)")
            if i % 997 == 0 && i > 0 {
                #expect(Self.bytes("member:\(i / 2)").withUnsafeBytes { table.contains($0) })
            }
        }
        // 8 → 2^19 slots: sixteen doublings, the later ones each spread over many writes.
        #expect(rebuildsSeen >= 10, "only \(rebuildsSeen) rebuilds were spread over writes")
        #expect(table.count == 200_000)
        rebuildsSeen = 0
        for i in 0..<200_000 {
            check(removing: true, { _ = Self.bytes("member:\(i)").withUnsafeBytes { table.remove($0) } }, "remove \(i)")
        }
        // 2^19 → 8 slots, a quarter each time (a shrink waits for the load to fall under 1/8).
        #expect(rebuildsSeen >= 7, "only \(rebuildsSeen) shrinks were spread over writes")
        #expect(table.count == 0)
    }

    /// Random members come from every occupied position of both arrays, uniformly, mid-rebuild too.
    @Test func randomMembersAreUniformWhileMigrating() {
        let table = SetTable()
        var i = 0
        // Stop right after a growth starts, with members in both arrays.
        while !(table.isMigrating && table.retiringCount < table.count - 5 && table.count >= 40) {
            _ = Self.bytes("r\(i)").withUnsafeBytes { table.insert($0) }
            i += 1
        }
        var g = SeededGenerator(seed: 5)
        var counts: [[UInt8]: Int] = [:]
        let draws = table.count * 500
        for _ in 0..<draws { counts[[UInt8](table.randomMember(using: &g)), default: 0] += 1 }
        #expect(counts.count == table.count)
        // 500 draws each in expectation (standard deviation about 22): far outside is a bias.
        #expect(counts.values.allSatisfy { (380...620).contains($0) }, "\(counts.values.sorted())")
    }
}
