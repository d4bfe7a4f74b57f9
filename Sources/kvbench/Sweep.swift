// --sweep P99_MS: what rate can this server hold with p99 within the target? A closed-loop run
// finds the ceiling; open-loop steps then start at 10% of it and rise 25% a step, each as long as
// --duration, until p99 passes the target or the achieved rate falls below 95% of the intended
// one. Prints a row per step as it finishes (or, with --json, one object at the end) and the
// highest rate within the target. Each row also shows the send lag's p99 (how late requests left
// their due time), so a step lost to the client or the machine can be told from one lost to the
// server. Runs are BenchRunners, one after the other; with --workload pubsub, FlowRunners (the
// rate is messages published, p99 is publish to delivery, and a step that lost a delivery is not
// within the target).

import Foundation

struct Sweep {
    /// One open-loop step.
    struct Step {
        let intendedRate: Double
        let result: BenchResult
        let latencies: Report.Latencies
        let withinTarget: Bool
        /// A flow's count of what was lost or duplicated (nil for request workloads).
        let tally: FlowTally?
    }

    let configuration: BenchConfiguration
    let targetP99Milliseconds: Double
    let json: Bool
    private(set) var ceiling = 0.0
    private(set) var steps: [Step] = []

    /// Steps at most (10% × 1.25^k passes the ceiling after 11 steps; the stop rule ends it
    /// long before this unless the ceiling run was far below what the server can do).
    static let maximumSteps = 40

    init(configuration: BenchConfiguration, targetP99Milliseconds: Double, json: Bool) {
        self.configuration = configuration
        self.targetP99Milliseconds = targetP99Milliseconds
        self.json = json
    }

    /// The highest intended rate whose step kept the schedule with p99 within the target; 0 if none did.
    var bestRate: Double {
        self.steps.filter(\.withinTarget).map(\.intendedRate).max() ?? 0
    }

    /// Runs the ceiling and the steps, printing as it goes.
    /// - Throws: ``BenchFailure`` from any run.
    mutating func run() throws(BenchFailure) {
        var closed = self.configuration
        closed.rate = nil
        let (ceilingResult, _) = try Self.measure(closed)
        self.ceiling = ceilingResult.opsPerSecond
        guard self.ceiling > 0 else { throw BenchFailure(description: "the closed-loop run completed no requests") }
        let seconds: Double
        if case .duration(let s) = self.configuration.limit { seconds = s } else { seconds = 2 }
        if !self.json {
            let c = self.configuration
            self.emit("""
                kvbench sweep: \(c.host):\(c.port) protocol \(c.wireProtocol.rawValue), \(c.connections) connections, \
                pipeline \(c.pipeline),\(Report.workloadText(c)) \(Report.keysText(c))value \(c.valueSize) B
                  target p99 <= \(BenchRunner.format(self.targetP99Milliseconds, 3)) ms; closed-loop ceiling \
                \(BenchRunner.format(self.ceiling, 0)) ops/s (p99 \(Report(configuration: closed, result: ceilingResult).latencies.p99) µs); \
                steps of \(BenchRunner.format(seconds, 1)) s
                  \(Self.pad("step", 4))  \(Self.pad("rate asked", 12))  \(Self.pad("achieved", 12))  \
                \(Self.pad("p50 ms", 9))  \(Self.pad("p99 ms", 9))  \(Self.pad("p99.9 ms", 9))  \(Self.pad("lag p99", 9))

                """)
        }
        var open = self.configuration
        open.preload = false  // the ceiling run preloaded the keys, if asked to
        var rate = self.ceiling * 0.10
        for index in 0..<Self.maximumSteps {
            open.rate = rate
            let (result, tally) = try Self.measure(open)
            let latencies = Report(configuration: open, result: result).latencies
            let p99Within = Double(latencies.p99) <= self.targetP99Milliseconds * 1000
            let kept = result.scheduleKept
            let whole = (tally?.lost ?? 0) == 0 && (tally?.duplicated ?? 0) == 0
            let step = Step(intendedRate: rate, result: result, latencies: latencies, withinTarget: p99Within && kept && whole, tally: tally)
            self.steps.append(step)
            if !self.json {
                var note = step.withinTarget ? "" : !kept ? "  achieved < 95% of asked: stop"
                    : !p99Within ? "  p99 over target: stop" : "  \(tally?.lost ?? 0) lost, \(tally?.duplicated ?? 0) duplicated: stop"
                if result.errors > 0 { note += "  (\(result.errors) errors)" }
                self.emit("  \(Self.pad(String(index + 1), 4))  \(Self.pad(BenchRunner.format(rate, 0), 12))  "
                    + "\(Self.pad(BenchRunner.format(result.opsPerSecond, 0), 12))  \(Self.pad(Self.ms(latencies.p50), 9))  "
                    + "\(Self.pad(Self.ms(latencies.p99), 9))  \(Self.pad(Self.ms(latencies.p999), 9))  "
                    + "\(Self.pad(Self.ms(Self.lagP99(result)), 9))\(note)\n")
            }
            if !step.withinTarget { break }
            rate *= 1.25
        }
        if self.json {
            self.emit(self.jsonText)
        } else if self.bestRate > 0 {
            self.emit("  best: \(BenchRunner.format(self.bestRate, 0)) ops/s with p99 <= "
                + "\(BenchRunner.format(self.targetP99Milliseconds, 3)) ms\n")
        } else {
            self.emit("  best: none; even the first step (10% of the ceiling) missed the target\n")
        }
        if !self.json, let note = Report.keysLeftNote(self.configuration) { self.emit(note) }
    }

    /// One run of the sweep: a request workload's BenchRunner, or a flow's FlowRunner.
    private static func measure(_ configuration: BenchConfiguration) throws(BenchFailure) -> (BenchResult, FlowTally?) {
        guard configuration.workload.isFlow else { return (try BenchRunner(configuration: configuration).run(), nil) }
        let (result, tally) = try FlowRunner(configuration: configuration).run()
        return (result, tally)
    }

    /// One JSON object: the target, the ceiling, every step and the best rate.
    var jsonText: String {
        let steps = self.steps.map { step in
            let l = step.latencies
            var fields: [(String, String)] = [
                ("intended_rate", BenchRunner.format(step.intendedRate, 1)),
                ("ops_per_sec", BenchRunner.format(step.result.opsPerSecond, 1)),
                ("p50_us", String(l.p50)), ("p90_us", String(l.p90)), ("p99_us", String(l.p99)),
                ("p999_us", String(l.p999)), ("max_us", String(l.max)),
                ("errors", String(step.result.errors)), ("requests", String(step.result.requests)),
                ("unsent_requests", String(step.result.unsentRequests)),
                ("send_lag_p99_us", String(Self.lagP99(step.result))),
                ("within_target", step.withinTarget ? "true" : "false"),
            ]
            if let tally = step.tally {
                fields += [("delivered", String(tally.delivered)), ("lost", String(tally.lost)), ("duplicated", String(tally.duplicated))]
            }
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }
        let c = self.configuration
        let fields: [(String, String)] = [
            ("target_p99_ms", BenchRunner.format(self.targetP99Milliseconds, 3)),
            ("ceiling_ops_per_sec", BenchRunner.format(self.ceiling, 1)),
            ("best_rate", BenchRunner.format(self.bestRate, 1)),
            ("steps", "[" + steps.joined(separator: ",") + "]"),
            ("protocol", Report.quote(c.wireProtocol.rawValue)), ("host", Report.quote(c.host)), ("port", String(c.port)),
            ("connections", String(c.connections)), ("pipeline", String(c.pipeline)),
            ("ratio", Report.quote(c.ratio.description)), ("keyspace", String(c.keyspace)),
            ("distribution", Report.quote(c.distribution.description)), ("value_size", String(c.valueSize)),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    /// Latency against throughput, one line per percentile.
    func plot() -> SweepPlot {
        let c = self.configuration
        return SweepPlot(
            title: "kvbench sweep: \(c.host):\(c.port) \(c.wireProtocol.rawValue), best \(BenchRunner.format(self.bestRate, 0)) ops/s "
                + "with p99 ≤ \(BenchRunner.format(self.targetP99Milliseconds, 2)) ms",
            subtitle: "open loop, \(c.connections) connections, pipeline \(c.pipeline), ratio \(c.ratio), keyspace \(c.keyspace) "
                + "\(c.distribution), value \(c.valueSize) B; closed-loop ceiling \(BenchRunner.format(self.ceiling, 0)) ops/s",
            points: self.steps.map { step in
                SweepPlot.Point(throughput: step.result.opsPerSecond,
                                latenciesMicroseconds: [step.latencies.p50, step.latencies.p90, step.latencies.p99,
                                                        step.latencies.p999])
            },
            targetMilliseconds: self.targetP99Milliseconds)
    }

    private func emit(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// How late the step's requests left, p99, in µs: kvbench's (or the machine's) share of the latency.
    private static func lagP99(_ result: BenchResult) -> UInt64 {
        result.sendLag.totalCount > 0 ? result.sendLag.valueAtPercentile(99) : 0
    }

    private static func ms(_ microseconds: UInt64) -> String { BenchRunner.format(Double(microseconds) / 1000, 3) }

    private static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
