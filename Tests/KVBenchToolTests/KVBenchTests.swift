// End-to-end tests of the kvbench executable: the built binary (.build/debug/kvbench, `swift build`
// runs before `swift test`) is run with Process against an in-test fake kv server that speaks the
// line protocol, against redis-server for RESP, or memcached for its text protocol. Loopback
// only, ports from the kernel, every process bounded in time and stopped by PID; synchronisation
// by readiness, never by sleeping (the fake server's one 200 ms stall is an injected fault).

import Foundation
import Server
#if canImport(FoundationXML)
import FoundationXML
#endif
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("kvbench", .serialized)
struct KVBenchTests {
    @Test("with -n 2000 exactly 2000 requests are sent and requests = replies + errors")
    func countsAddUp() throws {
        let server = try KVBenchFakeServer(errorKey: "kvbench:000007")
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "2000", "-c", "4", "-P", "8",
                                          "--keyspace", "50", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        let requests = try #require(object["requests"] as? Int)
        let replies = try #require(object["replies"] as? Int)
        let errors = try #require(object["errors"] as? Int)
        let misses = try #require(object["misses"] as? Int)
        #expect(requests == 2000)
        #expect(replies + errors == requests)
        #expect(errors > 0, "the injected ERR for kvbench:000007 must be counted")
        #expect(misses > 0, "GETs on keys never set answer ERR not found: misses, not errors")
        server.stop()
        #expect(server.requestsHandled == 2000, "the server must receive exactly -n requests")
    }

    @Test("replies dribbled one byte per write are parsed; SET-only never misses, GET-only on an empty store always does")
    func splitRepliesAndRatios() throws {
        let server = try KVBenchFakeServer(errorKey: nil, dribble: true)
        defer { server.stop() }
        let sets = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "300", "-c", "2", "-P", "4",
                                           "--ratio", "1:0", "--keyspace", "1000000", "--json"])
        #expect(sets.status == 0, "stderr: \(sets.stderr)")
        let setObject = try KVBenchProcess.json(sets.stdout)
        #expect(setObject["requests"] as? Int == 300)
        #expect(setObject["misses"] as? Int == 0)
        #expect(setObject["errors"] as? Int == 0)
        // Keys from a different seed over a huge keyspace: practically never the ones just set.
        let gets = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "300", "-c", "2", "-P", "4",
                                           "--ratio", "0:1", "--keyspace", "1000000", "--seed", "99", "--json"])
        #expect(gets.status == 0, "stderr: \(gets.stderr)")
        let getObject = try KVBenchProcess.json(gets.stdout)
        #expect(getObject["requests"] as? Int == 300)
        #expect((getObject["misses"] as? Int ?? 0) >= 295)
        #expect(getObject["errors"] as? Int == 0)
    }

    @Test("--json prints one object with every key and nothing else on stdout")
    func jsonHasEveryKey() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "500", "-c", "2", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.split(separator: "\n").count == 1)
        let object = try KVBenchProcess.json(run.stdout)
        for key in ["ops_per_sec", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "errors", "requests"] {
            #expect(KVBenchProcess.isNumber(object[key]), "missing or non-numeric key \(key) in \(run.stdout)")
        }
        #expect(object["errors"] as? Int == 0)
        #expect((object["ops_per_sec"] as? Double ?? 0) > 0)
        let p50 = object["p50_us"] as? Int ?? -1, p99 = object["p99_us"] as? Int ?? -1, max = object["max_us"] as? Int ?? -1
        #expect(p50 <= p99 && p99 <= max)
    }

    @Test("--duration drains the requests in flight, and the counts still add up")
    func durationModeDrains() throws {
        let server = try KVBenchFakeServer(errorKey: "kvbench:000003")
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "--duration", "0.5", "-c", "3", "-P", "4",
                                          "--keyspace", "20", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        let requests = try #require(object["requests"] as? Int)
        #expect(requests > 0)
        #expect((object["replies"] as? Int ?? -1) + (object["errors"] as? Int ?? -1) == requests)
        server.stop()
        #expect(server.requestsHandled == requests)
    }

    @Test("a server that goes away mid-run ends kvbench with exit 3 and one clear line", arguments: [[], ["--rate", "5000"]])
    func serverKilledMidRun(mode: [String]) throws {
        let server = try KVBenchFakeServer(errorKey: nil, closeAfter: 300)
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "1000000", "-c", "4", "--json"] + mode)
        #expect(run.status == 3)
        #expect(run.stdout.isEmpty)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(run.stderr)")
        #expect(run.stderr.contains("127.0.0.1:\(server.port)") && run.stderr.contains("lost"), "stderr: \(run.stderr)")
    }

    @Test("connection refused at start names host and port, exit 3")
    func connectionRefused() throws {
        let port = try KVBenchFakeServer.unusedPort()
        let run = try KVBenchProcess.run(["--port", "\(port)", "-n", "10"])
        #expect(run.status == 3)
        #expect(run.stderr == "kvbench: cannot connect to 127.0.0.1:\(port): Connection refused\n")
    }

    @Test("bad flags print one line and exit 2", arguments: [
        ["--ratio", "0:0"], ["-c", "0"], ["-n", "5", "--duration", "1"], ["--ratio", "x"], ["-P", "0"],
        ["--protocol", "http"], ["--no-such-flag"], ["--rate", "0"], ["--rate", "x"], ["--distribution", "pareto"],
        ["--distribution", "zipf:0"], ["--distribution", "zipf:abc"], ["--key-prefix", "a b"], ["--sweep", "0"],
        ["--sweep", "1", "-n", "5"], ["--sweep", "1", "--rate", "100"], ["--protocol", "memcache", "--password", "x"],
    ])
    func badFlags(arguments: [String]) throws {
        let run = try KVBenchProcess.run(arguments)
        #expect(run.status == 2, "\(arguments): \(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(arguments): \(run.stderr)")
        #expect(run.stderr.hasPrefix("kvbench: "))
        #expect(run.stdout.isEmpty)
    }

    @Test("--plot writes a well-formed SVG with text and a curve")
    func plotIsWellFormedSVG() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let svgPath = directory.appendingPathComponent("run.svg").path
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "--duration", "0.4", "-c", "2", "--plot", svgPath])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("ops/s"))
        let data = try Data(contentsOf: URL(fileURLWithPath: svgPath))
        let collector = KVBenchSVGCollector()
        let parser = XMLParser(data: data)
        parser.delegate = collector
        #expect(parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))")
        #expect(collector.elements.first == "svg")
        #expect(collector.elements.contains("text"))
        #expect(collector.elements.contains("polyline") || collector.elements.contains("path"))
        #expect(collector.text.contains("Throughput") && collector.text.contains("percentile"))
    }

    @Test("--plot into a folder that does not exist: one line naming the path, exit 2, before any load")
    func plotIntoMissingFolderNamesThePath() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("kvbench-missing-\(UUID().uuidString)")
        let svgPath = missing.appendingPathComponent("run.svg").path
        // No server at all: the check comes before connecting.
        let run = try KVBenchProcess.run(["--port", "1", "-n", "10", "--plot", svgPath])
        #expect(run.status == 2, "stderr: \(run.stderr)")
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1 && run.stderr.contains(svgPath) && run.stderr.contains(missing.path), "stderr: \(run.stderr)")
        #expect(!run.stderr.contains("The file"), "Foundation's message instead of the path: \(run.stderr)")
    }

    @Test("the summary says where the keys it SET were left (their prefix); a GET-only run says nothing")
    func summaryNamesTheKeysLeftBehind() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let sets = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "200", "-c", "2", "--keyspace", "40"])
        #expect(sets.status == 0, "stderr: \(sets.stderr)")
        let note = try #require(sets.stdout.split(separator: "\n").first { $0.contains("left on the server") }, "\(sets.stdout)")
        #expect(note.contains("kvbench:*") && note.contains("40 keys"), "\(note)")
        let prefixed = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "50", "-c", "1", "--key-prefix", "mine/"])
        #expect(prefixed.stdout.contains("mine/*"), "\(prefixed.stdout)")
        let gets = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "50", "-c", "1", "--ratio", "0:1"])
        #expect(gets.status == 0 && !gets.stdout.contains("left on the server"), "\(gets.stdout)")
    }

    @Test("--version prints the package version")
    func version() throws {
        let run = try KVBenchProcess.run(["--version"])
        #expect(run.status == 0 && run.stdout.split(separator: "\n") == [Substring(ServerConfiguration.version)], "\(run)")
    }

    @Test("--protocol resp drives redis-server: exact counts, no errors, preloaded GETs all hit")
    func respAgainstRedis() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "-n", "2000", "-c", "4",
                                          "-P", "4", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 2000)
        #expect(object["errors"] as? Int == 0)

        let hits = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "-n", "1000", "-c", "2",
                                           "--ratio", "0:1", "--keyspace", "300", "--preload", "--json"])
        #expect(hits.status == 0, "stderr: \(hits.stderr)")
        let hitObject = try KVBenchProcess.json(hits.stdout)
        #expect(hitObject["requests"] as? Int == 1000)
        #expect(hitObject["misses"] as? Int == 0)
        #expect(hitObject["preloaded_keys"] as? Int == 300)
    }
}

// MARK: - Helpers (named KVBench… so they cannot clash with other files in this target)

/// Runs the built kvbench binary with a time bound.
enum KVBenchProcess {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static var binary: URL {
        // Tests/KVBenchToolTests/KVBenchTests.swift -> package root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/kvbench")
    }

    /// Runs kvbench with `arguments`; kills it (by PID) and throws if it outlives `timeout`.
    static func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> Outcome {
        guard FileManager.default.isExecutableFile(atPath: self.binary.path) else {
            throw Failure(description: "kvbench binary not found at \(self.binary.path): run `swift build` first")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvbench-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout")
        let errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = self.binary
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 10)
            throw Failure(description: "kvbench \(arguments) did not finish within \(timeout) s; killed")
        }
        return Outcome(status: process.terminationStatus,
                       stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                       stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    static func isNumber(_ value: Any?) -> Bool {
        value is NSNumber || value is Int || value is Double
    }

    static func json(_ text: String) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        guard let object = value as? [String: Any] else { throw Failure(description: "not a JSON object: \(text)") }
        return object
    }
}

/// Collects element names and text of an XML document.
final class KVBenchSVGCollector: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        self.elements.append(elementName)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        self.text += string
    }
}

/// A line-protocol kv server on 127.0.0.1 (kernel-chosen port), served by one thread with a
/// poll loop: `set` -> `OK`, `get` -> the value or `ERR not found`, `ERR injected` for
/// `errorKey`. With `closeAfter`, it closes every connection once it has answered that many
/// requests (a server that dies mid-run). With `stallOnceAfter`, it stops answering for 200 ms,
/// once, that many seconds after the first request (a pause such as a fork or a slow disk).
/// With `password`, a connection must send `auth <password>` first. With `memcache`, it speaks
/// memcached's text protocol (`set k f e n` + data -> `STORED`, `get k` -> `VALUE … END` or `END`,
/// `SERVER_ERROR` for `errorKey`) instead. It counts the requests per key.
final class KVBenchFakeServer: Sendable {
    let port: Int
    private let listener: CInt
    private let wakeRead: CInt
    private let wakeWrite: CInt
    private let errorKey: String?
    private let closeAfter: Int?
    private let dribble: Bool
    private let stallOnceAfter: Double?
    private let password: String?
    private let memcache: Bool
    private let handled = Mutex(0)
    private let counts = Mutex<[String: Int]>([:])
    private let authAttempts = Mutex<[String]>([])
    private let finished = DispatchSemaphore(value: 0)
    private let stopped = Mutex(false)

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// - Parameter dribble: write replies one byte per send, so they arrive split across reads.
    init(errorKey: String?, closeAfter: Int? = nil, dribble: Bool = false, stallOnceAfter: Double? = nil,
         password: String? = nil, memcache: Bool = false) throws {
        self.memcache = memcache
        self.errorKey = errorKey
        self.closeAfter = closeAfter
        self.dribble = dribble
        self.stallOnceAfter = stallOnceAfter
        self.password = password
        let (fd, port) = try Self.listen()
        self.listener = fd
        self.port = port
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else {
            Glibc.close(fd)
            throw Failure(description: "pipe failed: errno \(errno)")
        }
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        let thread = Thread { [self] in
            self.serve()
            self.finished.signal()
        }
        thread.start()
    }

    /// Requests answered so far (final once ``stop()`` returned).
    var requestsHandled: Int { self.handled.withLock { $0 } }

    /// GET and SET requests per key (final once ``stop()`` returned).
    var keyCounts: [String: Int] { self.counts.withLock { $0 } }

    /// The passwords tried with `auth`, in order.
    var passwordsTried: [String] { self.authAttempts.withLock { $0 } }

    /// Stops the serving thread and closes every descriptor. Idempotent.
    func stop() {
        let first = self.stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = Glibc.write(self.wakeWrite, &byte, 1)
        _ = self.finished.wait(timeout: .now() + 10)
        Glibc.close(self.wakeWrite)
        Glibc.close(self.wakeRead)
        Glibc.close(self.listener)
    }

    /// A port nothing listens on (bound, then released).
    static func unusedPort() throws -> Int {
        let (fd, port) = try self.listen()
        Glibc.close(fd)
        return port
    }

    private static func listen() throws -> (CInt, Int) {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            Glibc.close(fd)
            throw Failure(description: "bind/listen failed: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func serve() {
        var buffers: [CInt: [UInt8]] = [:]
        var authenticated: Set<CInt> = []
        var pendingSets: [CInt: String] = [:]  // memcache: the key whose data line comes next
        var store: [String: String] = [:]
        var counts: [String: Int] = [:]
        var firstRequest: ContinuousClock.Instant?
        var stalled = false
        defer { self.counts.withLock { $0 = counts } }
        var dead = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var polls = [pollfd(fd: self.wakeRead, events: Int16(POLLIN), revents: 0)]
            if !dead { polls.append(pollfd(fd: self.listener, events: Int16(POLLIN), revents: 0)) }
            for fd in buffers.keys { polls.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&polls, nfds_t(polls.count), -1)
            if ready < 0 { if errno == EINTR { continue } else { break } }
            if polls[0].revents != 0 { break }
            for entry in polls.dropFirst() where entry.revents != 0 {
                if entry.fd == self.listener {
                    let client = accept(self.listener, nil, nil)
                    if client >= 0 {
                        if self.dribble {
                            // No Nagle: each one-byte send leaves as its own segment.
                            var on: CInt = 1
                            _ = setsockopt(client, CInt(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<CInt>.size))
                        }
                        buffers[client] = []
                    }
                    continue
                }
                if let after = self.stallOnceAfter, !stalled, let first = firstRequest,
                   ContinuousClock.now - first >= .seconds(after) {
                    stalled = true
                    usleep(200_000)  // the injected pause: nothing is read or answered meanwhile
                }
                let n = chunk.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if n <= 0 {
                    Glibc.close(entry.fd)
                    buffers[entry.fd] = nil
                    authenticated.remove(entry.fd)
                    pendingSets[entry.fd] = nil
                    continue
                }
                if firstRequest == nil { firstRequest = .now }
                var pending = buffers[entry.fd, default: []] + chunk[0..<n]
                var reply: [UInt8] = []
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    let answer: String
                    if self.memcache {
                        let text = line.hasSuffix("\r") ? String(line.dropLast()) : line
                        if let key = pendingSets.removeValue(forKey: entry.fd) {
                            counts[key, default: 0] += 1
                            store[key] = text
                            answer = key == self.errorKey ? "SERVER_ERROR injected\r" : "STORED\r"
                        } else {
                            let words = text.split(separator: " ")
                            if words.count == 5 && words[0] == "set" {
                                pendingSets[entry.fd] = String(words[1])
                                continue  // answered after its data line
                            } else if words.count == 2 && words[0] == "get" {
                                let key = String(words[1])
                                counts[key, default: 0] += 1
                                if key == self.errorKey {
                                    answer = "SERVER_ERROR injected\r"
                                } else if let value = store[key] {
                                    answer = "VALUE \(key) 0 \(value.utf8.count)\r\n\(value)\r\nEND\r"
                                } else {
                                    answer = "END\r"
                                }
                            } else {
                                answer = "ERROR\r"
                            }
                        }
                    } else if let password = self.password, !authenticated.contains(entry.fd) {
                        if line.hasPrefix("auth ") {
                            let tried = String(line.dropFirst(5))
                            self.authAttempts.withLock { $0.append(tried) }
                            if tried == password { authenticated.insert(entry.fd) }
                            answer = tried == password ? "OK" : "ERR invalid password"
                        } else {
                            answer = "ERR authentication required"
                        }
                    } else {
                        answer = self.answer(line, store: &store, counts: &counts)
                    }
                    reply += Array(answer.utf8) + [0x0A]
                    let count = self.handled.withLock { count in
                        count += 1
                        return count
                    }
                    if let limit = self.closeAfter, count >= limit {
                        dead = true
                        break
                    }
                }
                buffers[entry.fd] = pending
                reply.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let size = self.dribble ? 1 : raw.count - offset
                        let written = Glibc.send(entry.fd, raw.baseAddress! + offset, size, Int32(MSG_NOSIGNAL))
                        if written <= 0 { break }
                        offset += written
                    }
                }
                if dead { break }
            }
            if dead {
                // The server "dies": every client connection goes, no more are accepted.
                for fd in buffers.keys { Glibc.close(fd) }
                buffers.removeAll()
                authenticated.removeAll()
                pendingSets.removeAll()
            }
        }
        for fd in buffers.keys { Glibc.close(fd) }
    }

    private func answer(_ line: String, store: inout [String: String], counts: inout [String: Int]) -> String {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard words.count >= 2 else { return "ERR wrong number of arguments" }
        let key = String(words[1])
        counts[key, default: 0] += 1
        if key == self.errorKey { return "ERR injected failure" }
        switch words[0] {
        case "set":
            store[key] = words.count > 2 ? String(words[2]) : ""
            return "OK"
        case "get":
            return store[key] ?? "ERR not found"
        default:
            return "ERR unknown command '\(words[0])'"
        }
    }
}

/// A redis-server on a free 127.0.0.1 port, without persistence, stopped by PID.
enum KVBenchRedis {
    static func start(_ extraArguments: [String] = []) throws -> LoggedServerProcess {
        try LoggedServerProcess.start(
            executable: "redis-server", readyMarker: "Ready to accept connections",
            installHint: "apt-get install redis-server"
        ) { port in
            ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", ""] + extraArguments
        }
    }
}

/// A memcached (`-t 1`, Debian's package) on a free 127.0.0.1 port, stopped by PID.
enum KVBenchMemcached {
    static func start() throws -> LoggedServerProcess {
        // -vv: it says "server listening" once the socket listens (and then logs every command,
        // which the reader thread drains).
        try LoggedServerProcess.start(
            executable: "memcached", readyMarker: "server listening", installHint: "apt-get install memcached"
        ) { port in
            ["-t", "1", "-l", "127.0.0.1", "-p", "\(port)", "-U", "0", "-m", "64", "-vv"]
                + (geteuid() == 0 ? ["-u", "root"] : [])  // memcached refuses root without -u
        }
    }
}

/// Another project's server (redis-server, memcached) on a free 127.0.0.1 port, ready once its log
/// says so, stopped by PID.
final class LoggedServerProcess {
    let port: Int
    private let process: Process
    private let exited: DispatchSemaphore

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private init(port: Int, process: Process, exited: DispatchSemaphore) {
        self.port = port
        self.process = process
        self.exited = exited
    }

    /// The log up to readiness, shared with the pipe's reader thread.
    private final class Log: Sendable {
        let text = Mutex("")
    }

    /// Starts `executable` (looked up in /usr/bin, /usr/local/bin and PATH) with the arguments for a
    /// free port, and waits up to 15 s for `readyMarker` in its output.
    static func start(
        executable: String, readyMarker: String, installHint: String, arguments: (Int) -> [String]
    ) throws -> LoggedServerProcess {
        let candidates = ["/usr/bin/\(executable)", "/usr/local/bin/\(executable)"]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(executable)" }
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "\(executable) is not installed (\(installHint)): this test needs it")
        }
        let port = try KVBenchFakeServer.unusedPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments(port)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let log = Log()
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let ready = DispatchSemaphore(value: 0)
        // A plain thread with blocking reads: it ends at EOF, when the server exits. (Foundation's
        // readabilityHandler on Linux delayed the termination handler by seconds.) After readiness
        // it only drains, so a chatty server never blocks on a full pipe.
        let readFD = output.fileHandleForReading.fileDescriptor
        let reader = Thread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            var signalled = false
            while true {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if signalled { continue }
                let isReady = log.text.withLock { text in
                    text += String(decoding: chunk[0..<n], as: UTF8.self)
                    return text.contains(readyMarker)
                }
                if isReady {
                    signalled = true
                    ready.signal()
                }
            }
            if !signalled { ready.signal() }  // exited before ready: let start() notice at once
        }
        try process.run()
        reader.start()
        let server = LoggedServerProcess(port: port, process: process, exited: exited)
        let waited = ready.wait(timeout: .now() + 15)
        let text = log.text.withLock { $0 }
        guard waited == .success, process.isRunning, text.contains(readyMarker) else {
            server.stop()
            throw Failure(description: "\(executable) did not start on port \(port): \(text.suffix(500))")
        }
        return server
    }

    func stop() {
        guard self.process.isRunning else { return }
        // SIGKILL, not SIGTERM: the child inherits the signal mask of the test runner's thread,
        // where SIGTERM may be blocked (it then waited the whole timeout), and these servers run
        // without persistence: there is nothing to save.
        kill(self.process.processIdentifier, SIGKILL)
        _ = self.exited.wait(timeout: .now() + 10)
    }
}
