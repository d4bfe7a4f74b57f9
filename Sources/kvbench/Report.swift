// Turns a BenchResult into the human summary (stdout) and the --json object. Formatting only.

import Histogram

struct Report {
    let configuration: BenchConfiguration
    let result: BenchResult
    /// The flow workloads' count of what arrived (nil for the others).
    var tally: FlowTally? = nil

    struct Latencies {
        var p50: UInt64, p90: UInt64, p99: UInt64, p999: UInt64, max: UInt64
    }

    var latencies: Latencies {
        let h = self.result.histogram
        guard h.totalCount > 0 else { return Latencies(p50: 0, p90: 0, p99: 0, p999: 0, max: 0) }
        return Latencies(p50: h.valueAtPercentile(50), p90: h.valueAtPercentile(90), p99: h.valueAtPercentile(99),
                         p999: h.valueAtPercentile(99.9), max: h.max)
    }

    var limitText: String {
        switch self.configuration.limit {
        case .requests(let n): return "\(n) requests"
        case .duration(let s): return "\(BenchRunner.format(s, 1)) s"
        }
    }

    var loopText: String {
        self.configuration.rate.map { "open loop at \(BenchRunner.format($0, 0)) ops/s" } ?? "closed loop"
    }

    /// Open loop: how the achieved rate compares with the intended one, loudly when the schedule
    /// was not kept (the run is then not the load that was asked for).
    var rateText: String {
        guard let intended = self.result.intendedRate else { return "" }
        let r = self.result
        let share = intended > 0 ? r.opsPerSecond / intended * 100 : 0
        if r.scheduleKept {
            return " (intended \(BenchRunner.format(intended, 0)) ops/s, \(BenchRunner.format(share, 1))%; "
                + "latency measured from each request's due time)"
                + (r.unsentRequests > 0 ? "\n  unsent      \(r.unsentRequests) requests due were waiting at the pipeline cap "
                    + "when the duration ended" : "")
        }
        return "\n  SCHEDULE NOT KEPT: achieved \(BenchRunner.format(r.opsPerSecond, 0)) of intended "
            + "\(BenchRunner.format(intended, 0)) ops/s (\(BenchRunner.format(share, 1))%)"
            + (r.unsentRequests > 0 ? "; \(r.unsentRequests) requests due were never sent" : "")
            + "; latencies include the wait for the server"
    }

    /// The human-readable summary, several lines ending in a newline.
    var summary: String {
        let c = self.configuration
        let r = self.result
        let l = self.latencies
        var text = """
            kvbench: \(c.host):\(c.port) protocol \(c.wireProtocol.rawValue),\(Self.workloadText(c)) \(c.connections) connections, \
            pipeline \(c.pipeline), \(self.loopText), \(self.limitText), \(Self.keysText(c))value \(c.valueSize) B

            """
        if r.preloadedKeys > 0 {
            text += "  preload     \(r.preloadedKeys) keys in \(BenchRunner.format(r.preloadSeconds, 2)) s"
                + (r.preloadErrors > 0 ? ", \(r.preloadErrors) ERRORS" : "") + "\n"
        }
        text += """
              requests    \(r.requests) in \(BenchRunner.format(r.elapsedSeconds, 3)) s  \
            (replies \(r.replies), errors \(r.errors), misses \(r.misses))
              throughput  \(BenchRunner.format(r.opsPerSecond, 0)) ops/s\(self.rateText)
              latency µs  p50 \(l.p50)  p90 \(l.p90)  p99 \(l.p99)  p99.9 \(l.p999)  max \(l.max)  \
            (\(r.histogram.totalCount) samples; first \(r.warmupRequests) replies excluded as warm-up)

            """
        if let t = self.tally {
            let trip = c.workload == .queue ? "push to pop" : c.workload == .scheduler ? "due to taken" : "publish to delivery"
            text += "  flow        \(t.produced) sent, \(t.delivered) delivered, \(t.lost) LOST, \(t.duplicated) DUPLICATED "
                + "(latency: \(trip))\n"
            if c.slowSubscribers > 0 {
                text += "  slow        \(t.slowClosed) of \(c.slowSubscribers) subscribers that stopped reading were closed by the server\n"
            }
        }
        if r.intendedRate != nil && r.sendLag.totalCount > 0 {
            text += "  send lag µs p50 \(r.sendLag.valueAtPercentile(50))  p99 \(r.sendLag.valueAtPercentile(99))  "
                + "max \(r.sendLag.max)  (sent after due: waiting at the -P cap, or kvbench/the machine late)\n"
        }
        if r.errors > 0 {
            text += "  errors      \(r.errors) requests failed" + (r.lastError.map { "; last error reply: \($0)" } ?? "") + "\n"
        }
        if let note = Self.keysLeftNote(c) { text += note }
        return text
    }

    /// `ratio 1:1, keyspace 100000 uniform, ` (a flow has one key and no mix: nothing).
    static func keysText(_ c: BenchConfiguration) -> String {
        c.workload.isFlow ? "" : "ratio \(c.ratio), keyspace \(c.keyspace) \(c.distribution), "
    }

    /// ` workload hash (10 fields per hash),` for the workloads beyond SET/GET; empty for kv.
    static func workloadText(_ c: BenchConfiguration) -> String {
        switch c.workload {
        case .kv: ""
        case .hash: " workload hash (\(c.elementsPerKey) fields per hash),"
        case .set: " workload set (\(c.elementsPerKey) members per set),"
        case .script: " workload script,"
        case .queue: " workload queue (\(c.consumers) consumers),"
        case .scheduler: " workload scheduler (\(c.consumers) pollers, due after \(c.delayMilliseconds) ms),"
        case .pubsub:
            " workload pubsub (\(c.consumers) subscribers on \(c.channels) \(c.patterns ? "patterns" : "channels")"
                + (c.slowSubscribers > 0 ? ", \(c.slowSubscribers) slow" : "") + "),"
        }
    }

    /// The line saying where the run's keys stayed (a run against a default reactord stores them
    /// in its ./data), or nil when nothing was written (or, for the flows, nothing stays).
    static func keysLeftNote(_ c: BenchConfiguration) -> String? {
        guard !c.workload.isFlow, c.ratio.sets > 0 || c.preload || c.workload == .script else { return nil }
        let keys =
            switch c.workload {
            case .kv, .script: "\(c.keyspace) keys"
            case .queue, .scheduler, .pubsub: "no keys"
            case .hash: "\((c.keyspace + c.elementsPerKey - 1) / c.elementsPerKey) hashes"
            case .set: "\((c.keyspace + c.elementsPerKey - 1) / c.elementsPerKey) sets"
            }
        return "  keys        left on the server: up to \(keys) named \(c.keyPrefix)* (--key-prefix)\n"
    }

    /// One JSON object on one line.
    var json: String {
        let c = self.configuration
        let r = self.result
        let l = self.latencies
        var fields: [(String, String)] = [
            ("ops_per_sec", BenchRunner.format(r.opsPerSecond, 1)),
            ("p50_us", String(l.p50)), ("p90_us", String(l.p90)), ("p99_us", String(l.p99)),
            ("p999_us", String(l.p999)), ("max_us", String(l.max)),
            ("errors", String(r.errors)), ("requests", String(r.requests)),
            ("replies", String(r.replies)), ("misses", String(r.misses)),
            ("elapsed_s", BenchRunner.format(r.elapsedSeconds, 6)),
            ("latency_samples", String(r.histogram.totalCount)), ("warmup_requests", String(r.warmupRequests)),
            ("protocol", Self.quote(c.wireProtocol.rawValue)), ("host", Self.quote(c.host)), ("port", String(c.port)),
            ("connections", String(c.connections)), ("pipeline", String(c.pipeline)),
            ("ratio", Self.quote(c.ratio.description)), ("keyspace", String(c.keyspace)),
            ("value_size", String(c.valueSize)), ("key_prefix", Self.quote(c.keyPrefix)),
            ("distribution", Self.quote(c.distribution.description)),
        ]
        if c.workload != .kv {
            fields.append(("workload", Self.quote(c.workload.rawValue)))
            if c.workload == .hash || c.workload == .set { fields.append(("elements_per_key", String(c.elementsPerKey))) }
            if let t = self.tally {
                fields.append(("consumers", String(c.consumers)))
                fields.append(("delivered", String(t.delivered)))
                fields.append(("lost", String(t.lost)))
                fields.append(("duplicated", String(t.duplicated)))
                if c.slowSubscribers > 0 { fields.append(("slow_subscribers_closed", String(t.slowClosed))) }
            }
        }
        if let intended = r.intendedRate {
            fields.append(("intended_rate", BenchRunner.format(intended, 1)))
            fields.append(("schedule_kept", r.scheduleKept ? "true" : "false"))
            fields.append(("unsent_requests", String(r.unsentRequests)))
            let lag = r.sendLag
            fields.append(("send_lag_p50_us", String(lag.totalCount > 0 ? lag.valueAtPercentile(50) : 0)))
            fields.append(("send_lag_p99_us", String(lag.totalCount > 0 ? lag.valueAtPercentile(99) : 0)))
            fields.append(("send_lag_max_us", String(lag.max)))
        }
        if c.preload {
            fields.append(("preloaded_keys", String(r.preloadedKeys)))
            fields.append(("preload_errors", String(r.preloadErrors)))
        }
        if let last = r.lastError { fields.append(("last_error", Self.quote(last))) }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
