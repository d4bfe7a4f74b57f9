// The list commands against redis-server 7.0 (RedisDifferentialTests.swift's pair and comparison),
// in RESP2 and RESP3, byte for byte: hand-written edge cases of every command (errors, WRONGTYPE,
// arity, ranges, counts, options, blocking commands with short timeouts and inside MULTI), seeded
// random sequences over a small keyspace, and blocked clients served by another client's write
// (order of service, several keys, BLMOVE chains, EXEC), compared reply by reply.

import Foundation
import Testing

@Suite(.serialized) struct ListDifferentialTests {
    typealias Pair = RedisDifferentialTests.Pair

    static let handWritten: [(String, [String])] = [
        ("push-pop", [
            "LPUSH l a b c", "RPUSH l d e", "LRANGE l 0 -1", "LLEN l", "LLEN nope", "LPUSHX nope a", "RPUSHX nope a",
            "LPUSHX l z", "RPUSHX l y z", "LPOP l", "RPOP l", "LPOP l 0", "LPOP l 2", "RPOP l 100", "EXISTS l",
            "LPOP nope", "LPOP nope 2", "LPOP nope 0", "RPUSH l a", "LPOP l -1", "LPOP l x", "LPOP l 1 2", "RPOP l 1 2",
            "LPUSH", "LPUSH l", "RPUSH l ''", "LRANGE l 0 -1", "SET s v", "LPUSH s a", "RPUSHX s a", "LPOP s",
            "RPOP s 2", "LLEN s", "TYPE l", "OBJECT ENCODING l",
        ]),
        ("read", [
            "RPUSH l a b c d e", "LRANGE l -2 -1", "LRANGE l 5 1", "LRANGE l -100 100", "LRANGE l 1 1", "LRANGE l x 1",
            "LRANGE l 0 y", "LRANGE nope 0 -1", "LRANGE nope x 1", "LINDEX l 0", "LINDEX l -1", "LINDEX l 10",
            "LINDEX l -6", "LINDEX l x", "LINDEX nope x", "SET s v", "LRANGE s 0 -1", "LINDEX s 0", "LLEN s",
            "LRANGE l 9223372036854775807 -9223372036854775808", "LRANGE l -9223372036854775808 9223372036854775807",
        ]),
        ("change", [
            "RPUSH l 1 2 3 2 1 2", "LREM l 2 2", "LRANGE l 0 -1", "LREM l -1 1", "LRANGE l 0 -1", "LREM l 0 3",
            "LREM l x 3", "LREM nope 1 a", "LREM l 0 nope", "LSET l 0 q", "LSET l -1 w", "LSET l 10 x", "LSET l x y",
            "LSET nope 0 x", "LRANGE l 0 -1", "LINSERT l BEFORE q p", "LINSERT l AFTER w v", "LINSERT l after nope v",
            "LINSERT l middle q v", "LINSERT nope before a b", "LRANGE l 0 -1", "LTRIM l 1 -2", "LRANGE l 0 -1",
            "LTRIM l 5 1", "EXISTS l", "LTRIM nope 0 1", "LTRIM l x 1", "SET s v", "LSET s 0 x", "LREM s 0 x",
            "LINSERT s before a b", "LTRIM s 0 1", "RPUSH l a b c", "LTRIM l 0 0", "LRANGE l 0 -1", "LTRIM l -1 -1",
            "LREM l -9223372036854775808 a", "EXISTS l",
        ]),
        ("lpos", [
            "RPUSH l a b c a b c a", "LPOS l a", "LPOS l a RANK 2", "LPOS l a RANK -1", "LPOS l a RANK -2 COUNT 2",
            "LPOS l a COUNT 0", "LPOS l a COUNT 0 MAXLEN 3", "LPOS l a RANK -1 MAXLEN 2", "LPOS l a RANK 0",
            "LPOS l a RANK -9223372036854775808", "LPOS l a RANK 9223372036854775807", "LPOS l a COUNT -1",
            "LPOS l a MAXLEN -1", "LPOS l a FOO", "LPOS l a RANK", "LPOS l zz", "LPOS l zz COUNT 2", "LPOS nope a",
            "LPOS nope a COUNT 1", "LPOS l a RANK x", "LPOS l a COUNT x", "LPOS l a rank 3 count 5 maxlen 0", "SET s v",
            "LPOS s a", "LPOS l",
        ]),
        ("move", [
            "RPUSH l a b c d", "LMOVE l m LEFT RIGHT", "LMOVE l m RIGHT LEFT", "LMOVE l l LEFT RIGHT", "LRANGE l 0 -1",
            "LRANGE m 0 -1", "LMOVE l m UP DOWN", "LMOVE nope m LEFT LEFT", "SET s str", "LMOVE l s LEFT LEFT",
            "LMOVE s l LEFT LEFT", "RPOPLPUSH l m", "RPOPLPUSH nope m", "RPOPLPUSH s m", "RPOPLPUSH m s", "LRANGE m 0 -1",
            "RPUSH one x", "EXPIRE one 100", "LSET one 0 y", "TTL one", "LMOVE one one LEFT RIGHT", "TTL one",
            "RPOPLPUSH one one", "TTL one", "LMOVE one two RIGHT RIGHT", "EXISTS one", "LRANGE two 0 -1",
        ]),
        ("lmpop", [
            "RPUSH l a b c d", "LMPOP 2 nope l LEFT", "LMPOP 2 nope l RIGHT COUNT 2", "LMPOP 1 nope LEFT",
            "LMPOP 0 l LEFT", "LMPOP x l LEFT", "LMPOP -1 l LEFT", "LMPOP 3 l LEFT", "LMPOP 1 l MIDDLE",
            "LMPOP 1 l LEFT COUNT 0", "LMPOP 1 l LEFT COUNT x", "LMPOP 1 l LEFT COUNT 1 COUNT 1", "LMPOP 1 l LEFT FOO",
            "SET s v", "LMPOP 2 s l LEFT", "LMPOP 2 l s LEFT", "LMPOP 1 l LEFT COUNT 10", "EXISTS l", "LMPOP 1 l",
        ]),
        ("blocking-at-once", [
            "RPUSH m a b c d e f g h", "SET s v", "BLPOP nope 0.01", "BRPOP nope m 0", "BLPOP s 0", "BLPOP nope s 0", "BLPOP nope -1",
            "BLPOP nope x", "BLPOP nope 1e100", "BLPOP nope -0.5", "BLPOP nope -1.0001", "BLPOP nope ''", "BLPOP nope 1.5.5",
            "BLMOVE m n LEFT RIGHT 0", "BLMOVE nope n LEFT RIGHT 0.01", "BLMOVE nope n LEFT X 0.01",
            "BLMOVE nope n LEFT RIGHT x", "BLMOVE m s LEFT RIGHT 0", "BLMOVE s m LEFT RIGHT 0", "BRPOPLPUSH m n 0",
            "BRPOPLPUSH nope n 0.01", "BRPOPLPUSH m n -1", "BLMPOP 0 1 m LEFT", "BLMPOP 0.01 1 nope LEFT",
            "BLMPOP x 1 m LEFT", "BLMPOP 0 0 m LEFT", "BLMPOP 0 1 m LEFT COUNT 10", "BLMPOP -1 1 m LEFT",
            "BLMPOP 0 2 s m LEFT", "BLPOP", "BLPOP k", "BLMPOP 0", "BLMPOP 0 1 k", "BLMOVE a b LEFT RIGHT",
            "BRPOPLPUSH a b", "LRANGE n 0 -1", "EXISTS m",
        ]),
        ("blocking-in-multi", [
            "MULTI", "BLPOP nope 0", "BRPOP nope 0", "BLMOVE nope n LEFT RIGHT 0", "BRPOPLPUSH nope n 0",
            "BLMPOP 0 1 nope LEFT", "RPUSH nope a", "BLPOP nope 0", "BLMOVE nope n LEFT RIGHT 0", "EXEC", "LRANGE n 0 -1",
        ]),
    ]

    @Test func handWrittenSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = RedisDifferentialTests.Tally()
        for version in [2, 3] {
            for (name, lines) in Self.handWritten {
                try RedisDifferentialTests.run(name, RedisDifferentialTests.words(lines), protocolVersion: version,
                                               on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("list differential (hand-written): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }

    /// One random list command over keys `l1`, `l2` and the string `s`.
    static func randomCommand(_ g: inout SeededGenerator) -> [String] {
        let keys = ["l1", "l2", "l2", "s", "nope"]
        let items = ["a", "b", "c", "", "12", "long-\(String(repeating: "x", count: 40))"]
        func key() -> String { keys.randomElement(using: &g)! }
        func item() -> String { items.randomElement(using: &g)! }
        func index() -> String { String(Int.random(in: -8...8, using: &g)) }
        func end() -> String { Bool.random(using: &g) ? "LEFT" : "RIGHT" }
        switch Int.random(in: 0..<24, using: &g) {
        case 0, 1: return ["LPUSH", key()] + (0..<Int.random(in: 1...4, using: &g)).map { _ in item() }
        case 2, 3: return ["RPUSH", key()] + (0..<Int.random(in: 1...4, using: &g)).map { _ in item() }
        case 4: return ["LPUSHX", key(), item()]
        case 5: return ["RPUSHX", key(), item()]
        case 6: return Bool.random(using: &g) ? ["LPOP", key()] : ["LPOP", key(), String(Int.random(in: 0...3, using: &g))]
        case 7: return Bool.random(using: &g) ? ["RPOP", key()] : ["RPOP", key(), String(Int.random(in: 0...3, using: &g))]
        case 8: return ["LRANGE", key(), index(), index()]
        case 9: return ["LLEN", key()]
        case 10: return ["LINDEX", key(), index()]
        case 11: return ["LSET", key(), index(), item()]
        case 12: return ["LINSERT", key(), Bool.random(using: &g) ? "BEFORE" : "AFTER", item(), item()]
        case 13: return ["LREM", key(), String(Int.random(in: -2...2, using: &g)), item()]
        case 14: return ["LTRIM", key(), index(), index()]
        case 15:
            var command = ["LPOS", key(), item()]
            if Bool.random(using: &g) { command += ["RANK", String([-2, -1, 1, 2].randomElement(using: &g)!)] }
            if Bool.random(using: &g) { command += ["COUNT", String(Int.random(in: 0...2, using: &g))] }
            if Bool.random(using: &g) { command += ["MAXLEN", String(Int.random(in: 0...4, using: &g))] }
            return command
        case 16: return ["LMOVE", key(), key(), end(), end()]
        case 17: return ["RPOPLPUSH", key(), key()]
        case 18: return ["LMPOP", "2", key(), key(), end(), "COUNT", String(Int.random(in: 1...3, using: &g))]
        case 19: return ["BLPOP", key(), key(), "0.001"]
        case 20: return ["BLMOVE", key(), key(), end(), end(), "0.001"]
        case 21: return ["SET", "s", item()]
        case 22: return ["LRANGE", key(), "0", "-1"]
        default: return ["DEL", key()]
        }
    }

    @Test func randomSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = RedisDifferentialTests.Tally()
        for seed in UInt64(1)...30 {
            var g = SeededGenerator(seed: seed)
            let sequence = (0..<80).map { _ in Self.randomCommand(&g).map { Array($0.utf8) } }
            try RedisDifferentialTests.run("random \(seed)", sequence, protocolVersion: seed % 2 == 0 ? 3 : 2, on: pair,
                                           tally: &tally)
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("list differential (random): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }

    /// A list past one node's bound (8 KiB by default) and long items: encodings, ranges and
    /// positions across node boundaries.
    @Test func longListsAcrossNodesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = RedisDifferentialTests.Tally()
        var lines: [[[UInt8]]] = []
        let big = [UInt8](repeating: UInt8(ascii: "z"), count: 5000)
        lines.append([Array("RPUSH".utf8), Array("l".utf8)] + (0..<2000).map { Array("item-\($0)".utf8) })
        lines.append([Array("LPUSH".utf8), Array("l".utf8), big, big])
        for line in ["OBJECT ENCODING l", "LLEN l", "LINDEX l 1000", "LINDEX l -1000", "LRANGE l 995 1010",
                     "LRANGE l -10 -1", "LSET l 1500 changed", "LINSERT l BEFORE item-700 inserted", "LPOS l inserted",
                     "LPOS l item-1999 RANK -1", "LREM l 0 item-5", "LTRIM l 3 1800", "LRANGE l 0 3", "LRANGE l -3 -1",
                     "LLEN l", "LPOP l 5", "RPOP l 5", "LMPOP 1 l RIGHT COUNT 3", "LRANGE l 500 505"] {
            lines.append(RedisDifferentialTests.words([line])[0])
        }
        try RedisDifferentialTests.run("long", lines, protocolVersion: 2, on: pair, tally: &tally)
        #expect(tally.differences.isEmpty, "\(tally.differences.joined(separator: "\n"))")
    }

    /// Sends `words` on `connection` without reading the reply.
    static func send(_ connection: RawRESPConnection, _ words: String) throws {
        try connection.client.send(RESPValue.command(RedisDifferentialTests.words([words])[0]))
    }

    /// Blocked clients served by another client's writes, on both servers: what each blocked client
    /// gets, in which order, and the final state, must match.
    @Test func blockedClientsAreServedAsRedisServesThem() throws {
        let pair = try Pair()
        defer { pair.stop() }
        // Each scenario: the blocked clients' commands (blocked in this order), the writer's commands,
        // then reads of the state.
        let scenarios: [(blocked: [String], writes: [String], reads: [String])] = [
            (["BLPOP q 0", "BLPOP q 0", "BRPOP q 0"], ["RPUSH q a b c d"], ["LRANGE q 0 -1"]),
            (["BLPOP a b 0", "BLPOP b 0"], ["RPUSH b 1", "RPUSH a 2", "RPUSH b 3"], ["LRANGE a 0 -1", "LRANGE b 0 -1"]),
            (["BLMOVE src dst LEFT RIGHT 0", "BLPOP dst 0"], ["RPUSH src x y"], ["LRANGE src 0 -1", "LRANGE dst 0 -1"]),
            (["BRPOPLPUSH q q2 0", "BLMPOP 0 2 q2 q LEFT COUNT 5"], ["LPUSH q a b c"], ["LRANGE q 0 -1", "LRANGE q2 0 -1"]),
            (["BLPOP q 0"], ["MULTI", "RPUSH q a", "RPUSH q b", "LPOP q", "EXEC"], ["LRANGE q 0 -1"]),
            (["BLPOP q 0", "BLPOP q 0"], ["MULTI", "RPUSH q a", "DEL q", "RPUSH q b", "EXEC"], ["LRANGE q 0 -1"]),
            (["BLPOP q 0"], ["RPUSH q a", "LPOP q"], ["LLEN q"]),
            (["BLPOP q 0"], ["SET q string", "DEL q", "LPUSH q x"], ["EXISTS q"]),
        ]
        try Self.runBlockingScenarios(scenarios, on: pair)
    }

    /// Runs each scenario on both servers — its blocked clients' commands (blocked in this order), the
    /// writer's commands, then reads — and expects what every client got, in order, to match. `resp3`:
    /// the blocked clients speak RESP3 (HELLO 3 first).
    static func runBlockingScenarios(
        _ scenarios: [(blocked: [String], writes: [String], reads: [String])], on pair: Pair, resp3: Bool = false
    ) throws {
        for (number, scenario) in scenarios.enumerated() {
            var outcomes: [[String]] = []
            for port in [pair.server.kvPort, pair.oracle.port] {
                let writer = try RawRESPConnection(port: port)
                _ = try writer.call("FLUSHALL")
                var blocked: [(client: RawRESPConnection, id: String)] = []
                for command in scenario.blocked {
                    let client = try RawRESPConnection(port: port)
                    if resp3 { _ = try client.call("HELLO", "3") }
                    let id = String(decoding: try client.call("CLIENT", "ID").dropFirst().dropLast(2), as: UTF8.self)
                    try Self.send(client, command)
                    blocked.append((client, id))
                    // Blocked in this order: wait until the server counts it (INFO blocked_clients).
                    let count = blocked.count
                    #expect(try pollFor {
                        String(decoding: try writer.call("INFO", "clients"), as: UTF8.self).contains("blocked_clients:\(count)\r\n")
                    }, "scenario \(number): \(command) did not block")
                }
                var outcome: [String] = []
                for write in scenario.writes {
                    outcome.append(String(decoding: try writer.call(RedisDifferentialTests.words([write])[0]), as: UTF8.self))
                }
                for (client, id) in blocked {
                    // A client nobody served is still blocked: CLIENT UNBLOCK answers 1 and ends its wait
                    // with the timeout reply; a served one has its reply already (0).
                    outcome.append(String(decoding: try writer.call("CLIENT", "UNBLOCK", id), as: UTF8.self))
                    outcome.append(String(decoding: try client.reply(), as: UTF8.self))
                }
                for read in scenario.reads {
                    outcome.append(String(decoding: try writer.call(RedisDifferentialTests.words([read])[0]), as: UTF8.self))
                }
                outcomes.append(outcome)
            }
            #expect(outcomes[0] == outcomes[1], "scenario \(number): reactord \(outcomes[0]) redis \(outcomes[1])")
        }
    }
}
