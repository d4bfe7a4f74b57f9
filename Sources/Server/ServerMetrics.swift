// What the loop counts for /metrics, in plain integers it owns: connections per service, fsync
// durations, compactions by result (commands are counted by Services' CommandStatistics, the
// loop's iterations by the EventLoop). Nothing here takes a lock or allocates per request;
// ``snapshot(...)`` copies the lot into a Sendable value when a scrape asks, and the metrics
// queue hands that to the registry (MetricsExporter.swift).

import Reactor
import Services

/// The services that accept connections, as the `service` label names them.
enum ServiceName: Int, CaseIterable, Sendable {
    case kv, echo, time, file, metrics, resp

    var label: String {
        switch self {
        case .kv: "kv"
        case .echo: "echo"
        case .time: "time"
        case .file: "file"
        case .metrics: "metrics"
        case .resp: "resp"
        }
    }
}

/// The loop's counters. Loop thread only.
final class ServerMetrics {
    /// Fsync duration bucket bounds: 100 µs to 5 s.
    static let fsyncBounds: [UInt64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 5_000_000_000,
    ]

    private(set) var live = Array(repeating: 0, count: ServiceName.allCases.count)
    private(set) var accepted = Array(repeating: 0, count: ServiceName.allCases.count)
    private(set) var refused = Array(repeating: 0, count: ServiceName.allCases.count)
    var fsyncDurations = BucketCounts(bounds: ServerMetrics.fsyncBounds)
    var compactionsSucceeded = 0
    var compactionsFailed = 0
    /// Per-command counts, shared with the kv sessions through Persistence.
    let commands = CommandStatistics()

    /// A connection opened: accepted, or served only to be refused (it is live until it closes).
    func opened(_ service: ServiceName, refused: Bool = false) {
        self.live[service.rawValue] += 1
        if refused {
            self.refused[service.rawValue] += 1
        } else {
            self.accepted[service.rawValue] += 1
        }
    }

    func closed(_ service: ServiceName) { self.live[service.rawValue] -= 1 }

    func refusedConnection(_ service: ServiceName) { self.refused[service.rawValue] += 1 }
}

/// Everything one scrape reports, copied on the loop thread.
struct MetricsSnapshot: Sendable {
    var version = ""
    var connections: [(service: String, live: Int, accepted: Int, refused: Int)] = []
    var commandNames: [String] = []
    var commandCalls: [Int] = []
    var commandErrors: [Int] = []
    var commandDurations: [BucketCounts] = []
    var keys = 0
    var keysWithExpiry = 0
    var expiredKeys = 0
    var evictedKeys = 0
    var usedMemoryBytes = 0
    var maxMemoryBytes = 0
    var logWrittenBytes = 0
    var fsyncDurations = BucketCounts(bounds: [])
    var compactionsSucceeded = 0
    var compactionsFailed = 0
    /// The event loop's own counters.
    var loop = EventLoop.Metrics()
}
