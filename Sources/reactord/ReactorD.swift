// reactord's entry point: the config file and the flags become a ServerConfiguration, then the
// server runs. Every value is checked (Sources/Server/Setting.swift) before anything touches the
// disk or binds a port. Nothing else lives here.

import ArgumentParser
import CLinux
import Foundation
import Logging
import Server
import Store

@main
struct ReactorD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactord",
        abstract: "A single-threaded epoll server: durable key-value store, echo, time and file services.",
        // One paragraph a line: the library wraps them to the terminal.
        discussion: """
            Every service runs on one event-loop thread. A port of 0 asks the kernel for a free port; 'off' disables the service. Once every listener is bound and the database is recovered, one line per listener and then 'reactord: ready' are printed on stdout. SIGINT or SIGTERM stops gracefully.

            --config FILE reads settings from a redis.conf-style file: one 'name value' a line, '#' comments, values optionally double-quoted. Names are the flag names without '--'; Redis's names port, bind, dir, maxclients, maxmemory, maxmemory-policy, appendfsync, timeout, loglevel (and requirepass, protected-mode) work too. Flags given on the command line override the file. --check-config prints the settings that would be used and exits.

            Sizes take redis.conf's units, in any case: k = 1000, kb = 1024, m = 1000k, mb = 1024kb, g = 1000m, gb = 1024mb. The password comes from, in order: --requirepass, --requirepass-file, the environment variable REACTORD_REQUIREPASS, the config file.

            Started by systemd with Type=notify, it sends READY=1 once ready, STOPPING=1 when stopping and, with WatchdogSec=, WATCHDOG=1 at half that interval from its event loop.

            Examples:
              reactord                                  all services on their default ports
              reactord --kv-port 0 --echo-port off      kv on any free port, no echo
              reactord --config reactord.conf --check-config
            """,
        version: ServerConfiguration.version)

    /// The defaults the help text shows, from the one place they live.
    static let defaults = ServerConfiguration()

    /// Help text ending in the setting's default as `--check-config` prints it.
    static func help(_ text: String, _ setting: Setting, valueName: String) -> ArgumentHelp {
        ArgumentHelp("\(text) (default: \(setting.value(in: Self.defaults)))", valueName: valueName)
    }

    @Option(name: .customLong("config"), help: ArgumentHelp("Read settings from this redis.conf-style file; flags override it.", valueName: "file"))
    var configFile: String?
    @Flag(name: .customLong("check-config"),
          help: "Check the flags and the config file, print the effective settings, and exit without creating or binding anything.")
    var checkConfig = false

    // Every setting is taken as text and parsed by Setting, as the config file's values are, so
    // both accept and refuse the same values with the same words. Optional, so that a flag given
    // (and only then) overrides the file. Numbers parse unconditionally: `--kv-port -1` must
    // reach the range check, not be taken for an option.
    @Option(help: ReactorD.help("Address to listen on (numeric IPv4 or IPv6, or localhost).", .host, valueName: "addr"))
    var host: String?
    @Option(name: .customLong("kv-port"), parsing: .unconditional,
            help: ReactorD.help("Key-value service port (line protocol and RESP): 0-65535, or off.", .kvPort, valueName: "port"))
    var kvPort: String?
    @Option(name: .customLong("resp-port"), parsing: .unconditional,
            help: ReactorD.help("A port speaking only Redis's protocol (RESP and inline commands) on the kv store: 0-65535, or off.",
                                .respPort, valueName: "port"))
    var respPort: String?
    @Option(name: .customLong("echo-port"), parsing: .unconditional,
            help: ReactorD.help("Echo service port (TCP and UDP), or off.", .echoPort, valueName: "port"))
    var echoPort: String?
    @Option(name: .customLong("time-port"), parsing: .unconditional,
            help: ReactorD.help("Time service port (TCP and UDP), or off.", .timePort, valueName: "port"))
    var timePort: String?
    @Option(name: .customLong("file-port"), parsing: .unconditional,
            help: ReactorD.help("File service port, or off.", .filePort, valueName: "port"))
    var filePort: String?
    @Option(name: .customLong("metrics-port"), parsing: .unconditional,
            help: ReactorD.help("HTTP port for /metrics (Prometheus) and /healthz, or off.", .metricsPort, valueName: "port"))
    var metricsPort: String?
    @Option(name: .customLong("data-dir"),
            help: ReactorD.help("Directory for database.txt and its write-ahead log (created if missing).", .dataDir, valueName: "dir"))
    var dataDir: String?
    @Option(name: .customLong("files-root"),
            help: ReactorD.help("Root directory the file service serves (created if missing).", .filesRoot, valueName: "dir"))
    var filesRoot: String?
    @Option(help: ReactorD.help("When the log is fsynced: always (before each acknowledgement), everysec, or no.", .fsync,
                                valueName: "policy"))
    var fsync: String?
    @Option(name: .customLong("max-connections"), parsing: .unconditional,
            help: ReactorD.help("Most clients served at once (lowered to fit the descriptor limit).", .maxConnections, valueName: "n"))
    var maxConnections: String?
    @Option(name: .customLong("databases"), parsing: .unconditional,
            help: ReactorD.help("How many databases SELECT reaches (0 to n-1), as Redis's `databases`.", .databases, valueName: "n"))
    var databases: String?
    @Option(name: .customLong("idle-timeout"), parsing: .unconditional,
            help: ReactorD.help("Close a connection idle this many seconds (0: never).", .idleTimeout, valueName: "seconds"))
    var idleTimeout: String?
    @Option(name: .customLong("max-line"), parsing: .unconditional,
            help: ReactorD.help("Longest request line in bytes, e.g. 64kb.", .maxLine, valueName: "bytes"))
    var maxLine: String?
    @Option(name: .customLong("max-value"), parsing: .unconditional,
            help: ReactorD.help("Largest value in bytes (Redis's proto-max-bulk-len).", .maxValue, valueName: "bytes"))
    var maxValue: String?
    @Option(name: .customLong("max-memory"), parsing: .unconditional,
            help: ReactorD.help("Memory limit in bytes, e.g. 64mb or 2gb (0: none).", .maxMemory, valueName: "bytes"))
    var maxMemory: String?
    @Option(help: ReactorD.help("What to do past --max-memory: \(KeyEviction.allCases.map(\.rawValue).joined(separator: ", ")).",
                                .eviction, valueName: "policy"))
    var eviction: String?
    @Option(name: .customLong("protected-mode"),
            help: ReactorD.help("With no password, refuse peers outside loopback (yes or no).", .protectedMode, valueName: "yes|no"))
    var protectedMode: String?
    @Option(name: .customLong("requirepass"),
            help: ArgumentHelp("Password kv clients must give first (AUTH). Prefer --requirepass-file or REACTORD_REQUIREPASS: flags show in ps.",
                               valueName: "password"))
    var requirePass: String?
    @Option(name: .customLong("requirepass-file"),
            help: ArgumentHelp("Read the kv password from this file's first line.", valueName: "file"))
    var requirePassFile: String?
    @Option(name: .customLong("log-level"),
            help: ReactorD.help("Least severe log event written to stderr: error, warn, info or debug.", .logLevel, valueName: "level"))
    var logLevel: String?
    @Option(name: .customLong("notify-keyspace-events"), parsing: .unconditional,
            help: ReactorD.help("Keyspace notification classes, Redis's letters (KEA, Ex; empty: none).", .notifyKeyspaceEvents,
                                valueName: "classes"))
    var notifyKeyspaceEvents: String?
    @Option(name: .customLong("client-output-buffer-limit"), parsing: .unconditional,
            help: ReactorD.help("Output limits, Redis's '<class> <hard> <soft> <seconds>' groups (pubsub is enforced).",
                                .clientOutputBufferLimit, valueName: "groups"))
    var clientOutputBufferLimit: String?

    /// The flags given on the command line, as text.
    var settingFlags: [(Setting, String?)] {
        [(.host, self.host), (.kvPort, self.kvPort), (.respPort, self.respPort), (.echoPort, self.echoPort), (.timePort, self.timePort),
         (.filePort, self.filePort), (.metricsPort, self.metricsPort), (.dataDir, self.dataDir),
         (.filesRoot, self.filesRoot), (.fsync, self.fsync), (.maxConnections, self.maxConnections), (.databases, self.databases),
         (.idleTimeout, self.idleTimeout), (.maxLine, self.maxLine), (.maxValue, self.maxValue),
         (.maxMemory, self.maxMemory), (.eviction, self.eviction), (.protectedMode, self.protectedMode),
         (.logLevel, self.logLevel), (.notifyKeyspaceEvents, self.notifyKeyspaceEvents),
         (.clientOutputBufferLimit, self.clientOutputBufferLimit)]
    }

    static func main() {
        // Allocations of 1 MiB and more (a large value, its request and reply buffers) are mapped and
        // unmapped on their own, so their memory goes back to the kernel when freed. glibc's default
        // raises this threshold after each large free, after which such buffers come from the heap
        // and stay in the resident set long after they were freed.
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as BadSettings {
            // README.md: a bad flag or config line is one line on stderr and exit 2.
            FileHandle.standardError.write(Data("reactord: \(failure.description)\n".utf8))
            Foundation.exit(2)
        } catch {
            // README.md: a bad flag is one line naming it on stderr and exit 2 (the library's usage
            // dump and exit 64 are kept for --help and friends only).
            if exitCode(for: error) == .validationFailure {
                let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                FileHandle.standardError.write(Data("reactord: \(message)\n".utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    func run() throws {
        let config = try self.effectiveConfiguration()
        if self.checkConfig {
            FileHandle.standardOutput.write(Data(Setting.describe(config).utf8))
            return
        }
        let level = config.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "reactord")
        do {
            let notifier = try SystemdNotifier(environment: ProcessInfo.processInfo.environment, logger: logger)
            let server = try Server(configuration: config, logger: logger)
            let endpoints = try server.start()
            server.handleSignals()
            for endpoint in endpoints { Self.say(endpoint.description) }
            Self.say("reactord: ready")
            if let notifier { server.announceReady(to: notifier) }
            try server.run()
        } catch {
            FileHandle.standardError.write(Data("reactord: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    /// The defaults, then the config file, then the flags given; then the password by its
    /// precedence (README.md: flag, flag file, environment, config file). Reads files, creates nothing.
    /// - Throws: ``BadSettings`` naming the flag, or the file and line.
    func effectiveConfiguration() throws(BadSettings) -> ServerConfiguration {
        var config = ServerConfiguration()
        var applied = ConfigFile.Applied()
        if let path = self.configFile {
            let bytes = try Self.readSmallFile(path, what: "--config \(path)")
            do {
                applied = try ConfigFile.apply(ConfigFile.parse(bytes: bytes), to: &config)
            } catch {
                throw BadSettings("\(path):\(error.line): \(error.reason)")
            }
        }
        for case let (setting, value?) in self.settingFlags {
            do {
                try setting.apply(value, to: &config)
            } catch {
                throw BadSettings("\(setting.flag): \(error.description)")
            }
        }
        if let password = self.requirePass {
            do {
                try Setting.requirepass.apply(password, to: &config)
            } catch {
                throw BadSettings("--requirepass: \(error.description)")
            }
        } else if let path = self.requirePassFile {
            config.requirePassword = try Self.password(fromFile: path, what: "--requirepass-file \(path)")
        } else if let password = ProcessInfo.processInfo.environment["REACTORD_REQUIREPASS"] {
            config.requirePassword = password.isEmpty ? nil : password  // as Redis: "" means none
        } else if let path = applied.passwordFile, let configPath = self.configFile {
            config.requirePassword = try Self.password(
                fromFile: path, what: "\(configPath):\(applied.passwordFileLine): requirepass-file \(path)")
        }
        return config
    }

    /// The first line of a password file; an empty one means no password, as Redis treats "".
    static func password(fromFile path: String, what: String) throws(BadSettings) -> String? {
        let bytes = try Self.readSmallFile(path, what: what)
        let first = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        guard !first.contains(0), let password = String(validating: first, as: UTF8.self) else {
            throw BadSettings("\(what): the password is not UTF-8 text")
        }
        return password.isEmpty ? nil : password
    }

    /// The largest config or password file read: these are a few lines; anything bigger (or a
    /// device that never ends) is a mistake.
    static let maxFileBytes = 1 << 20

    /// Reads a whole small file.
    static func readSmallFile(_ path: String, what: String) throws(BadSettings) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BadSettings("\(what): cannot read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BadSettings("\(what): cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= Self.maxFileBytes else { throw BadSettings("\(what): larger than 1 MiB") }
        }
    }

    /// One stdout line, flushed at once (stdout is a pipe when a script waits for `ready`).
    private static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

/// A bad flag, config line or password file: one line for stderr, exit 2.
struct BadSettings: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
