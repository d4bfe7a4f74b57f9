// The hash commands against redis-server (RedisOracle.swift), in RESP2 and RESP3, replies compared
// byte for byte: hand-written edge cases for every command (errors, arity, WRONGTYPE, the empty-key
// rule, OBJECT ENCODING on both sides of the listpack limits), then seeded random sequences over a
// small keyspace. A `hashtable` hash streams in its table's order, which differs from Redis's: lines
// starting `~` compare such replies as unordered (HGETALL's pairs kept together); lines starting `?`
// compare random replies (HRANDFIELD below the hash's size) by shape. HSCAN over a `hashtable` hash is
// compared by what a whole iteration returns.

import Foundation
import Reactor
import Server
import Testing

@Suite(.serialized) struct HashDifferentialTests {
    enum Rule { case exact, unordered, shape }

    /// What a run compared: replies per command, and the differences.
    struct Tally {
        var replies: [String: Int] = [:]
        var differences: [String] = []
        var total: Int { self.replies.values.reduce(0, +) }
    }

    /// A line's rule and its arguments (`'…'` quotes one argument; `''` is the empty one).
    static func parse(_ line: String) -> (Rule, [[UInt8]]) {
        var rule = Rule.exact
        var text = Substring(line)
        if text.hasPrefix("~ ") { rule = .unordered; text = text.dropFirst(2) }
        if text.hasPrefix("? ") { rule = .shape; text = text.dropFirst(2) }
        return (rule, RedisDifferentialTests.words([String(text)])[0])
    }

    static func matches(_ rule: Rule, _ ours: [UInt8], _ theirs: [UInt8], arguments: [[UInt8]]) -> Bool {
        switch rule {
        case .exact: return ours == theirs
        case .shape:
            guard ours.first == theirs.first else { return false }
            return RESPFrame.elements(ours)?.count == RESPFrame.elements(theirs)?.count
        case .unordered:
            guard ours.first == theirs.first, let a = RESPFrame.elements(ours), let b = RESPFrame.elements(theirs) else {
                return ours == theirs
            }
            let paired = String(decoding: arguments[0], as: UTF8.self).uppercased() == "HGETALL"
                || (arguments.count == 4 && String(decoding: arguments[3], as: UTF8.self).uppercased() == "WITHVALUES")
            func normalized(_ elements: [[UInt8]]) -> [[UInt8]] {
                // RESP3's HRANDFIELD … WITHVALUES nests each pair; the flat forms keep pairs together here.
                let nested = elements.first?.first == UInt8(ascii: "*")
                let units = paired && !nested && elements.count % 2 == 0
                    ? stride(from: 0, to: elements.count, by: 2).map { elements[$0] + elements[$0 + 1] } : elements
                return units.sorted { $0.lexicographicallyPrecedes($1) }
            }
            return normalized(a) == normalized(b)
        }
    }

    /// Runs `lines` on both servers on fresh connections after FLUSHALL, in `protocolVersion`;
    /// stops at the first difference (the states have diverged).
    static func run(_ name: String, _ lines: [String], protocolVersion: Int, on pair: RedisDifferentialTests.Pair,
                    tally: inout Tally) throws {
        let ours = try RawRESPConnection(port: pair.server.kvPort)
        let theirs = try RawRESPConnection(port: pair.oracle.port)
        for connection in [ours, theirs] {
            _ = try connection.call("FLUSHALL")
            if protocolVersion == 3 { _ = try connection.call("HELLO", "3") }
        }
        for line in lines {
            let (rule, arguments) = Self.parse(line)
            let mine = try ours.call(arguments)
            let redis = try theirs.call(arguments)
            tally.replies[String(decoding: arguments[0], as: UTF8.self).uppercased(), default: 0] += 1
            if !Self.matches(rule, mine, redis, arguments: arguments) {
                let shown = String(line.prefix(200))
                tally.differences.append("""
                [\(name), RESP\(protocolVersion)] \(shown)
                    reactord: \(String(decoding: mine.prefix(400), as: UTF8.self).debugDescription)
                    redis:    \(String(decoding: redis.prefix(400), as: UTF8.self).debugDescription)
                """)
                return
            }
        }
    }

    static let long64 = String(repeating: "x", count: 64)
    static let long65 = String(repeating: "y", count: 65)

    static let handWritten: [(String, [String])] = [
        ("hset-hget", [
            "HSET h a 1 b 2 c 3", "HSET h a 1", "HSET h a 10 d 4", "HGETALL h", "HKEYS h", "HVALS h", "HGET h a",
            "HGET h nope", "HGET nope a", "HMGET h a b nope", "HMGET nope a b", "HLEN h", "HLEN nope", "HEXISTS h a",
            "HEXISTS h nope", "HEXISTS nope a", "HSTRLEN h a", "HSTRLEN h nope", "HSTRLEN nope a", "HSET h", "HSET h a",
            "HSET h a 1 b", "HMSET h a 1 b", "HMSET h x 9 y 8", "HGETALL h", "HSET h a 1 a 2 a 3", "HGET h a",
            "HSET e f ''", "HGETALL e", "HSTRLEN e f", "HSET '' '' ''", "HGETALL ''", "HKEYS nope", "HVALS nope",
            "HGETALL nope", "HSET h 'with space' 'a\r\nb'", "HGET h 'with space'", "OBJECT ENCODING h", "TYPE h",
        ]),
        ("hdel-hsetnx", [
            "HSET h a 1 b 2 c 3 d 4", "HDEL h a nope b", "HGETALL h", "HDEL h a", "HDEL nope a", "HSETNX h c 99",
            "HSETNX h z 99", "HSETNX new f v", "HGETALL new", "HDEL h c d z c", "EXISTS h", "HLEN h", "HDEL h c",
            "HSET h a 1", "HDEL h a a", "EXISTS h", "HSET h b 2 a 1", "HDEL h a", "HSET h a 3", "HGETALL h",
        ]),
        ("wrongtype", [
            "SET s v", "HSET s a 1", "HSETNX s a 1", "HMSET s a 1", "HGET s a", "HMGET s a", "HGETALL s", "HKEYS s",
            "HVALS s", "HDEL s a", "HLEN s", "HEXISTS s a", "HSTRLEN s a", "HINCRBY s a 1", "HINCRBY s a x",
            "HINCRBYFLOAT s a 1", "HINCRBYFLOAT s a x", "HRANDFIELD s", "HRANDFIELD s 1", "HRANDFIELD s 1 WITHVALUES",
            "HSCAN s 0", "HSCAN s x", "HSET h a 1", "GET h", "APPEND h x", "INCR h", "STRLEN h", "SETRANGE h 0 x",
            "GETDEL h", "SET h v", "GET h", "HSET h a 1", "TYPE h", "DEL h", "EXISTS h",
        ]),
        ("arity", [
            "HGET", "HGET h", "HGET h a b", "HGETALL", "HGETALL h x", "HMGET h", "HDEL h", "HLEN", "HEXISTS h",
            "HSTRLEN h", "HINCRBY h a", "HINCRBYFLOAT h a", "HSETNX h a", "HRANDFIELD", "HSCAN h", "HKEYS", "HVALS a b",
            "HSET h a", "HMSET h", "HSET h a 1 b 2 c",
        ]),
        ("hincrby", [
            "HINCRBY i a 1", "HINCRBY i a -5", "HINCRBY i a x", "HINCRBY i a ''", "HINCRBY i a 1.5",
            "HSET i b abc c 9223372036854775807 d ' 1' e 010 f -0 g 12",
            "HINCRBY i b 1", "HINCRBY i c 1", "HINCRBY i c 0", "HINCRBY i d 1", "HINCRBY i e 1", "HINCRBY i f 1",
            "HINCRBY i g -12", "HGET i g", "HINCRBY i a -9223372036854775808", "HINCRBY i a -9223372036854775808",
            "HINCRBY i z 9223372036854775807", "HINCRBY i z 1", "HINCRBY i y -9223372036854775808", "HINCRBY i y -1",
            "HGETALL i", "HINCRBY nope f 99999999999999999999",
        ]),
        ("hincrbyfloat", [
            "HINCRBYFLOAT f a 1.5", "HINCRBYFLOAT f a 0.1", "HINCRBYFLOAT f a -1.6", "HINCRBYFLOAT f a x",
            "HINCRBYFLOAT f a inf", "HINCRBYFLOAT f a -inf", "HINCRBYFLOAT f a nan", "HINCRBYFLOAT f a 1e5000",
            "HINCRBYFLOAT f a ''", "HSET f c abc d 10.50 e 5.0e3 g ' 1' h 1e308", "HINCRBYFLOAT f c 1",
            "HINCRBYFLOAT f d 0", "HINCRBYFLOAT f e 2.0e2", "HINCRBYFLOAT f g 1", "HINCRBYFLOAT f h 1e308",
            "HINCRBYFLOAT f i 3.0e-2", "HINCRBYFLOAT f j 1.23456789012345678", "HINCRBYFLOAT f k -0.0",
            "HINCRBYFLOAT f l 0x10", "HINCRBYFLOAT f l .5", "HINCRBYFLOAT f m 5.", "HINCRBYFLOAT f n 1e-20",
            "HINCRBYFLOAT f o 123456789012345678901234567890", "HSET f p 7", "HINCRBYFLOAT f p 1.5", "HGET f p",
            "HINCRBY f p 1", "~ HGETALL f", "HINCRBYFLOAT f q 1e300", "HGET f q", "OBJECT ENCODING f",
        ]),
        ("hrandfield", [
            "HRANDFIELD nope", "HRANDFIELD nope 5", "HRANDFIELD nope -5", "HRANDFIELD nope 5 WITHVALUES",
            "HRANDFIELD nope 0", "HSET r a 1 b 2 c 3", "HRANDFIELD r 10", "HRANDFIELD r 10 WITHVALUES", "HRANDFIELD r 3",
            "HRANDFIELD r 3 WITHVALUES", "HRANDFIELD r 0", "HRANDFIELD r 0 WITHVALUES", "HRANDFIELD r x",
            "HRANDFIELD r 1 foo", "HRANDFIELD r 1 WITHVALUES x", "HRANDFIELD r -9223372036854775808",
            "HRANDFIELD r 9223372036854775807 WITHVALUES",
            "HRANDFIELD r -4611686018427387904 WITHVALUES", "HRANDFIELD r -4611686018427387903 WITHVALUES x",
            "HRANDFIELD r 4611686018427387904 WITHVALUES", "HRANDFIELD r 4611686018427387903 WITHVALUES",
            "HRANDFIELD r 1.5", "? HRANDFIELD r", "? HRANDFIELD r 2", "? HRANDFIELD r 2 WITHVALUES", "? HRANDFIELD r 1",
            "? HRANDFIELD r -1", "? HRANDFIELD r -7", "? HRANDFIELD r -7 WITHVALUES", "? HRANDFIELD r 1 WITHVALUES",
            "HSET one f v", "HRANDFIELD one", "HRANDFIELD one -3", "HRANDFIELD one -3 WITHVALUES", "HRANDFIELD one 1",
            "HRANDFIELD one 1 withvalues", "HRANDFIELD one 2 WITHVALUES",
        ]),
        ("hscan", [
            "HSET f a 1 b 2 c 3 ab 4 'x y' 5", "HSCAN f 0", "HSCAN f 0 MATCH a*", "HSCAN f 0 MATCH *", "HSCAN f 0 COUNT 1",
            "HSCAN f 0 COUNT 0", "HSCAN f 0 COUNT -1", "HSCAN f 0 COUNT x", "HSCAN f x", "HSCAN f -1", "HSCAN f 123",
            "HSCAN f 0 FOO bar", "HSCAN f 0 MATCH", "HSCAN f 0 COUNT", "HSCAN f 0 TYPE hash", "HSCAN f 0 match ?b count 100",
            "HSCAN f 0 MATCH nothing", "HSCAN f 0 MATCH [a-b]", "HSCAN f 18446744073709551615", "HSCAN f 18446744073709551616",
            "HSCAN nope 0", "HSCAN nope 0 FOO", "HSCAN nope x",
        ]),
        ("encodings", [
            "HSET l64 f \(long64)", "OBJECT ENCODING l64", "HSET l65 f \(long65)", "OBJECT ENCODING l65", "HGET l65 f",
            "HSET lf \(long65) v", "OBJECT ENCODING lf", "HSETNX ln \(long65) v", "OBJECT ENCODING ln",
            "HSET keep f v", "HSETNX keep f \(long65)", "OBJECT ENCODING keep", "HINCRBY li \(long65) 1",
            "OBJECT ENCODING li", "HINCRBYFLOAT lf2 \(long65) 1.5", "OBJECT ENCODING lf2", "HSET mix a 1 b \(long65) c 3",
            "OBJECT ENCODING mix", "~ HGETALL mix", "~ HKEYS mix", "~ HVALS mix", "HDEL mix b", "OBJECT ENCODING mix",
            "~ HGETALL mix", "HLEN mix", "HDEL mix a c", "EXISTS mix", "HSET mix a 1", "OBJECT ENCODING mix",
        ]),
        ("keyspace", [
            "HSET h a 1 b 2", "RENAME h g", "HGETALL g", "COPY g c", "HGETALL c", "OBJECT ENCODING c", "HSET c a 9",
            "HGET g a", "EXPIRE g 100", "TTL g", "HSET g z 1", "TTL g", "HDEL g a b z", "EXISTS g", "TTL g",
            "SCAN 0 TYPE hash COUNT 100", "DEL c", "EXISTS c", "HSET h a 1", "MULTI", "HSET h b 2", "HDEL h a",
            "HINCRBY h n 5", "HGETALL h", "EXEC", "HGETALL h", "MULTI", "HSET h", "EXEC", "HSET x a 1", "MULTI",
            "HSET x b 2", "SET x y", "HGET x a", "EXEC",
        ]),
    ]

    /// Sequences around the 512-field limit: HSET one field at a time, one HMSET of many, HINCRBY
    /// adding the 513th.
    static var thresholdSequences: [(String, [String])] {
        let fields = (0..<512).map { "field-\($0)" }
        var one = fields.map { "HSET grow \($0) v\($0.count)" }
        one += ["OBJECT ENCODING grow", "HLEN grow", "HGETALL grow", "HSET grow field-0 again", "OBJECT ENCODING grow",
                "HSET grow extra 1", "OBJECT ENCODING grow", "HLEN grow", "~ HGETALL grow", "~ HKEYS grow", "~ HVALS grow",
                "HGET grow field-100", "HMGET grow field-1 extra nope", "HDEL grow extra field-0", "OBJECT ENCODING grow",
                "HLEN grow", "~ HRANDFIELD grow 600", "~ HRANDFIELD grow 1000 WITHVALUES",
                "? HRANDFIELD grow 100", "? HRANDFIELD grow -100 WITHVALUES", "? HRANDFIELD grow 400 WITHVALUES"]
        let pairs = fields.map { "\($0) \($0)" }.joined(separator: " ")
        let many = [
            "HMSET m \(pairs)", "OBJECT ENCODING m", "HSET m \(pairs) more 1", "OBJECT ENCODING m",
            "HSET n \(pairs) more 1", "OBJECT ENCODING n", "HLEN n", "~ HGETALL n", "HSET i \(pairs)",
            "OBJECT ENCODING i", "HINCRBY i counter 1", "OBJECT ENCODING i", "HINCRBYFLOAT i counter 1.5", "HGET i counter",
        ]
        return [("threshold-one-by-one", one), ("threshold-at-once", many)]
    }

    @Test func handWrittenSequencesGetRedisReplies() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var tally = Tally()
        for version in [2, 3] {
            for (name, lines) in Self.handWritten + Self.thresholdSequences {
                try Self.run(name, lines, protocolVersion: version, on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        let counts = tally.replies.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("hash differential (hand-written): \(tally.total) replies: \(counts)")
    }

    /// A random hash command over a small keyspace (so that commands collide and keys empty).
    static func randomLine(_ g: inout SeededGenerator) -> String {
        let keys = ["h1", "h2", "h3", "s"]
        let fields = ["a", "b", "c", "d", "e", "f"]
        let values = ["v", "''", "10", "-3", "1.5", "9223372036854775807", "0", "'a b'", "x"]
        func key() -> String { keys.randomElement(using: &g)! }
        func field() -> String { fields.randomElement(using: &g)! }
        func value() -> String { values.randomElement(using: &g)! }
        func some(_ make: () -> String) -> String { (0..<Int.random(in: 1...3, using: &g)).map { _ in make() }.joined(separator: " ") }
        switch Int.random(in: 0..<22, using: &g) {
        case 0, 1, 2: return "HSET \(key()) " + (0..<Int.random(in: 1...3, using: &g)).map { _ in "\(field()) \(value())" }.joined(separator: " ")
        case 3: return "HSETNX \(key()) \(field()) \(value())"
        case 4: return "HGET \(key()) \(field())"
        case 5: return "HMSET \(key()) \(field()) \(value())"
        case 6: return "HMGET \(key()) \(some(field))"
        case 7: return "HGETALL \(key())"
        case 8, 9: return "HDEL \(key()) \(some(field))"
        case 10: return "HLEN \(key())"
        case 11: return "HEXISTS \(key()) \(field())"
        case 12: return "HKEYS \(key())"
        case 13: return "HVALS \(key())"
        case 14: return "HINCRBY \(key()) \(field()) \(["1", "-5", "x", "9223372036854775807"].randomElement(using: &g)!)"
        case 15: return "HINCRBYFLOAT \(key()) \(field()) \(["1.5", "-0.25", "x", "1e3"].randomElement(using: &g)!)"
        case 16: return "HSTRLEN \(key()) \(field())"
        case 17: return "HRANDFIELD \(key()) \(["7", "-0", "0", "6"].randomElement(using: &g)!) WITHVALUES"
        case 18: return "HSCAN \(key()) 0" + (Bool.random(using: &g) ? " MATCH [a-c]" : "")
        case 19: return "SET \(key()) \(value())"
        case 20: return "DEL \(key())"
        default: return "? HRANDFIELD \(key()) \(["2", "-3", "1"].randomElement(using: &g)!)"
        }
    }

    @Test func randomSequencesGetRedisReplies() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var tally = Tally()
        for seed in 1...40 as ClosedRange<UInt64> {
            var g = SeededGenerator(seed: seed)
            let lines = (0..<60).map { _ in Self.randomLine(&g) }
            try Self.run("seed \(seed)", lines, protocolVersion: seed % 2 == 0 ? 3 : 2, on: pair, tally: &tally)
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("hash differential (random): \(tally.total) replies over \(tally.replies.count) commands")
    }

    /// HSCAN over a `hashtable` hash: a whole iteration (any COUNT, MATCH or not) returns every field
    /// with its value on both servers, and ends at cursor 0.
    @Test func hscanOfALargeHashReturnsWhatRedisReturns() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var results: [[[UInt8]: [UInt8]]] = []
        for port in [pair.server.kvPort, pair.oracle.port] {
            let client = try RawRESPConnection(port: port)
            _ = try client.call("FLUSHALL")
            var arguments = [Array("HSET".utf8), Array("big".utf8)]
            for i in 0..<2000 { arguments += [Array("f\(i)".utf8), Array("value \(i)".utf8)] }
            _ = try client.call(arguments)
            #expect(try client.call("OBJECT", "ENCODING", "big") == Array("$9\r\nhashtable\r\n".utf8))
            for (count, pattern) in [("10", "*"), ("1", "f1*"), ("500", "*9")] {
                var found: [[UInt8]: [UInt8]] = [:]
                var cursor = "0"
                var steps = 0
                repeat {
                    let reply = try client.call("HSCAN", "big", cursor, "COUNT", count, "MATCH", pattern)
                    guard let parts = RESPFrame.elements(reply), parts.count == 2,
                          let next = RESPFrame.scalar(parts[0]), let items = RESPFrame.elements(parts[1]) else {
                        throw TestFailure("HSCAN reply \(String(decoding: reply, as: UTF8.self).debugDescription)")
                    }
                    for i in stride(from: 0, to: items.count, by: 2) {
                        found[RESPFrame.scalar(items[i])!] = RESPFrame.scalar(items[i + 1])!
                    }
                    cursor = String(decoding: next, as: UTF8.self)
                    steps += 1
                } while cursor != "0" && steps < 10_000
                #expect(cursor == "0", "port \(port): the scan did not end")
                results.append(found)
            }
        }
        #expect(results.count == 6)
        for i in 0..<3 { #expect(results[i] == results[i + 3], "iteration \(i): reactord and Redis returned different fields") }
        #expect(results[0].count == 2000)
    }
}
