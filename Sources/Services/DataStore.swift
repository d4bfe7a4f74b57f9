// The keyspace and its journal as the kv commands see them: the one place data commands touch
// storage. Every type of value is written against this protocol (today: strings); what the server
// shares between connections is ServerState.swift, what it does to itself ServerControl.swift.

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
    /// Calls `body` with the value stored under `key` without copying it (GET's hot path); `body`
    /// must not call back into the store. - Returns: false when the key is absent.
    func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool
    /// Inserts or overwrites over bytes borrowed from the request, clearing any deadline (SET's hot
    /// path: nothing is copied but into the store and its log).
    /// - Throws: ``StoreError`` when the log cannot take the write.
    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StoreError)
    /// Inserts or overwrites with an absolute deadline (nil: none). A deadline at or before `now`
    /// removes the key instead. - Throws: ``StoreError``.
    func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StoreError)
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
    /// One SCAN step: the live keys matching `pattern` (nil: all) among about `count` visited,
    /// and the next cursor (0: done). Keys present for the whole scan come back at least once.
    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]])
    /// Every live key matching `pattern` (KEYS).
    func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]]
    /// Whole seconds since `key` was last read or written (OBJECT IDLETIME), or nil when absent.
    /// Asking does not count as an access.
    func idleSeconds(forKey key: [UInt8], now: Int64) -> Int?
    /// The bytes `key` accounts for in the server's memory account, or nil when absent.
    func usedBytes(forKey key: [UInt8], now: Int64) -> Int?
    /// Runs `body`, whose mutations form one unit in the log (one EXEC): after a crash they are
    /// replayed all or none. Groups do not nest.
    func atomically(_ body: () -> Void)
}

extension DataStore {
    /// A copy of the value stored under `key`, or nil.
    public func value(forKey key: [UInt8]) -> [UInt8]? {
        var value: [UInt8]?
        _ = self.withValue(forKey: key[...]) { value = [UInt8]($0) }
        return value
    }

    /// Inserts or overwrites, clearing any deadline. - Throws: ``StoreError``.
    public func set(_ value: [UInt8], forKey key: [UInt8]) throws(StoreError) {
        try self.set(value, forKey: key, deadline: nil, now: 0)
    }
}

extension KeyExpiry {
    /// The deadline (Unix ms), if the key has one.
    var milliseconds: Int64? {
        if case .at(let deadline) = self { return deadline }
        return nil
    }
}
