// The built `reactord` as an operator meets it: --config (applied, overridden by flags, refused
// with FILE:LINE), --check-config (prints, touches nothing), --version, flags checked before the
// disk is touched, help text that wraps to the terminal, the example reactord.conf, and systemd's
// notify protocol played by the test itself on an AF_UNIX datagram socket. Every process runs in
// its own temporary directory, on loopback and kernel-chosen ports, bounded and stopped by PID.

import Foundation
import Logging
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif


/// The package's root directory (where reactord.conf and deploy/ live).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The names in a directory (to prove a run created nothing).
func directoryEntries(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

@Suite struct ReactordOperationsTests {
    static let echoOnly = ["--echo-port", "0", "--kv-port", "off", "--time-port", "off", "--file-port", "off"]

    // MARK: Flags checked first

    @Test(arguments: [
        (["--host", "example.com"], "--host", "example.com"),
        (["--kv-port", "99999"], "--kv-port", "0-65535, or off"),
        (["--kv-port", "-1"], "--kv-port", "0-65535, or off"),
        (["--echo-port", "http"], "--echo-port", "0-65535, or off"),
        (["--idle-timeout", "-5"], "--idle-timeout", "seconds"),
        (["--max-value", "12tb"], "--max-value", "size in bytes"),
        (["--fsync", "sometimes"], "--fsync", "always, everysec, no"),
        (["--max-connections", "0"], "--max-connections", "1 or more"),
        (["--kv-port", "0", "--config", "no-such.conf"], "no-such.conf", "No such file"),
    ])
    func aBadFlagExitsTwoWithOneLineBeforeTouchingTheDisk(arguments: [String], flag: String, words: String) throws {
        let work = try TemporaryDirectory("reactord-flags")
        let run = try runExecutable("reactord", arguments, in: work.path)
        #expect(run.status == 2, "\(run)")
        #expect(run.stderrLines.count == 1, "\(run)")
        #expect(run.stderr.hasPrefix("reactord: ") && run.stderr.contains(flag) && run.stderr.contains(words), "\(run)")
        #expect(run.stdout.isEmpty)
        #expect(directoryEntries(work.path).isEmpty, "created \(directoryEntries(work.path)) before refusing")
    }

    @Test func versionIsThePackageVersion() throws {
        let work = try TemporaryDirectory("reactord-version")
        let run = try runExecutable("reactord", ["--version"], in: work.path)
        #expect(run.status == 0 && run.stdout == ServerConfiguration.version + "\n", "\(run)")
        #expect(directoryEntries(work.path).isEmpty)
    }

    // MARK: Help text

    /// Lines of `--help` that a greedy wrapper would have filled further: a line followed by a
    /// continuation whose first word would have fitted on it (ArgumentParser fills at most
    /// `columns - 1`). Hard-wrapped source text shows up here once the terminal is narrower or
    /// wider than the source was.
    static func raggedLines(_ help: String, columns: Int) -> [String] {
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var ragged: [String] = []
        for (line, next) in zip(lines, lines.dropFirst()) {
            guard !line.isEmpty, !next.isEmpty, !line.hasPrefix(" "), !next.hasPrefix(" "), !line.hasSuffix(":") else { continue }
            let firstWord = next.split(separator: " ").first ?? ""
            if line.count + 1 + firstWord.count <= columns - 1 { ragged.append(line) }
        }
        return ragged
    }

    @Test(arguments: ["reactord", "kvbench", "reactor-cli"])
    func helpWrapsToTheTerminalWidth(executable: String) throws {
        let work = try TemporaryDirectory("reactord-help")
        for columns in [80, 120] {
            let run = try runExecutable(executable, ["--help"], in: work.path, environment: ["COLUMNS": "\(columns)"])
            #expect(run.status == 0, "\(run)")
            let lines = run.stdout.split(separator: "\n")
            #expect(lines.allSatisfy { $0.count <= columns }, "\(executable): a line wider than \(columns) columns")
            let ragged = Self.raggedLines(run.stdout.components(separatedBy: "USAGE:")[0], columns: columns)
            #expect(ragged.isEmpty, "\(executable) at \(columns) columns: hard-wrapped lines \(ragged)")
        }
    }

    @Test func helpShowsTheDefaultsAsTheFlagsTakeThem() throws {
        let work = try TemporaryDirectory("reactord-help")
        let run = try runExecutable("reactord", ["--help"], in: work.path, environment: ["COLUMNS": "200"])
        #expect(run.status == 0)
        // Each option's entry: its line and the indented continuation lines after it.
        let options = run.stdout.components(separatedBy: "OPTIONS:").last ?? ""
        func entry(_ flag: String) -> String {
            let lines = options.split(separator: "\n").map(String.init)
            guard let start = lines.firstIndex(where: { $0.hasPrefix("  \(flag) ") }) else { return "" }
            let rest = lines[(start + 1)...].prefix { $0.hasPrefix("      ") }
            return ([lines[start]] + rest).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        }
        #expect(entry("--idle-timeout").contains("(default: 300)") && !entry("--idle-timeout").contains("300.0"),
                "\(entry("--idle-timeout"))")
        for (flag, value) in [("--kv-port", "9877"), ("--data-dir", "./data"), ("--fsync", "always"), ("--metrics-port", "off"),
                              ("--max-value", "536870912"), ("--protected-mode", "yes"), ("--log-level", "info")] {
            #expect(entry(flag).contains("(default: \(value))"), "\(flag): \(entry(flag))")
        }
        for flag in ["--config", "--check-config", "--requirepass-file", "--version", "--max-memory", "--eviction"] {
            #expect(run.stdout.contains(flag), "--help lacks \(flag)")
        }
    }

    // MARK: --config and --check-config

    @Test func theConfigFileIsAppliedAndFlagsOverrideIt() throws {
        let work = try TemporaryDirectory("reactord-config")
        try """
            # echo only, with a tiny line limit; the port is overridden on the command line
            kv-port off
            time-port off
            file-port off
            echo-port 1
            max-line 16
            loglevel warning
            """.write(toFile: work.file("test.conf"), atomically: true, encoding: .utf8)
        let process = try ReactordProcess(arguments: ["--config", "test.conf", "--echo-port", "0"], directory: work.path)
        defer { process.kill() }
        let lines = try #require(process.waitForReady(), "no ready line: \(process.standardError())")
        let tcp = try #require(lines.first { $0.hasPrefix("reactord: listening echo tcp 127.0.0.1:") }, "\(lines)")
        #expect(lines.count == 3, "only echo (tcp, udp) should listen: \(lines)")
        let port = try #require(tcp.split(separator: ":").last.flatMap { Int($0) })
        #expect(port != 1, "--echo-port 0 must override the file's echo-port 1")
        let client = try TestClient(port: port)
        try client.send("short\n")
        #expect(client.readLine() == Array("short\n".utf8))
        try client.send("a line longer than sixteen bytes\n")
        #expect(String(decoding: client.readLine(), as: UTF8.self) == "ERR line too long\n", "the file's max-line 16")
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0)
    }

    @Test func aBadConfigLineNamesTheFileAndLineAndExitsTwo() throws {
        let work = try TemporaryDirectory("reactord-config")
        try "# comment\n\nport 9877\nmaxclients lots\n".write(toFile: work.file("bad.conf"), atomically: true, encoding: .utf8)
        let run = try runExecutable("reactord", ["--config", "bad.conf"], in: work.path)
        #expect(run.status == 2, "\(run)")
        #expect(run.stderr == "reactord: bad.conf:4: maxclients: 'lots' is not a whole number of 1 or more\n", "\(run)")
        #expect(directoryEntries(work.path) == ["bad.conf"])

        try "kv-port 1\nno-such-thing yes\n".write(toFile: work.file("unknown.conf"), atomically: true, encoding: .utf8)
        let unknown = try runExecutable("reactord", ["--config", "unknown.conf", "--check-config"], in: work.path)
        #expect(unknown.status == 2 && unknown.stderr == "reactord: unknown.conf:2: unknown setting 'no-such-thing'\n", "\(unknown)")
    }

    @Test func checkConfigPrintsTheEffectiveSettingsAndTouchesNothing() throws {
        let work = try TemporaryDirectory("reactord-check")
        try "requirepass-file pw.txt\nport 7000\ndir /nonexistent/reactord-data\nappendfsync everysec\n"
            .write(toFile: work.file("r.conf"), atomically: true, encoding: .utf8)
        try "s3cret\n".write(toFile: work.file("pw.txt"), atomically: true, encoding: .utf8)
        let run = try runExecutable("reactord", ["--config", "r.conf", "--check-config", "--fsync", "no", "--idle-timeout", "1.5"],
                                    in: work.path)
        #expect(run.status == 0, "\(run)")
        #expect(!run.stdout.contains("s3cret"))
        let settings = Dictionary(uniqueKeysWithValues: run.stdout.split(separator: "\n").map {
            let parts = $0.split(separator: " ", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        })
        #expect(settings["kv-port"] == "7000")
        #expect(settings["data-dir"] == "/nonexistent/reactord-data")
        #expect(settings["fsync"] == "no", "the flag overrides the file")
        #expect(settings["idle-timeout"] == "1.5")
        #expect(settings["requirepass"] == "(set)")
        #expect(settings["host"] == "127.0.0.1")
        #expect(directoryEntries(work.path) == ["pw.txt", "r.conf"], "--check-config created files")

        try "port 70000\n".write(toFile: work.file("r.conf"), atomically: true, encoding: .utf8)
        let bad = try runExecutable("reactord", ["--config", "r.conf", "--check-config"], in: work.path)
        #expect(bad.status == 2 && bad.stdout.isEmpty && bad.stderr.hasPrefix("reactord: r.conf:1: port: '70000'"), "\(bad)")
    }

    @Test func passwordPrecedenceIsFlagThenFlagFileThenEnvironmentThenConfigFile() throws {
        let work = try TemporaryDirectory("reactord-password")
        try "requirepass from-config\n".write(toFile: work.file("r.conf"), atomically: true, encoding: .utf8)
        try "from-file\n".write(toFile: work.file("pw"), atomically: true, encoding: .utf8)
        // The effective password is only ever shown as (set): which one won is checked with AUTH.
        func password(_ arguments: [String], environment: [String: String]) throws -> String {
            let process = try ReactordProcess(
                arguments: ["--config", "r.conf", "--kv-port", "0", "--echo-port", "off", "--time-port", "off",
                            "--file-port", "off", "--data-dir", "data", "--fsync", "no"] + arguments,
                environment: environment, directory: work.path)
            defer { process.kill() }
            let lines = try #require(process.waitForReady(), "no ready line: \(process.standardError())")
            let kv = try #require(lines.first { $0.hasPrefix("reactord: listening kv tcp ") })
            let client = try TestClient(port: try #require(kv.split(separator: ":").last.flatMap { Int($0) }))
            for candidate in ["from-flag", "from-file", "from-env", "from-config"] {
                if try client.request("auth \(candidate)") == "OK" { return candidate }
            }
            return "none"
        }
        #expect(try password(["--requirepass", "from-flag", "--requirepass-file", "pw"], environment: ["REACTORD_REQUIREPASS": "from-env"]) == "from-flag")
        #expect(try password(["--requirepass-file", "pw"], environment: ["REACTORD_REQUIREPASS": "from-env"]) == "from-file")
        #expect(try password([], environment: ["REACTORD_REQUIREPASS": "from-env"]) == "from-env")
        #expect(try password([], environment: [:]) == "from-config")
    }

    // MARK: The example reactord.conf

    @Test func theExampleConfigSetsExactlyTheDefaults() throws {
        let work = try TemporaryDirectory("reactord-example")
        let example = packageRoot.appendingPathComponent("reactord.conf").path
        let plain = try runExecutable("reactord", ["--check-config"], in: work.path, environment: ["REACTORD_REQUIREPASS": ""])
        let withFile = try runExecutable("reactord", ["--config", example, "--check-config"], in: work.path,
                                         environment: ["REACTORD_REQUIREPASS": ""])
        #expect(plain.status == 0 && withFile.status == 0, "\(plain) \(withFile)")
        #expect(withFile.stdout == plain.stdout, "reactord.conf drifted from the defaults")
        #expect(plain.stdout.split(separator: "\n").count == Setting.allCases.count - 1)
        #expect(directoryEntries(work.path).isEmpty)
        // Every setting is in the file, set or (where computed at start) commented out.
        let text = try String(contentsOfFile: example, encoding: .utf8)
        for setting in Setting.allCases where setting != .requirepassFile {
            let line = text.split(separator: "\n").first { $0.hasPrefix(setting.rawValue + " ") || $0.hasPrefix("# " + setting.rawValue + " ") }
            #expect(line != nil, "reactord.conf does not mention \(setting.rawValue)")
        }
    }

    @Test func theServerStartsWithTheExampleConfig() throws {
        let work = try TemporaryDirectory("reactord-example")
        let example = packageRoot.appendingPathComponent("reactord.conf").path
        let process = try ReactordProcess(
            arguments: ["--config", example, "--kv-port", "0", "--echo-port", "0", "--time-port", "0", "--file-port", "0",
                        "--data-dir", work.file("data"), "--files-root", work.file("files")],
            environment: ["REACTORD_REQUIREPASS": ""], directory: work.path)
        defer { process.kill() }
        let lines = try #require(process.waitForReady(), "no ready line: \(process.standardError())")
        #expect(lines.filter { $0.hasPrefix("reactord: listening ") }.count == 6, "\(lines)")
        let kv = try #require(lines.first { $0.hasPrefix("reactord: listening kv tcp 127.0.0.1:") })
        let client = try TestClient(port: try #require(kv.split(separator: ":").last.flatMap { Int($0) }))
        #expect(try client.request("set k v") == "OK")
        #expect(try client.request("get k") == "v")
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0)
        #expect(FileManager.default.fileExists(atPath: work.file("data/database.txt")))
    }

    // MARK: systemd notify

    /// The test's side of sd_notify: an AF_UNIX datagram socket bound where NOTIFY_SOCKET says.
    final class NotifySocket {
        let fd: CInt
        /// The NOTIFY_SOCKET value: a path, or `@name` for the abstract namespace.
        let name: String

        init(path: String? = nil, abstractName: String? = nil) throws {
            let fd = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array((path ?? abstractName ?? "").utf8)
            if path == nil { bytes.insert(0, at: 0) }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count + (path == nil ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else {
                let err = errno
                close(fd)
                throw TestFailure("bind notify socket: errno \(err)")
            }
            self.fd = fd
            self.name = path ?? "@" + abstractName!
        }

        deinit { close(self.fd) }

        /// The next datagram's text, or nil if none came before the deadline.
        func receive(deadline: ContinuousClock.Instant) -> String? {
            guard pollFor(self.fd, events: Int16(POLLIN), until: deadline) else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            return n >= 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
        }
    }

    @Test func readyWatchdogAndStoppingReachTheNotifySocket() throws {
        let work = try TemporaryDirectory("reactord-notify")
        let notify = try NotifySocket(path: work.file("notify.sock"))
        let process = try ReactordProcess(arguments: Self.echoOnly,
                                          environment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"],
                                          directory: work.path)
        defer { process.kill() }

        // READY=1 is the first message, and by then every listener is bound: the ready line is
        // already on stdout and the echo port answers.
        #expect(notify.receive(deadline: .now + .seconds(20)) == "READY=1")
        let readyAt = ContinuousClock.now
        let lines = try #require(process.waitForReady(deadline: .now + .seconds(1)), "READY=1 came before the ready line")
        let tcp = try #require(lines.first { $0.hasPrefix("reactord: listening echo tcp ") })
        let client = try TestClient(port: try #require(tcp.split(separator: ":").last.flatMap { Int($0) }))
        try client.send("up\n")
        #expect(client.readLine() == Array("up\n".utf8))

        // WATCHDOG=1 every WATCHDOG_USEC/2 = 100 ms: three take at least 300 ms, minus Dispatch's
        // leeway, from READY=1.
        for _ in 0..<3 {
            #expect(notify.receive(deadline: .now + .seconds(10)) == "WATCHDOG=1")
        }
        #expect(ContinuousClock.now - readyAt >= .milliseconds(250), "watchdog pings faster than WATCHDOG_USEC/2")

        #expect(kill(process.pid, SIGTERM) == 0)
        var afterTerm: [String] = []
        while let message = notify.receive(deadline: .now + .seconds(10)) {
            afterTerm.append(message)
            if message != "WATCHDOG=1" { break }
        }
        #expect(afterTerm.last == "STOPPING=1", "\(afterTerm)")
        #expect(process.waitForExit(within: 5) == 0)
    }

    @Test func aStuckLoopStopsFeedingTheWatchdog() throws {
        let work = try TemporaryDirectory("reactord-notify")
        let notify = try NotifySocket(path: work.file("notify.sock"))
        let socketName = notify.name
        // The server in this process, on its own thread, so the test can stall its loop.
        let handles = Shared<(LoopHandle, StopHandle)?>(nil)
        let started = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        Thread {
            defer { finished.signal() }
            var configuration = ServerConfiguration()
            configuration.kvPort = .off
            configuration.timePort = .off
            configuration.filePort = .off
            configuration.echoPort = .port(0)
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            guard let server = try? Server(configuration: configuration, logger: logger), (try? server.start()) != nil,
                  let notifier = try? SystemdNotifier(environment: ["NOTIFY_SOCKET": socketName, "WATCHDOG_USEC": "100000"],
                                                      logger: logger) else {
                started.signal()
                return
            }
            server.announceReady(to: notifier)
            handles.with { $0 = (server.loop.handle, server.stopHandle) }
            started.signal()
            try? server.run()
        }.start()
        try #require(started.wait(timeout: .now() + 10) == .success)
        let (loop, stop) = try #require(handles.current, "the server did not start")
        defer {
            stop.stop()
            _ = finished.wait(timeout: .now() + 10)
        }
        #expect(notify.receive(deadline: .now + .seconds(10)) == "READY=1")
        for _ in 0..<2 { #expect(notify.receive(deadline: .now + .seconds(10)) == "WATCHDOG=1") }

        // The injected fault: the loop thread blocks for 600 ms (pings are due every 50 ms).
        loop.execute { _ in usleep(600_000) }
        var last = ContinuousClock.now
        var longestGap = Duration.zero
        var pingsAfterGap = 0
        let deadline = ContinuousClock.now + .seconds(10)
        while pingsAfterGap < 3, let message = notify.receive(deadline: deadline) {
            #expect(message == "WATCHDOG=1")
            let now = ContinuousClock.now
            longestGap = max(longestGap, now - last)
            last = now
            if longestGap >= .milliseconds(450) { pingsAfterGap += 1 }
        }
        #expect(longestGap >= .milliseconds(450), "pings went on while the loop was stuck (longest gap \(longestGap))")
        #expect(pingsAfterGap == 3, "pings did not resume once the loop turned again")
    }

    @Test func anAbstractNotifySocketWorksAndAWatchdogForAnotherProcessIsNotFed() throws {
        let work = try TemporaryDirectory("reactord-notify")
        let notify = try NotifySocket(abstractName: "reactord-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // WATCHDOG_PID names another process: sd_watchdog_enabled(3) says the watchdog is not ours.
        let process = try ReactordProcess(arguments: Self.echoOnly,
                                          environment: ["NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"],
                                          directory: work.path)
        defer { process.kill() }
        #expect(notify.receive(deadline: .now + .seconds(20)) == "READY=1")
        // Ten ping intervals with nothing: a bounded wait for something that must not come.
        #expect(notify.receive(deadline: .now + .milliseconds(500)) == nil)
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(notify.receive(deadline: .now + .seconds(10)) == "STOPPING=1")
        #expect(process.waitForExit(within: 5) == 0)
    }

    @Test func aNotifySocketThatIsNeitherAPathNorAbstractStopsTheStartWithOneLine() throws {
        let work = try TemporaryDirectory("reactord-notify")
        let run = try runExecutable("reactord", Self.echoOnly, in: work.path, environment: ["NOTIFY_SOCKET": "relative/path"])
        #expect(run.status == 1 && run.stderrLines.count == 1 && run.stderr.contains("NOTIFY_SOCKET"), "\(run)")
    }
}
