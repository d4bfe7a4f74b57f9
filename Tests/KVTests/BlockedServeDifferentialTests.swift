// Blocked clients served directly from the key that gained elements (Sources/Services/Blocking.swift,
// the serve functions of Commands+ListsBlocking.swift and Commands+SortedSetsBlocking.swift), against
// redis-server 7.0 byte for byte: every kind of waiter served in RESP2 and in RESP3, and the edges of
// serving — a destination of another type, a key emptied part way through its waiters, a move back
// into its own source, a key replaced by another type before it is served, and a served waiter's
// pipelined blocking request, which waits behind the other waiters as in Redis (its input is answered
// after the ready keys are served).

import Testing

@Suite(.serialized) struct BlockedServeDifferentialTests {
    typealias Pair = RedisDifferentialTests.Pair

    static let everyKind: [(blocked: [String], writes: [String], reads: [String])] = [
        (["BLPOP q 0", "BRPOP q 0", "BLMPOP 0 1 q RIGHT COUNT 2", "BLMPOP 0 2 nope q LEFT"], ["RPUSH q a b c d e f"],
         ["LRANGE q 0 -1"]),
        (["BLMOVE src dst RIGHT LEFT 0", "BRPOPLPUSH dst other 0"], ["RPUSH src x"],
         ["LRANGE src 0 -1", "LRANGE dst 0 -1", "LRANGE other 0 -1"]),
        (["BZPOPMIN z 0", "BZPOPMAX z 0", "BZMPOP 0 1 z MIN COUNT 2", "BZMPOP 0 2 nope z MAX"], ["ZADD z 1.5 a 2 b 3 c 4 d 5 e"],
         ["ZRANGE z 0 -1 WITHSCORES"]),
    ]

    @Test(arguments: [false, true])
    func everyKindOfWaiterIsServedAsRedisServesIt(resp3: Bool) throws {
        let pair = try Pair()
        defer { pair.stop() }
        try ListDifferentialTests.runBlockingScenarios(Self.everyKind, on: pair, resp3: resp3)
    }

    @Test func theEdgesOfServingMatchRedis() throws {
        let pair = try Pair()
        defer { pair.stop() }
        let scenarios: [(blocked: [String], writes: [String], reads: [String])] = [
            // The destination holds a string when the waiter is served: WRONGTYPE ends its wait, the
            // next waiter gets the item.
            (["BLMOVE src dst LEFT RIGHT 0", "BLPOP src 0"], ["SET dst str", "RPUSH src a"], ["LRANGE src 0 -1", "GET dst"]),
            // Two items, three waiters: the third keeps waiting (CLIENT UNBLOCK ends it).
            (["BLPOP q 0", "BRPOP q 0", "BLPOP q 0"], ["RPUSH q a b"], ["EXISTS q"]),
            // A move back into its own source leaves the key for the next waiter.
            (["BLMOVE q q RIGHT LEFT 0", "BLPOP q 0"], ["RPUSH q a"], ["LRANGE q 0 -1"]),
            // Several items at once, a count larger than the list, then the key gone.
            (["BLMPOP 0 1 q LEFT COUNT 10", "BLPOP q 0"], ["RPUSH q a b c"], ["EXISTS q"]),
            // The key replaced by another type within one transaction before its waiters are served.
            (["BLPOP k 0", "BZPOPMIN k 0"], ["MULTI", "RPUSH k a", "DEL k", "ZADD k 1 m", "EXEC"], ["EXISTS k"]),
            // Waiters on two keys, both filled by one command.
            (["BLPOP a 0", "BLPOP b 0", "BLPOP a b 0"], ["MULTI", "RPUSH b 1", "RPUSH a 2 3", "EXEC"],
             ["LRANGE a 0 -1", "LRANGE b 0 -1"]),
        ]
        try ListDifferentialTests.runBlockingScenarios(scenarios, on: pair)
    }

    /// A waiter with a second BLPOP pipelined behind its first: served the first item, its second
    /// request runs only after the key's other waiters are served (Redis's processUnblockedClients), so
    /// the next waiter gets the second item and the pipelined BLPOP waits.
    @Test func aServedClientsPipelinedWaitQueuesBehindTheOthers() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var outcomes: [[String]] = []
        for port in [pair.server.kvPort, pair.oracle.port] {
            let writer = try RawRESPConnection(port: port)
            _ = try writer.call("FLUSHALL")
            var clients: [(client: RawRESPConnection, id: String)] = []
            for (number, requests) in [["BLPOP q 0", "BLPOP q 0"], ["BLPOP q 0"]].enumerated() {
                let client = try RawRESPConnection(port: port)
                let id = String(decoding: try client.call("CLIENT", "ID").dropFirst().dropLast(2), as: UTF8.self)
                for request in requests { try ListDifferentialTests.send(client, request) }
                clients.append((client, id))
                #expect(try pollFor {
                    String(decoding: try writer.call("INFO", "clients"), as: UTF8.self).contains("blocked_clients:\(number + 1)\r\n")
                })
            }
            var outcome = [String(decoding: try writer.call("RPUSH", "q", "a", "b"), as: UTF8.self)]
            // Whoever still waits is ended by CLIENT UNBLOCK (1, then its null reply); a served one
            // answers 0 and its reply is already there. Read in an order neither outcome can stall.
            outcome.append(String(decoding: try writer.call("CLIENT", "UNBLOCK", clients[1].id), as: UTF8.self))
            outcome.append(String(decoding: try clients[1].client.reply(), as: UTF8.self))
            outcome.append(String(decoding: try clients[0].client.reply(), as: UTF8.self))
            outcome.append(String(decoding: try writer.call("CLIENT", "UNBLOCK", clients[0].id), as: UTF8.self))
            outcome.append(String(decoding: try clients[0].client.reply(), as: UTF8.self))
            outcome.append(String(decoding: try writer.call("EXISTS", "q"), as: UTF8.self))
            outcomes.append(outcome)
        }
        #expect(outcomes[0] == outcomes[1], "reactord \(outcomes[0]) redis \(outcomes[1])")
    }
}
