// The collection types the server stores, registered with ``CollectionTypes`` so that the log and
// `database.txt` can build them (Value.swift). Each type's file adds its line here.

/// Registers every built-in collection type. Called once at start-up by the server (Server.swift)
/// before its store opens; store-level tests that use the real types call it too.
public enum BuiltInTypes {
    public static func register() {
        CollectionTypes.register(.list) { ListValue() }
        CollectionTypes.register(.zset) { SortedSetValue() }
        CollectionTypes.register(.set) { SetValue() }
        CollectionTypes.register(.hash) { HashValue() }
    }
}
