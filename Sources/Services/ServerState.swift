// The server-wide state every kv connection shares (ServerState: clients, slow log, watches,
// password, memory limit, command counts), the registry of connected kv clients (CLIENT
// LIST/INFO/KILL), the slow log, and the plain values INFO reports, which the server fills in
// (ServerFacts). No clocks or sockets: the server hands everything in.

import Store

/// What the server shares between its kv connections: built once by the server, read and changed
/// by the commands directly (a class, not a protocol: there is nothing here to implement twice).
/// Loop thread only, and never accessed re-entrantly: the fields read at every batch are left out
/// of the dynamic exclusivity checks.
public final class ServerState {
    /// The kv clients connected now (CLIENT LIST/INFO/KILL, MONITOR).
    public let clients = ClientRegistry()
    /// Every database (Databases.swift); nil: database 0 only.
    public var databases: (any DatabaseSet)?
    /// The slow log every connection records into (SLOWLOG).
    public let slowLog = SlowLog()
    /// The keys connections WATCH. The commands touch the keys they write; the server touches a key
    /// it changes by itself (expiry, eviction).
    public let watches = WatchRegistry()
    /// The clients blocked on keys (BLPOP and the other blocking commands; Blocking.swift).
    public let blocking = BlockingRegistry()
    /// Pub/sub's channels and patterns, and their subscribers.
    public let pubsub = PubSubRegistry()
    /// The password connections must give before other commands (`--requirepass`, CONFIG SET
    /// requirepass), or nil. Connections already open stay authenticated when it changes, as in Redis.
    @exclusivity(unchecked) public var password: [UInt8]?
    /// The memory limit in bytes (`--max-memory`, CONFIG SET maxmemory); 0: none. Read once per
    /// batch of requests: nothing that enforces it runs while it is 0.
    @exclusivity(unchecked) public var maxMemoryBytes = 0 {
        didSet { self.memoryRoom.isLimited = self.maxMemoryBytes > 0 }
    }
    /// What goes past the limit (`--eviction`, CONFIG SET maxmemory-policy).
    public var evictionPolicy = KeyEviction.noEviction
    /// The room left under the limit, for the RESP parser's check of announced bulk lengths (the
    /// server sets how it is computed).
    public let memoryRoom = MemoryRoom()
    /// Where sessions count calls, errors and durations per command; nil (the default) when
    /// nobody reads them (the metrics port is off). Fixed for the state's life: a constant is
    /// read from other modules without a dynamic exclusivity check.
    public let commandStatistics: CommandStatistics?
    /// Commands processed since the start or CONFIG RESETSTAT (INFO `total_commands_processed`).
    @exclusivity(unchecked) public var commandsProcessed = 0
    /// `save` (CONFIG SET save): when the server compacts by itself besides the log's threshold.
    public var savePoints: [SavePoint] = []
    /// INFO commandstats, errorstats and latencystats.
    public let infoStatistics = InfoStatistics()
    /// The Lua interpreter, script cache and function libraries (EVAL, FCALL), made at first use.
    var scripts: ScriptEngine {
        if let engine = self.startedScripts { return engine }
        let engine = ScriptEngine()
        self.startedScripts = engine
        return engine
    }
    /// The interpreter, once some command has needed it (INFO does not start one).
    private(set) var startedScripts: ScriptEngine?
    /// The script running past `busy-reply-threshold`, until it ends: meanwhile other connections
    /// are served from inside it and their commands answered `-BUSY` (Scripting/ScriptBusy.swift).
    @exclusivity(unchecked) public internal(set) var busyScript: BusyScript?
    /// `busy-reply-threshold` (alias `lua-time-limit`), milliseconds; 0: scripts are never interrupted.
    public var busyReplyThresholdMilliseconds = 5000

    public init(commandStatistics: CommandStatistics? = nil) {
        self.commandStatistics = commandStatistics
    }

    /// `count` more commands were processed (once per batch).
    @inline(__always)
    func countCommands(_ count: Int) { self.commandsProcessed += count }
}

/// What INFO, LASTSAVE and the persistence commands report, filled in by the server.
public struct ServerFacts: Sendable {
    public var version = ""
    public var processID = 0
    public var tcpPort = 0
    public var uptimeSeconds = 0
    public var connectedClients = 0
    /// Clients waiting in a blocking command (filled in by INFO from ``ServerState/blocking``).
    public var blockedClients = 0
    public var maxClients = 0
    public var totalConnectionsReceived = 0
    public var rejectedConnections = 0
    public var totalCommandsProcessed = 0
    public var usedMemoryBytes = 0
    /// The most `usedMemoryBytes` has been since the start (sampled by the server's timer and by INFO).
    public var usedMemoryPeakBytes = 0
    /// The process's resident set (INFO `used_memory_rss`); 0 when /proc cannot be read.
    public var residentBytes = 0
    public var maxMemoryBytes = 0
    public var maxMemoryPolicy = "noeviction"
    public var keys = 0
    /// Each database holding keys: index, keys, keys with a deadline (INFO keyspace); nil: `keys` is
    /// database 0's.
    public var databaseSizes: [(index: Int, keys: Int, withDeadline: Int)]?
    public var keysWithExpiry = 0
    public var expiredKeys = 0
    public var evictedKeys = 0
    /// Pub/sub (INFO stats): channels and patterns with subscribers, subscribers closed for
    /// passing their output limit.
    public var pubsubChannels = 0
    public var pubsubPatterns = 0
    public var outputLimitDisconnections = 0
    /// Mutations since the last finished compaction (Redis's `rdb_changes_since_last_save`).
    public var changesSinceLastSave = 0
    public var compactionInProgress = false
    /// Unix seconds of the last finished compaction (or of the start, before any).
    public var lastSaveTime = 0
    public var lastCompactionSucceeded = true
    public var compactions = 0
    public var fsyncPolicy = "always"
    public var logBytes = 0
    /// CPU time in microseconds (INFO cpu, as getrusage(2) reports it): the whole process, and the
    /// loop thread alone (Redis's `_main_thread` fields). No child processes are ever started.
    public var cpuSystemMicroseconds = 0
    public var cpuUserMicroseconds = 0
    public var cpuSystemMainThreadMicroseconds = 0
    public var cpuUserMainThreadMicroseconds = 0
    /// Extra `name:value` lines for the `# Reactord` section (the line protocol's `stats`).
    public var extra: [(name: String, value: String)] = []

    public init() {}
}

/// What BGSAVE / BGREWRITEAOF / SAVE found when asking for a compaction.
public enum CompactionRequest: Equatable, Sendable {
    case started
    case alreadyRunning
    case failed(String)
}

/// One connected kv client, as CLIENT LIST shows it.
public struct ClientRecord {
    public var id: Int
    public var address: String
    public var localAddress: String
    public var fd: Int
    public var connectedAtSeconds: Int
    /// Seconds since the connection last did anything (the server reads it from the connection).
    public var idleSeconds: () -> Int = { 0 }
    /// Bytes the connection holds now: received but not yet answered, and answered but not yet
    /// sent (CLIENT LIST `qbuf` and `omem`).
    public var bufferedBytes: () -> (input: Int, output: Int) = { (0, 0) }
    public var name: [UInt8] = []
    public var protocolVersion = 2
    public var lastCommand: StaticString = "NULL"
    /// The database the client selected (CLIENT LIST `db=`).
    public var database = 0

    public init(id: Int, address: String, localAddress: String, fd: Int, connectedAtSeconds: Int) {
        self.id = id
        self.address = address
        self.localAddress = localAddress
        self.fd = fd
        self.connectedAtSeconds = connectedAtSeconds
    }
}

/// The kv clients connected now, shared by every connection of a context. Loop thread only.
public final class ClientRegistry {
    private var records: [Int: ClientRecord] = [:]
    private var killers: [Int: () -> Void] = [:]
    private var senders: [Int: ([UInt8]) -> Void] = [:]
    /// Clients that ran MONITOR, in the order they did.
    // Read once per batch on the hot path; loop thread only and never re-entered, so no dynamic
    // exclusivity check.
    @exclusivity(unchecked) private var monitorIDs: [Int] = []

    /// Whether no client is monitoring (checked once per batch of requests).
    public var hasMonitors: Bool { !self.monitorIDs.isEmpty }

    public init() {}

    /// Adds a client; `kill` closes its connection (CLIENT KILL), `send` queues bytes on it
    /// outside its own replies (MONITOR lines).
    public func register(_ record: ClientRecord, kill: @escaping () -> Void, send: @escaping ([UInt8]) -> Void) {
        self.records[record.id] = record
        self.killers[record.id] = kill
        self.senders[record.id] = send
    }

    /// Removes a client that closed.
    public func unregister(id: Int) {
        self.records.removeValue(forKey: id)
        self.killers.removeValue(forKey: id)
        self.senders.removeValue(forKey: id)
        self.monitorIDs.removeAll { $0 == id }
    }

    /// Client `id` gets every command from now on (MONITOR).
    func startMonitoring(id: Int) {
        if !self.monitorIDs.contains(id) { self.monitorIDs.append(id) }
    }

    /// Queues `line` on every monitoring client but `except` (a monitor does not see its own commands).
    func feedMonitors(_ line: [UInt8], except id: Int) {
        for monitor in self.monitorIDs where monitor != id { self.senders[monitor]?(line) }
    }

    /// Changes a client's record in place (name, protocol, last command).
    func update(id: Int, _ change: (inout ClientRecord) -> Void) {
        guard self.records[id] != nil else { return }
        change(&self.records[id]!)
    }

    /// How many clients are connected.
    public var count: Int { self.records.count }

    /// Every client, by id.
    var all: [ClientRecord] { self.records.values.sorted { $0.id < $1.id } }

    func record(id: Int) -> ClientRecord? { self.records[id] }

    /// What queues bytes on client `id`'s connection outside its replies (tracking's messages).
    func sender(_ id: Int) -> (([UInt8]) -> Void)? { self.senders[id] }

    /// Closes client `id`'s connection (after the current reply). - Returns: whether it existed.
    func kill(id: Int) -> Bool {
        guard let kill = self.killers[id] else { return false }
        kill()
        return true
    }
}

/// The slow log (SLOWLOG): commands that took longer than a threshold, newest first, bounded.
/// Shared by every connection of a context; loop thread only.
public final class SlowLog {
    struct Entry {
        let id: Int
        let timestampSeconds: Int
        let microseconds: Int
        /// At most 32 arguments, each at most 128 bytes, as Redis keeps them.
        let arguments: [[UInt8]]
        let client: [UInt8]
        let name: [UInt8]
    }

    /// Commands slower than this many microseconds are logged (Redis's
    /// `slowlog-log-slower-than`; negative: none, 0: every command).
    @exclusivity(unchecked) public var thresholdMicroseconds = 10_000
    /// The most entries kept (`slowlog-max-len`).
    public var maxLength = 128 {
        didSet { if self.entries.count > self.maxLength { self.entries.removeLast(self.entries.count - self.maxLength) } }
    }
    private(set) var entries: [Entry] = []
    private var nextID = 0

    public init() {}

    func record(_ arguments: ArgumentVector, microseconds: Int, at seconds: Int, client: [UInt8], name: [UInt8]) {
        guard self.maxLength > 0 else { return }
        var kept: [[UInt8]] = []
        let shown = min(arguments.count, 32)
        let hidden = Commands.secretArguments(arguments)
        for i in 0..<shown {
            if hidden.contains(i) {
                kept.append(Array("(redacted)".utf8))
            } else if i == 31 && arguments.count > 32 {
                kept.append(Array("... (\(arguments.count - 31) more arguments)".utf8))
            } else if arguments[i].count > 128 {
                kept.append(Array(arguments[i].prefix(128)) + Array("... (\(arguments[i].count - 128) more bytes)".utf8))
            } else {
                kept.append(Array(arguments[i]))
            }
        }
        self.entries.insert(Entry(id: self.nextID, timestampSeconds: seconds, microseconds: microseconds,
                                  arguments: kept, client: client, name: name), at: 0)
        self.nextID += 1
        if self.entries.count > self.maxLength { self.entries.removeLast() }
    }

    func reset() { self.entries = [] }
}
