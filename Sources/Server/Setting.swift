// Every setting reactord takes, by its flag name, with the one parser and printer each has: the
// command line and the config file (ConfigFile.swift) both go through `apply(_:to:)`, so a value
// is valid in both or in neither, and `--check-config` prints with `value(in:)`. Pure: no files,
// no sockets (the host is parsed as a numeric address, never looked up).

import Logging
import Reactor
import Services
import Store

/// A setting of `reactord`: its raw value is the flag name without `--`.
public enum Setting: String, CaseIterable, Sendable {
    case host
    case kvPort = "kv-port"
    case respPort = "resp-port"
    case echoPort = "echo-port"
    case timePort = "time-port"
    case filePort = "file-port"
    case metricsPort = "metrics-port"
    case dataDir = "data-dir"
    case filesRoot = "files-root"
    case fsync
    case maxConnections = "max-connections"
    case databases
    case idleTimeout = "idle-timeout"
    case maxLine = "max-line"
    case maxValue = "max-value"
    case maxMemory = "max-memory"
    case eviction
    case requirepass
    /// Read by the executable (a file); ``apply(_:to:)`` refuses it.
    case requirepassFile = "requirepass-file"
    case protectedMode = "protected-mode"
    case logLevel = "log-level"
    /// Redis's keyspace notification classes (`KEA`, `Ex`, empty: none), as CONFIG SET takes them.
    case notifyKeyspaceEvents = "notify-keyspace-events"
    /// Redis's `<class> <hard> <soft> <seconds>` groups; each line or flag applies onto the last,
    /// as redis.conf's lines do (a config-file line takes the groups as several words).
    case clientOutputBufferLimit = "client-output-buffer-limit"

    /// Redis's names for the same settings, so a redis.conf line carries over (docs/protocol.md).
    /// `proto-max-bulk-len` is Redis's name for what `max-value` limits.
    public static let redisNames: [String: Setting] = [
        "port": .kvPort, "bind": .host, "dir": .dataDir, "maxclients": .maxConnections,
        "maxmemory": .maxMemory, "maxmemory-policy": .eviction, "appendfsync": .fsync,
        "timeout": .idleTimeout, "loglevel": .logLevel, "proto-max-bulk-len": .maxValue,
    ]

    /// The most databases (`databases`): indexes up to 65535 (the log's database records take up to 65536).
    static let maximumDatabases = 65536

    /// The setting a config-file name stands for: a flag name without `--` or a Redis name, in
    /// any case (redis.conf names are case-insensitive).
    public init?(name: String) {
        let lower = name.lowercased()
        if let setting = Setting(rawValue: lower) ?? Self.redisNames[lower] {
            self = setting
        } else {
            return nil
        }
    }

    /// The flag, `--kv-port`.
    public var flag: String { "--" + self.rawValue }

    /// Parses `text` as this setting's value and stores it in `configuration`.
    /// - Throws: ``SettingError`` with a one-line reason that does not name the setting (the
    ///   caller names it as the user wrote it: `--kv-port`, `port`, `kv-port`).
    public func apply(_ text: String, to configuration: inout ServerConfiguration) throws(SettingError) {
        if text.utf8.contains(0) { throw SettingError("a value may not contain a NUL byte") }
        switch self {
        case .host:
            // Checked here, before anything touches the disk: binding is too late to learn that a
            // name was given where a numeric address is needed.
            guard (try? SocketAddress(host: text, port: 0)) != nil else {
                throw SettingError("'\(text)' is not a numeric IPv4 or IPv6 address or localhost (names are not looked up)")
            }
            configuration.host = text
        case .kvPort: configuration.kvPort = try Self.port(text)
        case .respPort: configuration.respPort = try Self.port(text)
        case .echoPort: configuration.echoPort = try Self.port(text)
        case .timePort: configuration.timePort = try Self.port(text)
        case .filePort: configuration.filePort = try Self.port(text)
        case .metricsPort: configuration.metricsPort = try Self.port(text)
        case .dataDir: configuration.dataDirectory = try Self.path(text)
        case .filesRoot: configuration.filesRoot = try Self.path(text)
        case .fsync:
            let policy = text.lowercased()
            guard ["always", "everysec", "no"].contains(policy) else {
                throw SettingError("'\(text)' is not one of always, everysec, no")
            }
            configuration.fsync = policy
        case .maxConnections:
            guard let n = Int(text), n >= 1 else { throw SettingError("'\(text)' is not a whole number of 1 or more") }
            configuration.maxConnections = n
        case .databases:
            guard let n = Int(text), n >= 1 && n <= Self.maximumDatabases else {
                throw SettingError("'\(text)' is not a whole number from 1 to \(Self.maximumDatabases)")
            }
            configuration.databases = n
        case .idleTimeout: configuration.idleTimeout = try Self.seconds(text)
        case .maxLine: configuration.maxLineBytes = try Self.size(text, minimum: 1)
        case .maxValue: configuration.maxValueBytes = try Self.size(text, minimum: 1)
        case .maxMemory: configuration.maxMemoryBytes = try Self.size(text, minimum: 0)
        case .eviction:
            guard let policy = KeyEviction(rawValue: text.lowercased()) else {
                throw SettingError("'\(text)' is not one of \(KeyEviction.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            configuration.evictionPolicy = policy
        case .requirepass:
            // As Redis: an empty password means none.
            configuration.requirePassword = text.isEmpty ? nil : text
        case .requirepassFile:
            throw SettingError("a password file is read by the executable, not applied here")
        case .protectedMode:
            switch text.lowercased() {
            case "yes": configuration.protectedMode = true
            case "no": configuration.protectedMode = false
            default: throw SettingError("'\(text)' is not yes or no")
            }
        case .logLevel:
            guard let level = Self.logLevels[text.lowercased()] else {
                throw SettingError("'\(text)' is not one of error, warn, info, debug (or Redis's warning, notice, verbose)")
            }
            configuration.logLevel = level
        case .notifyKeyspaceEvents:
            guard let events = KeyspaceEvents(letters: text.utf8) else {
                throw SettingError("'\(text)' has a character that is not an event class (use 'Ag$lshzxeKEtmdn')")
            }
            configuration.keyspaceEvents = events
        case .clientOutputBufferLimit:
            switch configuration.outputBufferLimits.applying(text) {
            case .success(let limits): configuration.outputBufferLimits = limits
            case .failure(let error): throw SettingError(error.reason)
            }
        }
    }

    /// The effective value as `--check-config` prints it: what the flag would take (sizes in
    /// bytes, the timeout in seconds); the password only as `(set)` or `(none)`.
    public func value(in configuration: ServerConfiguration) -> String {
        switch self {
        case .host: return configuration.host
        case .kvPort: return configuration.kvPort.description
        case .respPort: return configuration.respPort.description
        case .echoPort: return configuration.echoPort.description
        case .timePort: return configuration.timePort.description
        case .filePort: return configuration.filePort.description
        case .metricsPort: return configuration.metricsPort.description
        case .dataDir: return configuration.dataDirectory
        case .filesRoot: return configuration.filesRoot
        case .fsync: return configuration.fsync
        case .maxConnections: return String(configuration.maxConnections)
        case .databases: return String(configuration.databases)
        case .idleTimeout: return Self.secondsText(configuration.idleTimeout)
        case .maxLine: return String(configuration.maxLineBytes)
        case .maxValue: return String(configuration.maxValueBytes)
        case .maxMemory: return String(configuration.maxMemoryBytes)
        case .eviction: return configuration.evictionPolicy.rawValue
        case .requirepass, .requirepassFile: return configuration.requirePassword == nil ? "(none)" : "(set)"
        case .protectedMode: return configuration.protectedMode ? "yes" : "no"
        case .logLevel: return Self.levelName(configuration.logLevel)
        case .notifyKeyspaceEvents: return configuration.keyspaceEvents.letters
        case .clientOutputBufferLimit: return configuration.outputBufferLimits.description
        }
    }

    /// Every effective setting, one `name value` line each, in flag order (`--check-config`).
    public static func describe(_ configuration: ServerConfiguration) -> String {
        var text = ""
        for setting in Setting.allCases where setting != .requirepassFile {
            // An empty value (no keyspace events) is printed `""`, so that the line reads back.
            let value = setting.value(in: configuration)
            text += setting.rawValue + " " + (value.isEmpty ? "\"\"" : value) + "\n"
        }
        return text
    }

    // MARK: Value parsers

    /// Our names and Redis's (`loglevel`): Redis's `notice` is its production default, as `info`
    /// is ours; `verbose` asks for more than that, which here is `debug`.
    static let logLevels: [String: Logger.Level] = [
        "error": .error, "warn": .warning, "warning": .warning, "info": .info, "notice": .info,
        "verbose": .debug, "debug": .debug,
    ]

    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warn"
        case .error, .critical: return "error"
        }
    }

    static func port(_ text: String) throws(SettingError) -> ServicePort {
        guard let port = ServicePort(argument: text.lowercased()) else {
            throw SettingError("'\(text)' is not a port (0-65535, or off)")
        }
        return port
    }

    static func path(_ text: String) throws(SettingError) -> String {
        guard !text.isEmpty else { throw SettingError("the path is empty") }
        return text
    }

    static func size(_ text: String, minimum: Int) throws(SettingError) -> Int {
        guard let size = ByteSize(argument: text) else {
            throw SettingError("'\(text)' is not a size in bytes (digits, then optionally k, kb, m, mb, g or gb)")
        }
        guard size.bytes >= minimum else { throw SettingError("'\(text)' is less than \(minimum)") }
        return size.bytes
    }

    /// The longest idle timeout: Redis's `timeout` is an int of seconds.
    static let maxSeconds = Double(Int32.max)

    /// Seconds, whole or decimal, kept to the millisecond.
    static func seconds(_ text: String) throws(SettingError) -> Duration {
        // Double() also takes "inf", "nan" and hexadecimal; only plain decimals are seconds here.
        let plain = !text.isEmpty && text.allSatisfy { ($0 >= "0" && $0 <= "9") || $0 == "." }
        guard plain, let seconds = Double(text), seconds <= Self.maxSeconds else {
            throw SettingError("'\(text)' is not a number of seconds from 0 to \(Int32.max)")
        }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// `300`, `0.25`: seconds without a trailing `.0`.
    static func secondsText(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return String(seconds) }
        var fraction = String(milliseconds)
        fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(seconds).\(fraction)"
    }
}

/// Why a value was refused: one line, without the setting's name.
public struct SettingError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
