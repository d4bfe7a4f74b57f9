// The metrics port of the real `reactord` binary: known traffic, then /metrics scraped and read
// with a real Prometheus text-format parser (the PyPI prometheus-client package, through
// python3), the counts compared with what was driven; /healthz (200, and 503 while the log
// cannot be written), 404, 400 and the close, keep-alive pipelining, the bearer token, and
// nothing listening with the port off.

import Foundation
import Testing
@testable import Server
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP response, parsed by the test itself.
struct HTTPTestResponse {
    let status: Int
    /// Field names lower-cased.
    let headers: [String: String]
    let body: [UInt8]
    var text: String { String(decoding: self.body, as: UTF8.self) }
}

/// An HTTP/1.1 client over a ``TestClient``: pipelined responses are read one at a time.
final class HTTPTestClient {
    let client: TestClient
    private var buffer: [UInt8] = []

    init(port: Int) throws { self.client = try TestClient(port: port) }

    func send(_ text: String) throws { try self.client.send(text) }

    /// `GET path`, keep-alive, with optional extra header lines (each ending in CRLF).
    func get(_ path: String, headers: String = "") throws -> HTTPTestResponse {
        try self.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers)\r\n")
        return try self.readResponse()
    }

    /// Reads the next complete response (Content-Length framed).
    func readResponse(deadline: ContinuousClock.Instant = .now + .seconds(20)) throws -> HTTPTestResponse {
        while true {
            if let (response, used) = Self.parse(self.buffer) {
                self.buffer.removeFirst(used)
                return response
            }
            guard let chunk = self.client.readSome() else {
                guard pollFor(self.client.fd, events: Int16(POLLIN), until: deadline) else {
                    throw TestFailure("no complete HTTP response in time (have \(self.buffer.count) bytes)")
                }
                continue
            }
            if chunk.isEmpty { throw TestFailure("EOF before a complete HTTP response") }
            self.buffer.append(contentsOf: chunk)
        }
    }

    /// Whether the server closed the connection (EOF with nothing more sent), within the deadline.
    func closedByServer(deadline: ContinuousClock.Instant = .now + .seconds(10)) -> Bool {
        let (rest, eof) = self.client.readToEOF(deadline: deadline)
        return eof && rest.isEmpty && self.buffer.isEmpty
    }

    private static func parse(_ bytes: [UInt8]) -> (HTTPTestResponse, Int)? {
        let separator = Array("\r\n\r\n".utf8)
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            return nil
        }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = head[0].split(separator: " ")
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = end + 4
        guard bytes.count >= bodyStart + length else { return nil }
        return (HTTPTestResponse(status: status, headers: headers, body: Array(bytes[bodyStart..<bodyStart + length])), bodyStart + length)
    }
}

/// Samples and family types as prometheus_client's parser reads an exposition.
struct ParsedMetrics {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    let types: [String: String]
    let samples: [Sample]

    /// The parser, run by python3 on the exposition text given on stdin.
    static let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        types, samples = {}, []
        for family in text_string_to_metric_families(sys.stdin.read()):
            types[family.name] = family.type
            for s in family.samples:
                samples.append({"name": s.name, "labels": s.labels, "value": s.value})
        print(json.dumps({"types": types, "samples": samples}))
        """

    init(_ text: [UInt8]) throws {
        let result = try runTool("python3", ["-c", Self.script], stdin: text)
        guard result.status == 0 else {
            throw TestFailure("prometheus_client could not parse the exposition (pip install prometheus-client): \(result.stderr)")
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any])
        self.types = try #require(json["types"] as? [String: String])
        let samples = try #require(json["samples"] as? [[String: Any]])
        self.samples = try samples.map { s in
            Sample(name: try #require(s["name"] as? String), labels: try #require(s["labels"] as? [String: String]),
                   value: try #require((s["value"] as? NSNumber)?.doubleValue))
        }
    }

    /// The value of the one sample `name` with exactly `labels`, or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        self.samples.first { $0.name == name && $0.labels == labels }?.value
    }
}

@Suite struct MetricsTests {
    /// Starts reactord with kv, echo and metrics on port 0 in `data`.
    static func start(_ data: TemporaryDirectory, _ extra: [String] = [], shellPrefix: String? = nil) throws
        -> (process: ReactordProcess, ports: [String: Int], lines: [String])
    {
        let process = try ReactordProcess(
            arguments: ["--kv-port", "0", "--echo-port", "0", "--time-port", "off", "--file-port", "off",
                        "--metrics-port", "0", "--data-dir", data.path] + extra,
            shellPrefix: shellPrefix)
        let lines = try #require(process.waitForReady(), "no 'reactord: ready' within 20 s")
        var ports: [String: Int] = [:]
        for line in lines where line.contains(" tcp ") {
            let words = line.split(separator: " ")
            ports[String(words[2])] = Int(words[4].split(separator: ":").last!)
        }
        return (process, ports, lines)
    }

    static func scrape(_ port: Int, headers: String = "") throws -> ParsedMetrics {
        let http = try HTTPTestClient(port: port)
        let response = try http.get("/metrics", headers: headers)
        guard response.status == 200 else { throw TestFailure("scrape got \(response.status): \(response.text)") }
        #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        return try ParsedMetrics(response.body)
    }

    @Test func scrapedCountsMatchTheTrafficDriven() throws {
        let data = try TemporaryDirectory("reactord-metrics")
        let (process, ports, lines) = try Self.start(data)
        defer { process.kill() }
        let metricsPort = try #require(ports["metrics"])
        // The listening line comes before ready, after the other services (SPEC order).
        #expect(lines.dropLast().last?.hasPrefix("reactord: listening metrics tcp 127.0.0.1:") == true, "\(lines)")

        let (sets, gets) = (25, 17)
        let kv = try RESPTestClient(port: try #require(ports["kv"]))
        for i in 0..<sets { #expect(try kv.call("SET", "key:\(i)", "value") == .simple("OK")) }
        for i in 0..<gets { #expect(try kv.call("GET", "key:\(i)") == .bulk("value")) }
        #expect(try kv.call("GET").description.hasPrefix("-ERR wrong number of arguments"))
        #expect(try kv.call("NOPE", "x").description.hasPrefix("-ERR unknown command"))
        // MULTI's queued command is counted once, when EXEC runs it.
        #expect(try kv.call("MULTI") == .simple("OK"))
        #expect(try kv.call("SET", "key:0", "again") == .simple("QUEUED"))
        #expect(try kv.call("EXEC") == .array([.simple("OK")]))
        let echoes = try (0..<3).map { _ in try TestClient(port: try #require(ports["echo"])) }
        for echo in echoes {
            try echo.send("hi\n")
            #expect(echo.readLine() == Array("hi\n".utf8))
        }

        let m = try Self.scrape(metricsPort)
        #expect(m.value("reactord_commands_total", ["command": "set"]) == Double(sets + 1))
        #expect(m.value("reactord_commands_total", ["command": "get"]) == Double(gets + 1))
        #expect(m.value("reactord_command_errors_total", ["command": "get"]) == 1)
        #expect(m.value("reactord_command_errors_total", ["command": "set"]) == 0)
        #expect(m.value("reactord_commands_total", ["command": "unknown"]) == 1)
        #expect(m.value("reactord_command_errors_total", ["command": "unknown"]) == 1)
        #expect(m.value("reactord_commands_total", ["command": "multi"]) == 1)
        #expect(m.value("reactord_commands_total", ["command": "exec"]) == 1)
        // Every call is observed once in its histogram.
        #expect(m.value("reactord_command_duration_seconds_count", ["command": "set"]) == Double(sets + 1))
        #expect(m.value("reactord_command_duration_seconds_bucket", ["command": "set", "le": "+Inf"]) == Double(sets + 1))
        #expect(m.value("reactord_command_duration_seconds_count", ["command": "get"]) == Double(gets + 1))
        let setSum = try #require(m.value("reactord_command_duration_seconds_sum", ["command": "set"]))
        #expect(setSum > 0 && setSum < 10)
        #expect(m.value("reactord_keys") == Double(sets))
        #expect(m.value("reactord_keys_with_expiry") == 0)
        #expect(m.value("reactord_expired_keys_total") == 0)
        #expect(m.value("reactord_evicted_keys_total") == 0)
        #expect(m.value("reactord_max_memory_bytes") == 0)
        #expect((m.value("reactord_used_memory_bytes") ?? 0) > 0)
        // --fsync always: every acknowledged SET was synced, so there was at least one fsync.
        #expect((m.value("reactord_fsync_duration_seconds_count") ?? 0) >= 1)
        // Each SET record holds its key and value: the log holds at least those bytes.
        #expect((m.value("reactord_log_written_bytes_total") ?? 0) >= Double(sets * ("key:10value".utf8.count)))
        #expect(m.value("reactord_compactions_total", ["result": "success"]) == 0)
        #expect(m.value("reactord_connections", ["service": "kv"]) == 1)
        #expect(m.value("reactord_connections_accepted_total", ["service": "kv"]) == 1)
        #expect(m.value("reactord_connections", ["service": "echo"]) == 3)
        #expect(m.value("reactord_connections_accepted_total", ["service": "echo"]) == 3)
        #expect(m.value("reactord_connections_refused_total", ["service": "echo"]) == 0)
        #expect(m.value("reactord_connections", ["service": "metrics"]) == 1)  // the scrape's own
        #expect(m.value("reactord_build_info", ["version": ServerConfiguration.version]) == 1)
        #expect((m.value("reactord_loop_iterations_total") ?? 0) > 0)
        #expect((m.value("reactord_loop_busy_seconds_total") ?? 0) > 0)
        // Iterations slower than 10 ms by CPU cannot outnumber those slower than 1 ms by the wall.
        let slowCPU = try #require(m.value("reactord_loop_slow_iterations_total", ["over_ms": "10", "clock": "cpu"]))
        let slowWall = try #require(m.value("reactord_loop_slow_iterations_total", ["over_ms": "1", "clock": "wall"]))
        #expect(slowCPU <= slowWall)
        let longest = try #require(m.value("reactord_loop_longest_iteration_seconds", ["part": "total"]))
        let longestCPU = try #require(m.value("reactord_loop_longest_iteration_seconds", ["part": "cpu"]))
        #expect(longestCPU <= longest + 0.001)
        let costliestCPU = try #require(m.value("reactord_loop_costliest_iteration_seconds", ["part": "cpu"]))
        #expect(costliestCPU >= longestCPU)
        #expect((m.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((m.value("process_open_fds") ?? 0) > 5)
        #expect((m.value("process_cpu_seconds_total") ?? -1) >= 0)
        let start = try #require(m.value("process_start_time_seconds"))
        #expect(abs(start - Date().timeIntervalSince1970) < 600, "start time \(start)")
        // The families' types, as the parser read them (it drops `_total` from counter names).
        let expectedTypes = [
            "reactord_build_info": "gauge", "reactord_connections": "gauge",
            "reactord_connections_accepted": "counter", "reactord_connections_refused": "counter",
            "reactord_commands": "counter", "reactord_command_errors": "counter",
            "reactord_command_duration_seconds": "histogram", "reactord_keys": "gauge",
            "reactord_keys_with_expiry": "gauge", "reactord_expired_keys": "counter",
            "reactord_evicted_keys": "counter", "reactord_used_memory_bytes": "gauge",
            "reactord_max_memory_bytes": "gauge", "reactord_log_written_bytes": "counter",
            "reactord_fsync_duration_seconds": "histogram", "reactord_compactions": "counter",
            "reactord_loop_iterations": "counter", "reactord_loop_busy_seconds": "counter",
            "reactord_loop_slow_iterations": "counter", "reactord_loop_longest_iteration_seconds": "gauge",
            "reactord_loop_costliest_iteration_seconds": "gauge",
            "process_resident_memory_bytes": "gauge", "process_cpu_seconds": "counter",
            "process_open_fds": "gauge", "process_start_time_seconds": "gauge",
        ]
        for (name, type) in expectedTypes { #expect(m.types[name] == type, "\(name): \(m.types[name] ?? "missing")") }

        // Closed connections leave the gauge (the server sees the close a moment later: wait for it).
        for echo in echoes { echo.close() }
        kv.client.close()
        let deadline = ContinuousClock.now + .seconds(10)
        var after = try Self.scrape(metricsPort)
        while after.value("reactord_connections", ["service": "echo"]) != 0 && ContinuousClock.now < deadline {
            after = try Self.scrape(metricsPort)
        }
        #expect(after.value("reactord_connections", ["service": "echo"]) == 0)
        #expect(after.value("reactord_connections_accepted_total", ["service": "echo"]) == 3)
        // Counters handed over again are not counted twice.
        #expect(after.value("reactord_commands_total", ["command": "set"]) == Double(sets + 1))
        #expect(after.value("reactord_command_duration_seconds_count", ["command": "set"]) == Double(sets + 1))
        #expect(after.value("reactord_command_duration_seconds_sum", ["command": "set"]).map { abs($0 - setSum) < 1e-9 } == true)
    }

    @Test func healthNotFoundPipeliningAndBadRequests() throws {
        let data = try TemporaryDirectory("reactord-metrics")
        let (process, ports, _) = try Self.start(data)
        defer { process.kill() }
        let http = try HTTPTestClient(port: try #require(ports["metrics"]))
        let health = try http.get("/healthz")
        #expect(health.status == 200 && health.text == "ok\n")
        #expect(try http.get("/nope").status == 404)
        // Three requests in one write, answered in order on the same connection.
        try http.send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        let first = try http.readResponse()
        let second = try http.readResponse()
        let third = try http.readResponse()
        #expect(first.status == 200 && first.text == "ok\n")
        #expect(second.status == 200 && second.text.contains("reactord_build_info"))
        #expect(third.status == 404)
        // A bad request: 400, then the server closes.
        try http.send("HELLO\r\n\r\n")
        let bad = try http.readResponse()
        #expect(bad.status == 400)
        #expect(bad.headers["connection"] == "close")
        #expect(http.closedByServer())
        // An oversized header section: refused and closed, not buffered without bound.
        let big = try HTTPTestClient(port: try #require(ports["metrics"]))
        try big.send("GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n")
        #expect(try big.readResponse().status == 431)
        #expect(big.closedByServer())
        // HTTP/1.0 without keep-alive: answered, then closed; a half-closed peer still gets its scrape.
        let old = try HTTPTestClient(port: try #require(ports["metrics"]))
        try old.send("GET /metrics HTTP/1.0\r\n\r\n")
        old.client.shutdownWrite()
        let oldReply = try old.readResponse()
        #expect(oldReply.status == 200 && oldReply.text.contains("reactord_build_info"))
        #expect(old.closedByServer())
    }

    @Test func aPasswordGuardsMetricsButNotHealth() throws {
        let data = try TemporaryDirectory("reactord-metrics")
        let (process, ports, _) = try Self.start(data, ["--requirepass", "s3cret"])
        defer { process.kill() }
        let http = try HTTPTestClient(port: try #require(ports["metrics"]))
        let none = try http.get("/metrics")
        #expect(none.status == 401)
        #expect(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(try http.get("/metrics", headers: "Authorization: Bearer wrong\r\n").status == 401)
        #expect(try http.get("/metrics", headers: "Authorization: Basic czNjcmV0\r\n").status == 401)
        #expect(try http.get("/metrics", headers: "Authorization: Bearer s3cre\r\n").status == 401)
        let good = try http.get("/metrics", headers: "Authorization: Bearer s3cret\r\n")
        #expect(good.status == 200 && good.text.contains("reactord_build_info"))
        #expect(try http.get("/healthz").status == 200)
        // The token is read with the registry's parser too.
        let parsed = try Self.scrape(try #require(ports["metrics"]), headers: "Authorization: bearer s3cret\r\n")
        #expect(parsed.value("reactord_build_info", ["version": ServerConfiguration.version]) == 1)
    }

    @Test func withTheMetricsPortOffNothingMoreListens() throws {
        let data = try TemporaryDirectory("reactord-metrics")
        let process = try ReactordProcess(arguments: ["--kv-port", "0", "--echo-port", "0", "--time-port", "off",
                                                      "--file-port", "off", "--data-dir", data.path])
        defer { process.kill() }
        let lines = try #require(process.waitForReady())
        #expect(!lines.contains { $0.contains("metrics") }, "\(lines)")
        let tcpLines = lines.filter { $0.contains(" tcp ") }.count
        #expect(tcpLines == 2)
        #expect(Self.listeningTCPSockets(pid: process.pid) == tcpLines)
    }

    /// The listening TCP sockets `pid` holds: its socket descriptors' inodes found in LISTEN state
    /// (0A) in /proc/net/tcp and tcp6.
    static func listeningTCPSockets(pid: pid_t) -> Int {
        var inodes = Set<String>()
        let fdDirectory = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)"),
                  target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(String(target.dropFirst(8).dropLast()))
        }
        var count = 0
        for table in ["/proc/\(pid)/net/tcp", "/proc/\(pid)/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                if fields.count > 9 && fields[3] == "0A" && inodes.contains(String(fields[9])) { count += 1 }
            }
        }
        return count
    }

    @Test func healthSays503WhileTheLogCannotBeWritten() throws {
        // A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so a write past it fails with EFBIG
        // instead of killing the process) stands in for a full disk.
        let data = try TemporaryDirectory("reactord-metrics")
        let (process, ports, _) = try Self.start(data, [], shellPrefix: "trap '' XFSZ; ulimit -f 64")
        defer { process.kill() }
        let http = try HTTPTestClient(port: try #require(ports["metrics"]))
        #expect(try http.get("/healthz").status == 200)
        let value = String(repeating: "v", count: 4096)
        var refused = false
        for i in 0..<64 where !refused {
            let kv = try RESPTestClient(port: try #require(ports["kv"]))
            if case .error(let message) = try kv.call("SET", "key:\(i)", value) {
                #expect(message.hasPrefix("ERR"), "\(message)")
                refused = true
            }
        }
        #expect(refused, "64 SETs of 4 KiB fit under a 32 KiB file-size limit")
        let sick = try http.get("/healthz")
        #expect(sick.status == 503)
        #expect(sick.text.hasPrefix("log cannot be written:"), "\(sick.text)")
        // Reads keep working meanwhile.
        let kv = try RESPTestClient(port: try #require(ports["kv"]))
        #expect(try kv.call("GET", "key:0") == .bulk(value))
    }

    /// An in-process server with only the metrics port, whose peers all count as remote.
    static func remotePeersServer(password: String?, protectedMode: Bool = true) throws -> (InProcessServer, Int) {
        let server = try InProcessServer({
            $0.echoPort = .off
            $0.metricsPort = .port(0)
            $0.protectedMode = protectedMode
            $0.requirePassword = password
        }, prepare: { $0.peerIsLoopback = { _ in false } })
        let port = try #require(server.endpoints.first { $0.service == "metrics" }?.address.port)
        return (server, port)
    }

    @Test func protectedModeAnswersRemotePeers403AndCloses() throws {
        let (server, port) = try Self.remotePeersServer(password: nil)
        defer { server.stop() }
        let http = try HTTPTestClient(port: port)
        let response = try http.get("/healthz")
        #expect(response.status == 403)
        #expect(response.text.contains("protected mode") && response.text.contains("--requirepass"))
        #expect(http.closedByServer())
        // A password set, or protected mode off: remote peers are served.
        for (password, protectedMode) in [("s3cret", true), (nil, false)] as [(String?, Bool)] {
            let (open, openPort) = try Self.remotePeersServer(password: password, protectedMode: protectedMode)
            defer { open.stop() }
            #expect(try HTTPTestClient(port: openPort).get("/healthz").status == 200)
        }
        // The refused peer is counted as refused, not accepted: a server whose first peer is
        // remote and second local is scraped by the second.
        let counted = try InProcessServer({ $0.echoPort = .off; $0.metricsPort = .port(0) }, prepare: { server in
            var peers = 0
            server.peerIsLoopback = { _ in
                peers += 1
                return peers > 1
            }
        })
        defer { counted.stop() }
        let countedPort = try #require(counted.endpoints.first { $0.service == "metrics" }?.address.port)
        #expect(try HTTPTestClient(port: countedPort).get("/metrics").status == 403)
        let scrape = try HTTPTestClient(port: countedPort).get("/metrics")
        try #require(scrape.status == 200)
        let parsed = try ParsedMetrics(scrape.body)
        #expect(parsed.value("reactord_connections_refused_total", ["service": "metrics"]) == 1)
        #expect(parsed.value("reactord_connections_accepted_total", ["service": "metrics"]) == 1)
    }
}
