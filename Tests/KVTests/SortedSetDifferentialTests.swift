// The sorted set commands against redis-server 7.0, byte for byte, in RESP2 and RESP3 (the harness of
// RedisDifferentialTests.swift): hand-written sequences per command covering options, errors, arity,
// WRONGTYPE, score formatting (`%.17g`, inf, -0, exclusive bounds), lexicographic ranges over binary
// members and OBJECT ENCODING across the listpack → skiplist threshold; then seeded random sequences
// over a small keyspace. ZRANDMEMBER and ZSCAN, whose answers are random or layout-dependent, are
// compared by what Redis promises of them.

import Foundation
import Testing

@Suite(.serialized) struct SortedSetDifferentialTests {
    typealias D = RedisDifferentialTests

    /// `ZADD key` of `count` members `m0…` scored `0…`, as one command line.
    static func bulkAdd(_ key: String, _ count: Int, prefix: String = "m", score: (Int) -> String = { "\($0)" }) -> String {
        "ZADD \(key) " + (0..<count).map { "\(score($0)) \(prefix)\($0)" }.joined(separator: " ")
    }

    static let handWritten: [(String, [String])] = [
        ("zadd", [
            "ZADD z 1 a", "ZADD z 2 b 3 c", "ZADD z 1 a", "ZADD z 5 a", "ZRANGE z 0 -1 WITHSCORES", "ZADD z NX 9 a 4 d",
            "ZADD z XX 9 a 4 e", "ZRANGE z 0 -1 WITHSCORES", "ZADD z CH 10 a 4 d 7 f", "ZADD z GT 1 a", "ZADD z GT 11 a",
            "ZADD z LT 20 a", "ZADD z LT 2 a", "ZADD z GT CH 1 a 100 b 50 g", "ZADD z LT XX CH 0 g 0 nope",
            "ZRANGE z 0 -1 WITHSCORES", "ZADD z NX XX 1 a", "ZADD z GT LT 1 a", "ZADD z GT NX 1 a", "ZADD z LT NX 1 a",
            "ZADD z 1", "ZADD z 1 a 2", "ZADD z", "ZADD z x a", "ZADD z nan a", "ZADD z 1 a nan b", "ZADD z NX",
            "ZADD z INCR 1 a 2 b", "ZADD z INCR 5 a", "ZADD z INCR NX 5 a", "ZADD z INCR XX 5 nope", "ZADD z INCR XX 5 a",
            "ZADD z INCR GT -1 a", "ZADD z INCR LT -1 a", "ZADD z INCR NX 3 newone", "ZADD z XX 1 x", "ZADD nokey XX 1 a",
            "EXISTS nokey", "ZADD nokey XX INCR 1 a", "ZADD z 1 a 1 a 2 a", "ZADD z CH 1 a 1 a 3 a", "ZSCORE z a",
            "ZADD z FOO 1 a", "ZADD z ch nx 1 zz", "ZADD z 1e400 a", "ZADD z 1e-400 a", "ZADD z ' 1' a", "ZADD z '1 ' a",
            "ZADD z '' a", "ZADD z 0x10 hex", "ZADD z +inf pinf -inf ninf", "ZADD z inf a", "ZADD z INCR -inf a",
            "ZADD z 1.5e1 e1", "ZADD z 4.9e-324 tiny", "ZSCORE z tiny", "ZRANGE z 0 -1 WITHSCORES", "ZCARD z",
            // One pair whose score starts as a number (ZADD's path without the option scan), and its neighbours.
            "ZADD z +5 plus", "ZADD z .5 point", "ZADD z -.5e1 neg", "ZADD z -inf minf", "ZADD z +inf pinf2",
            "ZADD z 1 nx", "ZADD z nx 1", "ZADD z ch 1", "ZADD z 7 ch", "ZADD z - m", "ZADD z + m", "ZADD z . m",
            "ZADD z 1x m", "ZADD z -nan m", "ZADD z 1 ''", "ZRANGE z 0 -1 WITHSCORES",
        ]),
        ("incr", [
            "ZINCRBY z 1 a", "ZINCRBY z 1.5 a", "ZINCRBY z -0.1 a", "ZSCORE z a", "ZINCRBY z x a", "ZINCRBY z nan a",
            "ZINCRBY z inf a", "ZINCRBY z -inf a", "ZINCRBY z inf b", "ZINCRBY z +inf b", "ZSCORE z b", "ZINCRBY z 1",
            "ZINCRBY z 0.1 c", "ZINCRBY z 0 c", "ZINCRBY z 0.2 c", "ZSCORE z c", "ZINCRBY z 1e308 d", "ZINCRBY z 1e308 d", "ZSCORE z d",
            "SET s v", "ZINCRBY s 1 a", "ZADD s 1 a", "ZADD s x a",
        ]),
        ("scores", [
            "ZADD z 0.1 a 0.3 b -0 c 0 d 1e100 e -1e-100 f 123456789012345678 g 1.7976931348623157e308 h 3.0 i 2.5e-5 j",
            "ZSCORE z a", "ZSCORE z b", "ZSCORE z c", "ZSCORE z d", "ZSCORE z e", "ZSCORE z f", "ZSCORE z g", "ZSCORE z h",
            "ZSCORE z i", "ZSCORE z j", "ZSCORE z nope", "ZSCORE nokey a", "ZRANGE z 0 -1 WITHSCORES", "ZMSCORE z a nope c",
            "ZMSCORE nokey a b", "ZMSCORE z", "ZSCORE z", "ZSCAN z 0", "ZRANGE z 0 -1",
        ]),
        ("ranks", [
            "ZADD z 1 a 2 b 3 c 3 d 5 e", "ZRANK z a", "ZRANK z d", "ZREVRANK z a", "ZREVRANK z e", "ZRANK z nope",
            "ZRANK nokey a", "ZREVRANK nokey a", "ZRANK z", "ZRANK z a b", "ZCARD z", "ZCARD nokey", "ZCARD z x",
            "ZREM z a nope", "ZREM z b b c", "ZREM nokey a", "ZREM z", "ZRANGE z 0 -1", "ZREM z d e", "EXISTS z",
            "SET s v", "ZRANK s a", "ZCARD s", "ZREM s a", "ZSCORE s a", "ZMSCORE s a",
        ]),
        ("range-rank", [
            "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZRANGE z 0 -1", "ZRANGE z 1 2 WITHSCORES", "ZRANGE z -2 -1", "ZRANGE z -100 100",
            "ZRANGE z 3 1", "ZRANGE z 5 10", "ZRANGE z -1 -2", "ZRANGE z 0 0 REV", "ZRANGE z 0 -1 REV WITHSCORES",
            "ZREVRANGE z 0 1", "ZREVRANGE z 1 -1 WITHSCORES", "ZREVRANGE z 0 1 REV", "ZRANGE z x 1", "ZRANGE z 0 y",
            "ZRANGE z 0 1 LIMIT 0 1", "ZRANGE z 0 1 LIMIT 0 -1", "ZRANGE z 0 1 LIMIT", "ZRANGE z 0 1 LIMIT 0",
            "ZRANGE z 0 1 FOO", "ZRANGE nokey 0 -1", "ZRANGE nokey 0 -1 WITHSCORES", "ZRANGE z 0", "ZREVRANGE z 0",
            "ZRANGE z 0 -1 withscores WITHSCORES", "ZRANGE z 0 -1 REV REV", "ZRANGE z 0 -1 BYSCORE BYLEX",
            "ZRANGE z 0 -1 LIMIT x 1", "ZRANGE z 0 -1 LIMIT 1 x",
        ]),
        ("range-score", [
            "ZADD z 1 a 2 b 3 c 4 d 5 e -inf ninf +inf pinf", "ZRANGEBYSCORE z 2 4", "ZRANGEBYSCORE z (2 4 WITHSCORES",
            "ZRANGEBYSCORE z 2 (4", "ZRANGEBYSCORE z (2 (4", "ZRANGEBYSCORE z -inf +inf", "ZRANGEBYSCORE z -inf inf WITHSCORES",
            "ZRANGEBYSCORE z (-inf (+inf", "ZRANGEBYSCORE z 4 2", "ZRANGEBYSCORE z 3 3", "ZRANGEBYSCORE z (3 3",
            "ZRANGEBYSCORE z 1 5 LIMIT 1 2", "ZRANGEBYSCORE z 1 5 LIMIT 1 -1", "ZRANGEBYSCORE z 1 5 LIMIT -1 2",
            "ZRANGEBYSCORE z 1 5 LIMIT 0 0", "ZRANGEBYSCORE z 1 5 LIMIT 10 2", "ZRANGEBYSCORE z 1 5 LIMIT 4 1",
            "ZRANGEBYSCORE z x 5", "ZRANGEBYSCORE z 1 nan", "ZRANGEBYSCORE z ( 5", "ZRANGEBYSCORE z '' 5",
            "ZRANGEBYSCORE z ' 1' 5", "ZRANGEBYSCORE z 1 '5 '", "ZRANGEBYSCORE z 1e400 inf", "ZRANGEBYSCORE z 0x1 0x3",
            "ZRANGEBYSCORE z 1 5 REV", "ZRANGEBYSCORE z 1 5 BYSCORE", "ZRANGEBYSCORE z 1 5 WITHSCORES LIMIT 1 1",
            "ZREVRANGEBYSCORE z 4 2", "ZREVRANGEBYSCORE z 2 4", "ZREVRANGEBYSCORE z (4 2 WITHSCORES",
            "ZREVRANGEBYSCORE z +inf -inf LIMIT 1 3", "ZREVRANGEBYSCORE z +inf -inf LIMIT 2 -5",
            "ZRANGE z 2 4 BYSCORE", "ZRANGE z 4 2 BYSCORE REV", "ZRANGE z (4 2 BYSCORE REV WITHSCORES LIMIT 0 2",
            "ZRANGE z -inf +inf BYSCORE LIMIT 2 2 WITHSCORES", "ZRANGE z 2 4 REV BYSCORE", "ZRANGEBYSCORE nokey 1 2",
            "ZCOUNT z 2 4", "ZCOUNT z (2 (4", "ZCOUNT z -inf +inf", "ZCOUNT z 4 2", "ZCOUNT z x 1", "ZCOUNT nokey 1 2",
            "ZCOUNT z 1", "ZCOUNT z (inf +inf", "ZCOUNT z -inf (-inf",
        ]),
        ("range-lex", [
            "ZADD z 0 a 0 b 0 c 0 d 0 e 0 ab 0 '' 0 B", "ZRANGEBYLEX z - +", "ZRANGEBYLEX z [b [d", "ZRANGEBYLEX z (b (d",
            "ZRANGEBYLEX z [a (b", "ZRANGEBYLEX z + -", "ZRANGEBYLEX z - -", "ZRANGEBYLEX z + +", "ZRANGEBYLEX z [ +",
            "ZRANGEBYLEX z ( +", "ZRANGEBYLEX z - (", "ZRANGEBYLEX z a b", "ZRANGEBYLEX z [a b", "ZRANGEBYLEX z -a +",
            "ZRANGEBYLEX z - ++", "ZRANGEBYLEX z - + LIMIT 1 2", "ZRANGEBYLEX z - + LIMIT 0 -1", "ZRANGEBYLEX z - + LIMIT -1 2",
            "ZRANGEBYLEX z - + WITHSCORES", "ZREVRANGEBYLEX z + -", "ZREVRANGEBYLEX z [d [b", "ZREVRANGEBYLEX z (d - LIMIT 1 2",
            "ZREVRANGEBYLEX z - +", "ZRANGE z [b [d BYLEX", "ZRANGE z [d [b BYLEX REV", "ZRANGE z - + BYLEX LIMIT 2 3",
            "ZRANGE z - + BYLEX WITHSCORES", "ZRANGE z [b [b BYLEX", "ZRANGE z (b [b BYLEX", "ZLEXCOUNT z - +",
            "ZLEXCOUNT z [b (d", "ZLEXCOUNT z x y", "ZLEXCOUNT nokey - +", "ZLEXCOUNT z [a", "ZRANGEBYLEX nokey - +",
            "ZADD bin 0 '\u{1}' 0 '\u{ff}' 0 '\u{0}' 0 'a\u{0}b'", "ZRANGEBYLEX bin - +", "ZRANGEBYLEX bin ['\u{0}' ('\u{ff}'",
        ]),
        ("rangestore", [
            "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZRANGESTORE d z 0 -1", "ZRANGE d 0 -1 WITHSCORES", "ZRANGESTORE d z 1 2 REV",
            "ZRANGE d 0 -1 WITHSCORES", "ZRANGESTORE d z 2 4 BYSCORE LIMIT 1 5", "ZRANGE d 0 -1 WITHSCORES",
            "ZRANGESTORE d z [a [c BYLEX", "ZRANGESTORE d z 10 20", "EXISTS d", "ZRANGESTORE d z 0 -1", "ZRANGESTORE d nokey 0 -1",
            "EXISTS d", "ZRANGESTORE d z 0 -1 WITHSCORES", "ZRANGESTORE d z 0", "SET s v", "ZRANGESTORE d s 0 -1",
            "ZRANGESTORE s z 0 1", "TYPE s", "OBJECT ENCODING s", "ZRANGESTORE z z 1 2", "ZRANGE z 0 -1",
        ]),
        ("remrange", [
            "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f", "ZREMRANGEBYSCORE z 2 (3", "ZREMRANGEBYSCORE z (5 +inf", "ZRANGE z 0 -1",
            "ZREMRANGEBYSCORE z x 1", "ZREMRANGEBYSCORE nokey 1 2", "ZREMRANGEBYRANK z 0 0", "ZREMRANGEBYRANK z -1 -1",
            "ZREMRANGEBYRANK z 5 10", "ZREMRANGEBYRANK z 1 0", "ZREMRANGEBYRANK z x 1", "ZRANGE z 0 -1",
            "ZREMRANGEBYRANK z 0 -1", "EXISTS z", "ZADD z 0 a 0 b 0 c 0 d", "ZREMRANGEBYLEX z [b (d", "ZREMRANGEBYLEX z x y",
            "ZRANGE z 0 -1", "ZREMRANGEBYLEX z - +", "EXISTS z", "ZREMRANGEBYLEX nokey - +", "ZREMRANGEBYRANK nokey 0 -1",
            "SET s v", "ZREMRANGEBYSCORE s 1 2", "ZREMRANGEBYRANK s 0 1", "ZREMRANGEBYLEX s - +", "ZREMRANGEBYRANK z 0",
        ]),
        ("pop", [
            "ZADD z 1 a 2 b 3 c 4 d 5 e", "ZPOPMIN z", "ZPOPMAX z", "ZPOPMIN z 2", "ZPOPMAX z 0", "ZPOPMIN z -1",
            "ZPOPMIN z x", "ZPOPMIN z 1 2", "ZPOPMAX z 10", "EXISTS z", "ZPOPMIN z", "ZPOPMIN z 3", "ZPOPMIN nokey 0",
            "SET s v", "ZPOPMIN s", "ZPOPMAX s 0", "ZADD y 1 a 2 b", "ZADD x 3 c", "ZMPOP 1 y MIN", "ZMPOP 2 nokey y MAX COUNT 5",
            "ZMPOP 2 nokey x MIN", "ZMPOP 1 nokey MIN", "ZMPOP 0 y MIN", "ZMPOP -1 y MIN", "ZMPOP x y MIN", "ZMPOP 1 y FOO",
            "ZMPOP 1 y", "ZMPOP 3 y MIN", "ZMPOP 1 y MIN COUNT 0", "ZMPOP 1 y MIN COUNT -1", "ZMPOP 1 y MIN COUNT x",
            "ZMPOP 1 y MIN COUNT 1 COUNT 2", "ZMPOP 1 y MIN COUNT", "ZMPOP 2 s y MIN", "ZADD y 1 a", "ZMPOP 2 y s MIN",
            "ZMPOP 1 y max count 1",
        ]),
        // ZPOPMIN / ZPOPMAX without a count (their reply encoded in one piece) on both encodings, to empty.
        ("pop-one", [
            bulkAdd("p", 200, score: { i in i % 3 == 0 ? "\(i)" : "\(Double(i) / 3 - 20)" }), "OBJECT ENCODING p",
            "ZPOPMIN p", "ZPOPMAX p", "ZPOPMIN p", "ZPOPMAX p", "ZADD p -inf lo +inf hi -0 zero 0 zero2", "ZPOPMIN p",
            "ZPOPMAX p", "ZPOPMIN p", "ZPOPMIN p", "ZPOPMAX p", "ZADD p 1e300 big 1.5e-300 small 123456789012345678 long",
            "ZPOPMAX p", "ZPOPMAX p", "ZPOPMAX p", "ZRANGE p 0 2 WITHSCORES", "ZCARD p", "ZPOPMIN p 180", "ZCARD p",
            "ZPOPMAX p", "ZPOPMIN p", "ZPOPMIN p", "ZPOPMAX p", "ZPOPMIN p", "ZPOPMIN p", "ZPOPMIN p", "ZPOPMAX p",
            "ZPOPMIN p", "ZPOPMAX p", "ZPOPMIN p", "ZPOPMAX p", "ZPOPMIN p", "ZPOPMAX p", "ZPOPMIN p", "ZPOPMAX p",
            "EXISTS p", "ZPOPMIN p", "ZPOPMAX p", "ZADD q 2 '' 1 'a b' 3 'x\r\ny'", "ZPOPMAX q", "ZPOPMIN q",
            "ZPOPMIN q", "EXISTS q", "ZADD q 1 only", "OBJECT ENCODING q", "ZPOPMAX q", "ZPOPMAX q", "SET s v", "ZPOPMAX s",
        ]),
        ("algebra", [
            "ZADD a 1 x 2 y 3 z", "ZADD b 10 y 20 z 30 w", "ZADD c 100 z", "ZUNION 2 a b", "ZUNION 2 a b WITHSCORES",
            "ZUNION 3 a b c WITHSCORES", "ZUNION 2 a b WEIGHTS 2 3 WITHSCORES", "ZUNION 2 a b AGGREGATE MIN WITHSCORES",
            "ZUNION 2 a b AGGREGATE max WITHSCORES", "ZUNION 2 a b AGGREGATE foo", "ZUNION 2 a b WEIGHTS 1",
            "ZUNION 2 a b WEIGHTS 1 x", "ZUNION 2 a nokey WITHSCORES", "ZUNION 0 a", "ZUNION -1 a", "ZUNION x a",
            "ZUNION 3 a b", "ZINTER 2 a b WITHSCORES", "ZINTER 3 a b c WITHSCORES", "ZINTER 2 a nokey", "ZINTER 2 a b WEIGHTS 1 -1 AGGREGATE MIN WITHSCORES",
            "ZDIFF 2 a b WITHSCORES", "ZDIFF 1 a", "ZDIFF 2 b a WITHSCORES", "ZDIFF 2 a b WEIGHTS 1 2", "ZDIFF 2 a b AGGREGATE SUM",
            "ZDIFF 2 nokey a", "ZUNIONSTORE d 2 a b", "ZRANGE d 0 -1 WITHSCORES", "ZUNIONSTORE d 2 a b WITHSCORES",
            "ZINTERSTORE d 2 a b WEIGHTS 0.5 0.25", "ZRANGE d 0 -1 WITHSCORES", "ZINTERSTORE d 2 a nokey", "EXISTS d",
            "ZDIFFSTORE d 2 a b", "ZRANGE d 0 -1 WITHSCORES", "ZDIFFSTORE d 2 a a", "EXISTS d", "ZINTERCARD 2 a b",
            "ZINTERCARD 2 a b LIMIT 1", "ZINTERCARD 2 a b LIMIT 0", "ZINTERCARD 2 a b LIMIT -1", "ZINTERCARD 2 a b LIMIT x", "ZINTERCARD 1 a LIMIT", "ZINTERCARD 0 a",
            "ZINTERCARD 2 a", "ZINTERCARD 1 a WITHSCORES", "ZINTERCARD 1 nokey", "SET s v", "ZUNION 2 a s", "ZUNIONSTORE s 1 a",
            "TYPE s", "ZUNIONSTORE d 0 a", "ZINTERSTORE d", "ZADD inf1 inf m", "ZADD inf2 -inf m",
            "ZUNION 2 inf1 inf2 WITHSCORES", "ZINTER 2 inf1 inf2 WITHSCORES", "ZUNION 2 inf1 inf2 WEIGHTS 0 1 WITHSCORES",
            "ZUNION 1 a WEIGHTS inf WITHSCORES", "ZUNION 2 a a WITHSCORES", "ZINTER 2 a a AGGREGATE MAX WITHSCORES",
            "ZADD f 0.1 x 0.2 y", "ZADD g 0.2 x 0.1 y", "ZUNION 2 f g WITHSCORES", "ZINTERSTORE a 2 a b", "ZRANGE a 0 -1 WITHSCORES",
        ]),
        ("randmember", [
            "ZADD one 1 a", "ZRANDMEMBER one", "ZRANDMEMBER one 1", "ZRANDMEMBER one -3 WITHSCORES", "ZRANDMEMBER one 5 WITHSCORES",
            "ZADD z 1 a 2 b 3 c", "ZRANDMEMBER z 3", "ZRANDMEMBER z 10 WITHSCORES", "ZRANDMEMBER z 0", "ZRANDMEMBER z x",
            "ZRANDMEMBER z 1 FOO", "ZRANDMEMBER z 1 WITHSCORES x", "ZRANDMEMBER nokey", "ZRANDMEMBER nokey 3",
            "ZRANDMEMBER z -9223372036854775808", "ZRANDMEMBER z 9223372036854775807 WITHSCORES",
            "ZRANDMEMBER z -4611686018427387904 WITHSCORES", "SET s v", "ZRANDMEMBER s", "ZRANDMEMBER s 1",
        ]),
        ("scan", [
            "ZADD z 1 a 2.5 b 3 c 0.1 d -0 e", "ZSCAN z 0", "ZSCAN z 0 COUNT 1", "ZSCAN z 0 MATCH a*", "ZSCAN z 0 MATCH",
            "ZSCAN z 0 COUNT 0", "ZSCAN z 0 COUNT x", "ZSCAN z x", "ZSCAN z 0 TYPE zset", "ZSCAN z 0 FOO bar",
            "ZSCAN nokey 0", "ZSCAN nokey 0 COUNT 0", "SET s v", "ZSCAN s 0", "ZSCAN z -1",
        ]),
        ("encoding", [
            bulkAdd("big", 128), "OBJECT ENCODING big", "ZADD big 1 m5", "OBJECT ENCODING big", "ZADD big 0 extra",
            "OBJECT ENCODING big", "ZCARD big", "ZREMRANGEBYRANK big 0 100", "OBJECT ENCODING big", "ZRANGE big 0 -1 WITHSCORES",
            "ZADD long 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "OBJECT ENCODING long",
            "ZADD long 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "OBJECT ENCODING long",
            "ZADD long2 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "OBJECT ENCODING long2",
            bulkAdd("u", 200), "ZUNIONSTORE small 1 u", "OBJECT ENCODING small", "ZRANGESTORE small u 0 9", "OBJECT ENCODING small",
            "ZRANGE small 0 -1 WITHSCORES", "ZRANGESTORE small u 0 150", "OBJECT ENCODING small", "TYPE u", "COPY u u2",
            "OBJECT ENCODING u2", "ZRANGE u2 100 110 WITHSCORES", "ZRANK u m150", "ZREVRANK u m150", "ZCOUNT u (10 150",
            "ZRANGEBYSCORE u 50 60 WITHSCORES", "ZREVRANGEBYSCORE u 60 50 LIMIT 2 3", "ZPOPMAX u 3", "ZPOPMIN u 2",
            "ZINCRBY u 1000 m5", "ZRANGE u -2 -1 WITHSCORES", "ZRANGE u 0 2 REV", "ZMSCORE u m1 m2 m199 nope",
            "ZREMRANGEBYSCORE u 10 20", "ZCARD u", "ZINTERSTORE i 2 u big", "OBJECT ENCODING i", "ZRANGE i 0 4 WITHSCORES",
            "RENAME u u3", "OBJECT ENCODING u3", "ZCARD u3",
        ]),
        ("lex-big", [
            bulkAdd("lb", 300, prefix: "k", score: { _ in "0" }), "ZRANGEBYLEX lb [k10 [k12", "ZLEXCOUNT lb - +",
            "ZLEXCOUNT lb (k1 [k2", "ZREVRANGEBYLEX lb + - LIMIT 5 3", "ZREMRANGEBYLEX lb [k100 (k200", "ZCARD lb",
            "ZRANGE lb (k29 + BYLEX LIMIT 0 4", "OBJECT ENCODING lb",
        ]),
        ("ranges-big", [
            // A skiplist's range walks: short offsets walked, long ones found by rank, both directions.
            bulkAdd("r", 300), "OBJECT ENCODING r", "ZRANGEBYSCORE r 10 +inf LIMIT 0 10", "ZRANGEBYSCORE r (10 +inf LIMIT 5 3",
            "ZRANGEBYSCORE r 10 200 LIMIT 33 4 WITHSCORES", "ZRANGEBYSCORE r 10 200 LIMIT 189 4", "ZRANGEBYSCORE r 10 200 LIMIT 190 4",
            "ZRANGEBYSCORE r 10 20 LIMIT 40 4", "ZRANGEBYSCORE r -inf +inf LIMIT 295 100", "ZRANGEBYSCORE r 250 +inf",
            "ZRANGEBYSCORE r 10 (20 LIMIT 2 -1", "ZRANGEBYSCORE r 500 600", "ZRANGEBYSCORE r 20 10", "ZRANGEBYSCORE r -inf (0",
            "ZREVRANGEBYSCORE r +inf 10 LIMIT 0 10", "ZREVRANGEBYSCORE r 200 (10 LIMIT 50 5 WITHSCORES",
            "ZREVRANGEBYSCORE r 200 10 LIMIT 190 5", "ZREVRANGEBYSCORE r 200 10 LIMIT 3 -1", "ZREVRANGEBYSCORE r (20 -inf LIMIT 36 2",
            "ZREVRANGEBYSCORE r 10 20", "ZRANGE r 280 +inf BYSCORE REV", "ZRANGE r +inf 280 BYSCORE REV LIMIT 1 2",
            "ZRANGESTORE d r 10 200 BYSCORE LIMIT 40 5", "ZRANGE d 0 -1 WITHSCORES", "ZRANGESTORE d r 200 10 BYSCORE REV LIMIT 3 4",
            "ZRANGE d 0 -1 WITHSCORES", "ZRANK r m0", "ZRANK r m299", "ZRANK r m150", "ZREVRANK r m150", "ZRANK r nope",
            bulkAdd("lr", 200, prefix: "k", score: { _ in "0" }), "ZRANGEBYLEX lr [k10 + LIMIT 40 3", "ZRANGEBYLEX lr (k10 [k2 LIMIT 0 -1",
            "ZREVRANGEBYLEX lr [k5 - LIMIT 35 3", "ZREVRANGEBYLEX lr + (k150 LIMIT 2 -1", "ZRANGEBYLEX lr + -", "ZRANGEBYLEX lr [z +",
        ]),
        ("scores-printed", [
            // Range replies write their scores in one pass (ReplyWriter+SortedSetRuns.swift, ScoreFormat.swift):
            // fractions, thirds, values past 2^53 and 10^17, below 10^-4 (exponent notation), carries to
            // the next power of ten, negative zero, infinities; a listpack and a skiplist.
            bulkAdd("f", 40, score: { i in
                ["0.1", "-0.3", "1e-4", "9.9999999999999e-5", "1e-5", "123456.789", "3.3333333333333335", "0.99999999999999999",
                 "9007199254740993", "1e17", "99999999999999984", "1.5e300", "-2.5e-300", "4.9e-324", "-0", "inf", "-inf",
                 "1700000000.123", "0.000123456789", "2.675", "1e16", "-1e16", "12345678901234567", "0.5", "7", "-7.25",
                 "1.7976931348623157e308", "8.5e-5", "0.1234567890123456789", "100.01", "1e-320", "6.02214076e23",
                 "299792458.5", "0.3", "-0.0001", "5e-324", "42", "1e15", "0.7", "2e-4"][i]
            }),
            "OBJECT ENCODING f", "ZRANGE f 0 -1 WITHSCORES", "ZREVRANGE f 0 -1 WITHSCORES", "ZRANGEBYSCORE f -inf +inf WITHSCORES",
            "ZRANGEBYSCORE f (0 1 WITHSCORES LIMIT 1 5", "ZREVRANGEBYSCORE f 1 -1 WITHSCORES", "ZSCORE f m5", "ZSCORE f m9",
            "ZINCRBY f 0.1 m0", "ZINCRBY f 1e-5 m5", "ZINCRBY f 1 m10",
            // Infinite bounds: the spellings read without strtod and those left to it.
            "ZRANGEBYSCORE f (-inf (+inf", "ZCOUNT f (inf +INF", "ZRANGEBYSCORE f -Inf infinity", "ZCOUNT f -inf inf",
            "ZCOUNT f +inf -inf", "ZCOUNT f ++inf inf", "ZCOUNT f -infx inf", "ZCOUNT f ( inf", "ZREVRANGEBYSCORE f inf (1e17",
            bulkAdd("g", 200, score: { i in "\(Double(i) / 7 - 10)" }), "OBJECT ENCODING g", "ZRANGE g 0 30 WITHSCORES",
            "ZRANGEBYSCORE g -5 +inf WITHSCORES LIMIT 0 20", "ZREVRANGEBYSCORE g +inf (-3 WITHSCORES LIMIT 5 20",
            "ZRANGE g -10 -1 WITHSCORES", "ZRANGE g 10 20", "ZINCRBY g 0.001 m3", "ZRANGE g 0 5 WITHSCORES",
        ]),
        ("transactions", [
            "MULTI", "ZADD z 1 a", "ZINCRBY z 2 a", "ZRANGE z 0 -1 WITHSCORES", "ZADD z x a", "EXEC", "WATCH z", "ZADD z 5 b",
            "MULTI", "ZCARD z", "EXEC", "TYPE z", "DEL z", "ZSCORE z a",
        ]),
    ]

    @Test func handWrittenSequencesGetRedisReplies() throws {
        let pair = try D.Pair()
        defer { pair.stop() }
        var tally = D.Tally()
        for version in [2, 3] {
            for (name, lines) in Self.handWritten {
                try D.run(name, D.words(lines), protocolVersion: version, on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("sorted-set differential (hand-written): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }

    static func randomCommand(_ g: inout SeededGenerator) -> [[UInt8]] {
        let keys = ["z1", "z2", "z3", "s"]
        let members = ["a", "b", "c", "d", "e", "", "m\u{0}", "ab"]
        let scores = ["1", "2", "-1", "0", "1.5", "inf", "-inf", "0.1", "3e2", "(1", "x"]
        func key() -> String { keys.randomElement(using: &g)! }
        func member() -> String { members.randomElement(using: &g)! }
        func score() -> String { scores.randomElement(using: &g)! }
        func index() -> String { ["0", "1", "-1", "-2", "5"].randomElement(using: &g)! }
        func lex() -> String { ["-", "+", "[a", "(b", "[c", "(", "[", "x"].randomElement(using: &g)! }
        func lexKey() -> String { ["l1", "l2"].randomElement(using: &g)! }
        func bound() -> String { ["-inf", "+inf", "1", "(1", "0", "(2", "1.5"].randomElement(using: &g)! }
        let command: [String]
        switch Int.random(in: 0..<33, using: &g) {
        case 0, 1: command = ["ZADD", key(), score(), member(), score(), member()]
        case 2: command = ["ZADD", key()] + [[], ["CH"], ["NX"], ["XX"], ["GT"], ["LT", "CH"], ["XX", "GT", "CH"], ["INCR"]].randomElement(using: &g)! + [score(), member()]
        case 3: command = ["ZINCRBY", key(), score(), member()]
        case 4: command = ["ZREM", key(), member(), member()]
        case 5: command = ["ZCARD", key()]
        case 6: command = ["ZSCORE", key(), member()]
        case 7: command = ["ZMSCORE", key(), member(), member()]
        case 8: command = ["ZRANGE", key(), index(), index()] + (Bool.random(using: &g) ? ["WITHSCORES"] : []) + (Bool.random(using: &g) ? ["REV"] : [])
        case 9: command = ["ZRANGE", key(), bound(), bound(), "BYSCORE"] + (Bool.random(using: &g) ? ["LIMIT", "1", "2"] : []) + (Bool.random(using: &g) ? ["WITHSCORES"] : [])
        // Lexicographic ranges are defined for members of equal scores: keys l1 and l2 only ever hold score 0.
        case 10: command = ["ZRANGEBYLEX", lexKey(), lex(), lex()] + (Bool.random(using: &g) ? ["LIMIT", "1", "2"] : [])
        case 11: command = ["ZREVRANGEBYSCORE", key(), bound(), bound(), "WITHSCORES"]
        case 12: command = ["ZRANK", key(), member()]
        case 13: command = ["ZREVRANK", key(), member()]
        case 14: command = ["ZCOUNT", key(), bound(), bound()]
        case 15: command = ["ZLEXCOUNT", lexKey(), lex(), lex()]
        case 16: command = ["ZPOPMIN", key()] + (Bool.random(using: &g) ? [index()] : [])
        case 17: command = ["ZPOPMAX", key()] + (Bool.random(using: &g) ? [index()] : [])
        case 18: command = ["ZMPOP", "2", key(), key(), ["MIN", "MAX"].randomElement(using: &g)!, "COUNT", "2"]
        case 19: command = ["ZUNIONSTORE", key(), "2", key(), key()] + (Bool.random(using: &g) ? ["WEIGHTS", "2", "0.5"] : [])
        case 20: command = ["ZINTER", "2", key(), key(), "WITHSCORES"] + (Bool.random(using: &g) ? ["AGGREGATE", "MAX"] : [])
        case 21: command = ["ZDIFF", "2", key(), key(), "WITHSCORES"]
        case 22: command = ["ZRANGESTORE", key(), key(), index(), index()]
        case 23: command = ["ZREMRANGEBYSCORE", key(), bound(), bound()]
        case 24: command = ["ZREMRANGEBYRANK", key(), index(), index()]
        case 25: command = ["ZREMRANGEBYLEX", lexKey(), lex(), lex()]
        case 26: command = ["ZINTERCARD", "3", key(), key(), key()]
        case 27: command = Bool.random(using: &g) ? ["SET", "s", "v"] : ["ZADD", lexKey(), "0", member(), "0", member(), "0", member()]
        case 30: command = ["ZREVRANGEBYLEX", lexKey(), lex(), lex()]
        case 31: command = ["ZRANGE", lexKey(), lex(), lex(), "BYLEX", "REV"]
        case 29: command = ["ZUNION", "3", key(), key(), key(), "AGGREGATE", ["SUM", "MIN", "MAX"].randomElement(using: &g)!, "WITHSCORES"]
        case 28: command = ["DEL", key()]
        default: command = ["ZREM", lexKey(), member()]
        }
        return command.map { Array($0.utf8) }
    }

    @Test func seededRandomSequencesGetRedisReplies() throws {
        let pair = try D.Pair()
        defer { pair.stop() }
        var tally = D.Tally()
        for seed in UInt64(1)...60 {
            var g = SeededGenerator(seed: seed)
            let sequence = (0..<80).map { _ in Self.randomCommand(&g) }
            try D.run("zset seed \(seed)", sequence, protocolVersion: seed % 2 == 0 ? 3 : 2, on: pair, tally: &tally)
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("sorted-set differential (random): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }

    /// Pairs of a flat [member, score, …] reply, sorted.
    static func pairs(_ elements: [[UInt8]]) -> [[UInt8]] {
        stride(from: 0, to: elements.count - 1, by: 2).map { elements[$0] + [0] + elements[$0 + 1] }
            .sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// ZSCAN over a skiplist: a full scan returns the same (member, score) pairs as Redis's, scores
    /// written alike; ZRANDMEMBER's random answers have Redis's shape and hold members of the set.
    @Test func scanAndRandomMembersKeepRedisPromises() throws {
        let pair = try D.Pair()
        defer { pair.stop() }
        let setup = D.words([Self.bulkAdd("big", 300, score: { "\(Double($0) / 10)" }), "ZADD big 1.1 x -0 y inf z"])
        var scans: [[[UInt8]]] = []
        for port in [pair.server.kvPort, pair.oracle.port] {
            let connection = try RawRESPConnection(port: port)
            _ = try connection.call("FLUSHALL")
            for command in setup { _ = try connection.call(command) }
            var cursor = "0"
            var seen: [[UInt8]] = []
            var rounds = 0
            repeat {
                let reply = try connection.call("ZSCAN", "big", cursor, "COUNT", "7")
                let outer = try #require(RESPFrame.elements(reply))
                cursor = String(decoding: try #require(RESPFrame.scalar(outer[0])), as: UTF8.self)
                let items = try #require(RESPFrame.elements(outer[1])).map { try #require(RESPFrame.scalar($0)) }
                seen += Self.pairs(items)
                rounds += 1
            } while cursor != "0" && rounds < 1000
            scans.append(Array(Set(seen)).sorted { $0.lexicographicallyPrecedes($1) })
            let matched = try connection.call("ZSCAN", "big", "0", "MATCH", "m1?", "COUNT", "1000")
            #expect(matched.count > 0)
            for (arguments, expected) in [(["ZRANDMEMBER", "big", "5"], 5), (["ZRANDMEMBER", "big", "-500"], 500),
                                          (["ZRANDMEMBER", "big", "250"], 250)] {
                let reply = try connection.call(arguments.map { Array($0.utf8) })
                let members = try #require(RESPFrame.elements(reply)).map { try #require(RESPFrame.scalar($0)) }
                #expect(members.count == expected)
                if expected != 500 { #expect(Set(members).count == expected, "distinct members") }
                for member in members.prefix(20) {
                    #expect(try connection.call([Array("ZSCORE".utf8), Array("big".utf8), member]).first == UInt8(ascii: "$"))
                }
            }
            let withScores = try connection.call("ZRANDMEMBER", "big", "-3", "WITHSCORES")
            #expect(RESPFrame.elements(withScores)?.count == 6)
        }
        #expect(scans[0] == scans[1], "ZSCAN: \(scans[0].count) pairs vs Redis's \(scans[1].count)")
        #expect(scans[0].count == 303)
    }
}
