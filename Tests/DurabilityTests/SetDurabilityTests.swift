// Sets survive the ways a server ends: random set commands against the real reactord (`--fsync always`,
// in a child process, so that CONFIG SET set-max-intset-entries changes no other test's limits) with a
// model of every key's members; then SIGKILL and restart (the log replayed), SAVE with more writes, then
// SIGKILL and restart (database.txt and the log), and a graceful stop and restart. Each time every key
// holds exactly the model's members.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SetDurabilityTests {
    typealias Model = [String: Set<[UInt8]>]

    static func members(_ reply: RESPValue) -> Set<[UInt8]>? {
        guard case .array(let items?) = reply else { return nil }
        var out: Set<[UInt8]> = []
        for item in items {
            guard case .bulk(let bytes?) = item else { return nil }
            out.insert(bytes)
        }
        return out
    }

    /// Random writes: SADD, SREM, SPOP (with and without a count), SMOVE and the *STORE commands; the
    /// model follows each acknowledged reply.
    static func write(_ client: RESPTestClient, _ model: inout Model, _ g: inout SplitMix, steps: Int) throws {
        let keys = (0..<6).map { "set\($0)" }
        func member() -> [UInt8] {
            let text = Bool.random(using: &g) ? String(Int.random(in: -40...40, using: &g)) : "m\(Int.random(in: 0..<30, using: &g))"
            return Array(text.utf8)
        }
        for _ in 0..<steps {
            let key = keys.randomElement(using: &g)!
            let other = keys.randomElement(using: &g)!
            switch Int.random(in: 0..<8, using: &g) {
            case 0, 1, 2:
                let added = (0..<Int.random(in: 1...4, using: &g)).map { _ in member() }
                guard case .integer = try client.call([Array("SADD".utf8), Array(key.utf8)] + added) else { throw TestFailure("SADD") }
                model[key, default: []].formUnion(added)
            case 3:
                let removed = (0..<Int.random(in: 1...3, using: &g)).map { _ in member() }
                guard case .integer = try client.call([Array("SREM".utf8), Array(key.utf8)] + removed) else { throw TestFailure("SREM") }
                model[key]?.subtract(removed)
            case 4:
                let reply = try client.call("SPOP", key, "3")
                guard let popped = Self.members(reply) else { throw TestFailure("SPOP \(reply)") }
                model[key]?.subtract(popped)
            case 5:
                if case .bulk(let popped?) = try client.call("SPOP", key) { model[key]?.remove(popped) }
            case 6:
                let moved = member()
                guard case .integer(let n) = try client.call([Array("SMOVE".utf8), Array(key.utf8), Array(other.utf8), moved])
                else { throw TestFailure("SMOVE") }
                if n == 1 {
                    model[key]?.remove(moved)
                    model[other, default: []].insert(moved)
                }
            default:
                let third = keys.randomElement(using: &g)!
                let operation = ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"].randomElement(using: &g)!
                guard case .integer = try client.call(operation, other, key, third) else { throw TestFailure(operation) }
                let a = model[key] ?? [], b = model[third] ?? []
                model[other] = operation == "SINTERSTORE" ? a.intersection(b)
                    : operation == "SUNIONSTORE" ? a.union(b) : a.subtracting(b)
            }
            for name in [key, other] where model[name]?.isEmpty == true { model[name] = nil }
        }
    }

    static func check(_ port: Int, _ model: Model, _ when: String) throws {
        let client = try RESPTestClient(port: port)
        for index in 0..<6 {
            let key = "set\(index)"
            let reply = try client.call("SMEMBERS", key)
            #expect(Self.members(reply) == (model[key] ?? []), "\(when): \(key)")
            #expect(try client.call("EXISTS", key) == .integer(model[key] == nil ? 0 : 1), "\(when): \(key)")
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func setsSurviveKillsSavesAndRestarts(seed: UInt64) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let arguments = ["--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                         "--data-dir", dir.path, "--fsync", "always", "--log-level", "error"]
        var g = SplitMix(seed: seed)
        var model: Model = [:]
        var server = try ReactordProcess(arguments: arguments)
        defer { server.kill() }
        var port = try server.readyKVPort()
        for stage in ["log replay", "database.txt and log", "graceful stop"] {
            let client = try RESPTestClient(port: port)
            // A small intset limit, so that sets convert back and forth across restarts.
            #expect(try client.call("CONFIG", "SET", "set-max-intset-entries", "8") == .simple("OK"))
            try Self.write(client, &model, &g, steps: 300)
            if stage == "database.txt and log" {
                #expect(try client.call("SAVE") == .simple("OK"))
                try Self.write(client, &model, &g, steps: 200)
            }
            try Self.check(port, model, "before: \(stage)")
            if stage == "graceful stop" {
                #expect(kill(server.pid, SIGTERM) == 0)
                #expect(server.waitForExit(within: 10) == 0)
            } else {
                #expect(kill(server.pid, SIGKILL) == 0)
                #expect(server.waitForExit(within: 10) != nil)
            }
            server = try ReactordProcess(arguments: arguments)
            port = try server.readyKVPort()
            try Self.check(port, model, "after: \(stage)")
        }
    }
}

