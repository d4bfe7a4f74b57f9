// Hands the loop's counters to the metrics registry and renders the Prometheus text format, on
// its own serial queue, never on the loop. Counters and gauges are swift-metrics handles
// (Counter, FloatingPointCounter, Gauge) made by swift-prometheus's factory; histograms are that
// registry's own. Only this queue touches the registry; its `emit(into:)` writes the exposition
// format. Counters get the increase since the previous scrape. swift-prometheus histograms take
// one observation at a time, so each bucket's new observations are replayed at that bucket's
// mean (exact bucket counts and sum): work per observation here, on this queue, none on the loop.

import CoreMetrics
import Dispatch
import Prometheus
import Reactor
import Services

/// The metrics registry and what was handed to it. Used on ``queue`` only.
final class MetricsExporter: @unchecked Sendable {
    // @unchecked: every property is touched only on `queue`, the one place this object is used
    // after init (``render(_:completion:)`` hops onto it).
    let queue = DispatchQueue(label: "reactord.metrics")
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private var counters: [String: (handle: CoreMetrics.Counter, handed: Int)] = [:]
    private var floatCounters: [String: (handle: CoreMetrics.FloatingPointCounter, handed: Double)] = [:]
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    private var histograms: [String: (handle: ValueHistogram, handed: BucketCounts?)] = [:]
    private var buffer: [UInt8] = []

    init() {
        self.factory = PrometheusMetricsFactory(registry: self.registry)
    }

    /// Histogram bucket bounds in seconds.
    private static let histogramBounds: [String: [Double]] = [
        "reactord_command_duration_seconds": CommandStatistics.durationBounds.map(MetricsExporter.seconds),
        "reactord_fsync_duration_seconds": ServerMetrics.fsyncBounds.map(MetricsExporter.seconds),
    ]

    /// Hands `snapshot` (and this process's /proc figures) to the registry and renders it, on
    /// the metrics queue; `completion` runs there with the exposition text.
    func render(_ snapshot: MetricsSnapshot, completion: @escaping @Sendable ([UInt8]) -> Void) {
        self.queue.async {
            self.hand(snapshot)
            self.hand(ProcessStatistics.read())
            self.buffer.removeAll(keepingCapacity: true)
            self.registry.emit(into: &self.buffer)
            completion(self.buffer)
        }
    }

    private func hand(_ s: MetricsSnapshot) {
        self.gauge("reactord_build_info", [("version", s.version)], 1)
        for c in s.connections {
            let labels = [("service", c.service)]
            self.gauge("reactord_connections", labels, Double(c.live))
            self.counter("reactord_connections_accepted_total", labels, c.accepted)
            self.counter("reactord_connections_refused_total", labels, c.refused)
        }
        for (i, name) in s.commandNames.enumerated() where s.commandCalls[i] > 0 {
            let labels = [("command", name)]
            self.counter("reactord_commands_total", labels, s.commandCalls[i])
            self.counter("reactord_command_errors_total", labels, s.commandErrors[i])
            self.histogram("reactord_command_duration_seconds", labels, s.commandDurations[i])
        }
        self.gauge("reactord_keys", [], Double(s.keys))
        self.gauge("reactord_keys_with_expiry", [], Double(s.keysWithExpiry))
        self.counter("reactord_expired_keys_total", [], s.expiredKeys)
        self.counter("reactord_evicted_keys_total", [], s.evictedKeys)
        self.gauge("reactord_used_memory_bytes", [], Double(s.usedMemoryBytes))
        self.gauge("reactord_max_memory_bytes", [], Double(s.maxMemoryBytes))
        self.counter("reactord_log_written_bytes_total", [], s.logWrittenBytes)
        self.histogram("reactord_fsync_duration_seconds", [], s.fsyncDurations)
        self.counter("reactord_compactions_total", [("result", "success")], s.compactionsSucceeded)
        self.counter("reactord_compactions_total", [("result", "failure")], s.compactionsFailed)
        self.counter("reactord_loop_iterations_total", [], Int(clamping: s.loop.iterations))
        self.floatCounter("reactord_loop_busy_seconds_total", [], Double(s.loop.busyNanoseconds) / 1e9)
        for (i, bound) in EventLoop.Metrics.slowIterationBounds.enumerated() where i < s.loop.slowIterations.count {
            let over = "\(bound / 1_000_000)"
            self.counter("reactord_loop_slow_iterations_total", [("over_ms", over), ("clock", "wall")],
                         Int(clamping: s.loop.slowIterations[i]))
            self.counter("reactord_loop_slow_iterations_total", [("over_ms", over), ("clock", "cpu")],
                         Int(clamping: s.loop.slowIterationsOnCPU[i]))
        }
        for (name, timing) in [("reactord_loop_longest_iteration_seconds", s.loop.longestIteration),
                               ("reactord_loop_costliest_iteration_seconds", s.loop.costliestIteration)] {
            for (part, nanoseconds) in [("total", timing.nanoseconds), ("cpu", timing.cpuNanoseconds),
                                        ("priority", timing.priorityNanoseconds),
                                        ("bulk", timing.bulkNanoseconds), ("hooks", timing.hooksNanoseconds)] {
                self.gauge(name, [("part", part)], Self.seconds(nanoseconds))
            }
        }
    }

    private func hand(_ p: ProcessStatistics?) {
        guard let p else { return }
        self.gauge("process_resident_memory_bytes", [], Double(p.residentBytes))
        self.floatCounter("process_cpu_seconds_total", [], p.cpuSeconds)
        self.gauge("process_open_fds", [], Double(p.openDescriptors))
        self.gauge("process_start_time_seconds", [], p.startTimeSeconds)
    }

    private static func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        labels.reduce(name) { $0 + "|" + $1.0 + "=" + $1.1 }
    }

    private func gauge(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let key = Self.key(name, labels)
        let handle = self.gauges[key] ?? CoreMetrics.Gauge(label: name, dimensions: labels, factory: self.factory)
        self.gauges[key] = handle
        handle.record(value)
    }

    /// Raises the counter to `total` (the loop's counters only grow).
    private func counter(_ name: String, _ labels: [(String, String)], _ total: Int) {
        let key = Self.key(name, labels)
        var entry = self.counters[key] ?? (CoreMetrics.Counter(label: name, dimensions: labels, factory: self.factory), 0)
        if total > entry.handed { entry.handle.increment(by: Int64(total - entry.handed)) }
        entry.handed = max(entry.handed, total)
        self.counters[key] = entry
    }

    private func floatCounter(_ name: String, _ labels: [(String, String)], _ total: Double) {
        let key = Self.key(name, labels)
        var entry = self.floatCounters[key]
            ?? (CoreMetrics.FloatingPointCounter(label: name, dimensions: labels, factory: self.factory), 0)
        if total > entry.handed { entry.handle.increment(by: total - entry.handed) }
        entry.handed = max(entry.handed, total)
        self.floatCounters[key] = entry
    }

    /// Records the observations `totals` holds beyond what was handed before, each bucket's
    /// new ones at their mean.
    private func histogram(_ name: String, _ labels: [(String, String)], _ totals: BucketCounts) {
        let key = Self.key(name, labels)
        // The registry's own histogram, not swift-metrics' Recorder: the replay below calls it
        // once per observation, and Recorder's generic `record` (unspecialised across modules)
        // cost three times as much per call as the histogram itself.
        var entry = self.histograms[key] ?? (
            self.registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: ""), labels: labels,
                buckets: Self.histogramBounds[name] ?? []),
            nil)
        for i in totals.counts.indices {
            let count = totals.counts[i] - (entry.handed?.counts[i] ?? 0)
            guard count > 0 else { continue }
            let sum = totals.sums[i] &- (entry.handed?.sums[i] ?? 0)
            // The mean of a bucket's observations lies within the bucket, and converting both it
            // and the bound the same way keeps it there.
            let mean = Self.seconds(sum / UInt64(count))
            for _ in 0..<count { entry.handle.record(mean) }
        }
        entry.handed = totals
        self.histograms[key] = entry
    }
}

/// The figures Prometheus's process collector reports, from /proc (Linux only).
struct ProcessStatistics: Sendable {
    var residentBytes = 0
    var cpuSeconds = 0.0
    var openDescriptors = 0
    var startTimeSeconds = 0.0

    /// Reads /proc/self/stat, /proc/stat and /proc/self/fd. - Returns: nil if /proc cannot be read.
    static func read() -> ProcessStatistics? {
        guard let stat = Self.readFile("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else {
            return nil
        }
        // Fields after the command name, which may itself hold spaces and parentheses: field 3
        // (state) is the first; utime is 14, stime 15, starttime 22, rss 24 (proc(5)).
        let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
        let units = Sys.clockTicksAndPageSize()
        let ticks = Double(units.ticksPerSecond)
        let page = Double(units.pageBytes)
        var result = ProcessStatistics()
        result.cpuSeconds = (field(14) + field(15)) / ticks
        result.residentBytes = Int(field(24) * page)
        var bootTime = 0.0
        if let text = Self.readFile("/proc/stat") {
            for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: "btime ".utf8) {
                bootTime = Double(String(decoding: line.dropFirst(6), as: UTF8.self)) ?? 0
            }
        }
        result.startTimeSeconds = bootTime + field(22) / ticks
        if let entries = Sys.countEntries(ofDirectory: "/proc/self/fd") {
            result.openDescriptors = entries - 1  // the directory's own descriptor
        }
        return result
    }

    /// The resident set alone, from /proc/self/statm (INFO memory). - Returns: nil if it cannot be read.
    static func residentBytes() -> Int? {
        guard let statm = Self.readFile("/proc/self/statm") else { return nil }
        let fields = statm.split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Sys.clockTicksAndPageSize().pageBytes
    }

    private static func readFile(_ path: String) -> [UInt8]? { Sys.readWholeFile(path) }
}
