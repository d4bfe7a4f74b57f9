// The server acting on itself, as the kv commands ask it to: compactions (SAVE, BGSAVE), SHUTDOWN,
// CONFIG, INFO's figures, and the memory limit's eviction. Data goes through DataStore.swift, shared
// state is ServerState.swift; this is what neither of them can do.

import Store

/// A CONFIG SET change the server applies (the other parameters are plain state: ServerState.swift).
public enum ConfigChange: Sendable {
    /// `appendfsync`: `always`, `everysec` or `no` from now on.
    case fsyncPolicy(String)
    /// `timeout`: close connections idle this many seconds (0: never), from now on.
    case idleTimeout(seconds: Int)
    /// `maxmemory` (bytes; 0: none) and/or `maxmemory-policy`; nil leaves one as it is.
    case memoryLimit(bytes: Int?, policy: KeyEviction?)
}

/// What the server does for the commands that act on it. Implemented by the server
/// (Sources/Server/Control.swift) and by a fake in tests. Loop thread only.
public protocol ServerControl: AnyObject {
    /// What INFO and LASTSAVE report, read now.
    func facts() -> ServerFacts
    /// `name=value` fields for the line protocol's `stats` and INFO's `# Reactord`, in a stable order.
    func statistics() -> [(name: String, value: String)]
    /// The parameters CONFIG GET reports, Redis's names, values as this server runs them.
    func configuration() -> [(name: String, value: String)]
    /// CONFIG SET's changes beyond plain state. - Returns: why it could not apply (the log could
    /// not be synced first, say), or nil.
    func apply(_ change: ConfigChange) -> String?
    /// Zeroes the counters INFO stats reports (CONFIG RESETSTAT).
    func resetStatistics()
    /// Starts a compaction into `database.txt` (BGSAVE, BGREWRITEAOF, SAVE). With
    /// `replyWhenDone` (SAVE), the connection's replies from this one on wait until it has finished.
    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest
    /// Stops the server gracefully (SHUTDOWN): the log is flushed and fsynced, then compacted
    /// into `database.txt` when `save` is true, never when false (the log keeps everything and
    /// the next start replays it), and when nil as for a signal (when that fits in a stop's time);
    /// connections close.
    func shutdown(save: Bool?)
    /// Before a command that may add about `bytes`, while a memory limit is set
    /// (``ServerState/maxMemoryBytes``): under an eviction policy, evicts keys (bounded work) until
    /// used memory plus `bytes` fits the limit; under `noeviction`, evicts nothing.
    /// - Returns: false when used memory stays past the limit: the command is refused with OOM.
    ///
    /// Here rather than in ``DataStore``: the limit counts the connections' buffers as well as the
    /// keys, and which keys go is the server's policy, run by its housekeeping (Redis's evict.c,
    /// called from server.c), not a data operation.
    func makeRoom(forBytes bytes: Int) -> Bool
    /// After a command that may have added memory: under an eviction policy, evicts (bounded) until
    /// used memory is back under the limit, and leaves the rest to the server's timer.
    func settleMemory()
    /// From inside a script that has run past `busy-reply-threshold` (Scripting/ScriptBusy.swift):
    /// reads and answers the other connections ready now, without waiting, leaving the one whose
    /// descriptor is `skipping` (the script's) alone.
    func serveWhileBusy(skipping: Int)
    /// Writes one line to the server's log (`redis.log`), if its level passes the log's.
    func log(_ level: ScriptLogLevel, _ message: String)
    /// Makes a function library's change durable: loaded with `code`, or deleted (nil)
    /// (Scripting/FunctionPersistence.swift). - Returns: why the log refused it, or nil.
    func persistFunctionLibrary(_ name: [UInt8], code: [UInt8]?) -> String?
}
