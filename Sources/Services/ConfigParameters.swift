// Redis 7.0's configuration parameters as CONFIG SET classes the ones this server does not change:
// those Redis itself marks immutable (or protected), answered with Redis's words for them, and
// `save`, whose save points are kept here and acted on by the server (a save point that is due
// starts a compaction into database.txt, as it starts a BGSAVE in Redis).

/// One save point: `changes` writes or more, and more than `seconds` since the last save.
public struct SavePoint: Sendable, Equatable {
    public let seconds: Int
    public let changes: Int

    public init(seconds: Int, changes: Int) {
        self.seconds = seconds
        self.changes = changes
    }

    /// Whether a save is due, as Redis's serverCron decides it.
    public func isDue(changesSinceLastSave: Int, secondsSinceLastSave: Int) -> Bool {
        changesSinceLastSave >= self.changes && secondsSinceLastSave > self.seconds
    }
}

public enum ConfigParameters {
    /// Parameters Redis 7.0 knows but never changes at run time (its IMMUTABLE_CONFIG ones):
    /// `can't set immutable config`.
    static let immutable: [StaticString] = [
        "aclfile", "always-show-logo", "aof_rewrite_cpulist", "appenddirname", "appendfilename", "bgsave_cpulist",
        "bio_cpulist", "cluster-config-file", "cluster-enabled", "cluster-port", "daemonize", "databases",
        "disable-thp", "enable-debug-command", "enable-module-command", "enable-protected-configs", "io-threads",
        "io-threads-do-reads", "logfile", "pidfile", "rdbchecksum", "replicaof", "server_cpulist", "set-proc-title",
        "slaveof", "socket-mark-id", "supervised", "syslog-enabled", "syslog-facility", "syslog-ident", "tcp-backlog",
        "unixsocket", "unixsocketperm",
    ]

    /// Parameters Redis changes at run time that this server cannot (its listeners, connection
    /// limit and files are fixed at start): Redis's immutable error (README lists them).
    static let fixedHere: [StaticString] = ["appendonly", "bind", "maxclients", "port", "proto-max-bulk-len"]

    /// Protected parameters (Redis refuses them while `enable-protected-configs` is off, its
    /// default): `can't set protected config`.
    static let protected: [StaticString] = ["dbfilename", "dir"]

    /// `save`'s value: pairs of seconds (1 or more) and changes (0 or more), blank separated; empty
    /// for none. Nil when Redis would answer `Invalid save parameters`.
    static func savePoints(_ value: ArraySlice<UInt8>) -> [SavePoint]? {
        let words = value.split(whereSeparator: { $0 == ASCII.space || $0 == 9 })
        guard words.count % 2 == 0 else { return nil }
        var points: [SavePoint] = []
        for i in stride(from: 0, to: words.count, by: 2) {
            guard let seconds = ASCII.parseInteger(words[i]), let changes = ASCII.parseInteger(words[i + 1]),
                seconds >= 1, changes >= 0, seconds <= Int64(Int32.max), changes <= Int64(Int32.max)
            else { return nil }
            points.append(SavePoint(seconds: Int(seconds), changes: Int(changes)))
        }
        return points
    }

    /// CONFIG GET save: `3600 1 300 100`, as Redis prints it.
    public static func describe(_ points: [SavePoint]) -> String {
        points.map { "\($0.seconds) \($0.changes)" }.joined(separator: " ")
    }
}
