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
        let (differences, frameCount) = try pair.compareTranscripts(Self.scripts, Self.transcript)
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
        let commands = RedisDifferentialTests.words([
            "SET s v", "SET s w", "SET s x EX 100", "SET s y KEEPTTL", "SET s z NX", "SET s2 z NX", "SETNX s3 v",
            "MSET m1 1 m2 2", "MSETNX m3 3 m4 4", "APPEND s 1", "APPEND a 1", "INCR i", "INCRBY i 5", "DECR i",
            "DECRBY i 2", "INCRBYFLOAT f 1.5", "SETRANGE r 2 xy", "SETRANGE r 0 ''", "GETSET s old", "GETSET g new",
            "GETDEL g", "GETDEL nope", "GET nope", "MGET s nope", "DEL s nope m1", "UNLINK m2", "EXPIRE i 100",
            "PEXPIRE i 100000", "EXPIREAT i 99999999999", "PERSIST i", "PERSIST i", "EXPIRE i -1", "RENAME f f2",
            "RENAME f2 r", "RENAMENX r r2", "COPY r c1", "COPY r c1 REPLACE", "GETEX c1 EX 100", "GETEX c1 PERSIST",
            "GETEX c1 PXAT 1", "SETEX se 100 v", "PSETEX pe 100000 v", "SET k v PX 1",
        ])
        let total = try Self.compareKeyspaceEvents(commands, settings: ["KEA", "KEAn", "Kg", "E$", "Kx", "KEe", "Eg$n", "K", "A"])
        #expect(total > 100)
    }

    /// The hash, set, list and sorted-set commands (and blocking pops served at once) publish what
    /// Redis 7.0's t_hash.c, t_set.c, t_list.c and t_zset.c publish, in the same order: the
    /// command's event only when something changed, `del` after it when the key emptied, the
    /// *STORE commands' event or `del`, `new` for a created key.
    @Test func collectionKeyspaceNotificationsMatchRedis() throws {
        let commands = RedisDifferentialTests.words([
            // hashes
            "HSET h a 1 b 2", "HSET h a 1", "HMSET h c 3", "HSETNX h a 9", "HSETNX h d 4", "HINCRBY h n 5",
            "HINCRBYFLOAT h f 1.5", "HDEL h nope", "HDEL h a b", "HDEL h c d n f", "HDEL h x", "HGET h a",
            "HINCRBY hx n 1", "HDEL hx n",
            // sets
            "SADD s a b c", "SADD s a", "SREM s nope", "SREM s a", "SMOVE s s2 b", "SMOVE s s2 nope", "SMOVE s2 s2 b",
            "SADD s3 b", "SMOVE s2 s3 b", "SPOP nope", "SPOP s", "SADD p 1 2 3 4 5", "SPOP p 0", "SPOP p 2",
            "SPOP p 10", "SADD i1 a b c", "SADD i2 b c d", "SINTERSTORE d1 i1 i2", "SINTERSTORE d1 i1 nope",
            "SINTERSTORE d1 i1 nope", "SUNIONSTORE d2 i1 i2", "SDIFFSTORE d3 i1 i2", "SDIFFSTORE d3 i1 i1",
            "SDIFFSTORE d3 i1 i1", "SMISMEMBER i1 a",
            // lists
            "LPUSH l a b c", "RPUSH l d", "LPUSHX nope a", "RPUSHX l e", "LINSERT l BEFORE a x", "LINSERT l AFTER nope y",
            "LSET l 0 z", "LPOP l", "RPOP l", "LPOP l 2", "LPOP l 0", "LPOP nope", "RPUSH l2 1 2 3", "LMOVE l2 l3 LEFT RIGHT",
            "RPOPLPUSH l2 l2", "LMOVE l2 l3 RIGHT LEFT", "LMOVE l2 l3 LEFT LEFT", "LMOVE l3 l3 LEFT RIGHT",
            "RPUSH t 1 2 3 4 5", "LTRIM t 0 -1", "LTRIM t 1 2", "LTRIM t 5 1", "LTRIM nope 0 1", "RPUSH r a b a c a",
            "LREM r 2 a", "LREM r 0 nope", "LREM r 0 a", "LREM r 0 b", "LREM r 0 c", "LMPOP 2 nope l3 LEFT COUNT 5",
            "RPUSH b1 x", "BLPOP nope b1 1", "RPUSH b2 y", "BRPOPLPUSH b2 b3 1", "BLMOVE b3 b4 LEFT LEFT 1",
            "BLMPOP 1 1 b4 RIGHT",
            // sorted sets
            "ZADD z 1 a 2 b 3 c", "ZADD z 1 a", "ZADD z 5 a", "ZADD z NX 9 a", "ZADD z XX 7 nope", "ZADD z GT 1 a",
            "ZADD z INCR 2 a", "ZINCRBY z 1 b", "ZADD z XX CH 4 b", "ZREM z nope", "ZREM z c", "ZPOPMIN z",
            "ZPOPMAX z 5", "ZPOPMIN nope", "ZADD y 1 a 2 b 3 c 4 d 5 e", "ZREMRANGEBYSCORE y 10 20",
            "ZREMRANGEBYSCORE y 1 1", "ZREMRANGEBYRANK y 0 0", "ZREMRANGEBYLEX y [d [d", "ZADD w 1 a 2 b",
            "ZUNIONSTORE u 2 y w", "ZINTERSTORE u2 2 y w", "ZDIFFSTORE u3 2 y w", "ZINTERSTORE u2 2 y nope",
            "ZINTERSTORE u2 2 y nope", "ZRANGESTORE rs y 0 0", "ZRANGESTORE rs nope 0 -1", "ZRANGESTORE rs nope 0 -1",
            "ZMPOP 2 nope w MIN COUNT 1", "BZPOPMIN w 1", "ZADD v 1 a", "BZPOPMAX nope v 1", "ZADD q 1 a 2 b",
            "BZMPOP 1 1 q MAX COUNT 5", "ZREMRANGEBYRANK y 0 -1",
            "DEL h s s2 s3 p i1 i2 d1 d2 d3 l l2 l3 t r z y w u u2 u3 rs",
        ])
        let total = try Self.compareKeyspaceEvents(commands, settings: ["KEA", "KEAn", "Kl", "Eh", "Ksz", "Egn", "E$"])
        #expect(total > 300)
    }

    /// A blocking pop served when another client pushes: the push's event, then the pop's and
    /// `del` as Redis publishes them when it serves the blocked client (BLPOP, BLMOVE, BZPOPMIN).
    @Test func servedBlockingPopsNotifyAsRedis() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        let waits: [(block: [String], push: [String])] = [
            (["BLPOP", "q1", "5"], ["RPUSH", "q1", "a"]),
            (["BLMOVE", "q2", "d2", "LEFT", "RIGHT", "5"], ["RPUSH", "q2", "a", "b"]),
            (["BZPOPMIN", "z1", "5"], ["ZADD", "z1", "1", "a"]),
            (["BLMPOP", "5", "1", "q3", "LEFT", "COUNT", "2"], ["LPUSH", "q3", "a", "b", "c"]),
        ]
        var transcripts: [[String]] = []
        for port in [pair.oracle.port, pair.server.kvPort] {
            let listener = try RawRESPConnection(port: port)
            let blocker = try RawRESPConnection(port: port)
            let pusher = try RawRESPConnection(port: port)
            _ = try pusher.call("FLUSHALL")
            _ = try pusher.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
            _ = try listener.call("PSUBSCRIBE", "__key*__:*")
            _ = try listener.call("SUBSCRIBE", "end")
            var frames: [String] = []
            for wait in waits {
                try blocker.client.send(RESPValue.command(wait.block.map { Array($0.utf8) }), deadline: .now + .seconds(5))
                #expect(try pollFor(within: 5) {
                    String(decoding: try pusher.call("INFO", "clients"), as: UTF8.self).contains("blocked_clients:1")
                })
                _ = try pusher.call(wait.push.map { Array($0.utf8) })
                frames.append(String(decoding: try blocker.reply(deadline: .now + .seconds(5)), as: UTF8.self))
            }
            _ = try pusher.call("PUBLISH", "end", "x")
            while true {
                let frame = String(decoding: try listener.reply(deadline: .now + .seconds(5)), as: UTF8.self)
                if frame.contains("$3\r\nend\r\n") { break }
                frames.append(frame)
            }
            _ = try pusher.call("CONFIG", "SET", "notify-keyspace-events", "")
            transcripts.append(frames)
        }
        #expect(transcripts[1] == transcripts[0], "redis: \(transcripts[0])\nreactord: \(transcripts[1])")
        #expect(transcripts[0].count > 20)
    }

    /// For each setting of `notify-keyspace-events`, `commands` on one connection while another
    /// listens on every keyspace and keyevent channel, against redis-server and reactord; the
    /// listener's frames, up to a closing PUBLISH, compared byte for byte. - Returns: the frames.
    static func compareKeyspaceEvents(_ commands: [[[UInt8]]], settings: [String]) throws -> Int {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var transcripts: [[[String]]] = []
        var replies: [[String]] = []
        for port in [pair.oracle.port, pair.server.kvPort] {
            var perSetting: [[String]] = []
            var answered: [String] = []
            for setting in settings {
                let listener = try RawRESPConnection(port: port)
                let actor = try RawRESPConnection(port: port)
                _ = try actor.call("FLUSHALL")
                _ = try actor.call("CONFIG", "SET", "notify-keyspace-events", setting)
                _ = try listener.call("PSUBSCRIBE", "__key*__:*")
                _ = try listener.call("SUBSCRIBE", "end")
                for command in commands {
                    let reply = try actor.call(command)
                    if setting == settings[0] { answered.append(String(decoding: reply, as: UTF8.self)) }
                }
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
            replies.append(answered)
        }
        // The replies first: a command that answered differently makes different events.
        for (index, (redis, ours)) in zip(replies[0], replies[1]).enumerated() where redis != ours {
            if commands[index][0] == Array("SPOP".utf8) { continue }  // random members
            Issue.record("reply to \(commands[index].map { String(decoding: $0, as: UTF8.self) }) differs:\n  redis:    \(redis.debugDescription)\n  reactord: \(ours.debugDescription)")
        }
        var total = 0
        for (index, setting) in settings.enumerated() {
            let (redis, ours) = (transcripts[0][index], transcripts[1][index])
            total += redis.count
            guard ours != redis else { continue }
            // The first difference and what follows it, each frame shortened to its channel and message.
            let first = (0..<min(ours.count, redis.count)).first(where: { ours[$0] != redis[$0] }) ?? min(ours.count, redis.count)
            func brief(_ frames: [String]) -> String {
                frames[min(first, frames.count)..<min(first + 6, frames.count)].map {
                    $0.split(separator: "\r\n").suffix(3).enumerated().filter { $0.offset != 1 }.map(\.element).joined(separator: " ")
                }.joined(separator: " | ")
            }
            Issue.record("notify-keyspace-events \(setting), frame \(first) of \(redis.count):\n  redis:    \(brief(redis))\n  reactord: \(brief(ours))")
        }
        print("differential (keyspace notifications): \(settings.count) settings, \(commands.count) commands, \(total) frames")
        return total
    }
}
