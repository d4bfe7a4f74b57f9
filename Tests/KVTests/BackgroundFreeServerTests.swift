// Big values dropped through the server (Sources/Store/BackgroundFree.swift): DEL, UNLINK, an
// overwrite by SET, FLUSHALL and an expiry each drop a list, hash, set or sorted set of many members;
// INFO used_memory (the keyspace's account) drops with the reply, and lazyfree_pending_objects
// settles to 0 as the background thread frees them. Servers listen on 127.0.0.1, kernel-chosen ports.

import Foundation
import Server
import Testing

@Suite struct BackgroundFreeServerTests {
    static let members = 60_000

    /// Fills `key` with ``members`` members of `type` in commands of 1,000 arguments.
    static func fill(_ client: RESPTestClient, _ type: String, _ key: String) throws {
        for batch in stride(from: 0, to: Self.members, by: 1000) {
            var words: [[UInt8]]
            switch type {
            case "list": words = [Array("RPUSH".utf8), Array(key.utf8)]
            case "hash": words = [Array("HSET".utf8), Array(key.utf8)]
            case "set": words = [Array("SADD".utf8), Array(key.utf8)]
            default: words = [Array("ZADD".utf8), Array(key.utf8)]
            }
            for i in batch..<(batch + 1000) {
                if type == "zset" { words.append(Array(String(i).utf8)) }
                words.append(Array("member-\(i)".utf8))
                if type == "hash" { words.append(Array("v\(i)".utf8)) }
            }
            guard case .integer = try client.call(words) else { throw TestFailure("filling \(key) failed") }
        }
    }

    @Test func droppedBigValuesLeaveTheAccountAtOnceAndAreFreedInTheBackground() throws {
        try withKVServer(fsync: "always") { _, client in
            let types = ["list", "hash", "set", "zset"]
            let ways = ["DEL", "UNLINK", "SET", "EXPIRE", "FLUSHALL"]
            for way in ways {
                let empty = try MemoryLimitServerTests.usedMemory(client)
                for type in types { try Self.fill(client, type, "\(type):big") }
                let full = try MemoryLimitServerTests.usedMemory(client)
                #expect(full > empty + Self.members * 4 * 10, "\(way): \(empty) → \(full)")
                for type in types {
                    let key = "\(type):big"
                    switch way {
                    case "DEL", "UNLINK": #expect(try client.call(way, key) == .integer(1))
                    case "SET": #expect(try client.call("SET", key, "small") == .simple("OK"))
                    case "EXPIRE": #expect(try client.call("PEXPIRE", key, "1") == .integer(1))
                    default: break
                    }
                }
                if way == "FLUSHALL" { #expect(try client.call("FLUSHALL") == .simple("OK")) }
                if way == "EXPIRE" {
                    // Expired keys go when read or when the expiry cycle finds them: read them.
                    let deadline = ContinuousClock.now + .seconds(10)
                    while try client.call("EXISTS", "list:big", "hash:big", "set:big", "zset:big") != .integer(0) {
                        #expect(ContinuousClock.now < deadline, "the keys did not expire")
                        if ContinuousClock.now >= deadline { return }
                    }
                }
                let dropped = try MemoryLimitServerTests.usedMemory(client)
                #expect(dropped < empty + 4096, "\(way): used_memory \(dropped), empty \(empty), full \(full)")
                let deadline = ContinuousClock.now + .seconds(20)
                while Int(try MemoryLimitServerTests.info(client, "memory")["lazyfree_pending_objects"] ?? "") != 0 {
                    #expect(ContinuousClock.now < deadline, "\(way): the background frees did not finish")
                    if ContinuousClock.now >= deadline { return }
                }
                #expect(try client.call("FLUSHALL") == .simple("OK"))
            }
            #expect(Int(try MemoryLimitServerTests.info(client, "stats")["lazyfreed_objects"] ?? "") != nil)
        }
    }
}
