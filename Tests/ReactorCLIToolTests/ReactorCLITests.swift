// The built `reactor-cli` run as a child process (bounded in time, killed by its PID) against an
// in-process server on port 0: each subcommand's output and exit status, downloads, refusing to
// overwrite, a refused connection (exit 3) and a bad flag (exit 2, one line).

import Dispatch
import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a run of reactor-cli printed.
typealias CLIRun = ExecutableRun

/// Runs reactor-cli with `arguments`, feeding `stdin`, in `directory`; killed by PID if it is
/// still running after `seconds`.
func runCLI(_ arguments: [String], stdin: String = "", in directory: String, within seconds: Double = 20) throws -> CLIRun {
    try runExecutable("reactor-cli", arguments, stdin: stdin, in: directory, within: seconds)
}

@Suite struct ReactorCLITests {
    /// kv, echo, time and file on port 0, with a temporary data dir and files root.
    final class Fixture {
        let directory: TemporaryDirectory
        let work: TemporaryDirectory
        let server: LoopObservedServer
        let fileBytes = randomBytes(300_000)

        init(password: String? = nil) throws {
            self.directory = try TemporaryDirectory("reactord-cli")
            self.work = try TemporaryDirectory("reactord-cli-work")
            try self.directory.write("files/f", self.fileBytes)
            try self.directory.write("files/sub/g.txt", Array("g\n".utf8))
            let root = self.directory.url("files"), data = self.directory.url("data")
            self.server = try LoopObservedServer {
                $0.kvPort = .port(0)
                $0.echoPort = .port(0)
                $0.timePort = .port(0)
                $0.filePort = .port(0)
                $0.dataDirectory = data
                $0.filesRoot = root
                $0.fsync = "no"
                $0.requirePassword = password
            }
        }

        func port(_ service: String, _ transport: String = "tcp") throws -> String {
            String(try self.server.port(service, transport))
        }

        func run(_ arguments: [String], stdin: String = "") throws -> CLIRun {
            try runCLI(arguments, stdin: stdin, in: self.work.path)
        }

        deinit {
            self.server.stop()
            self.directory.remove()
            self.work.remove()
        }
    }

    @Test func kvOneShotSetAndGet() throws {
        let fx = try Fixture()
        let port = try fx.port("kv")
        let set = try fx.run(["kv", "--port", port, "set", "greeting", "hello", "world"])
        #expect(set.status == 0 && set.stdout == "OK\n", "\(set)")
        let get = try fx.run(["kv", "--port", port, "get", "greeting"])
        #expect(get.status == 0 && get.stdout == "hello world\n", "\(get)")
        let missing = try fx.run(["kv", "--port", port, "get", "missing"])
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stdout == "ERR not found\n")
    }

    @Test func kvPasswordAuthenticatesFirst() throws {
        let fx = try Fixture(password: "pw")
        let port = try fx.port("kv")
        let refused = try fx.run(["kv", "--port", port, "get", "k"])
        #expect(refused.status == 1 && refused.stdout == "ERR authentication required\n", "\(refused)")
        let wrong = try fx.run(["kv", "--port", port, "--password", "nope", "get", "k"])
        #expect(wrong.status == 1 && wrong.stdout == "ERR invalid password\n", "\(wrong)")
        let set = try fx.run(["kv", "--port", port, "--password", "pw", "set", "k", "v"])
        #expect(set.status == 0 && set.stdout == "OK\n", "\(set)")
        let interactive = try fx.run(["kv", "--port", port, "--password", "pw"], stdin: "get k\nbye\n")
        #expect(interactive.status == 0 && interactive.stdout == "v\nGoodbye\n", "\(interactive)")
    }

    @Test func kvInteractiveReadsStdinUntilGoodbyeAndExitsOneAfterAnERR() throws {
        let fx = try Fixture()
        let run = try fx.run(["kv", "--port", try fx.port("kv")],
                             stdin: "set a 1\n\nget a\nput a 2\ncount\nbye\nget a\n")
        // Every request is still sent and answered; the ERR shows in the exit status.
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout == "OK\n1\nERR key exists\n1\nGoodbye\n")
        let clean = try fx.run(["kv", "--port", try fx.port("kv")], stdin: "set b 2\nget b\n")
        #expect(clean.status == 0 && clean.stdout == "OK\n2\n", "\(clean)")
        let failedLast = try fx.run(["kv", "--port", try fx.port("kv")], stdin: "get nothing-here\n")
        #expect(failedLast.status == 1 && failedLast.stdout == "ERR not found\n", "\(failedLast)")
    }

    @Test func versionMatchesTheServers() throws {
        let fx = try Fixture()
        let run = try fx.run(["--version"])
        #expect(run.status == 0 && run.stdout == ServerConfiguration.version + "\n", "\(run)")
    }

    @Test func echoOverTCPAndUDP() throws {
        let fx = try Fixture()
        let tcp = try fx.run(["echo", "--port", try fx.port("echo"), "hello"])
        #expect(tcp.status == 0 && tcp.stdout == "hello\n", "\(tcp)")
        let words = try fx.run(["echo", "--port", try fx.port("echo"), "two", "words"])
        #expect(words.stdout == "two words\n", "\(words)")
        let udp = try fx.run(["echo", "--udp", "--port", try fx.port("echo", "udp"), "hi"])
        #expect(udp.status == 0 && udp.stdout == "hi\n", "\(udp)")
    }

    @Test func timeOverTCPAndUDP() throws {
        let fx = try Fixture()
        for arguments in [["time", "--port", try fx.port("time")], ["time", "--udp", "--port", try fx.port("time", "udp")]] {
            let before = wallClockNow()
            let run = try fx.run(arguments)
            #expect(run.status == 0, "\(arguments): \(run)")
            #expect(run.stdout.hasSuffix("\n") && run.stdout.filter { $0 == "\n" }.count == 1, "\(run.stdout.debugDescription)")
            let stamp = try #require(parseTimeLine(String(run.stdout.dropLast())), "\(arguments): \(run.stdout)")
            #expect(stamp >= before - 1 && stamp <= wallClockNow() + 1)
        }
    }

    @Test func fileListPrintsEntries() throws {
        let fx = try Fixture()
        let run = try fx.run(["file", "list", "--port", try fx.port("file")])
        #expect(run.status == 0, "\(run)")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.count == 2 && lines[0] == "f \(fx.fileBytes.count) f" && lines[1].hasPrefix("d ") && lines[1].hasSuffix(" sub"),
                "\(run.stdout)")
        let sub = try fx.run(["file", "list", "--port", try fx.port("file"), "sub"])
        #expect(sub.stdout == "f 2 g.txt\n", "\(sub)")
        let missing = try fx.run(["file", "list", "--port", try fx.port("file"), "nope"])
        #expect(missing.status == 1 && missing.stderr.contains("ERR not found"), "\(missing)")
    }

    @Test func fileGetDownloadsIdenticallyAndNeverOverwritesWithoutForce() throws {
        let fx = try Fixture()
        let port = try fx.port("file")
        let out = fx.work.url("OUT")
        let first = try fx.run(["file", "get", "f", "-o", out, "--port", port])
        #expect(first.status == 0, "\(first)")
        #expect(FileManager.default.contents(atPath: out) == Data(fx.fileBytes))
        #expect(!FileManager.default.fileExists(atPath: out + ".part"))

        try fx.work.write("OUT", Array("keep me".utf8))
        let refused = try fx.run(["file", "get", "f", "-o", out, "--port", port])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderrLines.count == 1 && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data("keep me".utf8))

        let forced = try fx.run(["file", "get", "f", "-o", out, "--force", "--port", port])
        #expect(forced.status == 0, "\(forced)")
        #expect(FileManager.default.contents(atPath: out) == Data(fx.fileBytes))

        // Without -o: the file's own name, in the current directory.
        let named = try fx.run(["file", "get", "sub/g.txt", "--port", port])
        #expect(named.status == 0, "\(named)")
        #expect(FileManager.default.contents(atPath: fx.work.url("g.txt")) == Data("g\n".utf8))
    }

    @Test func fileGetIntoAFIFOWritesThroughItAndLeavesItAFIFO() throws {
        // Like `-o /dev/null`: a target that is not a regular file must be written in place; a
        // temporary file renamed over it would replace the node itself (as root, /dev/null).
        let fx = try Fixture()
        let fifo = fx.work.url("pipe")
        try #require(mkfifo(fifo, 0o644) == 0)
        // Read and write ends held by us: reads never see EOF, so the reader stops on the count.
        let fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let expected = fx.fileBytes.count
        let received = Shared<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        Thread {
            let deadline = ContinuousClock.now + .seconds(20)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while received.current.count < expected && pollFor(fd, events: Int16(POLLIN), until: deadline) {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { received.with { $0 += buffer[0..<n] } }
            }
            done.signal()
        }.start()
        let run = try fx.run(["file", "get", "f", "-o", fifo, "--port", try fx.port("file")])
        #expect(done.wait(timeout: .now() + 25) == .success)
        #expect(run.status == 0, "\(run)")
        let same = received.current == fx.fileBytes  // not inside #expect: a 300 kB diff takes minutes to print
        #expect(same, "FIFO got \(received.current.count) bytes, expected \(expected)")
        var st = stat()
        #expect(lstat(fifo, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO, "the FIFO was replaced")
        #expect(!FileManager.default.fileExists(atPath: fifo + ".part"))
    }

    @Test func fileGetOfAMissingFileExitsOneAndWritesNothing() throws {
        let fx = try Fixture()
        let out = fx.work.url("missing-out")
        let run = try fx.run(["file", "get", "missing", "-o", out, "--port", try fx.port("file")])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("ERR not found"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(!FileManager.default.fileExists(atPath: out + ".part"))
        let forbidden = try fx.run(["file", "get", "../x", "-o", out, "--port", try fx.port("file")])
        #expect(forbidden.status == 1 && forbidden.stderr.contains("ERR forbidden"), "\(forbidden)")
    }

    // Options follow the subcommand (for kv, before the request words, which pass through verbatim).
    @Test(arguments: [["kv", "--port", "PORT", "get", "x"], ["kv", "--port", "PORT"], ["echo", "--port", "PORT", "hi"],
                      ["time", "--port", "PORT"], ["file", "list", "--port", "PORT"], ["file", "get", "--port", "PORT", "f", "-o", "never"]])
    func connectingToAClosedPortExitsThreeNamingHostAndPort(command: [String]) throws {
        // A bound socket that does not listen: connect is refused, and no other process can
        // take the port meanwhile.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        try #require(withSocketAddress(host: "127.0.0.1", port: 0) { sa, len, _ in bind(fd, sa, len) } == 0)
        let port = localPort(fd)
        let work = try TemporaryDirectory("reactord-cli-closed")
        let run = try runCLI(command.map { $0 == "PORT" ? String(port) : $0 }, in: work.path)
        #expect(run.status == 3, "\(run)")
        #expect(run.stderrLines.count == 1 && run.stderr.contains("127.0.0.1:\(port)"), "\(run.stderr)")
        #expect(run.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: work.url("never")))
    }

    @Test(arguments: [["time", "--bogus"], ["echo", "--bogus", "hi"], ["file", "get", "--bogus", "f"], ["file", "list", "--nope"],
                      ["kv", "--bogus", "get", "x"], ["kv", "--port", "1", "--bogus"], ["time", "--port", "notanumber"]])
    func badFlagExitsTwoWithOneLine(arguments: [String]) throws {
        let work = try TemporaryDirectory("reactord-cli-flags")
        let run = try runCLI(arguments, in: work.path)
        #expect(run.status == 2, "\(run)")
        #expect(run.stderrLines.count == 1, "\(run.stderr)")
        let flag = arguments.first { $0.hasPrefix("--") && $0 != "--port" } ?? "--port"
        #expect(run.stderr.contains(flag), "\(run.stderr) does not name \(flag)")
        #expect(run.stdout.isEmpty)
    }

    @Test(arguments: [["--help"], ["kv", "--help"], ["kv", "--port", "1", "-h"], ["file", "get", "--help"], ["time", "--help"]])
    func helpPrintsUsageAndExitsZeroWithoutConnecting(arguments: [String]) throws {
        let work = try TemporaryDirectory("reactord-cli-help")
        let run = try runCLI(arguments, in: work.path)
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("USAGE: reactor-cli"), "\(run.stdout)")
        #expect(!run.stderr.contains("connect"), "\(run.stderr)")
    }
}
