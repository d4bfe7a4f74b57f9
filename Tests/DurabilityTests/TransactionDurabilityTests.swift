// MULTI/EXEC is one unit in the log: after a crash that cut the log inside the transaction's
// record, none of it is replayed; whole, all of it is. Driven through the reactord binary
// (SIGKILL is the crash) and redis-py's transactional pipeline for the acknowledged part.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct TransactionDurabilityTests {
    static func start(_ dir: String) throws -> (ReactordProcess, Int) {
        let process = try ReactordProcess(arguments: [
            "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
            "--data-dir", dir, "--fsync", "always", "--log-level", "error",
        ])
        return (process, try process.readyKVPort())
    }

    @Test func aTransactionCutInTheLogIsReplayedWholeOrNotAtAll() throws {
        let dir = try TemporaryDirectory()
        let (process, port) = try Self.start(dir.path)
        let client = try RESPTestClient(port: port)
        #expect(try client.call("SET", "before", "1") == .simple("OK"))
        let walBefore = fileSize(dir.file("database.wal")) ?? 0
        #expect(try client.call("MULTI") == .simple("OK"))
        #expect(try client.call("SET", "a", "1") == .simple("QUEUED"))
        #expect(try client.call("INCRBY", "n", "5") == .simple("QUEUED"))
        #expect(try client.call("SET", "t", "x", "EX", "1000") == .simple("QUEUED"))
        #expect(try client.call("DEL", "before") == .simple("QUEUED"))
        #expect(try client.call("EXEC") == .array([.simple("OK"), .integer(5), .simple("OK"), .integer(1)]))
        process.kill()  // SIGKILL: a crash, no compaction on the way out
        let wal = try #require(readFileBytes(dir.file("database.wal")))
        #expect(wal.count > walBefore + 8 && wal[walBefore + 8] == 7, "the transaction is one group record")

        for (cut, applied) in [(wal.count, true), (wal.count - 1, false), (walBefore + 20, false), (walBefore + 5, false)] {
            let copy = try TemporaryDirectory()
            try Data(wal[..<cut]).write(to: URL(fileURLWithPath: copy.file("database.wal")))
            let (restarted, restartedPort) = try Self.start(copy.path)
            defer { restarted.kill() }
            let check = try RESPTestClient(port: restartedPort)
            let values = try ["a", "n", "t", "before"].map { try check.call("GET", $0) }
            if applied {
                #expect(values == [.bulk("1"), .bulk("5"), .bulk("x"), .bulk(nil)], "whole log")
                guard case .integer(let ttl) = try check.call("TTL", "t") else { throw TestFailure("TTL") }
                #expect(ttl > 990 && ttl <= 1000)
            } else {
                #expect(values == [.bulk(nil), .bulk(nil), .bulk(nil), .bulk("1")], "cut at \(cut) of \(wal.count)")
            }
        }
    }
}

private func readFileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}
