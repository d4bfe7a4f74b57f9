// What the kv commands run against (data store, server state, control) over a real DurableStore
// (fsync `no`, in a scratch directory), as the server's StoreAdapter is, without the loop:
// replies are never held, and the log is written when the harness asks. Lets the kv targets
// check that whatever the commands did to the store comes back the same after a restart.

import Services
import Store

/// The fixed wall clock of every fuzz run, so replays of an input behave the same.
public enum FuzzClock {
    public static let seconds = 1_700_000_000
    public static let milliseconds = Int64(seconds) * 1000
    public static func now() -> (seconds: Int, microseconds: Int) { (seconds, 0) }
}

/// What the kv commands run against in a fuzz run: a ``DataStore`` over a ``DurableStore``, a
/// ``ServerState`` with one connection registered in its clients, and a ``ServerControl`` that
/// records what it was asked.
public final class StoreContext {
    public let store: DurableStore
    public let state = ServerState()
    /// The three, as a session takes them.
    public private(set) var context: CommandContext!
    /// What MONITOR sends this connection (kept apart from its replies).
    public var monitorOutput: [UInt8] = []
    /// Whether CLIENT KILL killed this connection.
    public var killed = false

    /// Opens a store in `directory`. - Throws: the store's error.
    public init(directory: String, clientID: Int) throws(StoreError) {
        BuiltInTypes.register()  // as the server does: the kv targets reach every data type
        self.store = try DurableStore(configuration: DurableStore.Configuration(
            directory: directory, fsync: .no, clock: { FuzzClock.milliseconds }))
        self.context = CommandContext(
            store: FuzzDataStore(store: self.store), state: self.state,
            control: FuzzControl(store: self.store, state: self.state))
        self.state.clients.register(
            ClientRecord(id: clientID, address: "127.0.0.1:40000", localAddress: "127.0.0.1:9877", fd: 9,
                         connectedAtSeconds: FuzzClock.seconds),
            kill: { [unowned self] in self.killed = true },
            send: { [unowned self] bytes in self.monitorOutput += bytes })
    }

    /// Every live key with its value and deadline at the fuzz clock, sorted by key.
    public func contents() -> [Entry] {
        Self.contents(of: self.store)
    }

    /// One key's state.
    public struct Entry: Equatable {
        public let key: [UInt8]
        public let value: [UInt8]
        public let expiry: KeyExpiry

        public init(key: [UInt8], value: [UInt8], expiry: KeyExpiry) {
            self.key = key
            self.value = value
            self.expiry = expiry
        }
    }

    /// Every live key of `store` at the fuzz clock, sorted by key.
    public static func contents(of store: DurableStore) -> [Entry] {
        let now = FuzzClock.milliseconds
        return store.keys(matching: Array("*".utf8), now: now).sorted { $0.lexicographicallyPrecedes($1) }.compactMap { key in
            guard let value = store.value(forKey: key, now: now) else { return nil }
            return Entry(key: key, value: value, expiry: store.expiry(forKey: key, now: now))
        }
    }
}

/// ``DataStore`` over a ``DurableStore``, as the server's StoreAdapter is, without the loop.
final class FuzzDataStore: DataStore {
    let store: DurableStore

    init(store: DurableStore) { self.store = store }

    var count: Int { self.store.count }

    func withString(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void> {
        key.withUnsafeBytes { k in self.store.withString(forKey: k, body) }
    }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64)
        throws(StoreError)
    {
        let outcome = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                Result { () throws(StoreError) -> UInt64 in try self.store.set(v, forKey: k, deadline: deadline, now: now) }
            }
        }
        _ = try outcome.get()
    }

    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool {
        try self.store.removeValue(forKey: key) != nil
    }

    func removeAll() throws(StoreError) { _ = try self.store.removeAll() }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry { self.store.expiry(forKey: key, now: now) }

    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool {
        if let deadline { return try self.store.expire(key, at: deadline, now: now) != nil }
        return try self.store.persist(key, now: now) != nil
    }

    func randomKey(now: Int64) -> [UInt8]? { self.store.randomKey(now: now) }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        self.store.scan(cursor: cursor, count: count, pattern: pattern, type: type, now: now)
    }


    /// The LRU clock never advances here (no timer): every key is 0 seconds idle.
    func inspect(_ key: [UInt8], now: Int64) -> KeyFacts? {
        guard let type = self.store.type(ofKey: key, now: now), let encoding = self.store.encoding(ofKey: key, now: now) else {
            return nil
        }
        return KeyFacts(type: type, encoding: encoding, idleSeconds: Int(self.store.idleTicks(forKey: key, now: now) ?? 0) / 10,
                        usedBytes: self.store.usedBytes(forKey: key, now: now) ?? 0)
    }

    func collection(forKey key: [UInt8], type: ValueType, now: Int64) -> TypedLookup<any CollectionValue> {
        key.withUnsafeBytes { k in self.store.collection(forKey: k, type: type, now: now) }
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType,
               now: Int64) throws(StoreError) -> ElementWrite {
        let result = key.withUnsafeBytes { k in
            Result { () throws(StoreError) in
                try self.store.apply(operation, position: position, element, to: k, type: type, now: now)
            }
        }
        return try result.get()
    }

    func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64)
        throws(StoreError)
    {
        _ = try self.store.setCollection(object, forKey: key, deadline: deadline, now: now)
    }

    func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool, now: Int64) throws(StoreError) -> Bool {
        let sequence = copying ? try self.store.copy(source, to: destination, now: now) : try self.store.rename(source, to: destination, now: now)
        return sequence != nil
    }

    func atomically(_ body: () -> Void) {
        if self.store.inAtomicGroup { return body() }
        self.store.beginAtomicGroup()
        body()
        self.store.endAtomicGroup()
    }
}

/// A ``ServerControl`` for fuzz runs: saves and shutdowns are counted, CONFIG SET is taken, and
/// the memory limit applies as `noeviction` does (a command that may add memory past it is
/// refused with OOM; nothing is evicted).
final class FuzzControl: ServerControl {
    private let store: DurableStore
    private let state: ServerState
    private(set) var shutdowns = 0
    private(set) var compactionRequests = 0
    /// CONFIG SET appendfsync is taken and remembered; the fuzzed store stays at `no`.
    var fsyncPolicy = "no"
    var idleTimeoutSeconds = 300

    init(store: DurableStore, state: ServerState) {
        self.store = store
        self.state = state
    }

    func facts() -> ServerFacts {
        var facts = ServerFacts()
        facts.keys = self.store.count
        facts.keysWithExpiry = self.store.keysWithExpiry
        facts.usedMemoryBytes = self.store.usedBytes
        facts.totalCommandsProcessed = self.state.commandsProcessed
        facts.extra = self.statistics()
        return facts
    }

    func statistics() -> [(name: String, value: String)] { self.store.statistics() }

    func configuration() -> [(name: String, value: String)] {
        [("appendonly", "yes"), ("appendfsync", "no"), ("save", ""), ("databases", "1")]
    }

    func apply(_ change: ConfigChange) -> String? {
        switch change {
        case .fsyncPolicy(let policy): self.fsyncPolicy = policy
        case .idleTimeout(let seconds): self.idleTimeoutSeconds = seconds
        case .memoryLimit(let bytes, _): if let bytes { self.state.maxMemoryBytes = bytes }
        }
        return nil
    }

    func resetStatistics() { self.state.commandsProcessed = 0 }

    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        self.compactionRequests += 1
        return .started
    }

    func shutdown(save: Bool?) { self.shutdowns += 1 }

    func makeRoom(forBytes bytes: Int) -> Bool {
        self.state.maxMemoryBytes == 0 || self.store.usedBytes + bytes <= self.state.maxMemoryBytes
    }

    func settleMemory() {}
}
