// The keyspace and its journal as the kv commands see them: the one place data commands touch
// storage. Every type of value is written against this protocol: strings through the byte reads and
// writes, collections (hashes, lists, sets, sorted sets) through typed reads and element effects
// (Sources/Store/Value.swift); what the server shares between connections is ServerState.swift,
// what it does to itself ServerControl.swift.

import Store

/// The keys and their values, and the log that makes their changes durable. Implemented by the
/// server over the durable store (Sources/Server/StoreAdapter.swift), and by an in-memory fake in
/// tests. Called on the event-loop thread only.
///
/// Mutations apply at once (every client sees them) and are logged before any reply that depends
/// on them leaves the server: holding those replies is the implementer's job. The store does not
/// know WATCH: the commands touch the keys they write (``ServerState/watches``).
public protocol DataStore: AnyObject {
    /// The number of keys.
    var count: Int { get }
    /// The typed read for strings: calls `body` with the string stored under `key` without copying
    /// it (GET's hot path); `body` must not call back into the store. One lookup tells found, missing
    /// and a key holding a collection (the command answers WRONGTYPE) apart.
    func withString(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void>
    /// Inserts or overwrites over bytes borrowed from the caller (SET's hot path: nothing is copied
    /// but into the store and its log). `deadline`: none, an absolute one (at or before `now`, the
    /// key is removed instead), or the one the key has (KEEPTTL, INCR, APPEND: found by the same
    /// lookup). - Throws: ``StoreError`` when the log cannot take the write.
    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64)
        throws(StoreError)
    /// Removes `key`. - Returns: whether it was present. - Throws: ``StoreError``.
    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool
    /// Removes every key. - Throws: ``StoreError``.
    func removeAll() throws(StoreError)
    /// Whether `key` exists at `now` (Unix ms) and when it expires.
    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry
    /// Gives a present key the absolute `deadline` (one at or before `now` removes the key), or with
    /// nil clears its deadline (PERSIST).
    /// - Returns: whether the key changed: with a deadline, whether it was present; with nil,
    ///   whether it had a deadline. - Throws: ``StoreError``.
    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool
    /// A uniformly sampled live key, or nil when there is none (RANDOMKEY).
    func randomKey(now: Int64) -> [UInt8]?
    /// One SCAN step: the live keys matching `pattern` (nil: all) and holding `type` (nil: any)
    /// among about `count` visited, and the next cursor (0: done). Keys present for the whole scan
    /// come back at least once.
    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType?, now: Int64)
        -> (cursor: UInt64, keys: [[UInt8]])
    /// What `key` holds (TYPE, OBJECT, MEMORY USAGE), or nil when absent. Asking is not an access.
    func inspect(_ key: [UInt8], now: Int64) -> KeyFacts?
    /// The typed read for collections: the collection of `type` at `key` (the caller must not change
    /// it, and uses it before the store changes again), or WRONGTYPE when the key holds another type.
    /// Not generic: a generic requirement is called unspecialized, and instantiates its result type's
    /// metadata at run time on every read (``withCollection(forKey:type:now:_:)`` is specialized
    /// where it is called).
    func collection(forKey key: [UInt8], type: ValueType, now: Int64) -> TypedLookup<any CollectionValue>
    /// Applies one element effect to the collection of `type` at `key` and logs it: an add to an
    /// absent key creates the collection, a removal that empties it removes the key (Redis's rule).
    /// The store works out the effect that undoes it (kept to roll back if the log fails) while it
    /// makes the change: a command need not read the element first.
    /// `position` is a list's (0 for other types); `element` is borrowed for the call: its fields are
    /// not copied (the log copies them once).
    /// - Throws: ``StoreError`` when the log cannot take the write.
    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType,
               now: Int64) throws(StoreError) -> ElementWrite
    /// Stores a whole collection at `key`, replacing any value (SINTERSTORE, ZUNIONSTORE, …; `object`
    /// is handed over, not copied); an empty `object` removes the key. - Throws: ``StoreError``.
    func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64)
        throws(StoreError)
    /// RENAME (`copying` false) or COPY (true) of a value of any type and its deadline, replacing what
    /// `destination` held (the caller checks NX / REPLACE). - Returns: false when `source` is absent.
    /// - Throws: ``StoreError``.
    func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool, now: Int64) throws(StoreError) -> Bool
    /// Runs `body`, whose mutations form one unit in the log (one EXEC, one script, one command that
    /// changes several elements): after a crash they are replayed all or none. Inside an open unit,
    /// `body` joins it.
    func atomically(_ body: () -> Void)
}

/// What a key holds, as TYPE, OBJECT ENCODING, OBJECT IDLETIME and MEMORY USAGE report it.
public struct KeyFacts: Sendable, Equatable {
    public var type: ValueType
    /// OBJECT ENCODING's answer (`embstr`, `listpack`, `hashtable`, …).
    public var encoding: String
    /// Whole seconds since the key was last read or written.
    public var idleSeconds: Int
    /// The bytes the key accounts for in the server's memory account.
    public var usedBytes: Int

    public init(type: ValueType, encoding: String, idleSeconds: Int, usedBytes: Int) {
        self.type = type
        self.encoding = encoding
        self.idleSeconds = idleSeconds
        self.usedBytes = usedBytes
    }
}

extension DataStore {
    /// The typed read for collections: `body` sees the collection of `type` at `key` (it must not
    /// change it or call back into the store), or WRONGTYPE when the key holds another type.
    public func withCollection<R>(
        forKey key: [UInt8], type: ValueType, now: Int64, _ body: (any CollectionValue) throws -> R
    ) rethrows -> TypedLookup<R> {
        switch self.collection(forKey: key, type: type, now: now) {
        case .missing: return .missing
        case .wrongType(let held): return .wrongType(held)
        case .found(let object): return .found(try body(object))
        }
    }

    /// ``apply(_:position:_:to:type:now:)`` of a borrowed element at position 0 (a hash field, a set member).
    public func apply(_ operation: ElementOperation, _ element: Element, to key: [UInt8], type: ValueType, now: Int64)
        throws(StoreError) -> ElementWrite
    {
        try self.apply(operation, position: 0, element, to: key, type: type, now: now)
    }

    /// ``apply(_:position:_:to:type:now:)`` of an owned effect.
    public func apply(_ effect: ElementEffect, to key: [UInt8], type: ValueType, now: Int64) throws(StoreError) -> ElementWrite {
        let result = effect.withElement { element in
            Result { () throws(StoreError) in
                try self.apply(effect.operation, position: effect.position, element, to: key, type: type, now: now)
            }
        }
        return try result.get()
    }

    /// Whether `key` exists at `now`, whatever its type.
    public func contains(_ key: [UInt8], now: Int64) -> Bool {
        self.expiry(forKey: key, now: now) != .missing
    }

    /// Calls `body` with the string stored under `key` (``withString(forKey:_:)``). - Returns: false
    /// when the key is absent or holds a collection.
    public func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        if case .found = self.withString(forKey: key, body) { return true }
        return false
    }

    /// A copy of the string stored under `key`, or nil (absent, or a collection).
    public func value(forKey key: [UInt8]) -> [UInt8]? {
        var value: [UInt8]?
        _ = self.withString(forKey: key[...]) { value = [UInt8]($0) }
        return value
    }

    /// Inserts or overwrites over borrowed bytes, clearing any deadline. - Throws: ``StoreError``.
    public func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StoreError) {
        try self.set(borrowing: value, forKey: key, deadline: .cleared, now: 0)
    }

    /// Inserts or overwrites with an absolute deadline (nil: none); one at or before `now` removes the
    /// key instead. - Throws: ``StoreError``.
    public func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StoreError) {
        try self.set(borrowing: value[...], forKey: key[...], deadline: deadline.map { .at($0) } ?? .cleared, now: now)
    }

    /// Inserts or overwrites, clearing any deadline. - Throws: ``StoreError``.
    public func set(_ value: [UInt8], forKey key: [UInt8]) throws(StoreError) {
        try self.set(borrowing: value[...], forKey: key[...], deadline: .cleared, now: 0)
    }

    /// Every live key matching `pattern` (KEYS): one pass of ``scan(cursor:count:pattern:type:now:)``,
    /// each key once (nothing changes the keyspace between its steps), in the keyspace's hash order
    /// as Redis's KEYS.
    public func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var cursor: UInt64 = 0
        repeat {
            let step = self.scan(cursor: cursor, count: 1 << 20, pattern: pattern, type: nil, now: now)
            keys.append(contentsOf: step.keys)
            cursor = step.cursor
        } while cursor != 0
        return keys
    }
}

extension KeyExpiry {
    /// The deadline (Unix ms), if the key has one.
    var milliseconds: Int64? {
        if case .at(let deadline) = self { return deadline }
        return nil
    }
}
