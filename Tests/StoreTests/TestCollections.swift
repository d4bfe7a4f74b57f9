// The collection types the store tests build values with: the real ones (Sources/Store/Types), the
// same the server registers. A test-only type here would race with the servers other tests start in
// this process (each registers the built-in types, and a command casts what it finds to the real type).

@testable import Store

enum TestTypes {
    /// Registers the test types (idempotent; every test that loads or replays collections calls it).
    /// None for sorted sets: until a server started in the same process registers the built-in types
    /// (Sources/Store/Types/BuiltInTypes.swift), `.zset` is the type this store has no implementation of.
    static func register() {
        // The real set (as the server registers it): a test-only set here would race with servers that
        // tests start in this process, each registering the built-in types.
        CollectionTypes.register(.set) { SetValue() }
        CollectionTypes.register(.hash) { HashValue() }
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

    static func hash(_ fields: [([UInt8], [UInt8])]) -> HashValue {
        let hash = HashValue()
        for (field, value) in fields {
            field.withUnsafeBytes { f in value.withUnsafeBytes { v in _ = hash.apply(.add, position: -1, Element(f, v)) } }
        }
        return hash
    }
}
