// The contract between the protocol state machines and whoever drives them (the server's
// connection wiring, or a test): bytes in, replies appended to the caller's output up to a limit,
// a ProcessResult out; kv commands run against a CommandContext the caller implements. Services
// never touch sockets, clocks or files.

/// Where a service stopped after processing buffered input.
public enum ProcessResult: Equatable, Sendable {
    /// Every complete request was handled; feed more bytes.
    case needMoreData
    /// The output passed the caller's limit; call again once it has drained (backpressure).
    case outputFull
    /// Flush what is in the output, then close the connection.
    case close
}

/// Thrown by a ``CommandContext`` mutation that could not be logged; the reply is `ERR <reason>`.
public struct StorageError: Error, Equatable, Sendable {
    /// One line saying what failed (CR and LF are shown as spaces in replies).
    public let reason: String
    public init(reason: String) { self.reason = reason }
}

/// What kv commands run against: the keyspace and the server-wide state they report.
/// Implemented by the server over the durable store, and by an in-memory fake in tests.
/// Called on the event-loop thread only.
///
/// Mutations apply at once (every client sees them) and are logged before any reply that
/// depends on them leaves the server: holding those replies is the implementer's job.
/// Per-connection state (client id and name, protocol) lives in the session, and the clock is
/// passed to the session as `now`.
public protocol CommandContext: AnyObject {
    /// The number of keys.
    var count: Int { get }
    /// The value stored under `key`, or nil.
    func value(forKey key: [UInt8]) -> [UInt8]?
    /// Inserts or overwrites. - Throws: ``StorageError`` when the log cannot take the write.
    func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError)
    /// ``set(_:forKey:)`` over bytes borrowed from the request (SET's hot path: nothing is copied
    /// but into the store and its log). - Throws: ``StorageError``.
    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StorageError)
    /// Calls `body` with the value stored under `key` without copying it (GET's hot path); `body`
    /// must not call back into the context. - Returns: false when the key is absent.
    func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool
    /// Removes `key`. - Returns: whether it was present. - Throws: ``StorageError``.
    func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool
    /// Removes every key. - Throws: ``StorageError``.
    func removeAll() throws(StorageError)
    /// Whether `key` exists at `now` (Unix ms) and when it expires.
    func expiry(forKey key: [UInt8], now: Int64) -> KeyDeadline
    /// Inserts or overwrites with an absolute deadline (nil: none). A deadline at or before `now`
    /// removes the key instead. - Throws: ``StorageError``.
    func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StorageError)
    /// Sets a present key's deadline; one at or before `now` removes the key.
    /// - Returns: whether the key was present. - Throws: ``StorageError``.
    func expire(_ key: [UInt8], at deadline: Int64, now: Int64) throws(StorageError) -> Bool
    /// Clears a key's deadline. - Returns: whether it had one. - Throws: ``StorageError``.
    func persist(_ key: [UInt8], now: Int64) throws(StorageError) -> Bool
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
    /// `name=value` fields for the line protocol's `stats` and RESP `INFO`, in a stable order.
    func statistics() -> [(name: String, value: String)]
    /// The keys connections WATCH. The context owns one registry for all its connections, and
    /// touches a key there when it changes it by itself (expiry, eviction); the commands touch
    /// the keys they write.
    var watches: WatchRegistry { get }
    /// The mutations until ``endAtomicGroup()`` (one EXEC) form one unit in the log: after a
    /// crash they are replayed all or none. Groups do not nest.
    func beginAtomicGroup()
    /// Ends the group ``beginAtomicGroup()`` started.
    func endAtomicGroup()

    /// The password connections must give before other commands (`--requirepass`), or nil.
    var password: [UInt8]? { get }
    /// CONFIG SET requirepass: the new password (nil: none). Connections already open stay
    /// authenticated, as in Redis.
    func setPassword(_ password: [UInt8]?)
    /// CONFIG SET appendfsync: `always`, `everysec` or `no` from now on. Returns why it could not
    /// change (the log could not be synced first), or nil.
    func setFsyncPolicy(_ policy: String) -> String?
    /// CONFIG SET timeout: close connections idle this many seconds (0: never), from now on.
    func setIdleTimeout(seconds: Int)
    /// The slow log every connection records into (SLOWLOG).
    var slowLog: SlowLog { get }
    /// The kv clients connected now (CLIENT LIST/INFO/KILL), one registry for all connections.
    var clients: ClientRegistry { get }
    /// What INFO and LASTSAVE report, read now.
    func facts() -> ServerFacts
    /// The parameters CONFIG GET reports, Redis's names, values as this server runs them.
    func configuration() -> [(name: String, value: String)]
    /// Starts a compaction into `database.txt` (BGSAVE, BGREWRITEAOF, SAVE). With
    /// `replyWhenDone` (SAVE), the connection's replies from this one on wait until it has finished.
    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest
    /// Stops the server gracefully (SHUTDOWN): the log is flushed and fsynced, then compacted
    /// into `database.txt` when `save` is true, never when false (the log keeps everything and
    /// the next start replays it), and when nil as for a signal (when that fits in a stop's time);
    /// connections close.
    func shutdown(save: Bool?)
    /// Zeroes the counters INFO stats reports (CONFIG RESETSTAT).
    func resetStatistics()
    /// `count` more commands were processed (INFO `total_commands_processed`).
    func countCommands(_ count: Int)

    /// The memory limit in bytes (`--max-memory`, CONFIG SET maxmemory); 0: none. Read once per
    /// batch of requests: nothing below runs while it is 0.
    var maxMemoryBytes: Int { get }
    /// Before a command that may add about `bytes`: under an eviction policy, evicts keys (bounded
    /// work) until used memory plus `bytes` fits the limit; under `noeviction`, evicts nothing.
    /// - Returns: false when used memory stays past the limit: the command is refused with OOM.
    func makeRoom(forBytes bytes: Int) -> Bool
    /// After a command that may have added memory: under an eviction policy, evicts (bounded) until
    /// used memory is back under the limit, and leaves the rest to the server's timer.
    func settleMemory()
    /// CONFIG SET maxmemory / maxmemory-policy (a policy name as Redis spells it).
    /// - Returns: false when `policy` is not one this server has (nothing changed then).
    func setMemoryLimit(bytes: Int?, policy: [UInt8]?) -> Bool
    /// Where sessions count calls, errors and durations per command; nil (the default) when
    /// nobody reads them (the metrics port is off).
    var commandStatistics: CommandStatistics? { get }
}

extension CommandContext {
    public var commandStatistics: CommandStatistics? { nil }
}

/// The room left under the memory limit, as the server computes it: the RESP parser asks it when a
/// bulk over 16 KiB is announced, and refuses the request before buffering the body if it cannot fit.
/// Loop thread only.
public final class MemoryRoom {
    /// Bytes that may still be added (Int.max: no limit).
    public var bytesLeft: () -> Int = { .max }
    /// Whether a limit is set: connections look here on every read, so it is a plain flag behind a
    /// pointer (as a stored property, every read from another module paid a dynamic exclusivity
    /// check: `@exclusivity(unchecked)` holds only within the declaring module).
    public var isLimited: Bool {
        get { self.limited.pointee }
        set { self.limited.pointee = newValue }
    }
    private let limited: UnsafeMutablePointer<Bool>

    public init() {
        self.limited = .allocate(capacity: 1)
        self.limited.initialize(to: false)
    }

    deinit { self.limited.deallocate() }
}
