// reactord's entry point: flags become a ServerConfiguration, then the server runs. Nothing
// else lives here.

import ArgumentParser
import CLinux
import Foundation
import Logging
import Server

enum FsyncFlag: String, ExpressibleByArgument, CaseIterable {
    case always, everysec, no
}

enum LogLevelFlag: String, ExpressibleByArgument, CaseIterable {
    case error, warn, info, debug

    var level: Logger.Level {
        switch self {
        case .error: return .error
        case .warn: return .warning
        case .info: return .info
        case .debug: return .debug
        }
    }
}

extension ServicePort: ExpressibleByArgument {}
extension ByteSize: ExpressibleByArgument {}
extension EvictionPolicy: ExpressibleByArgument {}

enum YesNo: String, ExpressibleByArgument, CaseIterable {
    case yes, no
}

@main
struct ReactorD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactord",
        abstract: "A single-threaded epoll server: durable key-value store, echo, time and file services.",
        discussion: """
            Every service runs on one event-loop thread. A port of 0 asks the kernel for a free
            port; 'off' disables the service. Once every listener is bound, one line per listener
            and then 'reactord: ready' are printed on stdout. SIGINT or SIGTERM stops gracefully.

            Examples:
              reactord                                  all services on their default ports
              reactord --kv-port 0 --echo-port off      kv on any free port, no echo
              reactord --host ::1 --fsync everysec      IPv6 loopback, fsync once a second
            """)

    @Option(help: "Address to listen on (numeric IPv4 or IPv6, or localhost).")
    var host = "127.0.0.1"
    @Option(name: .customLong("kv-port"), help: "Key-value service port (line protocol and RESP), or 'off'.")
    var kvPort = ServicePort.port(9877)
    @Option(name: .customLong("echo-port"), help: "Echo service port (TCP and UDP), or 'off'.")
    var echoPort = ServicePort.port(9878)
    @Option(name: .customLong("time-port"), help: "Time service port (TCP and UDP), or 'off'.")
    var timePort = ServicePort.port(9879)
    @Option(name: .customLong("file-port"), help: "File service port, or 'off'.")
    var filePort = ServicePort.port(9880)
    @Option(name: .customLong("metrics-port"), help: "HTTP port for /metrics (Prometheus) and /healthz, or 'off'.")
    var metricsPort = ServicePort.off
    @Option(name: .customLong("data-dir"), help: "Directory for database.txt and its write-ahead log (created if missing).")
    var dataDir = "./data"
    @Option(name: .customLong("files-root"), help: "Root directory the file service serves (created if missing).")
    var filesRoot = "./files"
    @Option(help: "When the log is fsynced: always (before each acknowledgement), everysec, or no.")
    var fsync = FsyncFlag.always
    @Option(name: .customLong("max-connections"), help: "Most clients served at once (fitted to the descriptor limit).")
    var maxConnections = 10_000
    @Option(name: .customLong("idle-timeout"), help: "Close a connection idle this many seconds (0: never).")
    var idleTimeout = 300.0
    @Option(name: .customLong("max-line"), help: "Longest request line in bytes (units as redis.conf: 64kb).")
    var maxLine = ByteSize(bytes: 65536)
    @Option(name: .customLong("max-value"), help: "Largest value in bytes (Redis's proto-max-bulk-len).")
    var maxValue = ByteSize(bytes: 512 << 20)
    @Option(name: .customLong("max-memory"), help: "Memory limit in bytes, e.g. 64mb or 2gb (0: none).")
    var maxMemory = ByteSize(bytes: 0)
    @Option(help: "What to do past --max-memory: \(EvictionPolicy.allCases.map(\.rawValue).joined(separator: ", ")).")
    var eviction = EvictionPolicy.noeviction
    @Option(name: .customLong("protected-mode"), help: "With no password, refuse peers outside loopback (yes or no).")
    var protectedMode = YesNo.yes
    @Option(name: .customLong("requirepass"),
            help: "Password kv clients must give first (AUTH). Prefer --requirepass-file or REACTORD_REQUIREPASS: flags show in ps.")
    var requirePass: String?
    @Option(name: .customLong("requirepass-file"), help: "Read the kv password from the first line of this file.")
    var requirePassFile: String?
    @Option(name: .customLong("log-level"), help: "Least severe log event written to stderr.")
    var logLevel = LogLevelFlag.info

    func validate() throws {
        guard self.maxConnections > 0 else { throw ValidationError("--max-connections must be at least 1") }
        guard self.idleTimeout >= 0, self.idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be 0 or more seconds") }
        guard self.maxLine.bytes > 0 else { throw ValidationError("--max-line must be at least 1 byte") }
        guard self.maxValue.bytes > 0 else { throw ValidationError("--max-value must be at least 1 byte") }
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
        let level = self.logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var config = ServerConfiguration()
        config.host = self.host
        config.kvPort = self.kvPort
        config.echoPort = self.echoPort
        config.timePort = self.timePort
        config.filePort = self.filePort
        config.dataDirectory = self.dataDir
        config.filesRoot = self.filesRoot
        config.fsync = self.fsync.rawValue
        config.maxConnections = self.maxConnections
        config.idleTimeout = .milliseconds(Int64(self.idleTimeout * 1000))
        config.metricsPort = self.metricsPort
        config.maxLineBytes = self.maxLine.bytes
        config.maxValueBytes = self.maxValue.bytes
        config.maxMemoryBytes = self.maxMemory.bytes
        config.evictionPolicy = self.eviction
        config.protectedMode = self.protectedMode == .yes
        config.logLevel = level
        // Precedence (README): the flag, then the file, then the environment.
        if let password = self.requirePass {
            config.requirePassword = password
        } else if let path = self.requirePassFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                FileHandle.standardError.write(Data("reactord: --requirepass-file: cannot read \(path)\n".utf8))
                Foundation.exit(2)
            }
            config.requirePassword = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        } else if let password = ProcessInfo.processInfo.environment["REACTORD_REQUIREPASS"] {
            config.requirePassword = password
        }
        if config.requirePassword?.isEmpty == true { config.requirePassword = nil }  // as Redis: "" means none

        let logger = Logger(label: "reactord")
        do {
            let server = try Server(configuration: config, logger: logger)
            let endpoints = try server.start()
            server.handleSignals()
            for endpoint in endpoints { Self.say(endpoint.description) }
            Self.say("reactord: ready")
            try server.run()
        } catch {
            FileHandle.standardError.write(Data("reactord: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    /// One stdout line, flushed at once (stdout is a pipe when a script waits for `ready`).
    private static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
