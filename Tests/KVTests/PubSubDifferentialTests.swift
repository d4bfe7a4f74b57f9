// Pub/sub against Redis: the same scripts of commands on several connections sent to a
// redis-server started here and to reactord, in RESP2 and RESP3, every frame each connection
// receives (replies, subscribe-family frames, messages, pushes) compared byte for byte in the
// order received. Then what a transcript cannot show: a closed subscriber leaves nothing behind.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PubSubDifferentialTests {
    /// One step of a script: `line` sent on connection `connection`, then `frames` frames read
    /// there (`frames3` in RESP3 when it differs); `line` nil: only read.
    struct Step {
        var connection: Int
        var line: String?
        var frames: Int
        var frames3: Int?
    }

    static func send(_ connection: Int, _ line: String, _ frames: Int = 1, resp3 frames3: Int? = nil) -> Step {
        Step(connection: connection, line: line, frames: frames, frames3: frames3)
    }

    static func read(_ connection: Int, _ frames: Int = 1, resp3 frames3: Int? = nil) -> Step {
        Step(connection: connection, line: nil, frames: frames, frames3: frames3)
    }

    static let scripts: [(String, [Step])] = [
        ("channels", [
            send(0, "SUBSCRIBE foo bar", 2), send(1, "PUBLISH foo hello"), read(0), send(1, "PUBLISH bar 'two words'"),
            read(0), send(1, "PUBLISH nobody x"), send(0, "SUBSCRIBE foo foo", 2), send(1, "PUBLISH foo again"), read(0),
            send(0, "UNSUBSCRIBE foo nope"), read(0), send(1, "PUBLISH foo gone"), send(0, "UNSUBSCRIBE", 1),
            send(0, "UNSUBSCRIBE"), send(0, "PUNSUBSCRIBE"), send(0, "PING"), send(0, "GET k"),
            send(1, "PUBLISH bar ''"), send(1, "PUBLISH"), send(1, "PUBLISH a b c"), send(0, "SUBSCRIBE"),
        ]),
        ("patterns", [
            send(0, "PSUBSCRIBE f* b?r h[ae]llo", 3), send(1, "PUBLISH foo 1"), read(0), send(1, "PUBLISH bar 2"),
            read(0), send(1, "PUBLISH hallo 3"), read(0), send(1, "PUBLISH hillo 4"), send(1, "PUBSUB NUMPAT"),
            send(2, "PSUBSCRIBE f*"), send(1, "PUBSUB NUMPAT"), send(1, "PUBLISH foo 5"), read(0), read(2),
            send(0, "PUNSUBSCRIBE f* nope", 2), send(1, "PUBLISH foo 6"), read(2), send(0, "PUNSUBSCRIBE", 2),
            send(0, "PUNSUBSCRIBE"), send(1, "PUBSUB NUMPAT"), send(2, "PSUBSCRIBE 'a\\*'"), send(1, "PUBLISH a* 7"),
            read(2), send(1, "PUBLISH ab 8"), send(2, "PSUBSCRIBE"),
        ]),
        ("mixed", [
            send(0, "SUBSCRIBE foo"), send(0, "PSUBSCRIBE f*"), send(1, "PUBLISH foo x"), read(0, 2),
            send(0, "PING"), send(0, "PING hi"), send(0, "PING a b"), send(0, "GET k"), send(0, "SET k v"),
            send(0, "CLIENT GETNAME"), send(0, "CONFIG GET nosuchparameter"), send(0, "NOSUCH x"), send(0, "GET"),
            send(0, "UNSUBSCRIBE foo"), send(0, "GET k"), send(0, "PUNSUBSCRIBE"), send(0, "GET k"),
            send(0, "PSUBSCRIBE x*"), send(0, "RESET"), send(1, "PUBLISH xa y"), send(0, "GET k"), send(0, "PING"),
        ]),
        ("counts", [
            send(0, "SUBSCRIBE a1 a2", 2), send(1, "SUBSCRIBE a1"), send(2, "PUBSUB NUMSUB a1 a2 a3"),
            send(2, "PUBSUB NUMSUB"), send(2, "PUBSUB CHANNELS a1"), send(2, "PUBSUB CHANNELS a[2]"),
            send(2, "PUBSUB CHANNELS x*"), send(2, "PUBSUB NUMPAT"), send(2, "PUBSUB HELP"), send(2, "PUBSUB NOSUCH"),
            send(2, "PUBSUB NUMPAT x"), send(2, "PUBSUB CHANNELS a b"), send(2, "PUBSUB"), send(2, "PUBSUB numsub A1"),
            send(2, "PUBLISH a1 m"), read(0), read(1), send(1, "UNSUBSCRIBE a1"), send(2, "PUBSUB NUMSUB a1"),
            send(2, "PUBLISH a1 n"), read(0),
        ]),
        ("own messages", [
            // Over RESP2 a subscriber may not publish; over RESP3 it hears its own message first.
            send(0, "SUBSCRIBE me"), send(0, "PUBLISH me self", 1, resp3: 2), send(0, "PSUBSCRIBE m*"),
            send(0, "PUBLISH me both", 1, resp3: 3), send(0, "UNSUBSCRIBE", 1), send(0, "PUNSUBSCRIBE", 1),
            send(0, "PUBLISH me none"),
        ]),
        ("transactions", [
            send(0, "MULTI"), send(0, "SUBSCRIBE t"), send(0, "EXEC"), send(0, "MULTI"), send(1, "SUBSCRIBE t"),
            send(1, "MULTI"), send(0, "DISCARD"), send(0, "PUBLISH t y", 1, resp3: 2), read(1, 0, resp3: 1),
        ]),
        ("output limits", [
            send(0, "CONFIG GET client-output-buffer-limit"), send(0, "CONFIG SET client-output-buffer-limit 'wrong number'"),
            send(0, "CONFIG SET client-output-buffer-limit 'invalid_class 10mb 10mb 60'"),
            send(0, "CONFIG SET client-output-buffer-limit 'master 10mb 10mb 60'"),
            send(0, "CONFIG SET client-output-buffer-limit 'normal 10mbs 10mb 60'"),
            send(0, "CONFIG SET client-output-buffer-limit 'replica 10mb 10mbs 60'"),
            send(0, "CONFIG SET client-output-buffer-limit 'pubsub 10mb 10mb 60s'"),
            send(0, "CONFIG SET client-output-buffer-limit 'normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80'"),
            send(0, "CONFIG GET client-output-buffer-limit"),
            send(0, "CONFIG SET client-output-buffer-limit 'pubsub 1k 2kb 3 pubsub 7 8 9'"),
            send(0, "CONFIG GET client-output-buffer-lim*"),
            send(0, "CONFIG SET client-output-buffer-limit ''"),
            send(0, "CONFIG SET client-output-buffer-limit 'normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60'"),
            send(0, "CONFIG GET client-output-buffer-limit"),
        ]),
        ("notify config", [
            send(0, "CONFIG GET notify-keyspace-events"), send(0, "CONFIG SET notify-keyspace-events Q"),
            send(0, "CONFIG SET notify-keyspace-events KEA"), send(0, "CONFIG GET notify-keyspace-events"),
            send(0, "CONFIG SET notify-keyspace-events An"), send(0, "CONFIG GET notify-keyspace-events"),
            send(0, "CONFIG SET notify-keyspace-events 'gn$xEm'"), send(0, "CONFIG GET notify-keyspace-events"),
            send(0, "CONFIG SET notify-keyspace-events 'lshzetdK'"), send(0, "CONFIG GET notify-keyspace-events"),
            send(0, "CONFIG SET notify-keyspace-events ''"), send(0, "CONFIG GET notify-keyspace-events"),
        ]),
        ("own notifications", [
            // A RESP3 client hears its own command's events ahead of the reply.
            send(0, "CONFIG SET notify-keyspace-events KEA"), send(0, "SUBSCRIBE __keyspace@0__:own", 1),
            send(0, "SET own v", 1, resp3: 2), send(0, "EXPIRE own 100", 1, resp3: 2), send(0, "DEL own", 1, resp3: 2),
            send(0, "UNSUBSCRIBE"), send(0, "CONFIG SET notify-keyspace-events ''"),
        ]),
        ("binary", [
            send(0, "SUBSCRIBE 'a b\r\nc'"), send(0, "PSUBSCRIBE '*\r\n*'"), send(1, "PUBLISH 'a b\r\nc' '\r\n'"),
            read(0, 2),
        ]),
    ]

    /// Runs `script` on fresh connections to the server on `port` in `protocolVersion`; returns
    /// every frame read, each labelled with its connection.
    static func transcript(_ script: [Step], port: Int, protocolVersion: Int) throws -> [String] {
        let connections = try (0..<3).map { _ in try RawRESPConnection(port: port) }
        defer { for connection in connections { connection.client.close() } }
        if protocolVersion == 3 { for connection in connections { _ = try connection.call("HELLO", "3") } }
        var frames: [String] = []
        for step in script {
            let connection = connections[step.connection]
            if let line = step.line {
                try connection.client.send(RESPValue.command(RedisDifferentialTests.words([line])[0]))
            }
            let count = protocolVersion == 3 ? step.frames3 ?? step.frames : step.frames
            for _ in 0..<count {
                let frame = try connection.reply(deadline: .now + .seconds(5))
                frames.append("\(step.connection) \(step.line ?? "(read)"): \(Self.normalised(frame, step.line))")
            }
        }
        return frames
    }

    /// PUBSUB CHANNELS lists channels in no particular order: its elements are compared sorted.
    static func normalised(_ frame: [UInt8], _ line: String?) -> String {
        let text = String(decoding: frame, as: UTF8.self)
        guard let line, line.uppercased().hasPrefix("PUBSUB CHANNELS") else { return text.debugDescription }
        var parts = text.components(separatedBy: "\r\n")
        let header = parts.removeFirst()
        var pairs: [String] = []
        var i = 0
        while i + 1 < parts.count {
            pairs.append(parts[i] + "|" + parts[i + 1])
            i += 2
        }
        return (header + " " + pairs.sorted().joined(separator: ",")).debugDescription
    }

    @Test func scriptsGetRedisFrames() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var differences: [String] = []
        var frameCount = 0
        for version in [2, 3] {
            for (name, script) in Self.scripts {
                let theirs = try Self.transcript(script, port: pair.oracle.port, protocolVersion: version)
                let ours = try Self.transcript(script, port: pair.server.kvPort, protocolVersion: version)
                frameCount += theirs.count
                for (mine, redis) in zip(ours, theirs) where mine != redis {
                    differences.append("[\(name), RESP\(version)]\n    reactord: \(mine)\n    redis:    \(redis)")
                    break
                }
                if ours.count != theirs.count { differences.append("[\(name), RESP\(version)] frame counts differ") }
            }
        }
        #expect(differences.isEmpty, "\(differences.count) differences:\n\(differences.joined(separator: "\n"))")
        print("differential (pub/sub): \(Self.scripts.count * 2) scripts, \(frameCount) frames")
    }

    /// A subscriber whose connection closes is unsubscribed from everything: NUMSUB and NUMPAT
    /// drop, and a PUBLISH counts nobody (polled: the close is noticed in a later iteration).
    @Test func closedSubscriberLeavesNothingBehind() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        for port in [pair.server.kvPort, pair.oracle.port] {
            let subscriber = try RawRESPConnection(port: port)
            let other = try RawRESPConnection(port: port)
            _ = try subscriber.call("SUBSCRIBE", "gone")
            _ = try subscriber.call("PSUBSCRIBE", "go*")
            #expect(try other.call("PUBLISH", "gone", "x") == Array(":2\r\n".utf8))
            subscriber.client.close()
            let cleaned = try pollFor(within: 5) {
                try other.call("PUBLISH", "gone", "x") == Array(":0\r\n".utf8)
            }
            #expect(cleaned, "port \(port)")
            #expect(try other.call("PUBSUB", "NUMPAT") == Array(":0\r\n".utf8))
            #expect(try other.call("PUBSUB", "NUMSUB", "gone") == Array("*2\r\n$4\r\ngone\r\n:0\r\n".utf8))
        }
    }

    /// Keyspace notifications as Redis publishes them: for each setting of
    /// `notify-keyspace-events`, the same commands on one connection while another listens on
    /// every keyspace and keyevent channel; the listener's frames, up to a closing PUBLISH, are
    /// compared byte for byte.
    @Test func keyspaceNotificationsMatchRedis() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        let commands = RedisDifferentialTests.words([
            "SET s v", "SET s w", "SET s x EX 100", "SET s y KEEPTTL", "SET s z NX", "SET s2 z NX", "SETNX s3 v",
            "MSET m1 1 m2 2", "MSETNX m3 3 m4 4", "APPEND s 1", "APPEND a 1", "INCR i", "INCRBY i 5", "DECR i",
            "DECRBY i 2", "INCRBYFLOAT f 1.5", "SETRANGE r 2 xy", "SETRANGE r 0 ''", "GETSET s old", "GETSET g new",
            "GETDEL g", "GETDEL nope", "GET nope", "MGET s nope", "DEL s nope m1", "UNLINK m2", "EXPIRE i 100",
            "PEXPIRE i 100000", "EXPIREAT i 99999999999", "PERSIST i", "PERSIST i", "EXPIRE i -1", "RENAME f f2",
            "RENAME f2 r", "RENAMENX r r2", "COPY r c1", "COPY r c1 REPLACE", "GETEX c1 EX 100", "GETEX c1 PERSIST",
            "GETEX c1 PXAT 1", "SETEX se 100 v", "PSETEX pe 100000 v", "SET k v PX 1",
        ])
        let settings = ["KEA", "KEAn", "Kg", "E$", "Kx", "KEe", "Eg$n", "K", "A"]
        var transcripts: [[[String]]] = []
        for port in [pair.oracle.port, pair.server.kvPort] {
            var perSetting: [[String]] = []
            for setting in settings {
                let listener = try RawRESPConnection(port: port)
                let actor = try RawRESPConnection(port: port)
                _ = try actor.call("FLUSHALL")
                _ = try actor.call("CONFIG", "SET", "notify-keyspace-events", setting)
                _ = try listener.call("PSUBSCRIBE", "__key*__:*")
                _ = try listener.call("SUBSCRIBE", "end")
                for command in commands { _ = try actor.call(command) }
                // `k` had one millisecond to live: polled until gone (a read expires it).
                #expect(try pollFor(within: 5) { try actor.call("PTTL", "k") == Array(":-2\r\n".utf8) })
                _ = try actor.call("PUBLISH", "end", "x")
                var frames: [String] = []
                while true {
                    let frame = String(decoding: try listener.reply(deadline: .now + .seconds(5)), as: UTF8.self)
                    if frame.contains("$3\r\nend\r\n") { break }
                    frames.append(frame)
                }
                perSetting.append(frames)
                _ = try actor.call("CONFIG", "SET", "notify-keyspace-events", "")
                listener.client.close()
                actor.client.close()
            }
            transcripts.append(perSetting)
        }
        var total = 0
        for (index, setting) in settings.enumerated() {
            let (redis, ours) = (transcripts[0][index], transcripts[1][index])
            total += redis.count
            #expect(ours == redis, "notify-keyspace-events \(setting):\n  redis:    \(redis.map(\.debugDescription))\n  reactord: \(ours.map(\.debugDescription))")
        }
        #expect(total > 100)
        print("differential (keyspace notifications): \(settings.count) settings, \(commands.count) commands, \(total) frames")
    }
}
