// A script's writes are one unit in the log, as MULTI/EXEC's: after a crash that cut the log inside
// the script's record none of them is replayed; whole, all of them are. Driven through the
// reactord binary (SIGKILL is the crash) under --fsync always, so the reply means the unit is durable.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ScriptDurabilityTests {
    @Test func aScriptCutInTheLogIsReplayedWholeOrNotAtAll() throws {
        let dir = try TemporaryDirectory()
        let (process, port) = try TransactionDurabilityTests.start(dir.path)
        let client = try RESPTestClient(port: port)
        #expect(try client.call("SET", "before", "1") == .simple("OK"))
        let walBefore = fileSize(dir.file("database.wal")) ?? 0
        let script = """
            redis.call('set', KEYS[1], ARGV[1])
            redis.call('incrby', KEYS[2], 5)
            redis.call('set', KEYS[3], 'x', 'EX', 1000)
            redis.call('del', 'before')
            return redis.call('get', KEYS[2])
            """
        #expect(try client.call("EVAL", script, "3", "a", "n", "t", "1") == .bulk("5"))
        process.kill()  // SIGKILL: a crash, no compaction on the way out
        let wal = try #require(FileManager.default.contents(atPath: dir.file("database.wal")).map { [UInt8]($0) })
        #expect(wal.count > walBefore + 8 && wal[walBefore + 8] == 7, "the script is one group record")

        for (cut, applied) in [(wal.count, true), (wal.count - 1, false), (walBefore + 20, false)] {
            let copy = try TemporaryDirectory()
            try Data(wal[..<cut]).write(to: URL(fileURLWithPath: copy.file("database.wal")))
            let (restarted, restartedPort) = try TransactionDurabilityTests.start(copy.path)
            defer { restarted.kill() }
            let check = try RESPTestClient(port: restartedPort)
            let values = try ["a", "n", "t", "before"].map { try check.call("GET", $0) }
            if applied {
                #expect(values == [.bulk("1"), .bulk("5"), .bulk("x"), .bulk(nil)], "whole log")
            } else {
                #expect(values == [.bulk(nil), .bulk(nil), .bulk(nil), .bulk("1")], "cut at \(cut) of \(wal.count)")
            }
        }
    }

    /// A script inside MULTI/EXEC joins the transaction's unit (the store's groups do not nest).
    @Test func aScriptInsideATransactionIsPartOfItsUnit() throws {
        let dir = try TemporaryDirectory()
        let (process, port) = try TransactionDurabilityTests.start(dir.path)
        let client = try RESPTestClient(port: port)
        #expect(try client.call("MULTI") == .simple("OK"))
        #expect(try client.call("SET", "a", "1") == .simple("QUEUED"))
        #expect(try client.call("EVAL", "return redis.call('incr', 'a')", "0") == .simple("QUEUED"))
        #expect(try client.call("EXEC") == .array([.simple("OK"), .integer(2)]))
        process.kill()
        let (restarted, restartedPort) = try TransactionDurabilityTests.start(dir.path)
        defer { restarted.kill() }
        #expect(try RESPTestClient(port: restartedPort).call("GET", "a") == .bulk("2"))
    }
}
