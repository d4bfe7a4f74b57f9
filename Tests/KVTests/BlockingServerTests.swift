// Blocking commands on a real server (in this process, on its loop thread): timeouts, a blocked
// client's pipeline waiting behind it, a close freeing the client's place, CLIENT UNBLOCK and CLIENT
// LIST, a thousand idle blocked clients costing the loop nothing, redis-py's blpop, and lists and
// served pops surviving restarts and compaction. Every wait polls for its condition with a deadline.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct BlockingServerTests {
    /// Waits until the server counts `count` blocked clients (INFO `blocked_clients`).
    static func waitForBlocked(_ count: Int, _ client: RESPTestClient, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = try pollFor {
            guard case .bulk(let info?) = try client.call("INFO", "clients") else { return false }
            return String(decoding: info, as: UTF8.self).contains("blocked_clients:\(count)\r\n")
        }
        #expect(found, "the server never counted \(count) blocked clients", sourceLocation: sourceLocation)
    }

    /// A timeout in seconds, as a decimal: the null reply comes once it has passed, not before.
    @Test func aTimeoutAnswersNullOnceItPasses() throws {
        try withKVServer { server, client in
            let started = ContinuousClock.now
            #expect(try client.call("BLPOP", "q", "0.25", deadline: .now + .seconds(10)) == .array(nil))
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(250) && waited < .seconds(5), "\(waited)")
            #expect(try client.call("BLMOVE", "q", "d", "LEFT", "RIGHT", "0.05") == .array(nil))
            #expect(try client.call("BLMPOP", "0.05", "1", "q", "LEFT") == .array(nil))
            // A wait that ended leaves nothing behind: a later push is not delivered to anybody.
            #expect(try client.call("RPUSH", "q", "a") == .integer(1))
            #expect(try client.call("LLEN", "q") == .integer(1))
            try Self.waitForBlocked(0, client)
            // RESP3: the null.
            let three = try RawRESPConnection(port: server.kvPort)
            _ = try three.call("HELLO", "3")
            #expect(try three.call("BLPOP", "none", "0.01") == Array("_\r\n".utf8))
        }
    }

    /// Requests pipelined behind a blocked command wait for it, then are answered in order.
    @Test func aBlockedClientsPipelineWaitsBehindIt() throws {
        try withKVServer { server, client in
            let blocked = try RESPTestClient(port: server.kvPort)
            let pipeline = RESPValue.command(["BLPOP", "q", "0"].map { Array($0.utf8) })
                + RESPValue.command(["RPUSH", "after", "x"].map { Array($0.utf8) })
                + RESPValue.command(["PING"].map { Array($0.utf8) })
            try blocked.client.send(pipeline)
            try Self.waitForBlocked(1, client)
            #expect(try client.call("EXISTS", "after") == .integer(0), "a request behind the blocked one ran")
            #expect(try client.call("RPUSH", "q", "job") == .integer(1))
            #expect(try blocked.read() == .array([.bulk("q"), .bulk("job")]))
            #expect(try blocked.read() == .integer(1))
            #expect(try blocked.read() == .simple("PONG"))
            #expect(try client.call("LLEN", "q") == .integer(0))
        }
    }

    /// A blocked client that closes gives up its place: the next waiter gets the item.
    @Test func aCloseWhileBlockedFreesItsPlace() throws {
        try withKVServer { server, client in
            let first = try RESPTestClient(port: server.kvPort)
            try first.client.send(RESPValue.command(["BLPOP", "q", "0"].map { Array($0.utf8) }))
            try Self.waitForBlocked(1, client)
            let second = try RESPTestClient(port: server.kvPort)
            try second.client.send(RESPValue.command(["BRPOP", "q", "0"].map { Array($0.utf8) }))
            try Self.waitForBlocked(2, client)
            first.client.close()
            try Self.waitForBlocked(1, client)
            #expect(try client.call("RPUSH", "q", "a", "b") == .integer(2))
            #expect(try second.read() == .array([.bulk("q"), .bulk("b")]))
            #expect(try client.call("LRANGE", "q", "0", "-1") == .array([.bulk("a")]))
            try Self.waitForBlocked(0, client)
        }
    }

    /// CLIENT UNBLOCK ends a wait as a timeout or with the UNBLOCKED error; CLIENT LIST flags the
    /// blocked client `b`.
    @Test func clientUnblockAndClientList() throws {
        try withKVServer { server, client in
            let blocked = try RESPTestClient(port: server.kvPort)
            guard case .integer(let id) = try blocked.call("CLIENT", "ID") else { throw TestFailure("CLIENT ID") }
            #expect(try client.call("CLIENT", "UNBLOCK", "\(id)") == .integer(0))
            for (reason, expected) in [("TIMEOUT", RESPValue.array(nil)),
                                       ("ERROR", .error("UNBLOCKED client unblocked via CLIENT UNBLOCK"))] {
                try blocked.client.send(RESPValue.command(["BLPOP", "q", "0"].map { Array($0.utf8) }))
                try Self.waitForBlocked(1, client)
                guard case .bulk(let list?) = try client.call("CLIENT", "LIST") else { throw TestFailure("CLIENT LIST") }
                let line = String(decoding: list, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("id=\(id) ") }
                #expect(line?.contains(" flags=b ") == true, "\(line ?? "")")
                #expect(try client.call("CLIENT", "UNBLOCK", "\(id)", reason) == .integer(1))
                #expect(try blocked.read() == expected)
                try Self.waitForBlocked(0, client)
            }
            #expect(try client.call("CLIENT", "UNBLOCK", "\(id)", "FOO")
                == .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"))
            #expect(try client.call("CLIENT", "UNBLOCK", "x") == .error("ERR value is not an integer or out of range"))
            #expect(try blocked.call("PING") == .simple("PONG"))
        }
    }

    static func metric(_ name: String, port: Int) throws -> Double? {
        let http = try TestClient(port: port)
        try http.send("GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        let text = String(decoding: http.readToEOF().bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// A thousand clients blocked with no traffic cost the loop no iterations: it sleeps until a
    /// timer or a socket wakes it. Then every one of them is served by one push each.
    @Test func aThousandBlockedClientsCostTheLoopNothing() throws {
        let directory = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: directory.path, fsync: "everysec") { $0.metricsPort = .port(0) }
        defer {
            server.stop()
            directory.remove()
        }
        let metricsPort = server.endpoints.first { $0.service == "metrics" }!.address.port
        let control = try RESPTestClient(port: server.kvPort)
        var clients: [RESPTestClient] = []
        for i in 0..<1000 {
            let client = try RESPTestClient(port: server.kvPort)
            try client.client.send(RESPValue.command(["BLPOP", "job\(i)", "0"].map { Array($0.utf8) }))
            clients.append(client)
        }
        try Self.waitForBlocked(1000, control)
        // Over a second of nothing, the loop wakes only for its own timers (a few per second),
        // never once per blocked client.
        let before = try #require(try Self.metric("reactord_loop_iterations_total", port: metricsPort))
        let window = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < window { _ = pollFor(control.client.fd, events: Int16(POLLIN), until: window) }
        let after = try #require(try Self.metric("reactord_loop_iterations_total", port: metricsPort))
        #expect(after - before < 100, "\(after - before) loop iterations in a second with 1000 idle blocked clients")
        for i in 0..<1000 { _ = try control.call("RPUSH", "job\(i)", "payload\(i)") }
        for (i, client) in clients.enumerated() {
            #expect(try client.read() == .array([.bulk("job\(i)"), .bulk("payload\(i)")]))
        }
        try Self.waitForBlocked(0, control)
        #expect(try control.call("DBSIZE") == .integer(0))
    }

    /// redis-py's blpop and brpoplpush against the server.
    @Test func redisPyBlocksAndIsServed() throws {
        try withKVServer { server, _ in
            let script = """
            import redis, threading, time
            r = redis.Redis(port=\(server.kvPort))
            w = redis.Redis(port=\(server.kvPort))
            out = {}
            t = threading.Thread(target=lambda: out.update(got=r.blpop(["a", "b"], timeout=10)))
            t.start()
            deadline = time.time() + 10
            while w.info("clients")["blocked_clients"] != 1 and time.time() < deadline:
                time.sleep(0.01)
            w.rpush("b", "job")
            t.join(10)
            print(out.get("got"))
            print(r.blpop("none", timeout=0.1))
            w.rpush("src", "x")
            print(r.brpoplpush("src", "dst", timeout=1), w.lrange("dst", 0, -1))
            """
            let result = try runTool("python3", ["-c", script], within: 30)
            #expect(result.text == "(b'b', b'job')\nNone\nb'x' [b'x']\n", "\(result.text) \(result)")
        }
    }

    /// Lists, and pops served to blocked clients, survive a restart (log replay) and SAVE then a
    /// restart (database.txt), under `--fsync always`: every acknowledged push and pop is there.
    @Test func listsAndServedPopsSurviveRestartsAndCompaction() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var g = SeededGenerator(seed: 5)
        var model: [String: [String]] = [:]
        var server = try InProcessServer.kv(dataDirectory: directory.path)
        var client = try RESPTestClient(port: server.kvPort)
        for step in 0..<3 {
            for i in 0..<300 {
                let key = "l\(Int.random(in: 0..<4, using: &g))"
                var list = model[key] ?? []
                switch Int.random(in: 0..<6, using: &g) {
                case 0, 1:
                    _ = try client.call("RPUSH", key, "r\(step)-\(i)", "s\(i)")
                    list += ["r\(step)-\(i)", "s\(i)"]
                case 2:
                    _ = try client.call("LPUSH", key, "l\(step)-\(i)")
                    list.insert("l\(step)-\(i)", at: 0)
                case 3:
                    _ = try client.call("LPOP", key)
                    if !list.isEmpty { list.removeFirst() }
                case 4 where !list.isEmpty:
                    let index = Int.random(in: 0..<list.count, using: &g)
                    _ = try client.call("LSET", key, "\(index)", "set\(i)")
                    list[index] = "set\(i)"
                default:
                    _ = try client.call("LTRIM", key, "1", "-2")
                    list = list.count > 2 ? Array(list[1..<(list.count - 1)]) : []
                }
                model[key] = list.isEmpty ? nil : list
            }
            // A pop served to a blocked client is logged like any write.
            let waiter = try RESPTestClient(port: server.kvPort)
            try waiter.client.send(RESPValue.command(["BLPOP", "queue", "0"].map { Array($0.utf8) }))
            try Self.waitForBlocked(1, client)
            _ = try client.call("RPUSH", "queue", "first", "second")
            #expect(try waiter.read() == .array([.bulk("queue"), .bulk("first")]))
            model["queue", default: []].append("second")
            #expect(try client.call("LPOP", "queue") == .bulk("second"))
            model["queue"] = nil
            if step == 1 { #expect(try client.call("SAVE") == .simple("OK")) }
            try #require(server.stop(), "the server did not stop")
            server = try InProcessServer.kv(dataDirectory: directory.path)
            client = try RESPTestClient(port: server.kvPort)
            for key in ["l0", "l1", "l2", "l3", "queue"] {
                let expected: RESPValue = .array((model[key] ?? []).map { .bulk($0) })
                #expect(try client.call("LRANGE", key, "0", "-1") == expected, "step \(step), \(key)")
            }
        }
        server.stop()
    }
}
