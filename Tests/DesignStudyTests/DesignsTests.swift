// The classic concurrent-server designs in Benchmarks/designs (C): each is built with make into
// a temporary directory, started on port 0, checked to speak the echo protocol to concurrent
// clients with each connection held by exactly one descriptor in one process, then stopped by
// its PID with SIGTERM, after which none of its processes and none of its sockets may remain.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One row of /proc/<pid>/stat.
struct ProcStat {
    let pid: pid_t
    let state: Character
    let ppid: pid_t
    let pgrp: pid_t

    init?(pid: pid_t) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // The command name is in parentheses and may hold spaces: fields start after the last ')'.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 3, let state = fields[0].first, let ppid = pid_t(fields[1]), let pgrp = pid_t(fields[2])
        else { return nil }
        (self.pid, self.state, self.ppid, self.pgrp) = (pid, state, ppid, pgrp)
    }

    /// Every process on the machine right now.
    static func all() -> [ProcStat] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { pid_t($0) }.compactMap { ProcStat(pid: $0) }
    }

    /// `root` and all its descendants.
    static func tree(_ root: pid_t) -> [ProcStat] {
        let all = Self.all()
        var result = all.filter { $0.pid == root }
        var frontier: Set<pid_t> = [root]
        while !frontier.isEmpty {
            let children = all.filter { frontier.contains($0.ppid) }
            result += children
            frontier = Set(children.map(\.pid))
        }
        return result
    }
}

/// The socket inodes a process holds, one entry per descriptor.
func socketInodes(pid: pid_t) -> [String] {
    let dir = "/proc/\(pid)/fd"
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)") }
        .filter { $0.hasPrefix("socket:[") }
}

/// The inodes of 127.0.0.1 TCP connections (not listeners) whose local port is `port`, as
/// /proc/<pid>/fd names them: the server ends of its clients' connections.
func connectionInodes(localPort port: Int) -> Set<String> {
    Set(tcpTable(localPort: port).filter { $0.state != "0A" }.map { "socket:[\($0.inode)]" })
}

/// Whether anything listens on 127.0.0.1:`port`.
func isListening(port: Int) -> Bool {
    tcpTable(localPort: port).contains { $0.state == "0A" }
}

/// The rows of /proc/net/tcp whose local address is 127.0.0.1:`port`: state (0A = LISTEN) and inode.
func tcpTable(localPort port: Int) -> [(state: Substring, inode: Substring)] {
    // Read to EOF by hand: the table spans many pages and procfs reports its size as 0.
    let fd = open("/proc/net/tcp", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { Glibc.close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    let table = String(decoding: bytes, as: UTF8.self)
    let local = String(format: "0100007F:%04X", port)
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    var rows: [(state: Substring, inode: Substring)] = []
    for line in table.split(separator: "\n").dropFirst() {
        let fields: [Substring] = line.split(separator: " ")
        if fields.count > 9 && fields[1] == local { rows.append((fields[3], fields[9])) }
    }
    return rows
}

/// A design's server process, spawned with stdout on a socket pair and stopped by its PID.
final class DesignServer {
    let pid: pid_t
    private let stdoutFD: CInt
    private var stdoutBytes: [UInt8] = []
    private var reaped = false

    init(executable: String, arguments: [String], stderrPath: String) throws {
        var fds: [CInt] = [-1, -1]
        // A socket pair rather than a pipe: it is created close-on-exec atomically, so no process
        // another test spawns meanwhile inherits our end (pipe2 is not in the Glibc module).
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw TestFailure("socketpair: errno \(errno)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // The test runner's threads may block or ignore signals; the server starts clean.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGCHLD, SIGPIPE] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        Glibc.close(fds[1])
        guard rc == 0 else {
            Glibc.close(fds[0])
            throw TestFailure("posix_spawn \(executable): error \(rc)")
        }
        self.pid = pid
        self.stdoutFD = fds[0]
    }

    /// Reads stdout until `done` holds for what has arrived, EOF, or the deadline.
    private func readStdout(until done: ([UInt8]) -> Bool, deadline: ContinuousClock.Instant) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !done(self.stdoutBytes) {
            guard pollFor(self.stdoutFD, events: Int16(POLLIN), until: deadline) else { return false }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(self.stdoutFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            self.stdoutBytes.append(contentsOf: buffer[0..<n])
        }
        return true
    }

    /// The port printed on the first stdout line.
    func port(deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> Int {
        guard self.readStdout(until: { $0.contains(UInt8(ascii: "\n")) }, deadline: deadline),
              let line = String(decoding: self.stdoutBytes, as: UTF8.self).split(separator: "\n").first,
              let port = Int(line), port > 0 else {
            throw TestFailure("no port line on stdout within 10 s (got \(String(decoding: self.stdoutBytes, as: UTF8.self)))")
        }
        return port
    }

    /// Waits, bounded, until the server and every process that inherited its stdout are gone
    /// (stdout reaches EOF), then reaps it. - Returns: its wait status, or nil on timeout.
    func waitForExit(within seconds: Int64) -> CInt? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        _ = self.readStdout(until: { _ in false }, deadline: deadline)
        var status: CInt = 0
        while true {
            let r = waitpid(self.pid, &status, WNOHANG)
            if r == self.pid { self.reaped = true; return status }
            if r < 0 && errno == EINTR { continue }
            if r < 0 { self.reaped = true; return 0 }    // ECHILD: already reaped elsewhere
            if ContinuousClock.now >= deadline { return nil }
            _ = poll(nil, 0, 5)
        }
    }

    /// After a failure: SIGTERM, then SIGKILL to every process left in the tree; reaps the server.
    func kill() {
        guard !self.reaped else { return }
        Glibc.kill(self.pid, SIGTERM)
        if self.waitForExit(within: 5) == nil {
            for process in ProcStat.tree(self.pid) { Glibc.kill(process.pid, SIGKILL) }
            _ = self.waitForExit(within: 5)
        }
    }

    deinit {
        self.kill()
        Glibc.close(self.stdoutFD)
    }
}

@Suite struct DesignsTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Benchmarks/designs").path

    /// Builds one design with make into `directory` (never into the repository).
    static func build(_ design: String, into directory: TemporaryDirectory) throws -> String {
        let compiler = (try? requireTool("cc")) ?? (try? requireTool("gcc")) ?? (try? requireTool("clang"))
        guard let compiler else { throw TestFailure("no C compiler (cc, gcc or clang) on PATH: .ci/run installs gcc") }
        let result = try runTool("make", ["-s", "-C", Self.source, "BUILD=\(directory.path)", "CC=\(compiler)",
                                        "\(directory.path)/\(design)"], within: 120)
        guard result.status == 0 else { throw TestFailure("make \(design) failed: \(result.text)\(result.stderr)") }
        return directory.file(design)
    }

    /// Builds and starts a design on 127.0.0.1 port 0 with a pool of four where it has one.
    static func start(_ design: String, in directory: TemporaryDirectory) throws -> (DesignServer, Int) {
        let executable = try Self.build(design, into: directory)
        let server = try DesignServer(executable: executable, arguments: ["-l", "127.0.0.1", "-p", "0", "-w", "4"],
                                      stderrPath: directory.file("stderr.txt"))
        return (server, try server.port())
    }

    /// The clients' connections held by the server's processes: one (pid, inode) per descriptor,
    /// so a copy left open shows up twice.
    static func clientSockets(of server: DesignServer, port: Int) -> [(pid: pid_t, inode: String)] {
        let connections = connectionInodes(localPort: port)
        return ProcStat.tree(server.pid).flatMap { process in
            socketInodes(pid: process.pid).filter { connections.contains($0) }.map { (process.pid, $0) }
        }
    }

    /// Stops the server with SIGTERM while `client` is connected, and checks that the client sees
    /// EOF, that nothing listens on the port any more, and that not one of `processes`, nor
    /// anything in the server's process group, remains.
    static func stopLeavingNothing(_ server: DesignServer, port: Int, client: TestClient, processes: [pid_t]) throws {
        #expect(isListening(port: port))
        #expect(kill(server.pid, SIGTERM) == 0)
        let status = try #require(server.waitForExit(within: 10), "still running 10 s after SIGTERM")
        // Exit 0 after stopping the children, or (no children) SIGTERM's default action.
        #expect(status == 0 || (status & 0x7f) == SIGTERM, "wait status \(status)")
        #expect(client.readToEOF(deadline: .now + .seconds(10)).eof, "the connected client saw no EOF")
        #expect(!isListening(port: port), "a process still holds the listening socket")
        let remaining = processes.filter { ProcStat(pid: $0) != nil }
        #expect(remaining.isEmpty, "processes left behind: \(remaining)")
        let group = ProcStat.all().filter { $0.pgrp == server.pid }.map(\.pid)
        #expect(group.isEmpty, "processes left in the server's group: \(group)")
        for pid in remaining + group { kill(pid, SIGKILL) }     // a failed run leaves nothing either
    }

    static let concurrentDesigns = ["fork-per-client", "thread-per-client", "prefork-fdpass", "multi-accept"]

    @Test(arguments: DesignsTests.concurrentDesigns)
    func echoesToConcurrentClientsAndLeavesNoProcessOrSocketAfterSIGTERM(design: String) throws {
        let directory = try TemporaryDirectory("reactord-designs")
        let (server, port) = try Self.start(design, in: directory)
        defer { server.kill() }

        // Three clients open at once, each answered while all three are connected.
        let clients = try (0..<3).map { _ in try TestClient(port: port) }
        for (i, client) in clients.enumerated() { try client.send("hello from \(i)\n") }
        for (i, client) in clients.enumerated() { #expect(client.readLine() == Array("hello from \(i)\n".utf8)) }

        // Each connection is held by exactly one descriptor in one process: the acceptor has
        // closed its copy (the thread design shares one descriptor table, so it holds them all).
        #expect(pollFor(within: 10) { Self.clientSockets(of: server, port: port).count == 3 },
                "\(Self.clientSockets(of: server, port: port))")
        let held = Self.clientSockets(of: server, port: port)
        #expect(Set(held.map(\.inode)).count == 3)
        if design != "thread-per-client" {
            #expect(!held.contains { $0.pid == server.pid }, "the parent kept a client's descriptor: \(held)")
            #expect(Set(held.map(\.pid)).count == 3, "one process per client: \(held)")
        }

        // A pipelined burst (CRLF, empty lines, bytes that are not UTF-8) comes back identical.
        let burst = (0..<200).flatMap { i -> [UInt8] in
            i % 50 == 7 ? [0xff, 0xfe, UInt8(ascii: "\n")] : Array("line \(i)\(i % 3 == 0 ? "\r\n" : i % 11 == 0 ? "\n\n" : "\n")".utf8)
        }
        try clients[0].send(burst)
        #expect(clients[0].read(count: burst.count) == burst)
        // `:exit` closes without a reply; nothing after it is echoed.
        try clients[1].send("before\r\n:exit\nafter\n")
        let exited = clients[1].readToEOF()
        #expect(exited.eof && exited.bytes == Array("before\r\n".utf8), "\(String(decoding: exited.bytes, as: UTF8.self))")
        // A last line without a terminator is echoed as it is at EOF.
        try clients[2].send("no terminator")
        clients[2].shutdownWrite()
        let partial = clients[2].readToEOF()
        #expect(partial.eof && partial.bytes == Array("no terminator".utf8))
        clients[0].close()
        clients[1].close()
        clients[2].close()

        // Every client gone: no socket of theirs left open, no child left unreaped (no zombie),
        // and a fork-per-client server is back to its one process.
        #expect(pollFor(within: 10) {
            let tree = ProcStat.tree(server.pid)
            return Self.clientSockets(of: server, port: port).isEmpty && !tree.contains { $0.state == "Z" }
                && (design != "fork-per-client" || tree.count == 1)
        }, "\(Self.clientSockets(of: server, port: port)) \(ProcStat.tree(server.pid).map { "\($0.pid)\($0.state)" })")

        let last = try TestClient(port: port)
        try last.send("still here\n")
        #expect(last.readLine() == Array("still here\n".utf8))
        let processes = ProcStat.tree(server.pid).map(\.pid)
        if design == "prefork-fdpass" || design == "multi-accept" { #expect(processes.count == 5, "parent and 4 workers") }
        if design == "fork-per-client" { #expect(processes.count == 2, "parent and one child") }
        try Self.stopLeavingNothing(server, port: port, client: last, processes: processes)
    }

    @Test func iterativeServerServesTheNextClientWhenTheFirstLeaves() throws {
        let directory = try TemporaryDirectory("reactord-designs")
        let (server, port) = try Self.start("iterative", in: directory)
        defer { server.kill() }

        let first = try TestClient(port: port)
        let second = try TestClient(port: port)     // connected by the kernel, waiting in the backlog
        try first.send("first\n")
        #expect(first.readLine() == Array("first\n".utf8))
        try second.send("second\r\n")
        let burst = (0..<100).flatMap { Array("burst \($0)\n".utf8) }
        try first.send(burst + Array(":exit\n".utf8) + Array("never echoed\n".utf8))
        let firstReply = first.readToEOF()
        #expect(firstReply.eof && firstReply.bytes == burst)
        #expect(second.readLine() == Array("second\r\n".utf8))
        #expect(pollFor(within: 10) { Self.clientSockets(of: server, port: port).count == 1 })
        try second.send("unterminated")
        second.shutdownWrite()
        let secondReply = second.readToEOF()
        #expect(secondReply.eof && secondReply.bytes == Array("unterminated".utf8))

        let last = try TestClient(port: port)
        try last.send("last\n")
        #expect(last.readLine() == Array("last\n".utf8))
        try Self.stopLeavingNothing(server, port: port, client: last, processes: [server.pid])
    }
}
