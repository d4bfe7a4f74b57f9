// RESP2 on the kv port with real Redis clients against in-process servers on port 0: redis-cli,
// redis-benchmark, the PyPI `redis` library, and twemproxy (nutcracker) sharding over three
// servers. Every tool must be installed (.ci/run does it): a missing one fails the test with a
// clear message. Every child process is bounded in time and stopped by its PID.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RESPClientTests {
    /// A kv-only in-process server on a fresh temporary data dir.
    final class KVFixture {
        let dir: TemporaryDirectory
        let server: InProcessServer
        var port: Int { self.server.kvPort }

        init() throws {
            self.dir = try TemporaryDirectory()
            self.server = try InProcessServer.kv(dataDirectory: self.dir.path)
        }

        func stop() {
            self.server.stop()
            self.dir.remove()
        }
    }

    /// redis-cli's output for one command, trailing newline removed. `--no-raw` keeps Redis's
    /// formatting (`(integer) 1`, `"v"`, `(nil)`) even though stdout is a pipe.
    static func cli(_ port: Int, _ arguments: [String], raw: Bool = false, stdin: [UInt8]? = nil) throws -> String {
        let result = try runTool("redis-cli", ["-h", "127.0.0.1", "-p", "\(port)", raw ? "--raw" : "--no-raw"] + arguments,
                                 stdin: stdin, within: 20)
        #expect(result.status == 0, "redis-cli \(arguments) exited \(result.status): \(result.stderr)")
        var text = result.text
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    @Test func redisCliCommandsGetRedisReplies() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let port = fixture.port
        let transcript: [([String], String)] = [
            (["PING"], "PONG"),
            (["ECHO", "hello there"], "\"hello there\""),
            (["SET", "k", "v"], "OK"),
            (["GET", "k"], "\"v\""),
            (["SET", "k", "other", "NX"], "(nil)"),
            (["GET", "k"], "\"v\""),
            (["SET", "k", "xx-value", "XX"], "OK"),
            (["SET", "absent", "v", "XX"], "(nil)"),
            (["SET", "fresh", "v", "NX"], "OK"),
            (["EXISTS", "k", "fresh", "absent", "k"], "(integer) 3"),
            (["GET", "absent"], "(nil)"),
            (["INCR", "counter"], "(integer) 1"),
            (["INCR", "counter"], "(integer) 2"),
            (["INCR", "k"], "(error) ERR value is not an integer or out of range"),
            (["MSET", "a", "1", "b", "2", "c", "3"], "OK"),
            (["MGET", "a", "b", "missing", "c"], "1) \"1\"\n2) \"2\"\n3) (nil)\n4) \"3\""),
            (["DBSIZE"], "(integer) 6"),
            (["DEL", "a", "b", "missing"], "(integer) 2"),
            (["DBSIZE"], "(integer) 4"),
            (["NOSUCHCOMMAND", "x"], "(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "),
        ]
        for (arguments, expected) in transcript {
            #expect(try Self.cli(port, arguments) == expected, "redis-cli \(arguments)")
        }
        // The line protocol sees the same store.
        let line = try TestClient(port: port)
        #expect(try line.request("get k") == "xx-value")
        #expect(try line.request("get counter") == "2")

        // Binary-safe: CR, LF and NUL bytes through `-x` (stdin becomes the last argument).
        let binary: [UInt8] = Array("line one\r\nline two\n".utf8) + [0, 1, 0xff] + Array("\r\nend\n".utf8)
        #expect(try Self.cli(port, ["-x", "SET", "bin"], stdin: binary) == "OK")
        #expect(try Self.cli(port, ["GET", "bin"]) == #""line one\r\nline two\n\x00\x01\xff\r\nend\n""#)
        let raw = try runTool("redis-cli", ["-p", "\(port)", "--raw", "GET", "bin"], within: 20)
        #expect(raw.status == 0)
        #expect(raw.stdout == binary + [10], "--raw GET returns the bytes and one newline")
        #expect(try Self.cli(port, ["STRLEN", "bin"]) == "(integer) \(binary.count)")
        let resp = try RESPTestClient(port: port)
        #expect(try resp.call("GET", "bin") == .bulk(binary))
        #expect(try line.request("get bin") == "ERR value not representable; use RESP")

        #expect(try Self.cli(port, ["FLUSHDB"]) == "OK")
        #expect(try Self.cli(port, ["DBSIZE"]) == "(integer) 0")
        #expect(try line.request("count") == "0")
    }

    @Test func redisBenchmarkRunsEveryTestWithoutErrors() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let tests = ["SET", "GET", "INCR", "MSET (10 keys)", "PING_MBULK"]
        let result = try runTool("redis-benchmark",
                                 ["-h", "127.0.0.1", "-p", "\(fixture.port)", "-t", "set,get,incr,mset,ping_mbulk",
                                  "-n", "2000", "-c", "10", "-q"], within: 120)
        #expect(result.status == 0, "redis-benchmark exited \(result.status): \(result.stderr)")
        // -q prints progress with CRs, then one final line per test.
        let lines = result.text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init)
        for test in tests {
            let final = lines.first { $0.hasPrefix("\(test): ") && $0.contains("requests per second") }
            #expect(final != nil, "no result line for \(test) in \(lines.suffix(8))")
            if let final {
                let rate = final.dropFirst(test.count + 2).split(separator: " ").first.flatMap { Double($0) }
                #expect((rate ?? 0) > 0, "\(final)")
            }
        }
        let all = (result.text + result.stderr).lowercased()
        #expect(!all.contains("error") && !all.contains("err "), "\(result.text)\n\(result.stderr)")
        // The SETs and INCRs really reached the store.
        let line = try TestClient(port: fixture.port)
        #expect(try line.request("get counter:__rand_int__") == "2000")
    }

    @Test func pythonRedisClientPlainCommandsPipelinesAndBinaryValues() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let script = #"""
        import sys, redis
        # Default settings: redis-py 8 opens every connection with HELLO 3 (RESP3).
        r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=20)
        print(r.ping())
        print(r.set("greeting", "hello"), r.get("greeting"))
        print(r.set("greeting", "x", nx=True), r.setnx("greeting", "y"), r.get("greeting"))
        print(r.incr("n"), r.incr("n"), r.exists("n", "greeting", "nope"))
        print(r.incrbyfloat("f", 0.1), r.incrbyfloat("f", 0.2), r.decr("n", 5), r.append("greeting", "!"), r.strlen("greeting"))
        print(r.getset("greeting", "hi"), r.getdel("greeting"), r.get("greeting"), r.connection_pool.get_connection().protocol)
        print(r.mset({"a": "1", "b": b"\x00\r\n"}), r.mget("a", "b", "nope"))
        blob = bytes(range(256)) + b"\x00\r\n" * 100
        print(r.set(b"bin\x00\r\nkey", blob), r.get(b"bin\x00\r\nkey") == blob, len(r.get(b"bin\x00\r\nkey")))
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.set("p%d" % i, ("v%d\x00\r\n" % i).encode())
        print(all(x is True for x in p.execute()))
        p = r.pipeline(transaction=False)
        for i in range(1000):
            p.get("p%d" % i)
        got = p.execute()
        print(sum(1 for i, v in enumerate(got) if v == ("v%d\x00\r\n" % i).encode()))
        print(r.dbsize(), r.delete("p0", "p1", "nope"), r.dbsize())
        print(r.echo(b"\x00echo\r\n"))
        try:
            r.execute_command("NOPE")
        except redis.ResponseError as e:
            print("ResponseError", str(e).split(",")[0])
        print(r.flushdb(), r.dbsize())
        """#
        let result = try runTool("python3", ["-c", script, "\(fixture.port)"], within: 60)
        if result.stderr.contains("No module named 'redis'") {
            Issue.record("the python 'redis' package is missing: python3 -m pip install redis (.ci/run does it)")
            return
        }
        #expect(result.status == 0, "python exited \(result.status): \(result.stderr)")
        let expected = """
        True
        True b'hello'
        None False b'hello'
        1 2 2
        0.1 0.3 -3 6 6
        b'hello!' b'hi' None 3
        True [b'1', b'\\x00\\r\\n', None]
        True True 556
        True
        1000
        1005 2 1003
        b'\\x00echo\\r\\n'
        ResponseError unknown command 'NOPE'
        True 0

        """
        #expect(result.text == expected)
    }

    /// redis-py with default settings (RESP3): transactional pipelines, WATCH, expiry, SCAN.
    @Test func pythonRedisClientTransactionsExpiryAndScan() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let script = #"""
        import sys, redis
        r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), socket_timeout=20)
        p = r.pipeline()  # transaction=True by default: MULTI ... EXEC
        p.set("a", 1).incr("a").incrby("a", 10).expire("a", 100).ttl("a").get("a")
        print(p.execute())
        print(r.set("s", "v", ex=50), 45 <= r.ttl("s") <= 50, r.set("s", "w", px=5000, get=True), r.pttl("s") > 4000)
        print(r.set("s", "x", keepttl=True), r.ttl("s") > 0, r.persist("s"), r.ttl("s"), r.expire("nope", 10))
        print(r.setex("e", 30, "v"), r.getex("e", persist=True), r.ttl("e"), r.expire("e", 100, gt=True), r.expire("e", 10, gt=True))
        def bump(pipe):
            n = int(pipe.get("counter") or 0)
            pipe.multi()
            pipe.set("counter", n + 1)
        for _ in range(3):
            r.transaction(bump, "counter")
        print(r.get("counter"))
        with r.pipeline() as pipe:
            pipe.watch("w")
            r.set("w", "changed elsewhere")
            pipe.multi()
            pipe.set("w", "mine")
            try:
                pipe.execute()
                print("executed")
            except redis.WatchError:
                print("WatchError")
        for i in range(500):
            r.set("scan:%d" % i, i)
        print(len(set(r.scan_iter(match="scan:*", count=37))), len(r.keys("scan:1*")))
        print(r.type("a"), r.object("encoding", "a"), r.incrbyfloat("f", "0.1"), r.lcs("a", "a"))
        print(r.info("server")["redis_version"], r.info("keyspace")["db0"]["keys"], r.dbsize())
        """#
        let result = try runTool("python3", ["-c", script, "\(fixture.port)"], within: 60)
        #expect(result.status == 0, "python exited \(result.status): \(result.stderr)")
        let expected = """
        [True, 2, 12, True, 100, b'12']
        True True b'v' True
        True True True -1 False
        True b'v' -1 False False
        b'3'
        WatchError
        500 111
        b'string' b'int' 0.1 b'12'
        7.0.15 506 506

        """
        #expect(result.text == expected)
    }

    /// A second implementation of the protocol: Debian's node-redis (4.x) with default settings.
    @Test func nodeRedisClientWorksWithDefaults() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let script = #"""
        // Debian installs node modules in /usr/share/nodejs, which `node -e` does not search by itself.
        process.env.NODE_PATH = "/usr/share/nodejs:/usr/lib/nodejs";
        require("module").Module._initPaths();
        const { createClient } = require("redis");
        (async () => {
          const c = createClient({ url: "redis://127.0.0.1:" + process.argv[1] });
          await c.connect();
          const out = [];
          out.push(await c.set("k", "v", { EX: 100 }), await c.get("k"), await c.ttl("k") > 90);
          out.push(JSON.stringify(await c.multi().set("n", "1").incr("n").incrBy("n", 5).get("n").exec()));
          for (let i = 0; i < 50; i++) await c.set("s:" + i, String(i));
          let seen = 0;
          for await (const key of c.scanIterator({ MATCH: "s:*", COUNT: 7 })) seen++;
          out.push(seen, await c.incrByFloat("f", 0.1), await c.exists(["k", "n", "nope"]));
          await c.quit();
          console.log(out.join(" "));
        })().catch((e) => { console.error(e); process.exit(1); });
        """#
        let result = try runTool("node", ["-e", script, "\(fixture.port)"], within: 60)
        if result.stderr.contains("Cannot find module") {
            Issue.record("node-redis is missing: apt-get install node-redis (.ci/run does it)")
            return
        }
        #expect(result.status == 0, "node exited \(result.status): \(result.stderr)")
        #expect(result.text == "OK v true [\"OK\",2,7,\"7\"] 50 0.1 2\n")
    }

    /// redis-cli's --scan and --latency (raw output ends after one interval).
    @Test func redisCliScanAndLatency() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        let resp = try RESPTestClient(port: fixture.port)
        for i in 0..<300 { _ = try resp.call("SET", "k:\(i)", "v") }
        _ = try resp.call("SET", "other", "v")
        let scan = try runTool("redis-cli", ["-p", "\(fixture.port)", "--scan", "--pattern", "k:*"], within: 30)
        #expect(scan.status == 0, "\(scan.stderr)")
        let keys = Set(scan.text.split(separator: "\n").map(String.init))
        #expect(keys == Set((0..<300).map { "k:\($0)" }))
        let latency = try runTool("redis-cli", ["-p", "\(fixture.port)", "--latency", "--raw"], within: 30)
        #expect(latency.status == 0, "\(latency.stderr)")
        let fields = latency.text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        #expect(fields.count == 4 && fields.allSatisfy { Double($0) != nil }, "\(latency.text.debugDescription)")
    }

    /// Mass insertion as Redis documents it: `redis-cli --pipe` streams raw RESP, then an empty
    /// line and an ECHO whose reply tells it every reply has arrived.
    @Test func redisCliPipeMassInsertion() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        var input: [UInt8] = []
        for i in 0..<20_000 {
            let key = "mass:\(i)", value = "value \(i)"
            input += Array("*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$\(value.utf8.count)\r\n\(value)\r\n".utf8)
        }
        let pipe = try runTool("redis-cli", ["-h", "127.0.0.1", "-p", "\(fixture.port)", "--pipe"], stdin: input, within: 60)
        #expect(pipe.status == 0, "redis-cli --pipe exited \(pipe.status): \(pipe.text) \(pipe.stderr)")
        #expect(pipe.text.contains("errors: 0, replies: 20000"), "\(pipe.text)")
        #expect(try Self.cli(fixture.port, ["dbsize"]) == "(integer) 20000")
        #expect(try Self.cli(fixture.port, ["get", "mass:19999"]) == "\"value 19999\"")
    }

    @Test func twemproxyShardsKeysOverThreeServers() throws {
        let backends = try (0..<3).map { _ in try KVFixture() }
        defer { for backend in backends { backend.stop() } }
        let work = try TemporaryDirectory("reactord-nutcracker")
        let (proxy, proxyPort) = try Self.startNutcracker(backends: backends.map(\.port), in: work)
        defer { proxy.kill() }

        let keys = 300
        let client = try RESPTestClient(port: proxyPort)
        // Pipelined through the proxy, then read back through it.
        try client.client.send((0..<keys).flatMap { RESPValue.command([Array("SET".utf8), Array("tw:\($0)".utf8), Array("value \($0)".utf8)]) })
        for i in 0..<keys { #expect(try client.read() == .simple("OK"), "SET tw:\(i) through the proxy") }
        var wrong = 0
        for i in 0..<keys where try client.call("GET", "tw:\(i)") != .bulk("value \(i)") { wrong += 1 }
        #expect(wrong == 0, "\(wrong) of \(keys) keys read back wrong through the proxy")

        // Each backend holds a non-zero share, and the shares add up.
        var shares: [Int] = []
        for backend in backends {
            let direct = try RESPTestClient(port: backend.port)
            guard case .integer(let n) = try direct.call("DBSIZE") else { throw TestFailure("DBSIZE is not an integer") }
            shares.append(n)
        }
        #expect(shares.allSatisfy { $0 > 0 }, "shares \(shares)")
        #expect(shares.reduce(0, +) == keys, "shares \(shares)")
        #expect(proxy.isRunning, "nutcracker exited: \(proxy.stderrSoFar)")
    }

    /// Writes the pool's YAML and starts nutcracker in the foreground on free loopback ports,
    /// retrying when another process takes a port between our probe and its bind.
    static func startNutcracker(backends: [Int], in work: TemporaryDirectory) throws -> (ChildProcess, Int) {
        var lastError = ""
        for attempt in 0..<5 {
            let port = try freeLoopbackPort()
            let statsPort = try freeLoopbackPort()
            let config = work.file("nutcracker-\(attempt).yml")
            let yaml = """
            reactord:
              listen: 127.0.0.1:\(port)
              hash: fnv1a_64
              distribution: ketama
              redis: true
              auto_eject_hosts: false
              timeout: 5000
              servers:
            \(backends.enumerated().map { "    - 127.0.0.1:\($0.element):1 backend\($0.offset)" }.joined(separator: "\n"))

            """
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            let check = try runTool("nutcracker", ["-t", "-c", config], within: 10)
            try #require(check.status == 0, "nutcracker rejects its configuration: \(check.stderr)")
            let proxy = try ChildProcess("nutcracker", ["-c", config, "-s", "\(statsPort)", "-a", "127.0.0.1",
                                                        "-o", work.file("nutcracker-\(attempt).log"), "-v", "4"])
            let deadline = ContinuousClock.now + .seconds(10)
            while proxy.isRunning && ContinuousClock.now < deadline && !acceptsConnections(port: port) {
                // Waiting for the proxy's listener: each probe is itself bounded (200 ms connect).
                _ = poll(nil, 0, 20)
            }
            if proxy.isRunning && acceptsConnections(port: port) { return (proxy, port) }
            proxy.kill()
            lastError = (try? String(contentsOfFile: work.file("nutcracker-\(attempt).log"), encoding: .utf8)) ?? proxy.stderrSoFar
            if !lastError.contains("Address already in use") { break }
        }
        throw TestFailure("nutcracker did not start listening: \(lastError)")
    }

    @Test func respProtocolErrorIsAnsweredThenTheConnectionCloses() throws {
        let fixture = try KVFixture()
        defer { fixture.stop() }
        for bad in ["*abc\r\n", "*1\r\n$x\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n"] {
            let client = try TestClient(port: fixture.port)
            try client.send(bad)
            let (bytes, eof) = client.readToEOF()
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.hasPrefix("-ERR Protocol error") && text.hasSuffix("\r\n"), "\(bad.debugDescription) -> \(text.debugDescription)")
            #expect(text.components(separatedBy: "\r\n").count == 2, "one reply line: \(text.debugDescription)")
            #expect(eof, "connection left open after a protocol error for \(bad.debugDescription)")
        }
        // A good request before the bad one is still answered, in order.
        let client = try TestClient(port: fixture.port)
        try client.send("*1\r\n$4\r\nPING\r\n*abc\r\n")
        let (bytes, eof) = client.readToEOF()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("+PONG\r\n-ERR Protocol error"), "\(text.debugDescription)")
        #expect(eof)
    }
}
