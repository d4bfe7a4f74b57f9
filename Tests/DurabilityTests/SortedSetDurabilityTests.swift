// Sorted sets survive a crash (SIGKILL: the log is replayed), a SAVE then a crash (database.txt is
// loaded, then the log written after it), and a threshold lowered in a child process (the encoding
// after the restart is chosen again from the thresholds, as Redis does on load). A model — member to
// score, kept by the test from the commands it sent — must equal what the restarted server holds.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SortedSetDurabilityTests {
    static func start(_ dir: String) throws -> (ReactordProcess, Int) {
        try TransactionDurabilityTests.start(dir)
    }

    /// The whole set as the server has it, in order, scores as text.
    static func contents(_ client: RESPTestClient, _ key: String) throws -> RESPValue {
        try client.call("ZRANGE", key, "0", "-1", "WITHSCORES")
    }

    static func expected(_ model: [String: Double]) -> RESPValue {
        let sorted = model.sorted { $0.value != $1.value ? $0.value < $1.value : Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        return .array(sorted.flatMap { member, score -> [RESPValue] in
            let text = score == .infinity ? "inf" : score == -.infinity ? "-inf" : String(format: "%.17g", score)
            return [.bulk(member), .bulk(text)]
        })
    }

    @Test func writesSurviveACrashAndASaveThenACrash() throws {
        let dir = try TemporaryDirectory()
        var (process, port) = try Self.start(dir.path)
        var client = try RESPTestClient(port: port)
        var models: [String: [String: Double]] = ["small": [:], "large": [:]]
        var g = SystemRandomNumberGenerator()
        func step(_ count: Int) throws {
            for _ in 0..<count {
                let key = Bool.random(using: &g) ? "small" : "large"
                let universe = key == "small" ? 20 : 400
                let member = "m\(Int.random(in: 0..<universe, using: &g))"
                let score = [1.5, -2, 0.1, .infinity, 7, Double(Int.random(in: -100...100, using: &g))].randomElement(using: &g)!
                let scoreText = score == .infinity ? "inf" : "\(score)"
                switch Int.random(in: 0..<10, using: &g) {
                case 0..<6:
                    _ = try client.call("ZADD", key, scoreText, member)
                    models[key]![member] = score
                case 6:
                    _ = try client.call("ZREM", key, member)
                    models[key]![member] = nil
                case 7:
                    if let old = models[key]![member], old.isFinite {
                        _ = try client.call("ZINCRBY", key, "2", member)
                        models[key]![member] = old + 2
                    }
                case 8:
                    let reply = try client.call("ZPOPMIN", key)
                    if case .array(let items?) = reply, case .bulk(let m?) = items.first {
                        models[key]![String(decoding: m, as: UTF8.self)] = nil
                    }
                default:
                    // Members below 0 go in one unit.
                    _ = try client.call("ZREMRANGEBYSCORE", key, "-inf", "(0")
                    models[key] = models[key]!.filter { $0.value >= 0 }
                }
            }
        }
        try step(1500)
        #expect(try client.call("OBJECT", "ENCODING", "large") == .bulk("skiplist"))
        for round in 0..<3 {
            if round == 1 { #expect(try client.call("SAVE") == .simple("OK")) }
            if round == 2 { try step(500) }
            process.kill()
            (process, port) = try Self.start(dir.path)
            client = try RESPTestClient(port: port)
            for (key, model) in models {
                #expect(try Self.contents(client, key) == Self.expected(model), "\(key) after restart \(round)")
            }
        }
        #expect(try client.call("OBJECT", "ENCODING", "small") == .bulk("listpack"))
        process.kill()
    }
}
