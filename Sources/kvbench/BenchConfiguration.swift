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

/// What the requests do (`--workload`).
enum BenchWorkload: String, CaseIterable, Sendable {
    /// SET and GET of strings (any protocol).
    case kv
    /// HSET and HGET of fields in hashes of `--fields` fields each (RESP).
    case hash
    /// SADD and SISMEMBER of members in sets of `--fields` members each (RESP).
    case set
    /// EVALSHA of one script (`--script`, or a read-then-write default) on one key (RESP).
    case script
    /// Producers LPUSH, consumers wait in BRPOP: push-to-pop latency, lost and duplicated elements.
    case queue
    /// Producers ZADD jobs due `--delay-ms` later, pollers take due ones (ZRANGEBYSCORE + ZREM):
    /// due-to-taken latency, lost and doubled jobs.
    case scheduler
    /// Publishers PUBLISH to a channel every subscriber listens on: publish-to-delivery latency, lost
    /// and duplicated messages.
    case pubsub

    /// Whether the workload is a flow of messages between producers and consumers (FlowRunner.swift).
    var isFlow: Bool { self == .queue || self == .scheduler || self == .pubsub }
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
    var workload = BenchWorkload.kv
    /// Fields per hash, members per set (the collection workloads).
    var elementsPerKey = 10
    /// Consumers (queue) or subscribers (pubsub), besides the `connections` producers.
    var consumers = 1
    /// Pub/sub: channels (subscribers spread over them, messages round robin), whether subscribers
    /// use patterns, and subscribers to every channel that never read.
    var channels = 1
    var patterns = false
    var slowSubscribers = 0
    /// Pub/sub: the reader loops (threads) the subscribers are spread over.
    var readerThreads = 1
    /// Scheduler: how long after it is added a job falls due.
    var delayMilliseconds = 100
    /// The script workload's Lua text.
    var script = BenchConfiguration.defaultScript
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

extension BenchConfiguration {
    /// The script workload's default: read the key, write the argument to it, return the old value
    /// (a read and a write per call, as a lock or a compare-and-set does).
    static let defaultScript = "local old = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1]) return old"
}
