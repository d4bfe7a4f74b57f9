// Pub/sub on a running reactord, for what the differential test cannot compare: a subscriber that
// never reads is closed at its output limit while the publisher and a subscriber that keeps up
// carry on, and redis-py's PubSub works against it.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PubSubServerTests {
    /// A subscriber that stops reading: its output grows until the pubsub hard limit, then it is
    /// closed and counted; the publisher's replies never wait for it, and a second subscriber
    /// receives every message in order.
    @Test func slowSubscriberIsClosedAtTheHardLimit() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            #expect(try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0") == Array("+OK\r\n".utf8))
            let slow = try RawRESPConnection(port: server.kvPort)
            let fast = try RawRESPConnection(port: server.kvPort)
            #expect(try slow.call("SUBSCRIBE", "feed").count > 0)
            #expect(try fast.call("SUBSCRIBE", "feed").count > 0)
            let payload = [UInt8](repeating: UInt8(ascii: "m"), count: 16 * 1024)
            var receivers: [Int] = []
            // Far more than the limit plus what the kernel's socket buffers can absorb.
            let count = 3000
            for i in 0..<count {
                let message = Array("\(i):".utf8) + payload
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("feed".utf8), message])
                receivers.append(Int(String(decoding: reply.dropFirst().dropLast(2), as: UTF8.self)) ?? -1)
                let frame = try fast.reply()
                let expected = Array("*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$\(message.count)\r\n".utf8) + message + Array("\r\n".utf8)
                guard frame == expected else {
                    Issue.record("message \(i) to the fast subscriber differs")
                    return
                }
            }
            // Both received until the slow one was closed, then only the fast one.
            #expect(receivers.first == 2 && receivers.last == 1, "\(receivers.first ?? -1) … \(receivers.last ?? -1)")
            #expect(receivers.allSatisfy { $0 == 1 || $0 == 2 } && receivers == receivers.sorted(by: >))
            let info = String(decoding: try publisher.call("INFO", "stats"), as: UTF8.self)
            #expect(info.contains("client_output_buffer_limit_disconnections:1\r\n"), "\(info)")
            #expect(info.contains("pubsub_channels:1\r\n"), "\(info)")
            // The slow subscriber finds its connection closed once it reads what the kernel held.
            let (_, eof) = slow.client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof)
            #expect(try publisher.call("PUBSUB", "NUMSUB", "feed") == Array("*2\r\n$4\r\nfeed\r\n:1\r\n".utf8))
        }
    }

    /// The soft limit closes a subscriber only once it has stayed past it for its seconds.
    @Test func softLimitWaitsForItsSeconds() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            _ = try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1")
            let slow = try RawRESPConnection(port: server.kvPort)
            _ = try slow.call("SUBSCRIBE", "feed")
            let payload = [UInt8](repeating: UInt8(ascii: "s"), count: 64 * 1024)
            let started = ContinuousClock.now
            var closedAfter: Duration?
            // Publishes until the subscriber is gone (bounded): it must outlive the soft seconds.
            for _ in 0..<20_000 {
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("feed".utf8), payload])
                if reply == Array(":0\r\n".utf8) {
                    closedAfter = ContinuousClock.now - started
                    break
                }
                if ContinuousClock.now - started > .seconds(30) { break }
            }
            #expect(closedAfter != nil)
            if let closedAfter { #expect(closedAfter >= .seconds(1), "closed after \(closedAfter)") }
        }
    }

    /// A subscriber left over the soft limit on a channel that then falls silent is closed once
    /// the soft limit's seconds pass, with nothing more published (Redis's clientsCron checks every
    /// client): the check runs on a timer, not only when a frame is delivered.
    @Test func softLimitClosesASubscriberOnASilentChannel() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            #expect(try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1") == Array("+OK\r\n".utf8))
            let slow = try RawRESPConnection(port: server.kvPort)
            let id = String(decoding: try slow.call("CLIENT", "ID").dropFirst().dropLast(2), as: UTF8.self)
            _ = try slow.call("SUBSCRIBE", "quiet")
            let payload = [UInt8](repeating: UInt8(ascii: "q"), count: 64 * 1024)
            // Publishes until the server holds more than the soft limit for the subscriber (what the
            // kernel's socket buffers took no longer counts): CLIENT LIST's omem says when.
            func held() throws -> Int {
                let list = String(decoding: try publisher.call("CLIENT", "LIST"), as: UTF8.self)
                let line = list.split(separator: "\n").first { $0.hasPrefix("id=\(id) ") }
                let field = line?.split(separator: " ").first { $0.hasPrefix("omem=") }
                return field.flatMap { Int($0.dropFirst(5)) } ?? -1
            }
            var published = 0
            while try held() < 300 * 1024 && published < 2000 {
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("quiet".utf8), payload])
                #expect(reply == Array(":1\r\n".utf8))
                published += 1
            }
            let over = ContinuousClock.now
            let holding = try held()
            #expect(holding >= 256 * 1024, "after \(published) messages the server holds \(holding) bytes")
            // Nothing is published from here on: only a timer can close it.
            let closed = try pollFor(within: 15) {
                let info = String(decoding: try publisher.call("INFO", "stats"), as: UTF8.self)
                return info.contains("client_output_buffer_limit_disconnections:1\r\n")
            }
            #expect(closed, "the subscriber over the soft limit was not closed")
            #expect(ContinuousClock.now - over < .seconds(5), "closed only after \(ContinuousClock.now - over)")
            #expect(try publisher.call("PUBSUB", "NUMSUB", "quiet") == Array("*2\r\n$5\r\nquiet\r\n:0\r\n".utf8))
            let (_, eof) = slow.client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof)
        }
    }

    /// The settings a config file or flag gives are what the server starts with (CONFIG GET) and
    /// what it does: keyspace events published from the first command.
    @Test func configuredPubSubSettingsApplyAtStart() throws {
        let configure: (inout ServerConfiguration) -> Void = { config in
            try? Setting.notifyKeyspaceEvents.apply("K$", to: &config)
            try? Setting.clientOutputBufferLimit.apply("pubsub 2mb 1mb 5", to: &config)
        }
        try withKVServer(fsync: "no", configure: configure) { server, _ in
            let client = try RawRESPConnection(port: server.kvPort)
            let listener = try RawRESPConnection(port: server.kvPort)
            #expect(try client.call("CONFIG", "GET", "notify-keyspace-events")
                == Array("*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\n$K\r\n".utf8))
            let limits = "normal 0 0 0 slave 268435456 67108864 60 pubsub 2097152 1048576 5"
            #expect(try client.call("CONFIG", "GET", "client-output-buffer-limit")
                == Array("*2\r\n$26\r\nclient-output-buffer-limit\r\n$\(limits.utf8.count)\r\n\(limits)\r\n".utf8))
            _ = try listener.call("SUBSCRIBE", "__keyspace@0__:k")
            _ = try client.call("SET", "k", "v")
            #expect(try listener.reply() == Array("*3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n".utf8))
        }
    }

    /// redis-py's PubSub (RESP2 and RESP3) and keyspace notifications, run against reactord and
    /// against redis-server: the printed results must be the same.
    @Test func redisPyPubSubAsAgainstRedis() throws {
        let script = #"""
        import sys, time, redis
        port = int(sys.argv[1])

        def drain(p, n):
            got, deadline = [], time.time() + 10
            while len(got) < n and time.time() < deadline:
                m = p.get_message(timeout=1)
                if m:
                    got.append((m["type"], m.get("pattern"), m["channel"], m["data"]))
            return got

        for proto in (2, 3):
            r = redis.Redis(host="127.0.0.1", port=port, protocol=proto, socket_timeout=20)
            p = r.pubsub()
            p.subscribe("news", "sport")
            p.psubscribe("n*")
            print(proto, drain(p, 3))
            print(r.publish("news", "hello"), r.publish("sport", b"\x00\r\n"), r.publish("none", "x"))
            print(drain(p, 3))
            print(r.pubsub_numsub("news", "sport", "none"), r.pubsub_numpat(), sorted(r.pubsub_channels()))
            p.unsubscribe()
            p.punsubscribe()
            # Which channel goes first is the server's table order (Redis: its dict's).
            got = drain(p, 3)
            print(sorted((t, pat, ch) for t, pat, ch, _ in got), sorted(str(d) for _, _, _, d in got))
            p.close()
            r.config_set("notify-keyspace-events", "KEA")
            p = r.pubsub()
            p.psubscribe("__key*__:*")
            drain(p, 1)
            r.set("k", "v")
            r.expire("k", 100)
            r.delete("k")
            print(drain(p, 6))
            p.close()
            r.config_set("notify-keyspace-events", "")
            r.close()
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
        #expect(outputs[1].contains("'pmessage', b'n*', b'news', b'hello'"), "\(outputs[1])")
    }

    /// Keys the server removes by itself are announced: `evicted` under a memory limit, and
    /// `expired` by the background cycle (nobody reads the key).
    @Test func evictionsAndBackgroundExpiriesAreNotified() throws {
        try withKVServer(fsync: "no") { server, _ in
            let actor = try RawRESPConnection(port: server.kvPort)
            let listener = try RawRESPConnection(port: server.kvPort)
            _ = try actor.call("CONFIG", "SET", "notify-keyspace-events", "Exe")
            _ = try listener.call("SUBSCRIBE", "__keyevent@0__:evicted", "__keyevent@0__:expired")
            _ = try listener.reply()
            _ = try actor.call("SET", "short", "v", "PX", "1")
            let expired: [UInt8]
            do {
                expired = try listener.reply(deadline: .now + .seconds(10))
            } catch {
                // Which half failed: the key still there (the cycle did not run) or gone unannounced.
                // INFO does not read the key, so it cannot expire it on the way.
                let keyspace = String(decoding: try actor.call("INFO", "keyspace"), as: UTF8.self)
                let stats = String(decoding: try actor.call("INFO", "stats"), as: UTF8.self)
                let expiredKeys = stats.split(separator: "\r\n").first { $0.hasPrefix("expired_keys:") } ?? "?"
                Issue.record("no expired event in 10 s (\(error)); \(expiredKeys); keyspace: \(keyspace)")
                return
            }
            #expect(expired == Array("*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$5\r\nshort\r\n".utf8))
            _ = try actor.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")
            _ = try actor.call("CONFIG", "SET", "maxmemory", "1mb")
            let value = [UInt8](repeating: 7, count: 1024)
            for i in 0..<3000 { _ = try actor.call([Array("SET".utf8), Array("key\(i)".utf8), value]) }
            let evicted = String(decoding: try listener.reply(), as: UTF8.self)
            #expect(evicted.hasPrefix("*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n$"), "\(evicted)")
            _ = try actor.call("CONFIG", "SET", "maxmemory", "0")
        }
    }

    /// The idle timeout spares subscribers, as Redis's does: an idle plain client is closed, an
    /// idle subscriber connected as long stays and still receives.
    @Test func idleTimeoutSparesSubscribers() throws {
        try withKVServer(fsync: "no", configure: { $0.idleTimeout = .seconds(1) }) { server, _ in
            let subscriber = try RawRESPConnection(port: server.kvPort)
            let idle = try RawRESPConnection(port: server.kvPort)
            _ = try subscriber.call("SUBSCRIBE", "quiet")
            _ = try idle.call("PING")
            let (_, eof) = idle.client.readToEOF(deadline: .now + .seconds(10))
            #expect(eof, "the idle plain client was not closed")
            let publisher = try RawRESPConnection(port: server.kvPort)
            #expect(try publisher.call("PUBLISH", "quiet", "still here") == Array(":1\r\n".utf8))
            #expect(try subscriber.reply() == Array("*3\r\n$7\r\nmessage\r\n$5\r\nquiet\r\n$10\r\nstill here\r\n".utf8))
        }
    }
}
