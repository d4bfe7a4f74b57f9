// Test-only collection types that exercise the value model until the real types land: a set and a hash,
// each with a compact encoding (one block, no object per element, reported as `listpack`) that turns
// into a real structure (`hashtable`) past `compactLimit` elements, as Redis's do.

@testable import Store

/// A set of byte strings. Compact: the members in one ``PackedEntries`` block, in insertion order.
final class TestSet: CollectionValue {
    static let compactLimit = 4
    private var packed = PackedEntries()
    private var table: Set<[UInt8]>?

    var type: ValueType { .set }
    var encoding: String { self.table == nil ? "listpack" : "hashtable" }
    var count: Int { self.table?.count ?? self.packed.count }
    var usedBytes: Int {
        guard let table else { return 32 + self.packed.byteCount }
        return 64 + table.reduce(0) { $0 + 16 + $1.count }
    }

    var members: Set<[UInt8]> {
        if let table { return table }
        var members: Set<[UInt8]> = []
        self.packed.forEach { bytes, _ in
            members.insert([UInt8](bytes))
            return true
        }
        return members
    }

    func copy() -> any CollectionValue {
        let copy = TestSet()
        copy.packed = self.packed.duplicate()
        copy.table = self.table
        return copy
    }

    func forEachElement(_ body: (Element) -> Bool) {
        if let table {
            for member in table {
                guard member.withUnsafeBytes({ body(Element($0)) }) else { return }
            }
        } else {
            self.packed.forEach { bytes, _ in body(Element(bytes)) }
        }
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element) -> Bool {
        if self.table != nil {
            let member = [UInt8](element.first)
            switch operation {
            case .add: return self.table!.insert(member).inserted
            case .remove: return self.table!.remove(member) != nil
            }
        }
        let offset = self.packed.firstOffset(of: element.first)
        switch operation {
        case .add:
            guard offset == nil else { return false }
            if self.packed.count == Self.compactLimit {
                // Past the limit: a real table from now on (as Redis never converts back).
                var table = self.members
                table.insert([UInt8](element.first))
                self.table = table
                self.packed = PackedEntries()
            } else {
                self.packed.append(element.first)
            }
        case .remove:
            guard let offset else { return false }
            self.packed.remove(atOffset: offset)
        }
        return true
    }
}

/// A hash of byte-string fields to byte-string values, in field insertion order.
final class TestHash: CollectionValue {
    static let compactLimit = 4
    private var pairs: [([UInt8], [UInt8])] = []
    private var isLarge = false

    var type: ValueType { .hash }
    var encoding: String { self.isLarge ? "hashtable" : "listpack" }
    var count: Int { self.pairs.count }
    var usedBytes: Int { (self.isLarge ? 64 : 32) + self.pairs.reduce(0) { $0 + 8 + $1.0.count + $1.1.count } }
    var fields: [[UInt8]: [UInt8]] { Dictionary(self.pairs, uniquingKeysWith: { $1 }) }

    func copy() -> any CollectionValue {
        let copy = TestHash()
        copy.pairs = self.pairs
        copy.isLarge = self.isLarge
        return copy
    }

    func forEachElement(_ body: (Element) -> Bool) {
        for (field, value) in self.pairs {
            guard field.withUnsafeBytes({ f in value.withUnsafeBytes { v in body(Element(f, v)) } }) else { return }
        }
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element) -> Bool {
        let field = [UInt8](element.first)
        let index = self.pairs.firstIndex { $0.0 == field }
        switch operation {
        case .add:
            let value = [UInt8](element.second)
            if let index {
                guard self.pairs[index].1 != value else { return false }
                self.pairs[index].1 = value
            } else {
                self.pairs.append((field, value))
                if self.pairs.count > Self.compactLimit { self.isLarge = true }
            }
        case .remove:
            guard let index else { return false }
            self.pairs.remove(at: index)
        }
        return true
    }
}

enum TestTypes {
    /// Registers the test types (idempotent; every test that loads or replays collections calls it).
    /// None for sorted sets: tests use `.zset` as the type this server has no implementation of.
    static func register() {
        CollectionTypes.register(.set) { TestSet() }
        CollectionTypes.register(.hash) { TestHash() }
        CollectionTypes.register(.list) { ListValue() }  // the real type: the same one BuiltInTypes registers
    }

    static func set(_ members: [[UInt8]]) -> TestSet {
        let set = TestSet()
        for member in members { member.withUnsafeBytes { _ = set.apply(.add, position: -1, Element($0)) } }
        return set
    }

    /// A hash's fields, whichever hash type holds them: servers started by other test targets in this
    /// process register the real one (BuiltInTypes), which a replay here may then build.
    static func fields(of object: any CollectionValue) -> [[UInt8]: [UInt8]] {
        var fields: [[UInt8]: [UInt8]] = [:]
        object.forEachElement { element in
            fields[[UInt8](element.first)] = [UInt8](element.second)
            return true
        }
        return fields
    }

    static func hash(_ fields: [([UInt8], [UInt8])]) -> TestHash {
        let hash = TestHash()
        for (field, value) in fields {
            field.withUnsafeBytes { f in value.withUnsafeBytes { v in _ = hash.apply(.add, position: -1, Element(f, v)) } }
        }
        return hash
    }
}
