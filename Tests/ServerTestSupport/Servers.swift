// What the server test targets share: an in-process server on its own thread (port 0, stopped through
// its StopHandle and joined with a deadline), a blocking loopback client built on poll(2)
// deadlines, and a runner for the real `reactord` binary (stopped by its PID, never by name).

@_exported import TestSupport
import Foundation
import Logging
import Reactor
import Server
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A numeric IPv4 or IPv6 socket address for the test client's own socket calls.
package func withSocketAddress<R>(host: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t, CInt) -> R) -> R {
    var v4 = sockaddr_in()
    if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &v4) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size), AF_INET) }
        }
    }
    var v6 = sockaddr_in6()
    precondition(inet_pton(AF_INET6, host, &v6.sin6_addr) == 1, "not a numeric address: \(host)")
    v6.sin6_family = sa_family_t(AF_INET6)
    v6.sin6_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &v6) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size), AF_INET6) }
    }
}

/// A loopback TCP client on a non-blocking socket; every wait is a poll(2) with a deadline.
package final class TestClient {
    package let fd: CInt
    private(set) var isClosed = false

    /// Starts a non-blocking connect; ``waitConnected(deadline:)`` finishes it.
    package convenience init(host: String = "127.0.0.1", port: Int, wait: Bool = true, deadline: ContinuousClock.Instant = .now + .seconds(10)) throws {
        let family: CInt = host.contains(":") ? AF_INET6 : AF_INET
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        try self.init(socket: fd, host: host, port: port, wait: wait, deadline: deadline)
    }

    /// Takes a non-blocking stream socket made elsewhere (in another network namespace, say),
    /// binds it to `source` if given, and connects it.
    package init(socket fd: CInt, host: String, port: Int, bindTo source: String? = nil, wait: Bool = true,
         deadline: ContinuousClock.Instant = .now + .seconds(10)) throws {
        self.fd = fd
        if let source, withSocketAddress(host: source, port: 0, { sa, len, _ in bind(fd, sa, len) }) != 0 {
            let err = errno
            Glibc.close(fd)
            self.isClosed = true
            throw TestFailure("bind to \(source): errno \(err)")
        }
        let r = withSocketAddress(host: host, port: port) { sa, len, _ in connect(fd, sa, len) }
        if r != 0 && errno != EINPROGRESS {
            let err = errno
            Glibc.close(fd)
            self.isClosed = true
            throw TestFailure("connect to \(host):\(port): errno \(err)")
        }
        if wait { try self.waitConnected(deadline: deadline) }
    }

    deinit { self.close() }

    package func waitConnected(deadline: ContinuousClock.Instant) throws {
        guard pollFor(self.fd, events: Int16(POLLOUT), until: deadline) else { throw TestFailure("connect timed out") }
        var err: CInt = 0
        var len = socklen_t(MemoryLayout<CInt>.size)
        getsockopt(self.fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else { throw TestFailure("connect failed: errno \(err)") }
    }

    package func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        Glibc.close(self.fd)
    }

    package func shutdownWrite() { _ = Glibc.shutdown(self.fd, CInt(SHUT_WR)) }

    /// Sends every byte, waiting for writability up to the deadline.
    package func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant = .now + .seconds(10)) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(self.fd, raw.baseAddress! + sent, raw.count - sent, CInt(MSG_NOSIGNAL))
            }
            if n > 0 {
                sent += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                guard pollFor(self.fd, events: Int16(POLLOUT), until: deadline) else { throw TestFailure("send timed out") }
            } else {
                throw TestFailure("send failed: errno \(errno)")
            }
        }
    }

    package func send(_ text: String, deadline: ContinuousClock.Instant = .now + .seconds(10)) throws {
        try self.send(Array(text.utf8), deadline: deadline)
    }

    /// Whatever one non-blocking read returns: bytes, nil on would-block, [] on EOF or error.
    package func readSome(max: Int = 65536) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(self.fd, $0.baseAddress, $0.count) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return nil }
        return []
    }

    /// Reads until `done` says the bytes so far are enough, EOF, or the deadline.
    /// - Returns: the bytes and whether EOF (or a reset) ended the stream.
    package func read(until done: ([UInt8]) -> Bool = { _ in false },
              deadline: ContinuousClock.Instant = .now + .seconds(10)) -> (bytes: [UInt8], eof: Bool) {
        var result: [UInt8] = []
        while !done(result) {
            guard let chunk = self.readSome() else {
                guard pollFor(self.fd, events: Int16(POLLIN), until: deadline) else { return (result, false) }
                continue
            }
            if chunk.isEmpty { return (result, true) }
            result.append(contentsOf: chunk)
        }
        return (result, false)
    }

    package func read(count: Int, deadline: ContinuousClock.Instant = .now + .seconds(10)) -> [UInt8] {
        self.read(until: { $0.count >= count }, deadline: deadline).bytes
    }

    /// Reads through the next `\n` (or to EOF).
    package func readLine(deadline: ContinuousClock.Instant = .now + .seconds(10)) -> [UInt8] {
        self.read(until: { $0.last == UInt8(ascii: "\n") }, deadline: deadline).bytes
    }

    /// Reads everything until EOF or the deadline.
    package func readToEOF(deadline: ContinuousClock.Instant = .now + .seconds(10)) -> (bytes: [UInt8], eof: Bool) {
        self.read(deadline: deadline)
    }
}

/// A `Server` running in this process on its own thread, bound to port 0.
package final class InProcessServer {
    package let endpoints: [ListeningEndpoint]
    private let stopHandle: StopHandle
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    /// Starts a server with only echo enabled (port 0) after `configure` adjusts the configuration.
    /// - Parameter prepare: runs on the server's thread before ``Server/start()``.
    package init(_ configure: (inout ServerConfiguration) -> Void = { _ in }, prepare: @escaping @Sendable (Server) -> Void = { _ in }) throws {
        var configuration = ServerConfiguration()
        configuration.kvPort = .off
        configuration.timePort = .off
        configuration.filePort = .off
        configuration.echoPort = .port(0)
        configure(&configuration)
        let config = configuration
        let started = DispatchSemaphore(value: 0)
        let outcome = Shared<Result<([ListeningEndpoint], StopHandle), any Error>?>(nil)
        let finished = self.finished
        // The server is created on the thread that runs it: it is not Sendable, and only its
        // StopHandle (an inbox into the loop) ever crosses back to the test.
        let thread = Thread {
            do {
                let server = try Server(configuration: config, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
                prepare(server)
                let endpoints = try server.start()
                outcome.with { $0 = .success((endpoints, server.stopHandle)) }
                started.signal()
                try server.run()
            } catch {
                outcome.with { $0 = $0 ?? .failure(error) }
                started.signal()
            }
            finished.signal()
        }
        thread.start()
        guard started.wait(timeout: .now() + 10) == .success, let result = outcome.current else {
            throw TestFailure("server did not start within 10 s")
        }
        (self.endpoints, self.stopHandle) = try result.get()
    }

    /// The echo service's TCP port.
    package var echoPort: Int { self.endpoints.first { $0.service == "echo" && $0.transport == "tcp" }!.address.port }
    /// The echo service's UDP port.
    package var udpEchoPort: Int { self.endpoints.first { $0.service == "echo" && $0.transport == "udp" }!.address.port }

    /// Asks for the graceful stop and waits for the loop thread to finish (bounded).
    /// - Returns: whether it finished within the deadline.
    @discardableResult
    package func stop(within seconds: Double = 10) -> Bool {
        guard !self.stopped else { return true }
        self.stopped = true
        self.stopHandle.stop()
        return self.finished.wait(timeout: .now() + seconds) == .success
    }

    deinit { self.stop() }
}

/// Runs `body` against a server started in this process on 127.0.0.1 with kernel-chosen ports
/// (echo only, unless `configure` turns on more); however `body` ends, the server is stopped and
/// its thread joined (bounded).
package func withServer<R>(configure: (inout ServerConfiguration) -> Void = { _ in },
                           _ body: (InProcessServer) throws -> R) throws -> R {
    let server = try InProcessServer(configure)
    defer { server.stop() }
    return try body(server)
}

/// Resident set size of a process in KiB (VmRSS in /proc/<pid>/status).
package func residentKiB(pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
    return nil
}

/// The process's peak resident memory (VmHWM) in KiB.
package func highWaterKiB(pid: pid_t) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
    return nil
}

/// The `reactord` executable next to this test bundle (SwiftPM puts both in the same bin dir).
package func reactordExecutable() throws -> URL { try builtExecutable(named: "reactord") }

/// An executable product of this package (`reactord`, `line-upper`, …) next to this test bundle.
package func builtExecutable(named name: String) throws -> URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var candidates = [exe.deletingLastPathComponent().appendingPathComponent(name)]
    // Tests run from the package root: fall back to the debug bin dir.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/debug/\(name)"))
    for url in candidates where FileManager.default.isExecutableFile(atPath: url.path) { return url }
    throw TestFailure("\(name) executable not found (looked at \(candidates.map(\.path))): run `swift build` before `swift test`")
}

/// What a finished run of one of the package's executables printed.
package struct ExecutableRun: CustomStringConvertible {
    package let status: Int32
    package let stdout: String
    package let stderr: String
    package var stderrLines: [Substring] { self.stderr.split(separator: "\n") }
    package var description: String { "status \(self.status), stdout \(self.stdout.debugDescription), stderr \(self.stderr.debugDescription)" }
}

/// Runs a built executable to completion in `directory` (killed by PID after `seconds`).
/// `stdin` is written to its standard input, which is then closed (nil: /dev/null).
package func runExecutable(_ name: String, _ arguments: [String], stdin: String? = nil, in directory: String,
                   environment: [String: String] = [:], within seconds: Double = 20) throws -> ExecutableRun {
    let process = Process()
    process.executableURL = try builtExecutable(named: name)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Drained on their own threads so a chatty child never blocks on a full pipe.
    let out = Shared<Data>(Data()), err = Shared<Data>(Data())
    let drained = DispatchGroup()
    for (pipe, sink) in [(output, out), (errors, err)] {
        drained.enter()
        let handle = pipe.fileHandleForReading
        Thread {
            let data = handle.readDataToEndOfFile()
            sink.with { $0 = data }
            drained.leave()
        }.start()
    }
    if let stdin {
        try input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }
    let exited = DispatchSemaphore(value: 0)
    Thread { process.waitUntilExit(); exited.signal() }.start()
    if exited.wait(timeout: .now() + seconds) != .success {
        kill(process.processIdentifier, SIGKILL)
        _ = exited.wait(timeout: .now() + 5)
        throw TestFailure("\(name) \(arguments) still running after \(seconds) s: killed")
    }
    _ = drained.wait(timeout: .now() + 5)
    return ExecutableRun(status: process.terminationStatus, stdout: String(decoding: out.current, as: UTF8.self),
                         stderr: String(decoding: err.current, as: UTF8.self))
}

/// A running child process (`reactord` unless told otherwise) with its stdout and stderr on pipes.
/// Stopped by its PID.
package final class ReactordProcess {
    package let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private var stdoutBuffer: [UInt8] = []

    /// - Parameters:
    ///   - environment: variables added to (or replacing) this process's environment.
    ///   - directory: the working directory (default: this process's).
    ///   - shellPrefix: shell commands `/bin/sh` runs before it execs the executable in its place
    ///     (limits such as `ulimit -f`); the PID stays the same.
    package convenience init(executable: String = "reactord", arguments: [String], environment: [String: String] = [:],
                     directory: String? = nil, shellPrefix: String? = nil) throws {
        let executableURL = try builtExecutable(named: executable)
        if let shellPrefix {
            try self.init(launcher: URL(fileURLWithPath: "/bin/sh"),
                          arguments: ["-c", shellPrefix + "; exec \"$0\" \"$@\"", executableURL.path] + arguments,
                          environment: environment, directory: directory)
        } else {
            try self.init(launcher: executableURL, arguments: arguments, environment: environment, directory: directory)
        }
    }

    /// Runs `launcher` with `arguments` (a wrapper that execs the server, such as
    /// `ip netns exec NS reactord ...`, so the PID is still the server's), with `environment`
    /// added to this process's.
    package init(launcher: URL, arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws {
        self.process.executableURL = launcher
        self.process.arguments = arguments
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let directory { self.process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        self.process.standardOutput = self.stdoutPipe
        self.process.standardError = self.stderrPipe
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    package var pid: pid_t { self.process.processIdentifier }

    /// Stdout lines up to and including `reactord: ready`, or nil if it did not come in time.
    package func waitForReady(deadline: ContinuousClock.Instant = .now + .seconds(20)) -> [String]? {
        self.waitForLine(deadline: deadline) { $0 == "reactord: ready" }
    }

    /// Stdout lines up to and including the first that `isLast` accepts, or nil if none came in time.
    package func waitForLine(deadline: ContinuousClock.Instant = .now + .seconds(20), _ isLast: (String) -> Bool) -> [String]? {
        let fd = self.stdoutPipe.fileHandleForReading.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // Only finished lines count: a line still being written may be cut mid-number.
            let finished = self.stdoutBuffer.prefix(through: self.stdoutBuffer.lastIndex(of: 10) ?? -1)
            let lines = String(decoding: finished, as: UTF8.self).split(separator: "\n").map(String.init)
            if let last = lines.firstIndex(where: isLast) { return Array(lines[...last]) }
            guard pollFor(fd, events: Int16(POLLIN), until: deadline) else { return nil }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return nil }
            self.stdoutBuffer.append(contentsOf: buffer[0..<n])
        }
    }

    /// Waits for `reactord: ready` and returns the kv port it printed.
    package func readyKVPort() throws -> Int {
        guard let lines = self.waitForReady() else { throw TestFailure("no 'reactord: ready' within 20 s") }
        guard let kv = lines.first(where: { $0.hasPrefix("reactord: listening kv tcp ") }),
              let port = kv.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw TestFailure("no kv port in \(lines)")
        }
        return port
    }

    /// Waits for the process to exit, bounded. - Returns: its exit status, or nil on timeout.
    package func waitForExit(within seconds: Double) -> Int32? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        // Process.waitUntilExit has no timeout: wait on a reaper thread's semaphore instead.
        let exited = DispatchSemaphore(value: 0)
        let process = self.process
        let reaper = Thread { process.waitUntilExit(); exited.signal() }
        reaper.start()
        guard exited.wait(timeout: .now() + .milliseconds(millisecondsLeftInt(deadline))) == .success else { return nil }
        return process.terminationStatus
    }

    /// Everything written to stderr (call after exit).
    package func standardError() -> String {
        String(decoding: self.stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// SIGKILL by PID if still running, and reap it: no test leaves a server behind.
    package func kill() {
        if self.process.isRunning { Glibc.kill(self.pid, SIGKILL) }
        _ = self.waitForExit(within: 5)
    }

    deinit { self.kill() }
}

private func millisecondsLeftInt(_ deadline: ContinuousClock.Instant) -> Int { Int(millisecondsLeft(deadline)) }

/// Whether this machine has an IPv6 loopback.
package var hasIPv6Loopback: Bool {
    let fd = socket(AF_INET6, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { Glibc.close(fd) }
    return withSocketAddress(host: "::1", port: 0) { sa, len, _ in bind(fd, sa, len) } == 0
}
