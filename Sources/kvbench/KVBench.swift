// kvbench's entry point: flags become a BenchConfiguration, BenchRunner drives the load on one
// event loop, and the result is printed (summary, or one JSON object) and optionally plotted.
// Bad flags: one line on stderr, exit 2. A refused or lost connection: one line, exit 1.

import ArgumentParser
import Foundation

extension WireProtocol: ExpressibleByArgument {}

@main
struct KVBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvbench",
        abstract: "Load generator for the reactord kv service (line protocol or RESP).",
        discussion: """
            Opens CONNECTIONS connections on one event-loop thread; each keeps PIPELINE requests in
            flight and sends the next as soon as a reply arrives. Keys (key:000123) are drawn
            uniformly from the keyspace; SET and GET are mixed by --ratio. The first 1% of the
            requests (or 0.5 s with --duration) are left out of the latency figures as warm-up.

            Examples:
              kvbench -n 200000 -c 50 -P 16
              kvbench --protocol resp --port 6379 --duration 10 --ratio 1:9 --preload --json
              kvbench --plot run.svg
            """)

    @Option(help: "Server address (numeric IPv4 or IPv6, or localhost).")
    var host = "127.0.0.1"
    @Option(help: "Server port.")
    var port = 9877
    @Option(name: .customLong("protocol"), help: "Wire protocol: line or resp.")
    var wireProtocol = WireProtocol.line
    @Option(name: [.customShort("c"), .customLong("connections")], help: "Number of connections.")
    var connections = 50
    @Option(name: [.customShort("P"), .customLong("pipeline")], help: "Requests in flight per connection.")
    var pipeline = 1
    @Option(name: [.customShort("n"), .customLong("requests")], help: "Total requests to send (default 100000).")
    var requests: Int?
    @Option(help: "Run for this many seconds instead of a request count.")
    var duration: Double?
    @Option(help: "SET:GET mix, e.g. 1:1, 1:0 (SET only), 0:1 (GET only).")
    var ratio = "1:1"
    @Option(help: "Number of distinct keys.")
    var keyspace = 100_000
    @Option(name: .customLong("value-size"), help: "Bytes per SET value.")
    var valueSize = 16
    @Flag(help: "SET every key of the keyspace first, so GETs hit.")
    var preload = false
    @Option(help: "Seed for the key and command choice (same seed, same sequence per connection).")
    var seed: UInt64 = 1
    @Flag(help: "Print only one JSON object on stdout.")
    var json = false
    @Option(help: "Write an SVG plot (throughput over time, latency by percentile) to this file.")
    var plot: String?

    func validate() throws {
        guard (1...65535).contains(self.port) else { throw ValidationError("--port must be 1 to 65535") }
        guard self.connections >= 1 else { throw ValidationError("-c/--connections must be at least 1") }
        guard self.connections <= 100_000 else { throw ValidationError("-c/--connections must be at most 100000") }
        guard self.pipeline >= 1 else { throw ValidationError("-P/--pipeline must be at least 1") }
        guard self.pipeline <= 100_000 else { throw ValidationError("-P/--pipeline must be at most 100000") }
        guard self.connections * self.pipeline <= 10_000_000 else {
            throw ValidationError("-c/--connections times -P/--pipeline must be at most 10000000")
        }
        if self.requests != nil && self.duration != nil {
            throw ValidationError("-n/--requests and --duration cannot be used together")
        }
        if let n = self.requests, n < 1 { throw ValidationError("-n/--requests must be at least 1") }
        if let d = self.duration, !(d > 0 && d <= 86_400) { throw ValidationError("--duration must be more than 0 and at most 86400 seconds") }
        guard Ratio(self.ratio) != nil else {
            throw ValidationError("--ratio must be SET:GET with whole numbers, not both zero (got '\(self.ratio)')")
        }
        guard self.keyspace >= 1 else { throw ValidationError("--keyspace must be at least 1") }
        guard self.keyspace <= 1_000_000_000_000 else { throw ValidationError("--keyspace must be at most 10^12") }
        guard (0...(64 << 20)).contains(self.valueSize) else { throw ValidationError("--value-size must be 0 to 67108864 bytes") }
        if let plot = self.plot, plot.isEmpty { throw ValidationError("--plot needs a file name") }
    }

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as BenchFailure {
            FileHandle.standardError.write(Data("kvbench: \(failure.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            // README.md: a bad flag is one line naming it on stderr and exit 2 (the library's usage
            // dump and exit 64 are kept for --help and friends only).
            if exitCode(for: error) == .validationFailure {
                let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                FileHandle.standardError.write(Data("kvbench: \(message)\n".utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    func run() throws {
        var config = BenchConfiguration()
        config.host = self.host
        config.port = self.port
        config.wireProtocol = self.wireProtocol
        config.connections = self.connections
        config.pipeline = self.pipeline
        if let duration = self.duration {
            config.limit = .duration(seconds: duration)
        } else {
            config.limit = .requests(self.requests ?? 100_000)
        }
        config.ratio = Ratio(self.ratio)!  // validate() proved it parses
        config.keyspace = self.keyspace
        config.valueSize = self.valueSize
        config.preload = self.preload
        config.seed = self.seed
        config.showProgress = isatty(2) != 0
        config.recordTimeline = self.plot != nil

        let runner = try BenchRunner(configuration: config)
        let result = try runner.run()
        let report = Report(configuration: config, result: result)

        if let path = self.plot {
            let plot = SVGPlot(
                title: "kvbench: \(BenchRunner.format(result.opsPerSecond, 0)) ops/s, p99 \(report.latencies.p99) µs",
                subtitle: "\(config.host):\(config.port) \(config.wireProtocol.rawValue), \(config.connections) connections, "
                    + "pipeline \(config.pipeline), \(report.limitText), ratio \(config.ratio), "
                    + "\(result.requests) requests, \(result.errors) errors",
                timeline: result.timeline, bucketSeconds: Double(BenchRunner.bucketNanoseconds) / 1e9,
                histogram: result.histogram)
            do {
                try Data(plot.render().utf8).write(to: URL(fileURLWithPath: path))
            } catch {
                throw BenchFailure(description: "cannot write --plot \(path): \(error.localizedDescription)")
            }
        }
        let output = self.json ? report.json : report.summary
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
