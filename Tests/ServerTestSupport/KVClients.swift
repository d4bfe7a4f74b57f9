// Helpers for the kv end-to-end tests: an in-process kv server on port 0, line and RESP request
// helpers on the blocking TestClient, the snapshot's text format read back, and a bounded runner
// for external tools (redis-cli, redis-benchmark, nutcracker, python3) that fails with a clear
// message when a tool is missing.

import Foundation
import Reactor
import Server
#if canImport(Glibc)
import Glibc
#endif

extension InProcessServer {
    /// A server with only the kv service on port 0, storing in `dataDirectory`.
    package static func kv(dataDirectory: String, fsync: String = "always",
                   _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> InProcessServer {
        try InProcessServer {
            $0.kvPort = .port(0)
            $0.echoPort = .off
            $0.timePort = .off
            $0.filePort = .off
            $0.dataDirectory = dataDirectory
            $0.fsync = fsync
            configure(&$0)
        }
    }

    /// The kv service's TCP port.
    package var kvPort: Int { self.endpoints.first { $0.service == "kv" && $0.transport == "tcp" }!.address.port }
}

/// Runs `body` against a kv server started in this process (127.0.0.1, a kernel-chosen port, every
/// other service off, storing in `dataDirectory` or a temporary directory of its own) and a RESP
/// client connected to it. However `body` ends, the server is stopped and its thread joined
/// (bounded), then the temporary directory is removed.
package func withKVServer<R>(fsync: String = "always", dataDirectory: String? = nil,
                             configure: (inout ServerConfiguration) -> Void = { _ in },
                             _ body: (InProcessServer, RESPTestClient) throws -> R) throws -> R {
    try withKVServerAndDirectory(fsync: fsync, dataDirectory: dataDirectory, configure: configure) { server in
        try body(server, try RESPTestClient(port: server.kvPort))
    }
}

/// ``withKVServer(fsync:dataDirectory:configure:_:)`` with a line-protocol client.
package func withKVLineServer<R>(fsync: String = "always", dataDirectory: String? = nil,
                                 configure: (inout ServerConfiguration) -> Void = { _ in },
                                 _ body: (InProcessServer, TestClient) throws -> R) throws -> R {
    try withKVServerAndDirectory(fsync: fsync, dataDirectory: dataDirectory, configure: configure) { server in
        try body(server, try TestClient(port: server.kvPort))
    }
}

private func withKVServerAndDirectory<R>(fsync: String, dataDirectory: String?, configure: (inout ServerConfiguration) -> Void,
                                         _ body: (InProcessServer) throws -> R) throws -> R {
    let directory = try TemporaryDirectory()
    let server = try InProcessServer.kv(dataDirectory: dataDirectory ?? directory.path, fsync: fsync, configure)
    defer {
        server.stop()
        withExtendedLifetime(directory) {}
    }
    return try body(server)
}

extension TestClient {
    /// Sends one line-protocol request and returns its one-line reply without the `\n`.
    package func request(_ line: String, deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> String {
        try self.send(line + "\n", deadline: deadline)
        let reply = self.readLine(deadline: deadline)
        guard reply.last == UInt8(ascii: "\n") else {
            throw TestFailure("no complete reply to '\(line)' (got \(String(decoding: reply, as: UTF8.self).debugDescription))")
        }
        return String(decoding: reply.dropLast(), as: UTF8.self)
    }

    /// Reads exactly `count` newline-terminated lines (without their `\n`), or throws at the deadline.
    package func readLines(_ count: Int, deadline: ContinuousClock.Instant = .now + .seconds(20)) throws -> [[UInt8]] {
        let (bytes, eof) = self.read(until: { $0.lazy.filter { $0 == UInt8(ascii: "\n") }.count >= count }, deadline: deadline)
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast().map(Array.init)
        guard lines.count >= count else {
            throw TestFailure("expected \(count) reply lines, got \(lines.count)\(eof ? " before EOF" : " before the deadline")")
        }
        return lines
    }
}

/// A RESP2 client over a ``TestClient``: sends commands, parses replies with the tests' own parser.
package final class RESPTestClient {
    package let client: TestClient
    /// Bytes read past the last complete reply.
    private var buffer: [UInt8] = []

    package init(port: Int) throws { self.client = try TestClient(port: port) }

    /// Speaks RESP over a client connected elsewhere (a socket with options set before it connected).
    package init(_ client: TestClient) { self.client = client }

    /// Sends one command (an array of bulk strings) and reads its reply.
    package func call(_ arguments: [[UInt8]], deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> RESPValue {
        try self.client.send(RESPValue.command(arguments), deadline: deadline)
        return try self.read(deadline: deadline)
    }

    package func call(_ words: String..., deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> RESPValue {
        try self.call(words.map { Array($0.utf8) }, deadline: deadline)
    }

    /// Reads one complete reply.
    package func read(deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> RESPValue {
        while true {
            if let (value, used) = RESPValue.parse(self.buffer[...]) {
                self.buffer.removeFirst(used)
                return value
            }
            guard let chunk = self.client.readSome() else {
                guard pollFor(self.client.fd, events: Int16(POLLIN), until: deadline) else { throw TestFailure("no RESP reply in time") }
                continue
            }
            if chunk.isEmpty {
                throw TestFailure("EOF before a complete RESP reply (have \(String(decoding: self.buffer, as: UTF8.self).debugDescription))")
            }
            self.buffer.append(contentsOf: chunk)
        }
    }
}

/// A RESP2 reply, parsed by the tests themselves (not by the code under test).
package enum RESPValue: Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk([UInt8]?)
    case array([RESPValue]?)

    package static func bulk(_ text: String) -> RESPValue { .bulk(Array(text.utf8)) }

    package var description: String {
        switch self {
        case .simple(let s): "+\(s)"
        case .error(let s): "-\(s)"
        case .integer(let n): ":\(n)"
        case .bulk(nil): "(nil)"
        case .bulk(let b?): String(decoding: b, as: UTF8.self).debugDescription
        case .array(nil): "(nil array)"
        case .array(let a?): "[\(a.map(\.description).joined(separator: ", "))]"
        }
    }

    /// `*<n>\r\n$<len>\r\n<arg>\r\n…`
    package static func command(_ arguments: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            out += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10]
        }
        return out
    }

    /// Parses one reply at the start of `bytes`. - Returns: it and the bytes used, or nil if incomplete.
    package static func parse(_ bytes: ArraySlice<UInt8>) -> (RESPValue, Int)? {
        guard let first = bytes.first else { return nil }
        guard let crlf = bytes.indices.first(where: { $0 + 1 < bytes.endIndex && bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
            return nil
        }
        let header = String(decoding: bytes[(bytes.startIndex + 1)..<crlf], as: UTF8.self)
        let afterHeader = crlf + 2
        let headerLength = afterHeader - bytes.startIndex
        switch first {
        case UInt8(ascii: "+"): return (.simple(header), headerLength)
        case UInt8(ascii: "-"): return (.error(header), headerLength)
        case UInt8(ascii: ":"): return (.integer(Int(header) ?? Int.min), headerLength)
        case UInt8(ascii: "$"):
            let length = Int(header) ?? -1
            if length < 0 { return (.bulk(nil), headerLength) }
            guard bytes.endIndex - afterHeader >= length + 2 else { return nil }
            return (.bulk(Array(bytes[afterHeader..<(afterHeader + length)])), headerLength + length + 2)
        case UInt8(ascii: "*"):
            let count = Int(header) ?? -1
            if count < 0 { return (.array(nil), headerLength) }
            var items: [RESPValue] = []
            var used = headerLength
            for _ in 0..<count {
                guard let (item, n) = parse(bytes[(bytes.startIndex + used)...]) else { return nil }
                items.append(item)
                used += n
            }
            return (.array(items), used)
        default:
            return (.error("test parser: unexpected reply type byte \(first)"), bytes.count)
        }
    }
}

/// Reads `database.txt` as docs/file-formats.md defines it: `#` lines skipped, then `key<TAB>value` a line
/// with `\\`, `\n`, `\r`, `\t` and `\xHH` escapes. Written here from that document, not the store's code.
package func readSnapshotFile(_ path: String) throws -> (pairs: [[UInt8]: [UInt8]], rawLines: [[UInt8]]) {
    guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
    let bytes = [UInt8](data)
    var pairs: [[UInt8]: [UInt8]] = [:]
    var rawLines: [[UInt8]] = []
    func unescape(_ field: ArraySlice<UInt8>) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = field.startIndex
        while i < field.endIndex {
            let b = field[i]
            i += 1
            guard b == UInt8(ascii: "\\") else { out.append(b); continue }
            guard i < field.endIndex else { throw TestFailure("dangling backslash in \(path)") }
            let e = field[i]
            i += 1
            switch e {
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "x"):
                guard i + 2 <= field.endIndex, let v = UInt8(String(decoding: field[i..<(i + 2)], as: UTF8.self), radix: 16) else {
                    throw TestFailure("bad \\x escape in \(path)")
                }
                out.append(v)
                i += 2
            default: throw TestFailure("bad escape \\\(Character(UnicodeScalar(e))) in \(path)")
            }
        }
        return out
    }
    for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
        if line.first == UInt8(ascii: "#") { continue }
        rawLines.append(Array(line))
        guard let tab = line.firstIndex(of: 9) else { throw TestFailure("line without a tab in \(path)") }
        pairs[try unescape(line[..<tab])] = try unescape(line[(tab + 1)...])
    }
    return (pairs, rawLines)
}

// MARK: - External tools

/// The absolute path of `name` on PATH. - Throws: a clear failure naming the tool (never a skip).
package func requireTool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    let dirs: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
    for dir in dirs {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestFailure("required tool '\(name)' not found on PATH: install it (.ci/run installs redis-server, redis-tools, nutcracker, netcat-openbsd and the python 'redis' package)")
}

/// What a finished tool run produced.
package struct ToolResult {
    package let status: Int32
    package let stdout: [UInt8]
    package let stderr: String
    package var text: String { String(decoding: self.stdout, as: UTF8.self) }
}

/// A child process with its output collected on background threads, stopped by PID.
package final class ChildProcess {
    package let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let collected = Shared<(out: [UInt8], err: [UInt8])>(([], []))
    private let drained = DispatchGroup()

    package init(_ tool: String, _ arguments: [String], stdin: [UInt8]? = nil) throws {
        self.process.executableURL = URL(fileURLWithPath: try requireTool(tool))
        self.process.arguments = arguments
        self.process.standardOutput = self.stdoutPipe
        self.process.standardError = self.stderrPipe
        let inputPipe = stdin.map { _ in Pipe() }
        self.process.standardInput = inputPipe ?? FileHandle.nullDevice
        try self.process.run()
        for (pipe, isOut) in [(self.stdoutPipe, true), (self.stderrPipe, false)] {
            let handle = pipe.fileHandleForReading
            let collected = self.collected
            self.drained.enter()
            let group = self.drained
            // Drained concurrently so a chatty child never blocks on a full pipe.
            Thread {
                let data = [UInt8](handle.readDataToEndOfFile())
                collected.with { if isOut { $0.out += data } else { $0.err += data } }
                group.leave()
            }.start()
        }
        if let inputPipe, let stdin {
            let handle = inputPipe.fileHandleForWriting
            let bytes = stdin
            Thread {
                try? handle.write(contentsOf: Data(bytes))
                try? handle.close()
            }.start()
        }
    }

    package var pid: pid_t { self.process.processIdentifier }
    package var isRunning: Bool { self.process.isRunning }
    package var stderrSoFar: String { String(decoding: self.collected.current.err, as: UTF8.self) }

    /// Waits for exit and the output to drain, bounded; kills by PID on timeout.
    package func finish(within seconds: Double) throws -> ToolResult {
        let exited = DispatchSemaphore(value: 0)
        let process = self.process
        Thread { process.waitUntilExit(); exited.signal() }.start()
        if exited.wait(timeout: .now() + seconds) != .success {
            self.kill()
            let name = self.process.executableURL?.lastPathComponent ?? "?"
            throw TestFailure("\(name) \(self.process.arguments ?? []) did not finish within \(seconds) s; stderr: \(self.stderrSoFar)")
        }
        _ = self.drained.wait(timeout: .now() + 5)
        let c = self.collected.current
        return ToolResult(status: self.process.terminationStatus, stdout: c.out, stderr: String(decoding: c.err, as: UTF8.self))
    }

    /// SIGKILL by PID if still running, and reap it (bounded).
    package func kill() {
        if self.process.isRunning { Glibc.kill(self.pid, SIGKILL) }
        let exited = DispatchSemaphore(value: 0)
        let process = self.process
        Thread { process.waitUntilExit(); exited.signal() }.start()
        _ = exited.wait(timeout: .now() + 5)
    }

    deinit { if self.process.isRunning { self.kill() } }
}

/// Runs a tool to completion (bounded) and returns its status and output.
package func runTool(_ tool: String, _ arguments: [String], stdin: [UInt8]? = nil, within seconds: Double = 30) throws -> ToolResult {
    try ChildProcess(tool, arguments, stdin: stdin).finish(within: seconds)
}

/// A TCP port that was free a moment ago on 127.0.0.1 (bound on port 0, read back, closed). For
/// tools that cannot be told port 0; callers retry when they lose the race.
package func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { Glibc.close(fd) }
    guard withSocketAddress(host: "127.0.0.1", port: 0, { sa, len, _ in bind(fd, sa, len) }) == 0 else {
        throw TestFailure("bind: errno \(errno)")
    }
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` right now.
package func acceptsConnections(port: Int) -> Bool {
    guard let client = try? TestClient(port: port, wait: false) else { return false }
    return (try? client.waitConnected(deadline: .now + .milliseconds(200))) != nil
}
