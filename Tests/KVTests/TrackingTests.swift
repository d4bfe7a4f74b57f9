// Client-side caching and CLIENT REPLY against Redis: the same scripts on three connections (a
// tracking client, a writer, a redirect target) sent to redis-server and to reactord, in RESP2 and
// RESP3, every frame compared byte for byte (client ids, which differ, written as `{idN}`). Then
// redis-py's client-side cache (RESP3, `cache_config`) against both: it must see the same values.

import Foundation
import Server
import Testing

@Suite(.serialized) struct TrackingTests {
    typealias Step = PubSubDifferentialTests.Step
    static func send(_ c: Int, _ line: String, _ frames: Int = 1, resp3: Int? = nil) -> Step {
        PubSubDifferentialTests.send(c, line, frames, resp3: resp3)
    }
    static func read(_ c: Int, _ frames: Int = 0, resp3: Int? = nil) -> Step {
        PubSubDifferentialTests.read(c, frames, resp3: resp3)
    }

    static let scripts: [(String, [Step])] = [
        ("default mode", [
            send(0, "CLIENT TRACKING ON"), send(1, "MSET a 1 b 0"), send(0, "GET a"), send(0, "MGET a b"),
            send(1, "SET a 2"), read(0, resp3: 1), send(1, "DEL b nope"), read(0, resp3: 1), send(1, "SET b 1"),
            send(0, "CLIENT TRACKINGINFO"), send(0, "CLIENT GETREDIR"), send(0, "HSET h f v"), send(0, "HGET h f"),
            send(0, "HSET h f w", 1, resp3: 2), send(0, "LPUSH l x"), send(0, "LRANGE l 0 -1"), send(1, "RPOP l"),
            read(0, resp3: 1), send(0, "ZADD z 1 m"), send(0, "ZSCORE z m"), send(1, "ZINCRBY z 1 m"), read(0, resp3: 1),
            send(0, "SADD s m"), send(0, "SMEMBERS s"), send(1, "SPOP s"), read(0, resp3: 1),
            send(0, "GET a"), send(1, "FLUSHDB"), read(0, resp3: 1),
            send(0, "CLIENT TRACKING OFF"), send(0, "CLIENT TRACKINGINFO"), send(0, "CLIENT GETREDIR"),
        ]),
        ("redirect", [
            send(2, "CLIENT ID"), send(2, "SUBSCRIBE __redis__:invalidate"), send(0, "CLIENT TRACKING ON REDIRECT {id2}"),
            send(0, "GET k"), send(1, "SET k v"), read(2, 1), send(0, "CLIENT GETREDIR"), send(0, "CLIENT TRACKINGINFO"),
            send(0, "GET k"), send(0, "GET j"), send(1, "MSET k 1 j 2"), read(2, 2), send(0, "GET k"), send(0, "SET k own"),
            read(2, 1), send(0, "GET k"), send(1, "FLUSHALL"), read(2, 1), send(0, "CLIENT TRACKING OFF"),
            send(0, "CLIENT TRACKING ON REDIRECT 987654"), send(0, "CLIENT TRACKING ON REDIRECT {id2} REDIRECT {id2}"),
        ]),
        ("bcast", [
            send(0, "CLIENT TRACKING ON BCAST PREFIX a: PREFIX b:"), send(0, "CLIENT TRACKINGINFO"),
            send(0, "CLIENT TRACKING ON BCAST PREFIX a"), send(0, "CLIENT TRACKING ON BCAST PREFIX x PREFIX xy"),
            send(0, "CLIENT TRACKING ON"), send(1, "MSET a:2 x a:1 y c:1 z"), read(0, resp3: 1), send(1, "SADD b:s m"),
            read(0, resp3: 1), send(0, "SET a:3 own", 1, resp3: 2), send(0, "CLIENT TRACKING OFF"),
            send(0, "CLIENT TRACKING ON BCAST NOLOOP PREFIX a:"), send(0, "SET a:4 own"), send(1, "SET a:5 x"),
            read(0, resp3: 1), send(0, "CLIENT TRACKINGINFO"), send(0, "CLIENT TRACKING ON PREFIX q"),
            send(0, "CLIENT TRACKING OFF"), send(0, "CLIENT TRACKING ON BCAST"), send(1, "SET zz 1"), read(0, resp3: 1),
            send(0, "CLIENT TRACKING OFF"),
        ]),
        ("optin and optout", [
            send(0, "CLIENT CACHING YES"), send(0, "CLIENT TRACKING ON OPTIN"), send(0, "GET o1"),
            send(0, "CLIENT CACHING YES"), send(0, "CLIENT TRACKINGINFO"), send(0, "GET o2"), send(1, "MSET o1 1 o2 2"),
            read(0, resp3: 1), send(0, "CLIENT CACHING NO"), send(0, "CLIENT CACHING MAYBE"),
            send(0, "CLIENT TRACKING ON OPTOUT"), send(0, "CLIENT TRACKING ON BCAST"), send(0, "CLIENT TRACKING OFF"),
            send(0, "CLIENT TRACKING ON OPTOUT"), send(0, "CLIENT CACHING NO"), send(0, "CLIENT TRACKINGINFO"),
            send(0, "GET o3"), send(0, "GET o4"), send(1, "MSET o3 1 o4 2"), read(0, resp3: 1),
            send(0, "CLIENT TRACKING ON OPTIN OPTOUT"), send(0, "CLIENT TRACKING ON BCAST OPTIN"),
            send(0, "CLIENT TRACKING MAYBE"), send(0, "CLIENT TRACKING ON NOSUCH"), send(0, "CLIENT TRACKING OFF"),
        ]),
        ("optin across a transaction", [
            send(0, "CLIENT TRACKING ON OPTIN"), send(0, "CLIENT CACHING YES"), send(0, "MULTI"), send(0, "GET t1"),
            send(0, "GET t2"), send(0, "EXEC"), send(0, "GET t3"), send(1, "MSET t1 1 t2 2 t3 3"), read(0, resp3: 2),
            send(0, "CLIENT CACHING YES"), send(0, "MULTI"), send(0, "GET t4"), send(0, "DISCARD"), send(0, "GET t4"),
            send(1, "SET t4 x"), send(0, "CLIENT TRACKING OFF"),
        ]),
        ("client reply", [
            send(0, "CLIENT REPLY OFF", 0), send(0, "SET r 1", 0), send(0, "CLIENT REPLY ON"), send(0, "CLIENT REPLY SKIP", 0),
            send(0, "GET r", 0), send(0, "GET r"), send(0, "CLIENT REPLY OFF", 0), send(0, "SUBSCRIBE ch"),
            send(1, "PUBLISH ch m"), read(0, 1), send(0, "UNSUBSCRIBE ch"), send(0, "CLIENT REPLY ON"),
            send(0, "CLIENT REPLY MAYBE"), send(0, "CLIENT REPLY"),
        ]),
    ]

    /// Runs `script` on three fresh connections; each line's `{idN}` is connection N's client id,
    /// and in each frame that id's digits are written back as `{idN}`.
    static func transcript(_ script: [Step], port: Int, protocolVersion: Int) throws -> [String] {
        let connections = try (0..<3).map { _ in try RawRESPConnection(port: port) }
        defer { for connection in connections { connection.client.close() } }
        var ids: [String] = []
        for connection in connections {
            let reply = String(decoding: try connection.call("CLIENT", "ID"), as: UTF8.self)
            ids.append(String(reply.dropFirst().prefix(while: { $0.isNumber })))
            if protocolVersion == 3 { _ = try connection.call("HELLO", "3") }
        }
        _ = try connections[1].call("FLUSHALL")
        var frames: [String] = []
        for step in script {
            let connection = connections[step.connection]
            if var line = step.line {
                for (n, id) in ids.enumerated() { line = line.replacingOccurrences(of: "{id\(n)}", with: id) }
                try connection.client.send(RESPValue.command(RedisDifferentialTests.words([line])[0]))
            }
            let count = protocolVersion == 3 ? step.frames3 ?? step.frames : step.frames
            for _ in 0..<count {
                let bytes: [UInt8]
                do { bytes = try connection.reply(deadline: .now + .seconds(2)) } catch {
                    throw TestFailure("port \(port) RESP\(protocolVersion) \(step.connection) \(step.line ?? "(read)") after \(frames.suffix(3)): \(error)")
                }
                var frame = String(decoding: bytes, as: UTF8.self)
                for (n, id) in ids.enumerated() { frame = frame.replacingOccurrences(of: ":\(id)\r\n", with: ":{id\(n)}\r\n") }
                frames.append("\(step.connection) \(step.line ?? "(read)"): \(frame.debugDescription)")
            }
        }
        // Nothing more may be waiting: a PING's reply is the next frame on every connection.
        for (n, connection) in connections.enumerated() where n != 2 {
            let next = String(decoding: try connection.call("PING"), as: UTF8.self)
            frames.append("\(n) PING: \(next.debugDescription)")
        }
        return frames
    }

    @Test func trackingAndReplyModesMatchRedis() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        let (differences, frameCount) = try pair.compareTranscripts(Self.scripts, Self.transcript)
        #expect(differences.isEmpty, "\(differences.count) differences:\n\(differences.joined(separator: "\n"))")
        #expect(frameCount > 200)
        print("differential (tracking, client reply): \(Self.scripts.count * 2) scripts, \(frameCount) frames")
    }

    /// redis-py's client-side cache over RESP3 (`cache_config`): values it caches are dropped when
    /// another client changes them, flushes, or the key expires. redis-py refuses servers older than
    /// 7.4 by policy (a version check, not a protocol need): the script lowers that floor for both.
    @Test func redisPyClientSideCacheAsAgainstRedis() throws {
        let script = #"""
        import sys, time, redis
        from redis.cache import CacheConfig
        from redis.connection import CacheProxyConnection
        CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"
        port = int(sys.argv[1])
        other = redis.Redis(host="127.0.0.1", port=port)
        other.flushall()
        cached = redis.Redis(host="127.0.0.1", port=port, protocol=3, cache_config=CacheConfig(), single_connection_client=True)
        cache = cached.get_cache()

        def settle(predicate):
            deadline = time.time() + 10
            while time.time() < deadline:
                cached.ping()  # reads the invalidations waiting on the connection
                if predicate():
                    return True
                time.sleep(0.01)
            return False

        other.set("k", "v1")
        other.hset("h", mapping={"f": "1"})
        print(cached.get("k"), cached.get("k"), cached.hget("h", "f"), cache.size)
        other.set("k", "v2")
        print(settle(lambda: cache.size == 1), cached.get("k"))
        other.hincrby("h", "f", 5)
        print(settle(lambda: cache.size == 1), cached.hget("h", "f"))
        other.set("e", "x")
        print(cached.get("e"), cache.size)
        other.pexpire("e", 50)  # after the read: a loaded machine cannot let it expire first
        print(settle(lambda: cache.size == 2 and other.exists("e") == 0), cached.get("e"))
        other.flushall()
        print(settle(lambda: cache.size == 0), cached.get("k"), cached.hget("h", "f"))
        """#
        let oracle = try RedisOracle()
        defer { oracle.stop() }
        var outputs: [String] = []
        try withKVServer(fsync: "no") { server, _ in
            for port in [server.kvPort, oracle.port] {
                let result = try runTool("python3", ["-c", script, "\(port)"], within: 60)
                if result.stderr.contains("No module named 'redis'") {
                    Issue.record("the python 'redis' package is missing: python3 -m pip install redis (.ci/run does it)")
                    return
                }
                #expect(result.status == 0, "python exited \(result.status): \(result.stderr)")
                outputs.append(result.text)
            }
        }
        guard outputs.count == 2 else { return }
        #expect(outputs[0] == outputs[1], "reactord:\n\(outputs[0])\nredis:\n\(outputs[1])")
        #expect(outputs[1].contains("True b'v2'") && outputs[1].contains("True b'6'"), "\(outputs[1])")
    }
}
