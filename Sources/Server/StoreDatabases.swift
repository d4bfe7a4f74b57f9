// The databases other than 0 as the commands see them (Sources/Services/Commands+Databases.swift): a
// ``DataStore`` per database over the one durable store, each operation run inside
// ``DurableStore/withDatabase(_:_:)`` (Sources/Store/Databases.swift), and the cross-database commands.
// Database 0's store is the plain ``StoreAdapter``: its hot paths never look at a database index.
// Mutation sequences are noted on that one adapter, which the kv connection watches to hold replies
// until they are durable (KVConnection.swift).

import Services
import Store

/// Every database, over one ``DurableStore``. Loop thread only.
final class StoreDatabases: DatabaseSet {
    let main: StoreAdapter
    let count: Int
    /// Made at a database's first use (`databases` may be large).
    private var others: [Int: DatabaseAdapter] = [:]

    init(main: StoreAdapter, count: Int) {
        self.main = main
        self.count = count
    }

    func store(_ index: Int) -> any DataStore {
        if index == 0 { return self.main }
        if let store = self.others[index] { return store }
        let store = DatabaseAdapter(main: self.main, index: index)
        self.others[index] = store
        return store
    }

    func transfer(_ key: [UInt8], as destinationKey: [UInt8], from source: Int, to destination: Int, copying: Bool,
                  replacing: Bool, now: Int64) throws(StoreError) -> TransferOutcome
    {
        let outcome = try self.main.store.transfer(key, as: destinationKey, from: source, to: destination, copying: copying,
                                                   replacing: replacing, now: now)
        if case .done(let sequence) = outcome { self.main.noteMutation(sequence) }
        return outcome
    }

    func swap(_ first: Int, _ second: Int, now: Int64) throws(StoreError) {
        self.main.noteMutation(try self.main.store.swapDatabases(first, second, now: now))
    }

    func removeAll() throws(StoreError) {
        self.main.noteMutation(try self.main.store.removeAllDatabases())
    }

    func sizes() -> [(index: Int, keys: Int, withDeadline: Int)] { self.main.store.databaseSizes() }
}

/// ``DataStore`` of database `index` (≠ 0): each call is database 0's adapter's, inside the database.
final class DatabaseAdapter: DataStore {
    let main: StoreAdapter
    let index: Int
    private var store: DurableStore { self.main.store }

    init(main: StoreAdapter, index: Int) {
        self.main = main
        self.index = index
    }

    var count: Int { self.store.withDatabase(self.index) { self.main.count } }

    func withString(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void> {
        self.store.withDatabase(self.index) { self.main.withString(forKey: key, body) }
    }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64)
        throws(StoreError)
    {
        try self.store.withDatabase(self.index) { () throws(StoreError) in
            try self.main.set(borrowing: value, forKey: key, deadline: deadline, now: now)
        }
    }

    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool {
        try self.store.withDatabase(self.index) { () throws(StoreError) in try self.main.removeValue(forKey: key) }
    }

    func removeAll() throws(StoreError) {
        try self.store.withDatabase(self.index) { () throws(StoreError) in try self.main.removeAll() }
    }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry {
        self.store.withDatabase(self.index) { self.main.expiry(forKey: key, now: now) }
    }

    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool {
        try self.store.withDatabase(self.index) { () throws(StoreError) in try self.main.expire(key, at: deadline, now: now) }
    }

    func randomKey(now: Int64) -> [UInt8]? { self.store.withDatabase(self.index) { self.main.randomKey(now: now) } }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        self.store.withDatabase(self.index) { self.main.scan(cursor: cursor, count: count, pattern: pattern, type: type, now: now) }
    }

    func inspect(_ key: [UInt8], now: Int64) -> KeyFacts? {
        self.store.withDatabase(self.index) { self.main.inspect(key, now: now) }
    }

    func collection(forKey key: [UInt8], type: ValueType, now: Int64) -> TypedLookup<any CollectionValue> {
        self.store.enterDatabase(self.index)
        defer { self.store.leaveDatabase() }
        return self.main.collection(forKey: key, type: type, now: now)
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType,
               now: Int64) throws(StoreError) -> ElementWrite {
        try self.store.withDatabase(self.index) { () throws(StoreError) -> ElementWrite in
            try self.main.apply(operation, position: position, element, to: key, type: type, now: now)
        }
    }

    func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64)
        throws(StoreError)
    {
        try self.store.withDatabase(self.index) { () throws(StoreError) in
            try self.main.setCollection(object, forKey: key, deadline: deadline, now: now)
        }
    }

    func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool, now: Int64) throws(StoreError) -> Bool {
        try self.store.withDatabase(self.index) { () throws(StoreError) -> Bool in
            try self.main.relocate(source, to: destination, copying: copying, now: now)
        }
    }

    /// The unit opens in database 0 (outside the database): each call inside logs its own database
    /// record within it.
    func atomically(_ body: () -> Void) { self.main.atomically(body) }
}
