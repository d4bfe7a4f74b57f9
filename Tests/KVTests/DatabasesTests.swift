// Redis's numbered databases through the server: a Django-style `redis://…/1` client with redis-py,
// keys of several databases surviving SAVE and a restart, and the line protocol staying in
// database 0. The replies themselves are compared with redis-server in RedisDifferentialTests
// ("databases").

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct DatabasesTests {
    /// redis-py connecting as Django's cache backend and Celery's result backend do: a URL naming
    /// database 1. Its keys stay out of database 0, and INFO and CLIENT INFO say where they are.
    @Test func pythonRedisClientOnDatabaseOne() throws {
        let dir = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: dir.path)
        defer {
            server.stop()
            dir.remove()
        }
        let script = #"""
        import sys, redis
        url = "redis://127.0.0.1:%s/1" % sys.argv[1]
        one = redis.Redis.from_url(url, socket_timeout=20)
        zero = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=20)
        print(one.set("cache:k", "v", ex=300), one.get("cache:k"), zero.get("cache:k"))
        print(one.dbsize(), zero.dbsize(), one.client_info()["db"])
        print(one.info("keyspace"))
        print(one.move("cache:k", 0), zero.get("cache:k"), one.exists("cache:k"))
        print(zero.swapdb(0, 1), one.get("cache:k"), zero.dbsize())
        print(one.flushall(), one.dbsize(), zero.dbsize())
        """#
        let result = try runTool("python3", ["-c", script, "\(server.kvPort)"], within: 60)
        #expect(result.status == 0, "python exited \(result.status): \(result.stderr)")
        let expected = """
        True b'v' None
        1 0 1
        {'db1': {'keys': 1, 'expires': 1, 'avg_ttl': 0}}
        True b'v' 0
        True b'v' 0
        True 0 0

        """
        #expect(result.text == expected)
    }

    /// Keys in databases 0, 3 and 7 (strings with and without deadlines), some in database.txt after
    /// SAVE and some only in the log after it, are all back after a restart; database.txt marks the
    /// other databases' keys with `#!db` lines after database 0's.
    @Test func keysOfSeveralDatabasesSurviveSaveAndRestart() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        do {
            let server = try InProcessServer.kv(dataDirectory: dir.path)
            defer { server.stop() }
            let client = try RESPTestClient(port: server.kvPort)
            #expect(try client.call("SET", "k", "zero") == .simple("OK"))
            #expect(try client.call("SELECT", "3") == .simple("OK"))
            #expect(try client.call("SET", "k", "three") == .simple("OK"))
            #expect(try client.call("SET", "t", "ttl", "EX", "1000") == .simple("OK"))
            #expect(try client.call("SAVE") == .simple("OK"))
            let saved = String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir.file("database.txt"))), as: UTF8.self)
            #expect(saved.contains("\nk\tzero\n#!db\t3\n"), "database.txt: \(saved.debugDescription)")
            #expect(try client.call("SET", "after", "save") == .simple("OK"))
            #expect(try client.call("MOVE", "k", "7") == .integer(1))
            #expect(try client.call("SELECT", "7") == .simple("OK"))
            #expect(try client.call("GET", "k") == .bulk("three"))
            // The line protocol is always database 0.
            let line = try TestClient(port: server.kvPort)
            #expect(try line.request("get k") == "zero")
            try #require(server.stop(), "the server did not stop within 10 s")
        }
        let server = try InProcessServer.kv(dataDirectory: dir.path)
        defer { server.stop() }
        let client = try RESPTestClient(port: server.kvPort)
        #expect(try client.call("GET", "k") == .bulk("zero"))
        #expect(try client.call("SELECT", "3") == .simple("OK"))
        #expect(try client.call("GET", "k") == .bulk(nil))
        #expect(try client.call("GET", "after") == .bulk("save"))
        #expect(try client.call("GET", "t") == .bulk("ttl"))
        if case .integer(let ttl) = try client.call("TTL", "t") {
            #expect(ttl > 900 && ttl <= 1000)
        } else {
            Issue.record("TTL t is not an integer")
        }
        #expect(try client.call("SELECT", "7") == .simple("OK"))
        #expect(try client.call("GET", "k") == .bulk("three"))
        #expect(try client.call("DBSIZE") == .integer(1))
    }

    /// A client blocked on a key of database 2 is served by a push to that key in database 2, not by
    /// one to the same name in database 0.
    @Test func blockedPopsWaitOnTheirDatabasesKey() throws {
        let dir = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: dir.path)
        defer {
            server.stop()
            dir.remove()
        }
        let waiter = try RESPTestClient(port: server.kvPort)
        let writer = try RESPTestClient(port: server.kvPort)
        #expect(try waiter.call("SELECT", "2") == .simple("OK"))
        try waiter.client.send(RESPValue.command([Array("BLPOP".utf8), Array("q".utf8), Array("10".utf8)]))
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            guard case .bulk(let info?) = try writer.call("INFO", "clients") else { break }
            if String(decoding: info, as: UTF8.self).contains("blocked_clients:1") { break }
            try #require(ContinuousClock.now < deadline, "the BLPOP never blocked")
            _ = poll(nil, 0, 5)
        }
        #expect(try writer.call("RPUSH", "q", "zero") == .integer(1))
        #expect(try writer.call("SELECT", "2") == .simple("OK"))
        #expect(try writer.call("RPUSH", "q", "two") == .integer(1))
        #expect(try waiter.read() == .array([.bulk("q"), .bulk("two")]))
        #expect(try writer.call("SELECT", "0") == .simple("OK"))
        #expect(try writer.call("LRANGE", "q", "0", "-1") == .array([.bulk("zero")]))
    }
}
