// Small sets and sorted sets kept in their slots without an object (Sources/Store/KeyTable+Compact.swift):
// after a write the slot holds the members' block alone; a read gets an object back; a value something
// else still holds is never taken out of its object; and through random writes, reads, renames, copies
// and removals against a model, the contents, the type tags and the exact byte account hold
// (`checkInvariants` after every step, which reads a compact slot without expanding it).

import Testing

@testable import Store

@Suite struct CompactSlotTests {
    init() {
        TestTypes.register()
        // The real sorted set, as every server started in this process registers it (BuiltInTypes.swift).
        CollectionTypes.register(.zset) { SortedSetValue() }
    }

    private static func isCompact(_ keyspace: Keyspace, _ key: [UInt8]) -> Bool {
        let index = key.withUnsafeBytes { keyspace.find($0) }!
        return Slot.isCompact(keyspace.table.pointee.slot(index))
    }

    private static func add(_ keyspace: Keyspace, _ key: [UInt8], _ member: [UInt8]) {
        key.withUnsafeBytes { k in
            member.withUnsafeBytes { _ = keyspace.applyElement(k, type: .set, .add, position: -1, Element($0)) }
        }
    }

    private static func add(_ keyspace: Keyspace, _ key: [UInt8], _ member: [UInt8], score: Double) {
        key.withUnsafeBytes { k in
            member.withUnsafeBytes { m in
                withUnsafeBytes(of: score) { _ = keyspace.applyElement(k, type: .zset, .add, position: -1, Element(m, $0)) }
            }
        }
    }

    private static func remove(_ keyspace: Keyspace, _ key: [UInt8], _ member: [UInt8], type: ValueType) {
        key.withUnsafeBytes { k in
            member.withUnsafeBytes { _ = keyspace.applyElement(k, type: type, .remove, position: -1, Element($0)) }
        }
    }

    /// The elements at `key` (a read: expands a compact slot).
    private static func elements(_ keyspace: Keyspace, _ key: [UInt8]) -> [[UInt8]: [UInt8]]? {
        guard let index = key.withUnsafeBytes({ keyspace.find($0) }), let object = keyspace.collection(at: index) else {
            return nil
        }
        var found: [[UInt8]: [UInt8]] = [:]
        object.forEachElement { element in
            found[[UInt8](element.first)] = [UInt8](element.second)
            return true
        }
        return found
    }

    @Test func smallSetsAndSortedSetsAreKeptWithoutAnObjectAndReadBack() {
        let keyspace = Keyspace()
        // Members of each intset width (2, 4, 8 bytes), inside the object's 20 bytes and past them.
        let shapes: [(key: String, members: [Int64])] = [
            ("s2", [1, 2, 3]), ("s2big", Array(0..<15)), ("s4", [70_000, 70_001, 70_002]),
            ("s4big", (0..<12).map { 100_000 + $0 }), ("s8", [1 << 40, -(1 << 41)]),
        ]
        for (key, members) in shapes {
            for member in members { Self.add(keyspace, Array(key.utf8), Array(String(member).utf8)) }
            #expect(Self.isCompact(keyspace, Array(key.utf8)), "\(key)")
        }
        for n in 0..<10 { Self.add(keyspace, Array("z".utf8), Array("member-\(n)".utf8), score: n % 2 == 0 ? Double(n) : Double(n) + 0.5) }
        #expect(Self.isCompact(keyspace, Array("z".utf8)))
        keyspace.checkInvariants()
        let compactBytes = keyspace.usedBytes
        for (key, members) in shapes {
            let read = Self.elements(keyspace, Array(key.utf8))
            #expect(read.map { Set($0.keys) } == Set(members.map { Array(String($0).utf8) }), "\(key)")
            #expect(!Self.isCompact(keyspace, Array(key.utf8)), "a read leaves the object in the slot")
        }
        let zset = Self.elements(keyspace, Array("z".utf8))!
        #expect(zset.count == 10)
        #expect(zset[Array("member-3".utf8)]?.withUnsafeBytes { $0.loadUnaligned(as: Double.self) } == 3.5)
        // Expanded, each value reports what its compact form accounted for.
        keyspace.checkInvariants()
        #expect(keyspace.usedBytes == compactBytes)
        // The next write makes them compact again; removing the last member removes the key.
        Self.add(keyspace, Array("s4".utf8), Array("5".utf8))
        #expect(Self.isCompact(keyspace, Array("s4".utf8)))
        for member: Int64 in [70_000, 70_001, 70_002, 5] { Self.remove(keyspace, Array("s4".utf8), Array(String(member).utf8), type: .set) }
        #expect(Array("s4".utf8).withUnsafeBytes { keyspace.find($0) } == nil)
        keyspace.checkInvariants()
    }

    @Test func aValueStillHeldElsewhereStaysInItsObject() {
        let keyspace = Keyspace()
        let key = Array("held".utf8)
        Self.add(keyspace, key, Array("1".utf8))
        #expect(Self.isCompact(keyspace, key))
        func writeWhileHolding() {
            let held = keyspace.collection(at: key.withUnsafeBytes { keyspace.find($0) }!)!
            Self.add(keyspace, key, Array("2".utf8))
            Self.add(keyspace, key, Array("3".utf8))
            // The slot kept the object the caller holds, which sees every write.
            #expect(!Self.isCompact(keyspace, key))
            #expect((held as! SetValue).members.count == 3)
            Self.remove(keyspace, key, Array("1".utf8), type: .set)
            #expect(held.count == 2)
        }
        writeWhileHolding()
        Self.add(keyspace, key, Array("4".utf8))
        #expect(Self.isCompact(keyspace, key), "no other holder now")
        #expect(Self.elements(keyspace, key).map { Set($0.keys) } == [Array("2".utf8), Array("3".utf8), Array("4".utf8)])
        keyspace.checkInvariants()
    }

    @Test func randomWritesReadsAndMovesAgreeWithAModel() {
        let keyspace = Keyspace()
        var sets: [[UInt8]: Set<[UInt8]>] = [:]
        var zsets: [[UInt8]: [[UInt8]: Double]] = [:]
        var random = SeededGenerator(seed: 0xC0_4AC7)
        func member() -> [UInt8] {
            switch random.next() % 8 {
            case 0: return Array("m\(random.next() % 40)".utf8)  // not an integer: a table from then on
            case 1: return Array(String(Int64(bitPattern: random.next()) >> 8).utf8)  // 8 bytes
            case 2, 3: return Array(String(70_000 + random.next() % 40).utf8)  // 4 bytes
            default: return Array(String(random.next() % 40).utf8)  // 2 bytes
            }
        }
        func score() -> Double {
            random.next() % 3 == 0 ? Double(random.next() % 1_000) / 8 : Double(Int64(random.next() % 2_000_000) - 1_000_000)
        }
        for step in 0..<6_000 {
            let setKey = Array("set:\(random.next() % 12)".utf8)
            let zsetKey = Array("zset:\(random.next() % 12)".utf8)
            switch random.next() % 10 {
            case 0, 1, 2:
                let m = member()
                Self.add(keyspace, setKey, m)
                sets[setKey, default: []].insert(m)
            case 3:
                let m = member()
                Self.remove(keyspace, setKey, m, type: .set)
                sets[setKey]?.remove(m)
                if sets[setKey]?.isEmpty == true { sets[setKey] = nil }
            case 4, 5:
                // Members up to 70 bytes: past zset-max-listpack-value (64), a skiplist from then on.
                let length = random.next() % 50 == 0 ? 70 : 1 + Int(random.next() % 12)
                let m = [UInt8](repeating: UInt8(ascii: "a") + UInt8(random.next() % 20), count: length)
                let s = score()
                Self.add(keyspace, zsetKey, m, score: s)
                zsets[zsetKey, default: [:]][m] = s == 0 ? 0 : s
            case 6:
                let m = [UInt8](repeating: UInt8(ascii: "a") + UInt8(random.next() % 20), count: 1 + Int(random.next() % 12))
                Self.remove(keyspace, zsetKey, m, type: .zset)
                zsets[zsetKey]?[m] = nil
                if zsets[zsetKey]?.isEmpty == true { zsets[zsetKey] = nil }
            case 7:
                // A read (expands), checked against the model.
                #expect(Self.elements(keyspace, setKey).map { Set($0.keys) } == sets[setKey], "step \(step)")
                let read = Self.elements(keyspace, zsetKey)?.mapValues { $0.withUnsafeBytes { $0.loadUnaligned(as: Double.self) } }
                #expect(read == zsets[zsetKey], "step \(step)")
            case 8:
                // RENAME or COPY onto another key of the same type (moves or copies the value).
                let target = Array("set:\(random.next() % 12)".utf8)
                if random.next() % 2 == 0 {
                    let moved = setKey.withUnsafeBytes { s in target.withUnsafeBytes { keyspace.rename(s, to: $0) } }
                    #expect(moved == (sets[setKey] != nil))
                    if let value = sets[setKey], setKey != target { sets[target] = value; sets[setKey] = nil }
                } else {
                    let copied = setKey.withUnsafeBytes { s in target.withUnsafeBytes { keyspace.copy(s, to: $0) } }
                    #expect(copied == (sets[setKey] != nil))
                    if let value = sets[setKey] { sets[target] = value }
                }
            default:
                let removed = zsetKey.withUnsafeBytes { keyspace.remove($0) }
                #expect(removed == (zsets.removeValue(forKey: zsetKey) != nil), "step \(step)")
            }
            keyspace.checkInvariants()
        }
        for (key, members) in sets { #expect(Self.elements(keyspace, key).map { Set($0.keys) } == members) }
        for (key, scores) in zsets {
            #expect(Self.elements(keyspace, key)?.mapValues { $0.withUnsafeBytes { $0.loadUnaligned(as: Double.self) } } == scores)
        }
        #expect(keyspace.count == sets.count + zsets.count)
    }
}
