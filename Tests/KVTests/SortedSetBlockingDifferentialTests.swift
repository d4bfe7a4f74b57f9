// BZPOPMIN, BZPOPMAX and BZMPOP against redis-server 7.0, byte for byte: served at once when a key
// holds a sorted set (RESP2 and RESP3: the score a bulk string, then a double), their errors, their
// behaviour inside MULTI (never blocking), and clients blocked on keys served by another client's
// writes in the order Redis serves them — a client blocked in BLPOP on a key that becomes a sorted
// set keeps waiting, as in Redis.

import Testing

@Suite(.serialized) struct SortedSetBlockingDifferentialTests {
    typealias Pair = RedisDifferentialTests.Pair

    static let sequences: [(String, [String])] = [
        ("served-at-once", [
            "ZADD z 1 a 2 b 3 c 1.5 d 9 e 8 f", "BZPOPMIN z 0", "BZPOPMAX z 0", "BZPOPMIN nope z 0.01", "BZMPOP 0 1 z MIN",
            "BZMPOP 0 2 nope z MAX COUNT 5", "EXISTS z", "ZADD y 5 e", "BZPOPMAX nope y 0", "EXISTS y",
        ]),
        ("errors", [
            "ZADD z 1 a", "SET s v", "BZPOPMIN s 0", "BZPOPMIN nope s 0", "BZPOPMIN z -1", "BZPOPMIN z x",
            "BZPOPMAX", "BZPOPMAX z", "BZMPOP 0", "BZMPOP 0 1 z", "BZMPOP 0 0 z MIN", "BZMPOP 0 -1 z MIN",
            "BZMPOP 0 1 z MID", "BZMPOP 0 1 z MIN COUNT 0", "BZMPOP 0 1 z MIN COUNT x", "BZMPOP 0 1 z MIN COUNT 1 COUNT 2",
            "BZMPOP x 1 z MIN", "BZMPOP -1 1 z MIN", "BZMPOP 0 3 z MIN", "BZMPOP 0 1 s MIN", "ZCARD z",
        ]),
        ("in-multi", [
            "MULTI", "BZPOPMIN nope 0", "BZPOPMAX nope 0", "BZMPOP 0 1 nope MIN", "ZADD nope 1 a", "BZPOPMIN nope 0",
            "EXEC", "EXISTS nope",
        ]),
    ]

    @Test func repliesMatchRedis() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = RedisDifferentialTests.Tally()
        for version in [2, 3] {
            for (name, lines) in Self.sequences {
                try RedisDifferentialTests.run(name, RedisDifferentialTests.words(lines), protocolVersion: version,
                                               on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
    }

    @Test func blockedClientsAreServedAsRedisServesThem() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let scenarios: [(blocked: [String], writes: [String], reads: [String])] = [
            (["BZPOPMIN z 0", "BZPOPMAX z 0", "BZPOPMIN z 0"], ["ZADD z 1 a 2 b 3 c 4 d"], ["ZRANGE z 0 -1 WITHSCORES"]),
            (["BZPOPMIN a b 0", "BZPOPMIN b 0"], ["ZADD b 1 x", "ZADD a 2 y", "ZADD b 3 z"], ["ZRANGE a 0 -1", "ZRANGE b 0 -1"]),
            (["BZMPOP 0 2 z1 z2 MAX COUNT 2", "BZMPOP 0 1 z2 MIN"], ["ZADD z2 1 a 2 b 3 c"], ["ZRANGE z2 0 -1"]),
            (["BZPOPMIN z 0"], ["MULTI", "ZADD z 1 a", "ZADD z 2 b", "ZPOPMIN z", "EXEC"], ["ZRANGE z 0 -1"]),
            (["BZPOPMIN z 0"], ["SET z s", "DEL z", "ZADD z 5 q"], ["EXISTS z"]),
            (["BLPOP k 0", "BZPOPMIN k 0"], ["ZADD k 1 m"], ["EXISTS k"]),
            (["BZPOPMIN k 0", "BLPOP k 0"], ["RPUSH k i"], ["LRANGE k 0 -1"]),
        ]
        try ListDifferentialTests.runBlockingScenarios(scenarios, on: pair)
    }
}
