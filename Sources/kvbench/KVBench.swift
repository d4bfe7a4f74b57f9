// kvbench's entry point: flags become a BenchConfiguration, BenchRunner drives the load on one
// event loop, and the result is printed (summary, or one JSON object) and optionally plotted.
// With --sweep, Sweep runs a series of runs instead. Bad flags: one line on stderr, exit 2. A
// refused or lost connection: one line naming host:port, exit 3; any other failure: exit 1.

import ArgumentParser
import Foundation
import Services

extension WireProtocol: ExpressibleByArgument {}
extension BenchWorkload: ExpressibleByArgument {}

@main
struct KVBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvbench",
        abstract: "Load generator for the reactord kv service (line protocol or RESP) and memcached.",
        // One paragraph a line: the library wraps them to the terminal.
        discussion: """
            Opens CONNECTIONS connections on one event-loop thread. Closed loop (the default), each keeps PIPELINE requests in flight and sends the next as soon as a reply arrives. Open loop (--rate), requests fall due on a fixed schedule spread over the connections whatever the replies, and each latency runs from the request's due time, so a server that stalls shows the stall in the percentiles (no coordinated omission); PIPELINE caps the requests in flight per connection. Keys (kvbench:000123) are drawn from the keyspace uniformly or by Zipf; SET and GET are mixed by --ratio. The first 1% of the requests (or 0.5 s with --duration) are left out of the latency figures as warm-up.

            The keys SET stay on the server afterwards, under --key-prefix (kvbench:*); against a default reactord they end up in its ./data.

            --workload: kv (SET/GET, the default), hash (HSET/HGET of fields in hashes of --fields fields: --keyspace counts fields, --ratio mixes HSET:HGET), set (SADD/SISMEMBER, likewise), script (EVALSHA of --script FILE on one key per call, its value the argument; the script is loaded once with SCRIPT LOAD), queue (-c producers LPUSH, --consumers wait in BRPOP; latency from push to pop), scheduler (-c producers ZADD jobs due --delay-ms later, --consumers pollers take due ones with ZRANGEBYSCORE and ZREM; latency from due to taken), pubsub (-c publishers PUBLISH round robin to --channels channels that --consumers subscribers are spread over, by name or --patterns, read by --threads loops of their own; --slow-subscribers never read; latency from publish to delivery). The flows count what was lost or duplicated; -n counts messages. All but kv speak RESP.

            --sweep P99_MS: a closed-loop run finds the ceiling, then open-loop steps from 10% of it, each 25% above the last and --duration long (default 2 s), until p99 passes P99_MS or the achieved rate falls below 95% of the intended (pubsub: or a delivery is lost); prints a row per step and the highest rate within the target. With --workload pubsub the rates are messages published per second and p99 is publish to delivery.

            Exit status: 0 done, 1 failure (authentication, writing the plot), 2 bad flags, 3 cannot connect or the server was lost.

            Examples:
              kvbench -n 200000 -c 50 -P 16
              kvbench --protocol resp --port 6379 --duration 10 --ratio 1:9 --preload --json
              kvbench --rate 50000 --duration 10 --distribution zipf:1.1
              kvbench --protocol memcache --port 11211 --sweep 1 --plot sweep.svg
              kvbench --protocol resp --workload hash --fields 10 --keyspace 1000000 --ratio 1:4 --preload
              kvbench --protocol resp --workload set --ratio 1:0 -P 16
              kvbench --protocol resp --workload script --script limiter.lua --rate 20000 --duration 10
              kvbench --protocol resp --workload queue -c 4 --consumers 16 --rate 10000 --duration 10
              kvbench --protocol resp --workload scheduler -c 4 --consumers 10 --rate 20000 --duration 60
              kvbench --protocol resp --workload pubsub -c 1 --consumers 1000 -n 10000
              kvbench --protocol resp --workload pubsub -c 4 --channels 1000 --consumers 10000 --slow-subscribers 1 --rate 1000 --duration 30
              kvbench --protocol resp --workload pubsub -c 4 --channels 1000 --consumers 10000 --threads 2 --sweep 1
            """,
        version: PackageVersion.current)

    @Option(help: "Server address (numeric IPv4 or IPv6, or localhost).")
    var host = "127.0.0.1"
    @Option(help: "Server port.")
    var port = 9877
    @Option(name: .customLong("protocol"), help: "Wire protocol: line, resp or memcache (memcached's text protocol).")
    var wireProtocol = WireProtocol.line
    @Option(name: [.customShort("c"), .customLong("connections")], help: "Number of connections.")
    var connections = 50
    @Option(name: [.customShort("P"), .customLong("pipeline")], help: "Requests in flight per connection.")
    var pipeline = 1
    @Option(name: [.customShort("n"), .customLong("requests")], help: "Total requests to send (default 100000).")
    var requests: Int?
    @Option(help: "Run for this many seconds instead of a request count (with --sweep: each step, default 2).")
    var duration: Double?
    @Option(help: "Open loop: requests per second over all connections, on a fixed schedule.")
    var rate: Double?
    @Option(help: "SET:GET mix, e.g. 1:1, 1:0 (SET only), 0:1 (GET only).")
    var ratio = "1:1"
    @Option(help: "Number of distinct keys.")
    var keyspace = 100_000
    @Option(help: "Key popularity: uniform, or zipf[:S] (exponent S, default 0.99; key 0 the hottest).")
    var distribution = "uniform"
    @Option(name: .customLong("value-size"), help: "Bytes per SET value.")
    var valueSize = 16
    @Option(name: .customLong("key-prefix"), help: "What every key begins with.")
    var keyPrefix = "kvbench:"
    @Option(help: "What the requests do: kv (SET/GET), hash (HSET/HGET), set (SADD/SISMEMBER) or script (EVALSHA); all but kv need --protocol resp.")
    var workload = BenchWorkload.kv
    @Option(help: "Consumers (queue: each waits in BRPOP) or subscribers (pubsub), besides the -c producers (default: as many as producers).")
    var consumers: Int?
    @Option(help: "Pub/sub: channels the subscribers are spread over (messages go round robin).")
    var channels = 1
    @Flag(help: "Pub/sub: subscribers PSUBSCRIBE to a pattern matching their channel.")
    var patterns = false
    @Option(help: "Pub/sub: reader loops (threads) the subscribers are spread over, besides the publishers' loop.")
    var threads = 1
    @Option(name: .customLong("slow-subscribers"), help: "Pub/sub: this many more subscribers listen to every channel and never read (the server should close them at its output limit).")
    var slowSubscribers = 0
    @Option(name: .customLong("delay-ms"), help: "Scheduler: a job falls due this many milliseconds after it is added.")
    var delayMilliseconds = 100
    @Option(help: "Fields per hash, members per set (--workload hash or set).")
    var fields = 10
    @Option(help: "A Lua script file for --workload script, called with one key (KEYS[1]) and the value (ARGV[1]); default: read the key, write the value, return the old one.")
    var script: String?
    @Option(help: "Authenticate every connection first (RESP AUTH, line auth).")
    var password: String?
    @Option(help: "Find the highest open-loop rate whose p99 stays within this many milliseconds.")
    var sweep: Double?
    @Flag(help: "SET every key of the keyspace first, so GETs hit.")
    var preload = false
    @Option(help: "Seed for the key and command choice (same seed, same sequence per connection).")
    var seed: UInt64 = 1
    @Flag(help: "Print only one JSON object on stdout.")
    var json = false
    @Option(help: "Write an SVG plot to this file (a run: throughput over time and latency by percentile; a sweep: latency against throughput).")
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
        if let plot = self.plot {
            guard !plot.isEmpty else { throw ValidationError("--plot needs a file name") }
            // Checked before the run, not after minutes of load.
            let folder = URL(fileURLWithPath: plot).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--plot \(plot): the folder \(folder) does not exist")
            }
        }
        if let rate = self.rate, !(rate > 0 && rate <= 100_000_000) {
            throw ValidationError("--rate must be more than 0 and at most 100000000 requests per second")
        }
        guard KeyDistribution(self.distribution) != nil else {
            throw ValidationError("--distribution must be uniform, zipf or zipf:S with 0 < S <= 10 (got '\(self.distribution)')")
        }
        guard self.keyPrefix.utf8.count <= 200,
              !self.keyPrefix.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            throw ValidationError("--key-prefix must be at most 200 bytes without spaces or control characters")
        }
        if let password = self.password {
            if self.wireProtocol == .memcache {
                throw ValidationError("--password is not available with --protocol memcache (its text protocol has no AUTH)")
            }
            if password.isEmpty || password.contains(where: { $0 == "\n" || $0 == "\r" }) {
                throw ValidationError("--password must be non-empty and on one line")
            }
        }
        if self.workload != .kv && self.wireProtocol != .resp {
            throw ValidationError("--workload \(self.workload.rawValue) needs --protocol resp (it sends Redis commands)")
        }
        guard (1...1_000_000).contains(self.fields) else { throw ValidationError("--fields must be 1 to 1000000") }
        if self.channels != 1 || self.patterns || self.slowSubscribers != 0 {
            guard self.workload == .pubsub else {
                throw ValidationError("--channels, --patterns and --slow-subscribers are for --workload pubsub")
            }
        }
        guard (1...100_000).contains(self.channels) else { throw ValidationError("--channels must be 1 to 100000") }
        guard (1...64).contains(self.threads) else { throw ValidationError("--threads must be 1 to 64") }
        if self.threads != 1 && self.workload != .pubsub { throw ValidationError("--threads is for --workload pubsub") }
        guard (0...100_000).contains(self.slowSubscribers) else { throw ValidationError("--slow-subscribers must be 0 to 100000") }
        guard (0...86_400_000).contains(self.delayMilliseconds) else { throw ValidationError("--delay-ms must be 0 to 86400000") }
        if let consumers = self.consumers {
            guard self.workload.isFlow else { throw ValidationError("--consumers is for --workload queue or pubsub") }
            guard (1...100_000).contains(consumers) else { throw ValidationError("--consumers must be 1 to 100000") }
        }
        if self.workload.isFlow {
            if self.sweep != nil && self.workload != .pubsub { throw ValidationError("--sweep is not available with --workload \(self.workload.rawValue)") }
            if self.preload { throw ValidationError("--preload is not available with --workload \(self.workload.rawValue)") }
        }
        if self.script != nil && self.workload != .script {
            throw ValidationError("--script is for --workload script")
        }
        if let path = self.script, !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("--script \(path): no such readable file")
        }
        if let target = self.sweep {
            guard target > 0 && target <= 60_000 else { throw ValidationError("--sweep must be more than 0 and at most 60000 ms") }
            if self.rate != nil { throw ValidationError("--sweep and --rate cannot be used together (the sweep picks the rates)") }
            if self.requests != nil { throw ValidationError("--sweep and -n/--requests cannot be used together (steps last --duration)") }
        }
    }

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as BenchFailure {
            FileHandle.standardError.write(Data("kvbench: \(failure.description)\n".utf8))
            Foundation.exit(failure.exitCode)
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
        } else if self.sweep != nil {
            config.limit = .duration(seconds: 2)
        } else {
            config.limit = .requests(self.requests ?? 100_000)
        }
        config.ratio = Ratio(self.ratio)!  // validate() proved it parses
        config.keyspace = self.keyspace
        config.valueSize = self.valueSize
        config.keyPrefix = self.keyPrefix
        config.workload = self.workload
        config.elementsPerKey = self.fields
        config.consumers = self.consumers ?? self.connections
        config.channels = self.channels
        config.patterns = self.patterns
        config.slowSubscribers = self.slowSubscribers
        config.readerThreads = self.threads
        config.delayMilliseconds = self.delayMilliseconds
        if let path = self.script {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw BenchFailure(description: "cannot read --script \(path)")
            }
            config.script = text
        }
        config.distribution = KeyDistribution(self.distribution)!  // validate() proved it parses
        config.rate = self.rate
        config.password = self.password
        config.preload = self.preload
        config.seed = self.seed
        config.showProgress = isatty(2) != 0
        config.recordTimeline = self.plot != nil && self.sweep == nil

        if let target = self.sweep {
            var sweep = Sweep(configuration: config, targetP99Milliseconds: target, json: self.json)
            try sweep.run()
            if let path = self.plot { try Self.write(sweep.plot().render(), to: path) }
            return
        }
        if config.workload.isFlow {
            let (result, tally) = try FlowRunner(configuration: config).run()
            let report = Report(configuration: config, result: result, tally: tally)
            FileHandle.standardOutput.write(Data((self.json ? report.json : report.summary).utf8))
            return
        }
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
            try Self.write(plot.render(), to: path)
        }
        let output = self.json ? report.json : report.summary
        FileHandle.standardOutput.write(Data(output.utf8))
    }

    static func write(_ text: String, to path: String) throws(BenchFailure) {
        // open(2), not Data.write: its error names the cause ("No such file or directory"), where
        // Foundation's says only that "the file" does not exist.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchFailure(description: "cannot write --plot \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw BenchFailure(description: "cannot write --plot \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}
