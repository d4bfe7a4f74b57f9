// kv durability end to end: a graceful stop leaves database.txt in the text format of docs/file-formats.md and an
// empty log, and a restart reads everything back; the real reactord binary killed with SIGKILL
// mid-stream under `--fsync always` loses nothing it acknowledged.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct KVDurabilityTests {
    @Test func gracefulRestartKeepsEveryKeyAndLeavesASpecFormattedSnapshotAndAnEmptyLog() throws {
        let dir = try TemporaryDirectory()
        var expected: [[UInt8]: [UInt8]] = [:]
        do {
            let server = try InProcessServer.kv(dataDirectory: dir.path)
            defer { server.stop() }
            let line = try TestClient(port: server.kvPort)
            for i in 0..<500 {
                #expect(try line.request("set key\(i) value number \(i)") == "OK")
                expected[Array("key\(i)".utf8)] = Array("value number \(i)".utf8)
            }
            for i in stride(from: 0, to: 500, by: 5) {
                #expect(try line.request("del key\(i)") == "OK")
                expected[Array("key\(i)".utf8)] = nil
            }
            #expect(try line.request("put plain hello world") == "OK")
            expected[Array("plain".utf8)] = Array("hello world".utf8)
            #expect(try line.request("set #hash not a comment") == "OK")
            expected[Array("#hash".utf8)] = Array("not a comment".utf8)
            #expect(try line.request("set tabbed a\tb\\c") == "OK")
            expected[Array("tabbed".utf8)] = Array("a\tb\\c".utf8)
            #expect(try line.request("set emptyvalue") == "OK")
            expected[Array("emptyvalue".utf8)] = []
            #expect(try line.request("set utf8 grüße ✓") == "OK")
            expected[Array("utf8".utf8)] = Array("grüße ✓".utf8)
            let resp = try RESPTestClient(port: server.kvPort)
            let binary: [([UInt8], [UInt8])] = [
                (Array("bin\r\nkey".utf8), [0, 1, 2, 13, 10, 9, 92, 0x1f, 0x7f, 0xff]),
                (Array("k\tey".utf8), Array("v\n".utf8)),
                ([], Array("the empty key".utf8)),
            ]
            for (key, value) in binary {
                #expect(try resp.call([Array("SET".utf8), key, value]) == .simple("OK"))
                expected[key] = value
            }
            #expect(try line.request("count") == "\(expected.count)")
            try #require(server.stop(), "the server did not stop within 10 s")
        }

        // After a clean stop: the log is empty, database.txt holds exactly the data, as docs/file-formats.md writes it.
        #expect(fileSize(dir.file("database.wal")) == 0, "database.wal after a clean stop: \(fileSize(dir.file("database.wal")).map(String.init) ?? "missing")")
        let snapshot = try readSnapshotFile(dir.file("database.txt"))
        #expect(snapshot.pairs == expected)
        #expect(snapshot.rawLines.count == expected.count)
        let raw = Set(snapshot.rawLines.map { String(decoding: $0, as: UTF8.self) })
        for line in ["plain\thello world", "key1\tvalue number 1", "tabbed\ta\\tb\\\\c", "emptyvalue\t",
                     "utf8\tgrüße ✓", "k\\tey\tv\\n", "\tthe empty key", "\\x23hash\tnot a comment"] {
            #expect(raw.contains(line), "database.txt has no line \(line.debugDescription)")
        }
        // Bytes below 0x20 are escaped, 0x7f and 0xff are written raw.
        let binLine = Array("bin\\r\\nkey\t\\x00\\x01\\x02\\r\\n\\t\\\\\\x1f".utf8) + [0x7f, 0xff]
        #expect(snapshot.rawLines.contains(binLine), "database.txt has no line for the binary key")

        // A new server on the same directory reads everything back, through both protocols.
        let server = try InProcessServer.kv(dataDirectory: dir.path)
        defer { server.stop() }
        let line = try TestClient(port: server.kvPort)
        #expect(try line.request("count") == "\(expected.count)")
        for i in 0..<500 {
            let reply = try line.request("get key\(i)")
            #expect(reply == (i % 5 == 0 ? "ERR not found" : "value number \(i)"), "key\(i)")
        }
        #expect(try line.request("get #hash") == "not a comment")
        #expect(try line.request("get tabbed") == "a\tb\\c")
        #expect(try line.request("get utf8") == "grüße ✓")
        let resp = try RESPTestClient(port: server.kvPort)
        for (key, value) in expected {
            #expect(try resp.call([Array("GET".utf8), key]) == .bulk(value), "key \(String(decoding: key, as: UTF8.self).debugDescription)")
        }
        #expect(fileSize(dir.file("database.wal")) != nil, "database.wal must exist while the server runs")
    }

    /// With `compacting`, five compactions run back to back under the load (BGREWRITEAOF as soon as
    /// INFO says the last one ended) and the kill lands just after a sixth was asked for. A compaction asked for
    /// while written records wait for their sync holds further appends until that sync is done, then
    /// rotates the log; the held records go to the new log, whose directory entry is synced with them.
    /// (Whether a given compaction finds records waiting depends on timing; CompactionSyncTests and
    /// FaultTests hold appends deterministically.)
    @Test(arguments: [false, true])
    func sigkillMidStreamLosesNothingAcknowledgedUnderFsyncAlways(compacting: Bool) throws {
        let dir = try TemporaryDirectory()
        let arguments = ["--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                         "--data-dir", dir.path, "--fsync", "always", "--log-level", "error"]
        // Compacting, every sync takes 2 ms as on a real disk (Benchmarks/slowfsync.c) and more writes
        // are in flight: records arrive while a sync runs, so a compaction asked for then finds written
        // records waiting for their sync and holds appends until it is done.
        var environment: [String: String] = [:]
        if compacting {
            environment = ["LD_PRELOAD": try Self.buildSlowFsync(into: dir), "SLOW_FSYNC_US": "2000"]
        }
        let first = try ReactordProcess(arguments: arguments, environment: environment)
        defer { first.kill() }
        let port = try Self.kvPort(of: first)

        let writerCount = compacting ? 8 : 4
        let threshold = 600
        let load = WriteLoad(port: port, writers: writerCount, window: compacting ? 32 : 8, signalAfter: threshold)
        if compacting {
            let admin = try RESPTestClient(port: port)
            var compactions = 0
            var enough = false
            let giveUp = ContinuousClock.now + .seconds(60)
            while !enough || compactions < 5 {
                try #require(ContinuousClock.now < giveUp, "\(compactions) compactions; \(threshold) OKs: \(enough)")
                #expect(try admin.call("BGREWRITEAOF") == .simple("Background append only file rewriting started"))
                let deadline = ContinuousClock.now + .seconds(30)
                while case .bulk(let info?) = try admin.call("INFO", "persistence"),
                      String(decoding: info, as: UTF8.self).contains("aof_rewrite_in_progress:1") {
                    try #require(ContinuousClock.now < deadline, "a compaction of a small keyspace took 30 s")
                }
                compactions += 1
                if !enough { enough = load.enough.wait(timeout: .now()) == .success }
            }
            #expect(try admin.call("BGREWRITEAOF") == .simple("Background append only file rewriting started"))
        } else {
            try #require(load.enough.wait(timeout: .now() + 60) == .success, "fewer than \(threshold) OKs within 60 s")
        }
        #expect(kill(first.pid, SIGKILL) == 0)
        #expect(first.waitForExit(within: 10) != nil, "reactord did not die on SIGKILL")
        try #require(load.finished.wait(timeout: .now() + 20) == .success, "writers did not notice the kill")
        for ended in load.endedBy {
            #expect(ended.current != "deadline" && !ended.current.hasPrefix("reply"), "writer ended by \(ended.current)")
        }
        let acknowledged = load.acknowledged
        let acknowledgedTotal = acknowledged.reduce(0) { $0 + $1.current }
        #expect(acknowledgedTotal >= threshold)

        let second = try ReactordProcess(arguments: arguments)
        defer { second.kill() }
        let port2 = try Self.kvPort(of: second)
        let reader = try TestClient(port: port2)
        var requests: [UInt8] = []
        var expected: [String] = []
        for w in 0..<writerCount {
            for i in 0..<acknowledged[w].current {
                requests += Array("get w\(w)-\(i)\n".utf8)
                expected.append("value-\(w)-\(i)")
            }
        }
        try reader.send(requests, deadline: .now + .seconds(20))
        let replies = try reader.readLines(expected.count, deadline: .now + .seconds(20))
        let lost = zip(replies, expected).filter { String(decoding: $0.0, as: UTF8.self) != $0.1 }.map(\.1)
        #expect(lost.count == 0, "\(lost.count) of \(expected.count) acknowledged keys lost after SIGKILL, e.g. \(lost.prefix(3))")
        #expect(kill(second.pid, SIGTERM) == 0)
        #expect(second.waitForExit(within: 5) == 0)
    }

    /// Benchmarks/slowfsync.c built into `directory` (never into the repository).
    static func buildSlowFsync(into directory: TemporaryDirectory) throws -> String {
        guard let compiler = ["cc", "gcc", "clang"].first(where: { (try? requireTool($0)) != nil }) else {
            throw TestFailure("no C compiler (cc, gcc or clang) on PATH: .ci/run installs gcc")
        }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/slowfsync.c").path
        let library = directory.file("slowfsync.so")
        let result = try runTool(compiler, ["-O2", "-shared", "-fPIC", "-o", library, source, "-ldl"])
        guard result.status == 0 else { throw TestFailure("building slowfsync.so failed: \(result.text)\(result.stderr)") }
        return library
    }

    @Test func sigtermUnderWriteLoadExitsZeroAndKeepsEveryAcknowledgedWrite() throws {
        // Several rounds: the stop must land while replies wait for an fsync, which a round
        // makes likely but not certain.
        for round in 0..<4 {
            let dir = try TemporaryDirectory()
            let process = try ReactordProcess(arguments: [
                "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                "--data-dir", dir.path, "--fsync", "always", "--log-level", "error"])
            defer { process.kill() }
            let port = try Self.kvPort(of: process)
            let load = WriteLoad(port: port, writers: 6, window: 16, signalAfter: 300)
            try #require(load.enough.wait(timeout: .now() + 30) == .success, "round \(round): fewer than 300 OKs within 30 s")
            #expect(kill(process.pid, SIGTERM) == 0)
            let status = process.waitForExit(within: 5)
            #expect(status == 0, "round \(round): SIGTERM under load: exit status \(status.map(String.init) ?? "none within 5 s"), reason \(process.process.isRunning ? "running" : "\(process.process.terminationReason.rawValue)")")
            try #require(load.finished.wait(timeout: .now() + 10) == .success, "writers did not see the close")
            guard status == 0 else { return }
            #expect(fileSize(dir.file("database.wal")) == 0)
            let snapshot = try readSnapshotFile(dir.file("database.txt"))
            var missing = 0
            for (w, acked) in load.acknowledged.enumerated() {
                for i in 0..<acked.current where snapshot.pairs[Array("w\(w)-\(i)".utf8)] != Array("value-\(w)-\(i)".utf8) { missing += 1 }
            }
            #expect(missing == 0, "round \(round): \(missing) acknowledged keys missing from database.txt")
        }
    }

    /// Waits for `reactord: ready` and returns the kv port it printed.
    static func kvPort(of process: ReactordProcess) throws -> Int {
        try process.readyKVPort()
    }
}

/// Writer threads against a kv port: each sets distinct keys `w<writer>-<i>` to `value-<writer>-<i>`
/// with a window of requests in flight, counting a key only once its `OK` has arrived (replies
/// come in order, so writer w's acknowledged keys are 0..<acknowledged[w]). Each thread stops at
/// EOF, an error, a reply other than OK, or after 60 s.
final class WriteLoad: Sendable {
    let acknowledged: [Shared<Int>]
    let endedBy: [Shared<String>]
    /// Signalled once, when `signalAfter` acknowledgements have arrived in total.
    let enough = DispatchSemaphore(value: 0)
    /// Left by every writer thread as it ends.
    let finished = DispatchGroup()

    init(port: Int, writers: Int, window: Int, signalAfter threshold: Int) {
        self.acknowledged = (0..<writers).map { _ in Shared(0) }
        self.endedBy = (0..<writers).map { _ in Shared("") }
        let total = Shared(0)
        for w in 0..<writers {
            self.finished.enter()
            let acked = self.acknowledged[w]
            let ended = self.endedBy[w]
            let enough = self.enough
            let finished = self.finished
            Thread {
                defer { finished.leave() }
                do {
                    let client = try TestClient(port: port)
                    var sent = 0
                    var count = 0
                    var pending: [UInt8] = []
                    // Bounded: the server is stopped long before this, the deadline only guards a hang.
                    let deadline = ContinuousClock.now + .seconds(60)
                    while ContinuousClock.now < deadline {
                        while sent - count < window {
                            try client.send("set w\(w)-\(sent) value-\(w)-\(sent)\n", deadline: deadline)
                            sent += 1
                        }
                        guard let chunk = client.readSome() else {
                            guard pollFor(client.fd, events: Int16(POLLIN), until: deadline) else { break }
                            continue
                        }
                        if chunk.isEmpty { ended.with { $0 = "EOF" }; return }
                        pending += chunk
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let reply = String(decoding: pending[..<newline], as: UTF8.self)
                            pending.removeSubrange(...newline)
                            guard reply == "OK" else { ended.with { $0 = "reply \(reply)" }; return }
                            count += 1
                            acked.with { $0 = count }
                            if total.with({ $0 += 1; return $0 }) == threshold { enough.signal() }
                        }
                    }
                    ended.with { $0 = "deadline" }
                } catch {
                    ended.with { $0 = "\(error)" }
                }
            }.start()
        }
    }
}
