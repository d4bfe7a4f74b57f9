// OBJECT ENCODING of strings against redis-server (RedisOracle.swift), byte for byte in RESP2 and
// RESP3: Redis holds a string SET, GETSET, INCR or INCRBYFLOAT made as `int` or `embstr` (up to 44
// bytes) and a longer one as `raw`, while APPEND to a value the key holds, SETRANGE and SETBIT edit a
// `raw` string whatever its length (APPEND making a new key stores it as SET does). RENAME, COPY and
// MOVE keep the encoding; any other write sets it afresh. Run with the hash suite's runner.

import Testing

@Suite(.serialized) struct StringEncodingDifferentialTests {
    static let long44 = String(repeating: "e", count: 44)
    static let long45 = String(repeating: "r", count: 45)

    static let sequences: [(String, [String])] = [
        ("append", [
            "SET a hello", "OBJECT ENCODING a", "APPEND a x", "OBJECT ENCODING a", "GET a", "STRLEN a",
            "APPEND a y", "OBJECT ENCODING a", "GETRANGE a 1 3", "SET a hello", "OBJECT ENCODING a",
            "APPEND fresh x", "OBJECT ENCODING fresh", "APPEND fresh y", "OBJECT ENCODING fresh", "GET fresh",
            "APPEND num 12", "OBJECT ENCODING num", "APPEND num 3", "OBJECT ENCODING num", "GET num",
            "INCR num", "OBJECT ENCODING num", "APPEND num ''", "OBJECT ENCODING num", "GET num",
            "SET e ''", "OBJECT ENCODING e", "APPEND e ''", "OBJECT ENCODING e",
        ]),
        ("setrange", [
            "SETRANGE s 0 ab", "OBJECT ENCODING s", "GET s", "SETRANGE s2 3 x", "OBJECT ENCODING s2", "GET s2",
            "SET z abc", "SETRANGE z 1 ''", "OBJECT ENCODING z", "SETRANGE z 1 Q", "OBJECT ENCODING z", "GET z",
            "SETRANGE none 0 ''", "EXISTS none", "OBJECT ENCODING none", "SET n 100", "OBJECT ENCODING n",
            "SETRANGE n 0 2", "OBJECT ENCODING n", "INCRBY n 1", "OBJECT ENCODING n", "GET n",
        ]),
        ("setbit", [
            "SETBIT b 7 1", "OBJECT ENCODING b", "GET b", "SETBIT b 100 1", "OBJECT ENCODING b", "STRLEN b",
            "SET c x", "SETBIT c 0 0", "OBJECT ENCODING c", "GETBIT c 0", "GET c",
        ]),
        ("other writes", [
            "SET k v", "APPEND k w", "SET k v KEEPTTL", "OBJECT ENCODING k", "APPEND k w", "GETSET k v",
            "OBJECT ENCODING k", "APPEND k w", "SET k v GET", "OBJECT ENCODING k", "SET f 1.5", "APPEND f 0",
            "OBJECT ENCODING f", "INCRBYFLOAT f 1", "OBJECT ENCODING f", "GET f", "APPEND f 5", "GETDEL f",
            "EXISTS f", "SET m a", "APPEND m b", "MSET m c", "OBJECT ENCODING m", "SET x a", "APPEND x b",
            "SETNX x c", "OBJECT ENCODING x", "SETEX x 100 c", "OBJECT ENCODING x", "APPEND x d",
            "PSETEX x 100000 c", "OBJECT ENCODING x",
        ]),
        ("deadlines, rename, copy", [
            "SET t abc EX 100", "APPEND t d", "TTL t", "OBJECT ENCODING t", "SETRANGE t 0 Z", "TTL t", "GET t",
            "RENAME t t2", "OBJECT ENCODING t2", "TTL t2", "COPY t2 t3", "OBJECT ENCODING t3", "GET t3",
            "SET t3 plain", "OBJECT ENCODING t3", "OBJECT ENCODING t2", "EXPIRE t2 200", "OBJECT ENCODING t2",
            "PERSIST t2", "OBJECT ENCODING t2", "RENAMENX t2 t4", "OBJECT ENCODING t4",
            "MOVE t4 1", "SELECT 1", "OBJECT ENCODING t4", "GET t4", "COPY t4 t5 DB 0", "SET t6 plain", "MOVE t6 0",
            "SELECT 0", "OBJECT ENCODING t5", "OBJECT ENCODING t6", "GET t5",
        ]),
        ("lengths", [
            "SET l44 \(long44)", "OBJECT ENCODING l44", "SET l45 \(long45)", "OBJECT ENCODING l45",
            "APPEND l44 x", "OBJECT ENCODING l44", "STRLEN l44", "SET l44 \(long44)", "SETRANGE l44 0 y",
            "OBJECT ENCODING l44", "GET l44", "APPEND l45 x", "OBJECT ENCODING l45", "SET l45 short",
            "OBJECT ENCODING l45", "SET abcdefghijklmnopqrstuvwxyz0123 \(String(repeating: "q", count: 9))",
            "APPEND abcdefghijklmnopqrstuvwxyz0123 z", "OBJECT ENCODING abcdefghijklmnopqrstuvwxyz0123",
            "GET abcdefghijklmnopqrstuvwxyz0123", "SET 12345678901234567890 1", "APPEND 12345678901234567890 2",
            "OBJECT ENCODING 12345678901234567890", "GET 12345678901234567890",
        ]),
    ]

    @Test func stringEncodingsAreRedisEncodings() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        var tally = HashDifferentialTests.Tally()
        for version in [2, 3] {
            for (name, lines) in Self.sequences {
                try HashDifferentialTests.run(name, lines, protocolVersion: version, on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        #expect(tally.replies["OBJECT", default: 0] > 80)
        let counts = tally.replies.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("string encoding differential: \(tally.total) replies: \(counts)")
    }
}
