// The resp port (`--resp-port`): Redis's protocol and nothing else on the kv store. An inline
// request first on a fresh connection is Redis's (redis-benchmark's PING_INLINE), the store and its
// durability are the kv port's, and protected mode refuses a remote peer at once in RESP.

import Foundation
import Reactor
@testable import Server
import Services
import Testing

@Suite struct RESPPortTests {
    static func respPort(_ server: InProcessServer) throws -> Int {
        try #require(server.endpoints.first { $0.service == "resp" && $0.transport == "tcp" }?.address.port)
    }

    static func withRESPPort<R>(_ configure: (inout ServerConfiguration) -> Void = { _ in },
                                _ body: (InProcessServer, Int) throws -> R) throws -> R {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let server = try InProcessServer.kv(dataDirectory: dir.path) {
            $0.respPort = .port(0)
            configure(&$0)
        }
        defer { server.stop() }
        return try body(server, try Self.respPort(server))
    }

    @Test func inlineFirstIsRedisInlineAndTheStoreIsShared() throws {
        try Self.withRESPPort { server, port in
            let client = try TestClient(port: port)
            try client.send("PING\r\nSET k1 xyzk\r\nGET k1\r\n*1\r\n$4\r\nPING\r\n")
            let expected = Array("+PONG\r\n+OK\r\n$4\r\nxyzk\r\n+PONG\r\n".utf8)
            let reply = client.read(until: { $0.count >= expected.count }).bytes
            #expect(String(decoding: reply, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            // The kv port sees the same store; there the inline first request is the line protocol.
            let line = try TestClient(port: server.kvPort)
            #expect(try line.request("get k1") == "xyzk")
            let kv = try RESPTestClient(port: server.kvPort)
            #expect(try kv.call("GET", "k1") == .bulk(Array("xyzk".utf8)))
        }
    }

    @Test func theListeningLineNamesIt() throws {
        try Self.withRESPPort { server, port in
            let line = try #require(server.endpoints.first { $0.service == "resp" }).description
            #expect(line == "reactord: listening resp tcp 127.0.0.1:\(port)")
        }
    }

    @Test func authAppliesToInlineRequests() throws {
        try Self.withRESPPort({ $0.requirePassword = "s3cret" }) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET k\r\nAUTH wrong\r\nAUTH s3cret\r\nPING\r\n")
            let expected = "-NOAUTH Authentication required.\r\n"
                + "-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n"
            let reply = client.read(until: { $0.count >= expected.utf8.count }).bytes
            #expect(String(decoding: reply, as: UTF8.self) == expected)
        }
    }

    @Test func protectedModeRefusesARemotePeerAtOnceInRESP() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let server = try InProcessServer({
            $0.kvPort = .off
            $0.echoPort = .off
            $0.respPort = .port(0)
            $0.dataDirectory = dir.path
        }, prepare: { $0.peerIsLoopback = { _ in false } })
        defer { server.stop() }
        let client = try TestClient(port: try Self.respPort(server))
        // Nothing sent: the refusal comes at once, as redis-server sends it.
        let (bytes, eof) = client.readToEOF()
        #expect(String(decoding: bytes, as: UTF8.self) == String(decoding: ProtectedMode.respLine, as: UTF8.self))
        #expect(eof)
    }

    @Test func writesOnTheRESPPortSurviveARestart() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for round in 0..<2 {
            let server = try InProcessServer.kv(dataDirectory: dir.path) {
                $0.kvPort = .off
                $0.respPort = .port(0)
            }
            defer { server.stop() }
            let client = try RESPTestClient(port: try Self.respPort(server))
            if round == 0 {
                #expect(try client.call("SET", "durable", "yes") == .simple("OK"))
            } else {
                #expect(try client.call("GET", "durable") == .bulk(Array("yes".utf8)))
            }
        }
    }

    /// redis-benchmark's default test list, PING_INLINE first, runs to the end on the resp port.
    /// redis-benchmark stops at the first error reply, so while a command of the list is unknown
    /// to this server (COMMAND INFO says which) the run must reach exactly that command and stop
    /// on its unknown-command error, never on a protocol error.
    @Test func redisBenchmarkDefaultListRunsToTheEnd() throws {
        try Self.withRESPPort { _, port in
            // The default list in order: each test's name and the command it sends.
            let list: [(String, String)] = [
                ("PING_INLINE", "ping"), ("PING_MBULK", "ping"), ("SET", "set"), ("GET", "get"), ("INCR", "incr"),
                ("LPUSH", "lpush"), ("RPUSH", "rpush"), ("LPOP", "lpop"), ("RPOP", "rpop"), ("SADD", "sadd"),
                ("HSET", "hset"), ("SPOP", "spop"), ("ZADD", "zadd"), ("ZPOPMIN", "zpopmin"),
                ("LRANGE_100 (first 100 elements)", "lrange"), ("MSET (10 keys)", "mset"),
            ]
            let client = try RESPTestClient(port: port)
            var known: [String: Bool] = [:]
            for (_, command) in list {
                let info = try client.call("COMMAND", "INFO", command)
                known[command] = info != .array([.bulk(nil)]) && info != .array([.array(nil)])
            }
            let firstUnknown = list.first { known[$0.1] != true }
            let result = try runTool("redis-benchmark", ["-h", "127.0.0.1", "-p", "\(port)", "-n", "1000", "-c", "10", "-q"],
                                     within: 300)
            let output = result.text + result.stderr
            #expect(!output.contains("Protocol error"), "\(output.suffix(500))")
            let lines = result.text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init)
            let finals = lines.filter { $0.contains("requests per second") }
            let expected = list.prefix { $0.0 != firstUnknown?.0 }.map(\.0)
            for test in expected {
                #expect(finals.contains { $0.hasPrefix("\(test): ") }, "no result line for \(test) in \(finals)")
            }
            if let firstUnknown {
                #expect(output.contains("unknown command '\(firstUnknown.1.uppercased())'"), "\(output.suffix(500))")
            } else {
                #expect(result.status == 0, "redis-benchmark exited \(result.status): \(result.stderr)")
                #expect(finals.last?.hasPrefix("MSET (10 keys): ") == true, "\(finals.suffix(3))")
            }
        }
    }
}
