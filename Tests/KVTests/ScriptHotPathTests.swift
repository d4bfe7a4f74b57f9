// The parts of a script call that take shortcuts, against redis-server (RedisDifferentialTests'
// harness, RESP2 and RESP3, byte for byte): the commands redis.call resolved before (any case, more
// names than ScriptEngine+API.swift's ScriptCommandCache holds, names longer than it keeps), the
// arguments the shim copies in one pass (many, long, numbers, past the kept buffer's limit), the
// integer and bulk replies read without the general parser (negative, at the edges of 64 bits,
// empty, absent), integer results written at once, and EVALSHA's last script (alternating
// scripts, a script flushed).

import Testing

@Suite(.serialized) struct ScriptHotPathTests {
    typealias Differential = RedisDifferentialTests

    static let commandNames: [String] = [
        "SET n 5",
        "EVAL 'return {redis.call(\"GET\", \"n\"), redis.call(\"get\", \"n\"), redis.call(\"GeT\", \"n\")}' 0",
        "EVAL 'local r = {} for _, c in ipairs({\"incr\", \"INCR\", \"Incr\", \"decr\", \"DECR\", \"strlen\", \"STRLEN\", \"exists\", \"EXISTS\", \"type\", \"TYPE\", \"get\", \"incr\"}) do r[#r + 1] = redis.call(c, \"n\") end return r' 0",
        "EVAL 'return redis.pcall(\"averyveryverylongnosuchcommand\", \"n\")' 0",
        "EVAL 'return redis.pcall(\"nosuch\", \"n\")' 0", "EVAL 'return redis.pcall(\"NOSUCH\")' 0",
        "EVAL 'return {redis.call(\"zrevrangebyscore\", \"z\", 1, 0), redis.call(\"ZREMRANGEBYSCORE\", \"z\", 0, 1)}' 0",
        "EVAL 'return redis.pcall(\"multi\")' 0", "EVAL 'return redis.pcall(\"MULTI\")' 0",
        "EVAL_RO 'return redis.pcall(\"incr\", \"n\")' 0", "EVAL_RO 'return redis.pcall(\"INCR\", \"n\")' 0",
        "EVAL 'return redis.pcall(\"get\")' 0", "EVAL 'return redis.pcall(\"GET\", \"a\", \"b\")' 0",
    ]

    static let arguments: [String] = [
        "EVAL 'local a = {} for i = 1, 40 do a[i] = i end return redis.call(\"rpush\", \"l\", unpack(a))' 0",
        "EVAL 'return redis.call(\"lrange\", \"l\", 0, -1)' 0",
        "EVAL 'return redis.call(\"set\", \"big\", string.rep(\"x\", 5000))' 0", "EVAL 'return redis.call(\"strlen\", \"big\")' 0",
        "EVAL 'return #redis.call(\"get\", \"big\")' 0",
        "EVAL 'return redis.call(\"mset\", \"a\", string.rep(\"y\", 70000), \"b\", 2.5, \"c\", -0.25, \"d\", \"\")' 0",
        "EVAL 'return {#redis.call(\"get\", \"a\"), redis.call(\"get\", \"b\"), redis.call(\"get\", \"c\"), redis.call(\"get\", \"d\")}' 0",
        "EVAL 'return redis.call(\"get\", KEYS[1])' 1 b", "EVAL 'return redis.pcall(\"set\", \"k\", {})' 0",
        "EVAL 'return redis.pcall(\"set\", 1, 2, true)' 0", "EVAL 'return redis.call(\"get\", 1)' 0",
    ]

    static let replies: [String] = [
        "SET max 9223372036854775806", "EVAL 'return redis.call(\"incr\", \"max\")' 0",
        "EVAL 'return redis.pcall(\"incr\", \"max\")' 0", "EVAL 'return tostring(redis.call(\"get\", \"max\"))' 0",
        "EVAL 'return tostring(redis.call(\"incrby\", \"neg\", -123456789012345678))' 0",
        "EVAL 'return redis.call(\"decrby\", \"neg\", 1)' 0", "EVAL 'return redis.call(\"get\", \"neg\")' 0",
        "SET min -9223372036854775807", "EVAL 'return tostring(redis.call(\"decr\", \"min\"))' 0",
        "EVAL 'return redis.call(\"decr\", \"zero\") + redis.call(\"incr\", \"zero\")' 0",
        "SET empty ''", "EVAL 'return {redis.call(\"get\", \"empty\"), type(redis.call(\"get\", \"empty\"))}' 0",
        "EVAL 'return {redis.call(\"get\", \"absent\"), type(redis.call(\"get\", \"absent\"))}' 0",
        "EVAL 'redis.setresp(3); return {redis.call(\"incr\", \"r3\"), redis.call(\"get\", \"r3\"), type(redis.call(\"get\", \"absent\"))}' 0",
        "EVAL 'return -123456' 0", "EVAL 'return -9223372036854775808' 0", "EVAL 'return 12345678901234567890' 0",
        "EVAL 'return -1e300' 0", "EVAL 'return 10' 0", "EVAL 'return -1' 0", "EVAL 'return {1234, -5678}' 0",
    ]

    static let lastScript: [String] = [
        "SCRIPT LOAD 'return 1'", "SCRIPT LOAD 'return 2'",
        "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0", "EVALSHA 7f923f79fe76194c868d7e1d0820de36700eb649 0",
        "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0", "EVALSHA E0E1F9FABFC9D4800C877A703B823AC0578FF8DB 0",
        "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8dc 0", "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
        "SCRIPT FLUSH", "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
        "SCRIPT LOAD 'return 1'", "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
    ]

    @Test func shortcutsGiveRedisReplies() throws {
        let pair = try Differential.Pair()
        defer { pair.stop() }
        var tally = Differential.Tally()
        let sequences = [
            ("command names", Self.commandNames), ("arguments", Self.arguments), ("replies", Self.replies),
            ("last script", Self.lastScript),
        ]
        for version in [2, 3] {
            for (name, lines) in sequences {
                try Differential.run(name, Differential.words(lines), protocolVersion: version, on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("differential (script shortcuts): \(tally.sequences) sequences, \(tally.replies) replies")
    }
}
