// The set commands against redis-server (RedisDifferentialTests.swift's pair and connections), in RESP2
// and RESP3. Byte for byte, except where Redis's own order is its hash table's: replies listing a
// table-encoded set compare as the same reply type with the same elements in any order (an intset's
// replies are sorted on both sides and compare exactly), and random draws (SRANDMEMBER, SPOP short of
// the whole set) compare by shape. Hand-written sequences per command, including errors, WRONGTYPE,
// arity and OBJECT ENCODING across set-max-intset-entries, then seeded random sequences.

import Foundation
import Testing

@Suite(.serialized) struct SetDifferentialTests {
    typealias Pair = RedisDifferentialTests.Pair

    /// Replies compared, per command name.
    struct Counts {
        var replies: [String: Int] = [:]
        var differences: [String] = []
        var total: Int { self.replies.values.reduce(0, +) }
    }

    /// How a set command's replies are compared.
    static func matches(_ arguments: [[UInt8]], _ ours: [UInt8], _ theirs: [UInt8]) -> Bool {
        if ours == theirs { return true }
        let name = String(decoding: arguments[0], as: UTF8.self).uppercased()
        func sameElements(_ a: [UInt8], _ b: [UInt8]) -> Bool {
            guard a.first == b.first, let x = RESPFrame.elements(a), let y = RESPFrame.elements(b) else { return false }
            return x.sorted { $0.lexicographicallyPrecedes($1) } == y.sorted { $0.lexicographicallyPrecedes($1) }
        }
        switch name {
        case "SMEMBERS", "SINTER", "SUNION", "SDIFF":
            return sameElements(ours, theirs)
        case "SPOP" where arguments.count == 3:
            // The whole set (count at least its size) is determined; fewer members are random.
            return sameElements(ours, theirs) || ReplyComparison.sameShape.matches(ours, theirs)
        case "SRANDMEMBER", "SPOP":
            return ReplyComparison.sameShape.matches(ours, theirs)
        case "SSCAN":
            guard let a = RESPFrame.elements(ours), let b = RESPFrame.elements(theirs), a.count == 2, b.count == 2 else {
                return false
            }
            // A finished scan lists the same members; a partial one is a cursor and a batch.
            if a[0] == b[0] && a[0] == Array("$1\r\n0\r\n".utf8) { return sameElements(a[1], b[1]) }
            return a[1].first == b[1].first
        default:
            return false
        }
    }

    /// Runs `sequence` on fresh connections (after FLUSHALL) in `protocolVersion`; stops at the first
    /// difference (the states have diverged).
    static func run(_ name: String, _ sequence: [[[UInt8]]], protocolVersion: Int, on pair: Pair, counts: inout Counts) throws {
        let ours = try RawRESPConnection(port: pair.server.kvPort)
        let theirs = try RawRESPConnection(port: pair.oracle.port)
        for connection in [ours, theirs] {
            _ = try connection.call("FLUSHALL")
            if protocolVersion == 3 { _ = try connection.call("HELLO", "3") }
        }
        for arguments in sequence {
            let mine = try ours.call(arguments)
            let redis = try theirs.call(arguments)
            counts.replies[String(decoding: arguments[0], as: UTF8.self).uppercased(), default: 0] += 1
            if !Self.matches(arguments, mine, redis) {
                let shown = arguments.map { String(decoding: $0, as: UTF8.self).debugDescription }.joined(separator: " ")
                counts.differences.append("""
                [\(name), RESP\(protocolVersion)] \(shown)
                    reactord: \(String(decoding: mine, as: UTF8.self).debugDescription)
                    redis:    \(String(decoding: redis, as: UTF8.self).debugDescription)
                """)
                return
            }
        }
    }

    static func words(_ lines: [String]) -> [[[UInt8]]] { RedisDifferentialTests.words(lines) }

    /// `SADD key` with `count` integers from `start` (one line).
    static func saddIntegers(_ key: String, from start: Int, count: Int) -> String {
        "SADD \(key) " + (start..<(start + count)).map(String.init).joined(separator: " ")
    }

    static let handWritten: [(String, [[[UInt8]]])] = [
        ("sadd-srem", words([
            "SADD s 1 2 3", "SADD s 3 4", "SCARD s", "SMEMBERS s", "OBJECT ENCODING s", "SADD s a", "OBJECT ENCODING s",
            "SREM s a 1 zz", "OBJECT ENCODING s", "SREM s 2 3 4", "EXISTS s", "SREM nope a", "SADD t a b c",
            "OBJECT ENCODING t", "SADD t -0 01 +1 ' 1' '' 1.5", "SCARD t", "SREM t '' 1.5", "SADD", "SADD s", "SREM s",
            "SADD t a a a b", "SCARD t", "SADD n -9223372036854775808 9223372036854775807", "OBJECT ENCODING n",
            "SADD n 9223372036854775808", "OBJECT ENCODING n", "SMEMBERS n", "SADD w 100000 -100000 5000000000 7 0",
            "SMEMBERS w", "SREM w 5000000000 0", "SMEMBERS w", "SISMEMBER w 7", "SISMEMBER w 07",
        ])),
        ("reads", words([
            "SADD s 1 2 3", "SISMEMBER s 2", "SISMEMBER s 9", "SISMEMBER s abc", "SISMEMBER nope a", "SISMEMBER s",
            "SMISMEMBER s 1 9 2", "SMISMEMBER nope 1 2", "SMISMEMBER s", "SCARD nope", "SCARD", "SCARD a b",
            "SMEMBERS nope", "SMEMBERS", "SMEMBERS a b", "SADD e ''", "SMEMBERS e", "SISMEMBER e ''", "SCARD e",
        ])),
        ("wrongtype", words([
            "SET str x", "SADD str a", "SREM str a", "SMEMBERS str", "SCARD str", "SISMEMBER str a", "SMISMEMBER str a",
            "SPOP str", "SPOP str 2", "SRANDMEMBER str", "SRANDMEMBER str 2", "SADD s 1", "SINTER s str", "SINTER nope str",
            "SINTERSTORE d s str", "SINTERCARD 2 s str", "SUNION s str", "SUNIONSTORE d s str", "SDIFF s str", "SDIFF nope str",
            "SDIFFSTORE d s str", "SMOVE str s a", "SMOVE s str 1", "SMOVE nope str 1", "SSCAN str 0", "GET s", "INCR s",
            "APPEND s x", "TYPE s", "EXISTS d",
        ])),
        ("spop-srandmember", words([
            "SPOP nope", "SPOP nope 3", "SPOP nope -1", "SPOP nope x", "SADD t a", "SPOP t 0", "SPOP t 1 2", "SPOP t",
            "EXISTS t", "SADD t a b c", "SPOP t 3", "EXISTS t", "SADD t 1 2 3", "SPOP t 10", "EXISTS t", "SADD t x",
            "SPOP t 1", "EXISTS t", "SRANDMEMBER nope", "SRANDMEMBER nope 5", "SRANDMEMBER nope -5", "SRANDMEMBER nope 0",
            "SRANDMEMBER nope x", "SRANDMEMBER nope -9223372036854775808", "SRANDMEMBER nope 9223372036854775807",
            "SADD r 1 2 3 4 5 6 7 8 9 10", "SRANDMEMBER r 0", "SRANDMEMBER r", "SRANDMEMBER r 3", "SRANDMEMBER r -3",
            "SRANDMEMBER r 1", "SRANDMEMBER r -1", "SRANDMEMBER r 100", "SRANDMEMBER r 9", "SRANDMEMBER r -25",
            "SRANDMEMBER r 1 2", "SRANDMEMBER r x", "SADD q a", "SRANDMEMBER q", "SRANDMEMBER q 5", "SRANDMEMBER q -2",
            "SPOP r 5", "SCARD r", "SPOP r", "SCARD r", "SPOP", "SRANDMEMBER",
        ])),
        ("algebra", words([
            "SADD a 1 2 3 4 5", "SADD b 3 4 5 6", "SADD c x 4 5", "SINTER a b", "SINTER a b c", "SINTER a nope",
            "SINTER a", "SINTER c c", "SINTERSTORE d a b", "SMEMBERS d", "OBJECT ENCODING d", "SINTERSTORE d a nope",
            "EXISTS d", "SINTERSTORE d a c", "OBJECT ENCODING d", "SINTERSTORE a a b", "SMEMBERS a", "SADD a 1 2",
            "SET str x", "SINTERSTORE str a b", "TYPE str", "SINTERCARD 2 a b", "SINTERCARD 2 a b LIMIT 1",
            "SINTERCARD 2 a b LIMIT 0", "SINTERCARD 2 a b LIMIT -1", "SINTERCARD 2 a b LIMIT x", "SINTERCARD 2 a b LIMIT",
            "SINTERCARD 2 a b FOO 1", "SINTERCARD 0 a", "SINTERCARD -1 a", "SINTERCARD x a", "SINTERCARD 3 a b",
            "SINTERCARD 1 nope", "SINTERCARD 1 a LIMIT 2 LIMIT 3", "SINTERCARD 2", "SUNION a b", "SUNION a c",
            "SUNION nope", "SUNION a nope", "SUNIONSTORE u a b", "OBJECT ENCODING u", "SMEMBERS u", "SUNIONSTORE u a c",
            "OBJECT ENCODING u", "SUNIONSTORE u nope", "EXISTS u", "SDIFF a b", "SDIFF a b c", "SDIFF a a", "SDIFF nope a",
            "SDIFF a nope", "SDIFF a nope b", "SDIFFSTORE e a b", "SMEMBERS e", "OBJECT ENCODING e", "SDIFFSTORE e b a c",
            "EXISTS e", "SDIFFSTORE c c a", "SMEMBERS c", "SINTERSTORE", "SINTERSTORE d", "SUNIONSTORE d", "SDIFF",
        ])),
        ("smove", words([
            "SADD a 1 2 3", "SADD b 3 4", "SMOVE a b 1", "SMEMBERS a", "SMEMBERS b", "SMOVE a b 99", "SMOVE a a 2",
            "SMOVE a a 99", "SMOVE nope b 1", "SMOVE a b 3", "SMEMBERS a", "SMEMBERS b", "SMOVE a fresh 2",
            "OBJECT ENCODING fresh", "EXISTS a", "SMOVE b fresh2 x", "SADD b x", "SMOVE b fresh2 x", "OBJECT ENCODING fresh2",
            "SADD i 5", "SMOVE b i x", "OBJECT ENCODING i", "SMEMBERS i", "SMOVE a b", "SMOVE a b c d",
        ])),
        ("sscan", words([
            "SADD a 1 2 3 30 31", "SSCAN a 0", "SSCAN a 0 MATCH 3*", "SSCAN a 0 COUNT 1", "SSCAN a 7", "SSCAN a 0 COUNT 0",
            "SSCAN a 0 COUNT x", "SSCAN a 0 TYPE set", "SSCAN a 0 MATCH", "SSCAN a 0 MATCH * COUNT 5", "SSCAN a x",
            "SSCAN a -1", "SSCAN nope 0", "SSCAN nope x", "SSCAN nope 0 FOO", "SADD c x y z", "SSCAN c 0", "SSCAN c 0 MATCH x",
            "SSCAN c 0 MATCH [xy] COUNT 100", "SSCAN", "SSCAN a",
        ])),
        ("encoding-threshold", words([
            saddIntegers("big", from: 0, count: 512), "OBJECT ENCODING big", "SCARD big", "SADD big 511", "OBJECT ENCODING big",
            "SADD big 512", "OBJECT ENCODING big", "SCARD big", "SREM big 512", "OBJECT ENCODING big",
            saddIntegers("over", from: -300, count: 513), "OBJECT ENCODING over", "SINTERSTORE i2 big over",
            "OBJECT ENCODING i2", "SCARD i2", "SUNIONSTORE u2 big over", "OBJECT ENCODING u2", "SCARD u2",
            "SDIFFSTORE d2 big over", "OBJECT ENCODING d2", "SMEMBERS d2", "SINTERCARD 2 big over", "SINTERCARD 2 big over LIMIT 10",
            "SISMEMBER big 300", "SISMEMBER big 513", "SMISMEMBER over -300 212 213",
            "SPOP big 600", "EXISTS big",
        ])),
        ("transactions-and-expiry", words([
            "SADD a 1 2", "MULTI", "SADD a 3", "SREM a 1", "SMOVE a b 2", "SMEMBERS a", "EXEC", "SMEMBERS b",
            "EXPIRE a 100", "TTL a", "SADD a 9", "TTL a", "SREM a 3 9", "EXISTS a", "SADD c 1", "PEXPIRE c 1",
            "RENAME b c2", "SMEMBERS c2", "COPY c2 c3", "SMEMBERS c3", "TYPE c3", "DEL c3", "SCARD c3",
        ])),
    ]

    @Test func handWrittenSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var counts = Counts()
        for version in [2, 3] {
            for (name, sequence) in Self.handWritten {
                try Self.run(name, sequence, protocolVersion: version, on: pair, counts: &counts)
            }
        }
        #expect(counts.differences.isEmpty, "\(counts.differences.count) differences:\n\(counts.differences.joined(separator: "\n"))")
        let perCommand = counts.replies.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("set differential (hand-written): \(counts.total) replies: \(perCommand)")
    }

    /// A random set command over a few keys (one of them a string) and a mixed pool of members.
    static func randomCommand(_ g: inout SeededGenerator) -> [[UInt8]] {
        let keys = ["s1", "s2", "s3", "str"]
        let members = ["1", "2", "3", "10", "-5", "70000", "5000000000", "a", "b", "c", "", "01"]
        func key() -> String { keys.randomElement(using: &g)! }
        func member() -> String { members.randomElement(using: &g)! }
        func some() -> [String] { (0..<Int.random(in: 1...3, using: &g)).map { _ in member() } }
        let command: [String]
        switch Int.random(in: 0..<24, using: &g) {
        case 0, 1, 2: command = ["SADD", key()] + some()
        case 3, 4: command = ["SREM", key()] + some()
        case 5: command = ["SISMEMBER", key(), member()]
        case 6: command = ["SMISMEMBER", key()] + some()
        case 7: command = ["SCARD", key()]
        case 8: command = ["SMEMBERS", key()]
        case 9: command = ["SINTER", key(), key()]
        case 10: command = ["SUNION", key(), key()]
        case 11: command = ["SDIFF", key(), key(), key()]
        case 12: command = ["SINTERSTORE", key(), key(), key()]
        case 13: command = ["SUNIONSTORE", key(), key(), key()]
        case 14: command = ["SDIFFSTORE", key(), key(), key()]
        case 15: command = ["SMOVE", key(), key(), member()]
        case 16: command = ["SINTERCARD", "2", key(), key()] + (Bool.random(using: &g) ? ["LIMIT", "1"] : [])
        case 17: command = ["OBJECT", "ENCODING", key()]
        case 18: command = ["SRANDMEMBER", key()] + (Bool.random(using: &g) ? [] : [["2", "-2", "20"].randomElement(using: &g)!])
        case 19: command = ["SPOP", key(), "100"]
        case 20: command = ["SSCAN", key(), "0"]
        case 21: command = ["SET", "str", "x"]
        case 22: command = ["DEL", key()]
        default: command = ["TYPE", key()]
        }
        return command.map { Array($0.utf8) }
    }

    @Test func seededRandomSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var counts = Counts()
        for seed in UInt64(1)...40 {
            var g = SeededGenerator(seed: seed)
            let sequence = (0..<80).map { _ in Self.randomCommand(&g) }
            try Self.run("seed \(seed)", sequence, protocolVersion: seed % 2 == 0 ? 3 : 2, on: pair, counts: &counts)
        }
        #expect(counts.differences.isEmpty, "\(counts.differences.count) differences:\n\(counts.differences.joined(separator: "\n"))")
        print("set differential (random): \(counts.total) replies over \(counts.replies.count) commands")
    }

    /// SSCAN of a table-encoded set, cursor by cursor: every member comes back, none that is absent, and
    /// the walk ends at cursor 0, on both servers.
    @Test func sscanWalksALargeSetToTheEnd() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let members = Set((0..<2000).map { "member:\($0)" })
        for port in [pair.server.kvPort, pair.oracle.port] {
            let client = try RawRESPConnection(port: port)
            _ = try client.call("FLUSHALL")
            _ = try client.call([Array("SADD".utf8), Array("big".utf8)] + members.map { Array($0.utf8) })
            var seen: Set<String> = []
            var cursor = "0"
            var calls = 0
            repeat {
                let reply = try client.call("SSCAN", "big", cursor, "COUNT", "50")
                guard let parts = RESPFrame.elements(reply), parts.count == 2, let next = RESPFrame.scalar(parts[0]),
                      let batch = RESPFrame.elements(parts[1]) else { throw TestFailure("SSCAN reply \(reply)") }
                cursor = String(decoding: next, as: UTF8.self)
                for member in batch { seen.insert(String(decoding: RESPFrame.scalar(member) ?? [], as: UTF8.self)) }
                calls += 1
            } while cursor != "0" && calls < 10_000
            #expect(cursor == "0" && seen == members, "port \(port): \(seen.count) of \(members.count) after \(calls) calls")
            #expect(calls > 1, "port \(port): a table answers in several steps")
        }
    }
}
