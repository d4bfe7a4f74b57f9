// Per-command counting for the metrics port: calls, error replies, MULTI's queued commands
// counted once, unknown commands, and a batch's duration shared among its commands.

@testable import Services
import Testing

@Suite struct CommandStatisticsTests {
    static func slot(_ name: String) -> Int { CommandStatistics.names.firstIndex(of: name)! }

    @Test func callsErrorsAndDurationsAreCountedPerCommand() {
        let statistics = CommandStatistics()
        let storage = TestServer(commandStatistics: statistics)
        let requests = [
            RESPValueEncoder.command("SET", "a", "1"), RESPValueEncoder.command("GET", "a"),
            RESPValueEncoder.command("GET"), RESPValueEncoder.command("NOPE"),
            RESPValueEncoder.command("MULTI"), RESPValueEncoder.command("SET", "b", "2"),
            RESPValueEncoder.command("EXEC"),
        ]
        _ = run({ KVSession(speaking: .resp, now: { (0, 0) }) }, requests, storage: storage, feeding: .concatenated)
        #expect(statistics.hasBatch)
        statistics.endBatch(nanoseconds: 7_000)
        #expect(!statistics.hasBatch)
        let calls = statistics.calls, errors = statistics.errors
        #expect(calls[Self.slot("set")] == 2)  // the queued SET counts once, when EXEC runs it
        #expect(calls[Self.slot("get")] == 2)
        #expect(errors[Self.slot("get")] == 1)
        #expect(errors[Self.slot("set")] == 0)
        #expect(calls[Self.slot("unknown")] == 1 && errors[Self.slot("unknown")] == 1)
        #expect(calls[Self.slot("multi")] == 1 && calls[Self.slot("exec")] == 1 && errors[Self.slot("exec")] == 0)
        #expect(calls.reduce(0, +) == 7)
        // 7 commands in 7 µs: 1 µs each, observed once per command name the batch ran (SET ran
        // twice: one observation of 1 µs), in the first bucket (bound 1 µs inclusive).
        let set = statistics.durations(slot: Self.slot("set"))
        #expect(set.counts[0] == 1 && set.total == 1 && set.sums[0] == 1_000)
        #expect(statistics.durations(slot: Self.slot("exec")).counts[0] == 1)
        // A second batch lands in its own bucket.
        _ = run({ KVSession(speaking: .resp, now: { (0, 0) }) }, [RESPValueEncoder.command("GET", "a")], storage: storage, feeding: .whole)
        statistics.endBatch(nanoseconds: 3_000_000)
        let get = statistics.durations(slot: Self.slot("get"))
        #expect(get.counts[0] == 1 && get.counts[CommandStatistics.durationBounds.firstIndex(of: 5_000_000)!] == 1)
    }

    @Test func bucketsTakeTheFirstBoundAtOrAboveTheValue() {
        var buckets = BucketCounts(bounds: [10, 20])
        for value: UInt64 in [0, 10, 11, 20, 21, 1_000] { buckets.record(value) }
        #expect(buckets.counts == [2, 2, 2])
        #expect(buckets.sums == [10, 31, 1_021])
    }
}

/// RESP commands as bytes, for these tests.
enum RESPValueEncoder {
    static func command(_ words: String...) -> [UInt8] {
        var bytes = Array("*\(words.count)\r\n".utf8)
        for word in words { bytes += Array("$\(word.utf8.count)\r\n\(word)\r\n".utf8) }
        return bytes
    }
}
