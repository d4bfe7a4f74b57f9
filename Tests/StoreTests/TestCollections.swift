// Test-only collection types that exercise the value model until the real types land: a hash with a
// compact encoding (reported as `listpack`) that turns into a real structure (`hashtable`) past
// `compactLimit` elements, as Redis's do. Sets and lists are the real types (SetValue.swift, ListValue.swift).

@testable import Store

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
    /// None for sorted sets: until a server started in the same process registers the built-in types
    /// (Sources/Store/Types/BuiltInTypes.swift), `.zset` is the type this store has no implementation of.
    static func register() {
        // The real set (as the server registers it): a test-only set here would race with servers that
        // tests start in this process, each registering the built-in types.
        CollectionTypes.register(.set) { SetValue() }
        CollectionTypes.register(.hash) { TestHash() }
        CollectionTypes.register(.list) { ListValue() }  // the real type: the same one BuiltInTypes registers
    }

    static func set(_ members: [[UInt8]]) -> SetValue {
        let set = SetValue()
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
