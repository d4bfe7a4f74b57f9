// The set type (SetValue.swift, IntSet.swift, SetTable.swift) against a Swift Set as the model: random
// adds and removes across the intset → hashtable conversion, the table's growth, shrinking and
// rebuilds; copies, rebuilds from forEachElement, SSCAN's guarantee and the uniformity of random members.

import Testing

@testable import Store

@Suite struct SetValueTests {
    /// Members drawn from integers of every width, integers Redis would not store in an intset
    /// (`01`, `-0`, `+1`, past 64 bits), and plain strings.
    static func member(_ g: inout SeededGenerator, strings: Bool) -> [UInt8] {
        let choice = Int.random(in: 0..<(strings ? 10 : 7), using: &g)
        let text: String = switch choice {
        case 0, 1: String(Int.random(in: -300...300, using: &g))
        case 2: String(Int.random(in: -100_000...100_000, using: &g))
        case 3: String(Int64.random(in: Int64.min...Int64.max, using: &g))
        case 4: String(Int.random(in: 0...2000, using: &g))
        case 5: ["-9223372036854775808", "9223372036854775807", "0", "-1", "32767", "-32768", "2147483648"]
            .randomElement(using: &g)!
        case 6: String(Int.random(in: -2_000_000_000...2_000_000_000, using: &g))
        case 7: ["01", "-0", "+1", " 1", "9223372036854775808", "", "1.5"].randomElement(using: &g)!
        default: "m\(Int.random(in: 0..<400, using: &g))"
        }
        return Array(text.utf8)
    }

    static func members(_ set: SetValue) -> [[UInt8]] {
        var out: [[UInt8]] = []
        set.forEachElement {
            out.append([UInt8]($0.first))
            return true
        }
        return out
    }

    static func isCanonicalInteger(_ member: [UInt8]) -> Bool {
        member.withUnsafeBytes { IntSet.canonicalInteger($0) } != nil
    }

    @Test(arguments: [(1 as UInt64, false), (2, false), (3, true), (4, true), (5, false)])
    func aSetAgreesWithAModelThroughTheConversion(seed: UInt64, strings: Bool) {
        var g = SeededGenerator(seed: seed)
        var set = SetValue()
        var model: Set<[UInt8]> = []
        // Redis's rule: an intset until a member that is not a canonical integer, or past the limit.
        var converted = false
        let limit = EncodingLimits.shared.setMaxIntsetEntries.current
        for step in 0..<3000 {
            let member = Self.member(&g, strings: strings && step > 300)
            let adding = Int.random(in: 0..<10, using: &g) < (step < 1500 ? 8 : 3)
            let changed = member.withUnsafeBytes { set.apply(adding ? .add : .remove, position: -1, Element($0)) }
            if adding {
                #expect(changed == model.insert(member).inserted)
                if model.isEmpty == false && !converted && (!Self.isCanonicalInteger(member) || model.count > limit) {
                    converted = true
                }
            } else {
                #expect(changed == (model.remove(member) != nil))
            }
            #expect(set.count == model.count)
            #expect(set.encoding == (converted ? "hashtable" : "intset"), "step \(step)")
            let probe = Self.member(&g, strings: strings)
            #expect(probe.withUnsafeBytes { set.contains($0) } == model.contains(probe))
            if step % 250 == 0 || step == 2999 {
                let listed = Self.members(set)
                #expect(listed.count == model.count && Set(listed) == model)
                if set.encoding == "intset" {
                    let values = listed.map { Int64(String(decoding: $0, as: UTF8.self))! }
                    #expect(values == values.sorted(), "an intset lists in ascending order")
                }
                // A copy is equal and independent; a rebuild from forEachElement holds the same members.
                let copy = set.copy() as! SetValue
                #expect(Set(Self.members(copy)) == model && copy.encoding == set.encoding && copy.usedBytes > 0)
                _ = Array("only-in-the-copy".utf8).withUnsafeBytes { copy.apply(.add, position: -1, Element($0)) }
                #expect(!Array("only-in-the-copy".utf8).withUnsafeBytes { set.contains($0) })
                let rebuilt = SetValue()
                set.forEachElement { rebuilt.apply(.add, position: -1, $0); return true }
                #expect(Set(Self.members(rebuilt)) == model)
                #expect(set.usedBytes >= model.reduce(0) { $0 + min($1.count, 2) })
            }
            // The keyspace removes an emptied set: the next add makes a new one.
            if model.isEmpty {
                set = SetValue()
                converted = false
            }
        }
    }

    @Test func intsetsWidenAndKeepTheirOrder() {
        var ints = IntSet()
        let first = ints.insert(5), second = ints.insert(-3), again = ints.insert(5)
        #expect(first && second && !again)
        var width = ints.width, byteCount = ints.byteCount
        #expect(width == 2 && byteCount == 4)
        let wider = ints.insert(70_000)
        width = ints.width
        byteCount = ints.byteCount
        #expect(wider && width == 4 && byteCount == 12)
        let widest = ints.insert(Int64.min) && ints.insert(Int64.max)
        width = ints.width
        #expect(widest && width == 8)
        var values: [Int64] = []
        for index in 0..<ints.count { values.append(ints.value(at: index)) }
        #expect(values == [Int64.min, -3, 5, 70_000, Int64.max])
        let removed = ints.remove(70_000), removedAgain = ints.remove(70_000)
        let hasMinus3 = ints.contains(-3), has4 = ints.contains(4)
        width = ints.width
        #expect(removed && !removedAgain && hasMinus3 && !has4)
        #expect(width == 8, "the width never narrows, as Redis's intset")
        for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            #expect(Array(text.utf8).withUnsafeBytes { IntSet.canonicalInteger($0) } != nil, "\(text)")
            let value = Int64(text)!
            #expect(IntSet.withDecimal(value) { String(decoding: $0, as: UTF8.self) } == text)
        }
        for text in ["", "-", "-0", "01", "+1", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1e3"] {
            #expect(Array(text.utf8).withUnsafeBytes { IntSet.canonicalInteger($0) } == nil, "\(text)")
        }
    }

    /// Many members in and out: growth, shrinking and arena rewrites keep every member findable.
    @Test func theTableAgreesWithAModelThroughGrowthShrinkingAndRewrites() {
        var g = SeededGenerator(seed: 42)
        let table = SetTable()
        var model: Set<[UInt8]> = []
        for round in 0..<6 {
            let target = round % 2 == 0 ? 20_000 : 50
            while model.count != target {
                let member = Array("member-\(Int.random(in: 0..<60_000, using: &g))".utf8)
                if model.count < target {
                    #expect(member.withUnsafeBytes { table.insert($0) } == model.insert(member).inserted)
                } else if let victim = model.randomElement(using: &g) {
                    model.remove(victim)
                    #expect(victim.withUnsafeBytes { table.remove($0) })
                }
            }
            #expect(table.count == model.count)
            var seen: Set<[UInt8]> = []
            table.forEach { seen.insert([UInt8]($0)); return true }
            #expect(seen == model)
            for member in model.prefix(500) { #expect(member.withUnsafeBytes { table.contains($0) }) }
        }
    }

    /// SSCAN's guarantee: a member present from the scan's start to its end comes back at least once,
    /// while other members come and go and the table grows and shrinks between calls.
    @Test func aScanReturnsEveryMemberPresentThroughoutIt() {
        var g = SeededGenerator(seed: 7)
        for trial in 0..<20 {
            let table = SetTable()
            let stable = (0..<200).map { Array("stable-\(trial)-\($0)".utf8) }
            for member in stable { _ = member.withUnsafeBytes { table.insert($0) } }
            var transient: [[UInt8]] = []
            var seen: Set<[UInt8]> = []
            var cursor: UInt64 = 0
            var calls = 0
            repeat {
                cursor = table.scan(cursor: cursor, count: 10) { seen.insert([UInt8]($0)) }
                calls += 1
                // Grow by hundreds or shrink back, between calls.
                if Bool.random(using: &g) {
                    for _ in 0..<Int.random(in: 0..<800, using: &g) {
                        let member = Array("t-\(Int.random(in: 0..<1_000_000, using: &g))".utf8)
                        if member.withUnsafeBytes({ table.insert($0) }) { transient.append(member) }
                    }
                } else {
                    for member in transient { _ = member.withUnsafeBytes { table.remove($0) } }
                    transient.removeAll()
                }
            } while cursor != 0 && calls < 100_000
            #expect(cursor == 0)
            #expect(stable.allSatisfy { seen.contains($0) }, "trial \(trial)")
        }
    }

    @Test(arguments: ["intset", "hashtable"])
    func randomMembersAreUniform(encoding: String) {
        let set = SetValue()
        let names = (0..<10).map { encoding == "intset" ? "\($0 * 1000)" : "member\($0)" }
        for name in names { _ = Array(name.utf8).withUnsafeBytes { set.apply(.add, position: -1, Element($0)) } }
        #expect(set.encoding == encoding)
        var counts: [String: Int] = [:]
        for _ in 0..<20_000 { counts[String(decoding: set.randomMember(), as: UTF8.self), default: 0] += 1 }
        // Each is drawn 2,000 times in expectation (standard deviation about 42): far outside is a bias.
        #expect(Set(counts.keys) == Set(names))
        #expect(counts.values.allSatisfy { (1_500...2_500).contains($0) }, "\(counts)")
    }
}
