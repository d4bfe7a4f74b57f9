// The plain settings of one kvbench run, built from the flags by KVBench.run() and handed to
// BenchRunner. No parsing or I/O here.

/// How the load is bounded: a number of requests, or a wall-clock duration.
enum BenchLimit: Equatable, Sendable {
    case requests(Int)
    case duration(seconds: Double)
}

/// SET:GET weights, e.g. 1:1, 1:0 (SET only), 0:1 (GET only). At least one is non-zero.
struct Ratio: Equatable, Sendable, CustomStringConvertible {
    var sets: Int
    var gets: Int

    /// Parses `S:G` with non-negative integers, not both zero.
    init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let sets = Int(parts[0]), let gets = Int(parts[1]),
              sets >= 0, gets >= 0, sets > 0 || gets > 0, sets <= 1_000_000, gets <= 1_000_000
        else { return nil }
        self.sets = sets
        self.gets = gets
    }

    var description: String { "\(self.sets):\(self.gets)" }
}

struct BenchConfiguration: Sendable {
    var host = "127.0.0.1"
    var port = 9877
    var wireProtocol = WireProtocol.line
    var connections = 50
    var pipeline = 1
    var limit = BenchLimit.requests(100_000)
    var ratio = Ratio("1:1")!
    var keyspace = 100_000
    var valueSize = 16
    var keyPrefix = "kvbench:"
    var distribution = KeyDistribution.uniform
    /// Open loop at this many requests per second over all connections; nil: closed loop.
    var rate: Double?
    /// Sent first on every connection (RESP `AUTH`, line `auth`).
    var password: String?
    var preload = false
    var seed: UInt64 = 1
    /// Draw a progress line on stderr (only when it is a terminal).
    var showProgress = false
    /// Keep per-100 ms throughput for the plot.
    var recordTimeline = false
    /// Give up when no reply arrives for this long while requests are outstanding.
    var stallTimeoutSeconds = 30.0
}
