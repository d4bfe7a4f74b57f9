// The kv commands' CommandContext over a real DurableStore (fsync `no`, in a scratch directory),
// as the server's Persistence adapter is, without the loop: replies are never held, and the log is
// written when the harness asks. Lets the kv targets check that whatever the commands did to the
// store comes back the same after a restart.

import Services
import Store

/// The fixed wall clock of every fuzz run, so replays of an input behave the same.
public enum FuzzClock {
    public static let seconds = 1_700_000_000
    public static let milliseconds = Int64(seconds) * 1000
    public static func now() -> (seconds: Int, microseconds: Int) { (seconds, 0) }
}

/// A ``CommandContext`` over a ``DurableStore``. One connection, registered in ``clients``.
public final class StoreContext: CommandContext {
    public let store: DurableStore
    public let watches = WatchRegistry()
    public let clients = ClientRegistry()
    public let slowLog = SlowLog()
    public private(set) var password: [UInt8]?
    public private(set) var shutdowns = 0
    public private(set) var compactionRequests = 0
    /// What MONITOR sends this connection (kept apart from its replies).
    public var monitorOutput: [UInt8] = []
    /// Whether CLIENT KILL killed this connection.
    public var killed = false
    private var commandsProcessed = 0

    /// Opens a store in `directory`. - Throws: the store's error.
    public init(directory: String, clientID: Int) throws(StoreError) {
        self.store = try DurableStore(configuration: DurableStore.Configuration(
            directory: directory, fsync: .no, clock: { FuzzClock.milliseconds }))
        self.clients.register(
            ClientRecord(id: clientID, address: "127.0.0.1:40000", localAddress: "127.0.0.1:9877", fd: 9,
                         connectedAtSeconds: FuzzClock.seconds),
            kill: { [unowned self] in self.killed = true },
            send: { [unowned self] bytes in self.monitorOutput += bytes })
    }

    private func wrap<T>(_ body: () throws(StoreError) -> T) throws(StorageError) -> T {
        do {
            return try body()
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    public var count: Int { self.store.count }

    public func value(forKey key: [UInt8]) -> [UInt8]? { self.store.value(forKey: key) }

    public func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError) {
        _ = try self.wrap { () throws(StoreError) in try self.store.set(value, forKey: key) }
    }

    public func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StorageError) {
        try self.set(Array(value), forKey: Array(key))
    }

    public func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        key.withUnsafeBytes { k in self.store.withValue(forKey: k, body) } != nil
    }

    public func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool {
        try self.wrap { () throws(StoreError) in try self.store.removeValue(forKey: key) != nil }
    }

    public func removeAll() throws(StorageError) {
        _ = try self.wrap { () throws(StoreError) in try self.store.removeAll() }
    }

    public func expiry(forKey key: [UInt8], now: Int64) -> KeyDeadline {
        switch self.store.expiry(forKey: key, now: now) {
        case .missing: .missing
        case .never: .never
        case .at(let deadline): .at(deadline)
        }
    }

    public func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StorageError) {
        _ = try self.wrap { () throws(StoreError) in try self.store.set(value, forKey: key, deadline: deadline, now: now) }
    }

    public func expire(_ key: [UInt8], at deadline: Int64, now: Int64) throws(StorageError) -> Bool {
        try self.wrap { () throws(StoreError) in try self.store.expire(key, at: deadline, now: now) != nil }
    }

    public func persist(_ key: [UInt8], now: Int64) throws(StorageError) -> Bool {
        try self.wrap { () throws(StoreError) in try self.store.persist(key, now: now) != nil }
    }

    public func randomKey(now: Int64) -> [UInt8]? { self.store.randomKey(now: now) }

    public func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        self.store.scan(cursor: cursor, count: count, pattern: pattern, now: now)
    }

    public func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] { self.store.keys(matching: pattern, now: now) }

    public func usedBytes(forKey key: [UInt8], now: Int64) -> Int? { self.store.usedBytes(forKey: key, now: now) }
    /// The LRU clock never advances here (no timer): every key is 0 seconds idle.
    public func idleSeconds(forKey key: [UInt8], now: Int64) -> Int? {
        self.store.idleTicks(forKey: key, now: now).map { Int($0) / 10 }
    }

    public func statistics() -> [(name: String, value: String)] { self.store.statistics() }

    public func beginAtomicGroup() { self.store.beginAtomicGroup() }

    public func endAtomicGroup() { self.store.endAtomicGroup() }

    public func setPassword(_ password: [UInt8]?) { self.password = password }

    public func facts() -> ServerFacts {
        var facts = ServerFacts()
        facts.keys = self.store.count
        facts.keysWithExpiry = self.store.keysWithExpiry
        facts.usedMemoryBytes = self.store.usedBytes
        facts.totalCommandsProcessed = self.commandsProcessed
        facts.extra = self.statistics()
        return facts
    }

    public func configuration() -> [(name: String, value: String)] {
        [("appendonly", "yes"), ("appendfsync", "no"), ("save", ""), ("databases", "1")]
    }

    public func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        self.compactionRequests += 1
        return .started
    }

    public func shutdown(save: Bool?) { self.shutdowns += 1 }

    public func resetStatistics() { self.commandsProcessed = 0 }

    public func countCommands(_ count: Int) { self.commandsProcessed += count }

    /// CONFIG SET appendfsync is taken and remembered; the fuzzed store stays at `no`.
    public var fsyncPolicy = "no"
    public func setFsyncPolicy(_ policy: String) -> String? {
        self.fsyncPolicy = policy
        return nil
    }

    public var idleTimeoutSeconds = 300
    public func setIdleTimeout(seconds: Int) { self.idleTimeoutSeconds = seconds }

    /// The memory limit as `noeviction` applies it (CONFIG SET maxmemory turns it on): a command
    /// that may add memory past it is refused with OOM; nothing is evicted.
    public var maxMemoryBytes = 0
    public func makeRoom(forBytes bytes: Int) -> Bool {
        self.maxMemoryBytes == 0 || self.store.usedBytes + bytes <= self.maxMemoryBytes
    }
    public func settleMemory() {}
    public func setMemoryLimit(bytes: Int?, policy: [UInt8]?) -> Bool {
        if let bytes { self.maxMemoryBytes = bytes }
        return true
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
