// Hashes survive a crash and a compaction: the real reactord binary (a child process, so that CONFIG
// SET of the encoding limits stays out of this test process) under `--fsync always` takes hash writes
// of every kind, is killed with SIGKILL, and restarts from its log (element records replayed); then
// SAVE writes `database.txt`, more writes follow, another SIGKILL, and the restart reads both the
// snapshot's typed blocks and the log after it. A dictionary per key is the model.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct HashDurabilityTests {
    typealias Model = [String: [[UInt8]: [UInt8]]]

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// HGETALL's reply as a dictionary.
    static func fields(_ client: RESPTestClient, _ key: String) throws -> [[UInt8]: [UInt8]] {
        guard case .array(let items?) = try client.call("HGETALL", key) else { throw TestFailure("HGETALL \(key)") }
        var fields: [[UInt8]: [UInt8]] = [:]
        for i in stride(from: 0, to: items.count, by: 2) {
            guard case .bulk(let field?) = items[i], case .bulk(let value?) = items[i + 1] else {
                throw TestFailure("HGETALL \(key): \(items)")
            }
            fields[field] = value
        }
        return fields
    }

    static func expectHolds(_ client: RESPTestClient, _ model: Model, _ context: String) throws {
        for (key, expected) in model {
            let found = try Self.fields(client, key)
            #expect(found == expected, "\(context): \(key) holds \(found.count) fields, expected \(expected.count)")
            #expect(try client.call("HLEN", key) == .integer(expected.count), "\(context): HLEN \(key)")
        }
        #expect(try client.call("DBSIZE") == .integer(model.values.count { !$0.isEmpty }), "\(context): DBSIZE")
    }

    @Test func hashWritesSurviveSigkillReplayAndCompaction() throws {
        let dir = try TemporaryDirectory()
        let arguments = ["--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                         "--data-dir", dir.path, "--fsync", "always", "--log-level", "error"]
        var model: Model = [:]
        do {
            let server = try ReactordProcess(arguments: arguments)
            defer { server.kill() }
            let client = try RESPTestClient(port: try server.readyKVPort())
            // A small hash: sets, replacements, deletions, counters.
            for i in 0..<10 {
                #expect(try client.call("HSET", "small", "f\(i)", "v\(i)") == .integer(1))
                model["small", default: [:]][Self.bytes("f\(i)")] = Self.bytes("v\(i)")
            }
            #expect(try client.call("HSET", "small", "f1", "again", "f2", "") == .integer(0))
            model["small"]![Self.bytes("f1")] = Self.bytes("again")
            model["small"]![Self.bytes("f2")] = []
            #expect(try client.call("HDEL", "small", "f3", "f4", "nope") == .integer(2))
            model["small"]![Self.bytes("f3")] = nil
            model["small"]![Self.bytes("f4")] = nil
            #expect(try client.call("HINCRBY", "small", "n", "41") == .integer(41))
            model["small"]![Self.bytes("n")] = Self.bytes("41")
            #expect(try client.call("HINCRBYFLOAT", "small", "x", "1.25") == .bulk("1.25"))
            model["small"]![Self.bytes("x")] = Self.bytes("1.25")
            #expect(try client.call("HSETNX", "small", "f0", "no") == .integer(0))
            // A large hash, built in one command and field by field, then thinned.
            var arguments = [Self.bytes("HSET"), Self.bytes("large")]
            for i in 0..<1000 {
                arguments += [Self.bytes("field\(i)"), Self.bytes("value \(i)")]
                model["large", default: [:]][Self.bytes("field\(i)")] = Self.bytes("value \(i)")
            }
            #expect(try client.call(arguments) == .integer(1000))
            for i in stride(from: 0, to: 1000, by: 7) {
                #expect(try client.call("HDEL", "large", "field\(i)") == .integer(1))
                model["large"]![Self.bytes("field\(i)")] = nil
            }
            #expect(try client.call("OBJECT", "ENCODING", "large") == .bulk("hashtable"))
            // Binary fields and values.
            let binary: [UInt8] = [0, 13, 10, 9, 92, 0xff]
            #expect(try client.call([Self.bytes("HSET"), Self.bytes("bin"), binary, binary + binary]) == .integer(1))
            model["bin"] = [binary: binary + binary]
            // Emptied: the key goes.
            _ = try client.call("HSET", "gone", "a", "1", "b", "2")
            #expect(try client.call("HDEL", "gone", "a", "b") == .integer(2))
            model["gone"] = [:]
            // A transaction's writes; a lower listpack limit (the conversion is logged as plain effects).
            #expect(try client.call("MULTI") == .simple("OK"))
            _ = try client.call("HSET", "tx", "a", "1")
            _ = try client.call("HINCRBY", "tx", "a", "1")
            _ = try client.call("HSET", "tx", "b", "2")
            guard case .array(let results?) = try client.call("EXEC"), results.count == 3 else { throw TestFailure("EXEC") }
            model["tx"] = [Self.bytes("a"): Self.bytes("2"), Self.bytes("b"): Self.bytes("2")]
            #expect(try client.call("CONFIG", "SET", "hash-max-listpack-entries", "4") == .simple("OK"))
            #expect(try client.call("HSET", "tiny", "a", "1", "b", "2", "c", "3", "d", "4") == .integer(4))
            #expect(try client.call("OBJECT", "ENCODING", "tiny") == .bulk("listpack"))
            #expect(try client.call("HSET", "tiny", "e", "5") == .integer(1))
            #expect(try client.call("OBJECT", "ENCODING", "tiny") == .bulk("hashtable"))
            #expect(try client.call("CONFIG", "SET", "hash-max-listpack-entries", "512") == .simple("OK"))
            model["tiny"] = Dictionary(uniqueKeysWithValues: ["a", "b", "c", "d", "e"].enumerated().map {
                (Self.bytes($0.element), Self.bytes("\($0.offset + 1)"))
            })
            #expect(try client.call("EXPIRE", "small", "100000") == .integer(1))
            try Self.expectHolds(client, model, "before the crash")
            #expect(kill(server.pid, SIGKILL) == 0)
            #expect(server.waitForExit(within: 10) != nil, "reactord did not die on SIGKILL")
        }
        do {
            // Replayed from the log alone.
            let server = try ReactordProcess(arguments: arguments)
            defer { server.kill() }
            let client = try RESPTestClient(port: try server.readyKVPort())
            try Self.expectHolds(client, model, "after the log's replay")
            #expect(try client.call("OBJECT", "ENCODING", "large") == .bulk("hashtable"))
            #expect(try client.call("OBJECT", "ENCODING", "small") == .bulk("listpack"))
            guard case .integer(let ttl) = try client.call("TTL", "small") else { throw TestFailure("TTL") }
            #expect(ttl > 99_000 && ttl <= 100_000)
            // Compacted, then more writes in the new log.
            #expect(try client.call("SAVE") == .simple("OK"))
            #expect(try client.call("HSET", "large", "after", "save") == .integer(1))
            model["large"]![Self.bytes("after")] = Self.bytes("save")
            #expect(try client.call("HDEL", "small", "f0") == .integer(1))
            model["small"]![Self.bytes("f0")] = nil
            #expect(try client.call("HSET", "fresh", "k", "v") == .integer(1))
            model["fresh"] = [Self.bytes("k"): Self.bytes("v")]
            #expect(kill(server.pid, SIGKILL) == 0)
            #expect(server.waitForExit(within: 10) != nil, "reactord did not die on SIGKILL")
        }
        let snapshot = String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir.file("database.txt"))), as: UTF8.self)
        #expect(snapshot.contains("field1"), "database.txt holds no hash field")
        let server = try ReactordProcess(arguments: arguments)
        defer { server.kill() }
        let client = try RESPTestClient(port: try server.readyKVPort())
        try Self.expectHolds(client, model, "after SAVE and the log after it")
        // Reloaded from database.txt, a hash within the limits is compact again (as Redis loads an RDB).
        #expect(try client.call("OBJECT", "ENCODING", "tiny") == .bulk("listpack"))
        #expect(try client.call("OBJECT", "ENCODING", "large") == .bulk("hashtable"))
        #expect(kill(server.pid, SIGTERM) == 0)
        #expect(server.waitForExit(within: 10) == 0)
    }
}
