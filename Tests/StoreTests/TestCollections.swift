// Test-only collection types that exercise the value model until the real types land: a set and a hash,
// each with a compact encoding (one block, no object per element, reported as `listpack`) that turns
// into a real structure (`hashtable`) past `compactLimit` elements, as Redis's do.

@testable import Store

/// A set of byte strings. Compact: members length-prefixed in one byte array, in insertion order.
final class TestSet: CollectionValue {
    static let compactLimit = 4
    private var block: [UInt8]? = []
    private var table: Set<[UInt8]> = []

    var type: ValueType { .set }
    var encoding: String { self.block == nil ? "hashtable" : "listpack" }
    var count: Int { self.block.map { Self.members(of: $0).count } ?? self.table.count }
    var usedBytes: Int {
        if let block { return 32 + block.count }
        return 64 + self.table.reduce(0) { $0 + 16 + $1.count }
    }

    var members: Set<[UInt8]> { self.block.map { Set(Self.members(of: $0)) } ?? self.table }

    static func members(of block: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = 0
        while offset < block.count {
            let length = Int(block[offset]) | Int(block[offset + 1]) << 8 | Int(block[offset + 2]) << 16
                | Int(block[offset + 3]) << 24
            result.append(Array(block[(offset + 4)..<(offset + 4 + length)]))
            offset += 4 + length
        }
        return result
    }

    func copy() -> any CollectionValue {
        let copy = TestSet()
        copy.block = self.block
        copy.table = self.table
        return copy
    }

    func forEachElement(_ body: (Element) -> Bool) {
        let members = self.block.map { Self.members(of: $0) } ?? Array(self.table)
        for member in members {
            guard member.withUnsafeBytes({ body(Element($0)) }) else { return }
        }
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element) -> Bool {
        let member = [UInt8](element.first)
        var members = self.members
        switch operation {
        case .add: guard members.insert(member).inserted else { return false }
        case .remove: guard members.remove(member) != nil else { return false }
        }
        if var block = self.block, operation == .add, members.count <= Self.compactLimit {
            withUnsafeBytes(of: UInt32(member.count).littleEndian) { block.append(contentsOf: $0) }
            block.append(contentsOf: member)
            self.block = block
        } else if self.block != nil, operation == .remove {
            var rebuilt: [UInt8] = []
            for kept in Self.members(of: self.block!) where kept != member {
                withUnsafeBytes(of: UInt32(kept.count).littleEndian) { rebuilt.append(contentsOf: $0) }
                rebuilt.append(contentsOf: kept)
            }
            self.block = rebuilt
        } else {
            self.block = nil  // past the limit: a real table from now on (as Redis never converts back)
            self.table = members
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
    static func register() {
        CollectionTypes.register(.set) { TestSet() }
        CollectionTypes.register(.hash) { TestHash() }
    }

    static func set(_ members: [[UInt8]]) -> TestSet {
        let set = TestSet()
        for member in members { member.withUnsafeBytes { _ = set.apply(.add, position: -1, Element($0)) } }
        return set
    }

    static func hash(_ fields: [([UInt8], [UInt8])]) -> TestHash {
        let hash = TestHash()
        for (field, value) in fields {
            field.withUnsafeBytes { f in value.withUnsafeBytes { v in _ = hash.apply(.add, position: -1, Element(f, v)) } }
        }
        return hash
    }
}
