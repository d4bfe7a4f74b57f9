// The server's configuration as a plain value: what the config file and the flags become. No
// parsing here (Setting.swift and ConfigFile.swift do that) and no defaults hidden elsewhere: the
// defaults README.md and docs/protocol.md document live here.

import Logging
import Services
import Store

/// A service's port: a number (0 asks the kernel for a free one) or off.
public enum ServicePort: Equatable, Sendable, CustomStringConvertible {
    case port(Int)
    case off

    /// Parses `off` or a port number 0…65535.
    public init?(argument: String) {
        if argument == "off" { self = .off; return }
        guard let n = Int(argument), (0...65535).contains(n) else { return nil }
        self = .port(n)
    }

    public var description: String {
        switch self {
        case .port(let n): return String(n)
        case .off: return "off"
        }
    }
}

/// A size in bytes as redis.conf reads one (docs/protocol.md): digits, then optionally a unit in any
/// case: `k` 1000, `kb` 1024, `m` 1000², `mb` 1024², `g` 1000³, `gb` 1024³. Nil for anything else,
/// negative numbers and sizes that overflow.
public struct ByteSize: Equatable, Sendable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    public init?(argument: String) {
        guard let bytes = MemorySize.bytes(argument) else { return nil }
        self.bytes = bytes
    }

    public var description: String { String(self.bytes) }
}

/// Everything `reactord` can be told.
public struct ServerConfiguration: Sendable {
    /// This server's own version (INFO `reactord_version`, `--version`).
    public static let version = PackageVersion.current

    public var host = "127.0.0.1"
    public var kvPort = ServicePort.port(9877)
    /// Redis's protocol only (RESP and inline commands), on the kv service's store; off by default.
    public var respPort = ServicePort.off
    public var echoPort = ServicePort.port(9878)
    public var timePort = ServicePort.port(9879)
    public var filePort = ServicePort.port(9880)
    /// HTTP `/metrics` and `/healthz` (docs/protocol.md); off by default.
    public var metricsPort = ServicePort.off
    public var dataDirectory = "./data"
    public var filesRoot = "./files"
    public var fsync = "always"
    public var maxConnections = 10_000
    /// Redis's `databases`: SELECT takes 0 to this minus 1. Fixed at start.
    public var databases = 16
    /// Zero: never time out.
    public var idleTimeout: Duration = .seconds(300)
    public var maxLineBytes = 65536
    public var maxValueBytes = 512 << 20
    /// The password kv clients must give first (`--requirepass`); nil: none. Never logged.
    public var requirePassword: String?
    /// Refuse peers outside loopback while no password is set (`--protected-mode`).
    public var protectedMode = true
    /// The memory limit in bytes (`--max-memory`); zero: none.
    public var maxMemoryBytes = 0
    /// What to do past the memory limit (`--eviction`).
    public var evictionPolicy = KeyEviction.noEviction
    public var logLevel = Logger.Level.info
    /// `notify-keyspace-events` at start (CONFIG SET changes it live); none by default, as Redis.
    public var keyspaceEvents: KeyspaceEvents = []
    /// `client-output-buffer-limit` at start (CONFIG SET changes it live); Redis's defaults.
    public var outputBufferLimits = OutputBufferLimits()
    /// Log size that triggers a compaction (nil: the store's default, 64 MiB).
    public var compactionThresholdBytes: Int?

    public init() {}
}
