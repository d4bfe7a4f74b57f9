// What INFO's commandstats, errorstats and latencystats report, counted as Redis counts them
// (server.c call() and processCommand(), networking.c afterErrorReply()): per command, the calls
// that ran and their total microseconds, the calls refused before running (`rejected_calls`:
// arity, authentication, a transaction's or memory limit's refusal) and the calls that ran and
// answered an error (`failed_calls`); per error code, every error reply; per command, a latency
// histogram for the percentiles. Always on, as in Redis: a few stores per command.

/// INFO's per-command and per-error counters. Loop thread only.
public final class InfoStatistics {
    struct Counters {
        var calls = 0
        var microseconds = 0
        var rejected = 0
        var failed = 0
        /// Log-linear buckets of microseconds (``InfoStatistics/bucket(_:)``); empty until the first call.
        var latency: [UInt32] = []
    }

    private var counters = [Counters](repeating: Counters(), count: CommandTable.statisticsNames.count)
    /// Error replies per code (`ERR`, `WRONGTYPE`, …).
    private var errors: [String: Int] = [:]

    public init() {}

    /// One command's outcome. `slot` is its statistics slot; a request naming no command has
    /// none and only counts its error.
    @inline(__always)
    func record(slot: Int, microseconds: Int, rejected: Bool, failed: Bool) {
        if rejected {
            self.counters[slot].rejected &+= 1
            return
        }
        self.counters[slot].calls &+= 1
        self.counters[slot].microseconds &+= microseconds
        if failed { self.counters[slot].failed &+= 1 }
        if self.counters[slot].latency.isEmpty {
            self.counters[slot].latency = [UInt32](repeating: 0, count: Self.bucketCount)
        }
        self.counters[slot].latency[Self.bucket(microseconds)] &+= 1
    }

    /// One error reply with `code`. Redis stops adding codes past 128 distinct ones.
    func recordError(code: StaticString) {
        let name = code.description
        if let count = self.errors[name] {
            self.errors[name] = count + 1
        } else if self.errors.count < 128 {
            self.errors[name] = 1
        }
    }

    /// CONFIG RESETSTAT.
    public func reset() {
        self.counters = [Counters](repeating: Counters(), count: self.counters.count)
        self.errors = [:]
    }

    // Buckets: exact below 32 µs, then 16 per power of two (about 6% wide), up to 2^40 µs.
    static let bucketCount = 32 + 36 * 16

    @inline(__always)
    static func bucket(_ microseconds: Int) -> Int {
        let v = max(0, microseconds)
        if v < 32 { return v }
        let shift = min(Int.bitWidth - v.leadingZeroBitCount - 5, 36)
        return min(32 + (shift - 1) * 16 + ((v >> shift) - 16), Self.bucketCount - 1)
    }

    /// The highest value bucket `index` holds.
    static func upperValue(_ index: Int) -> Int {
        if index < 32 { return index }
        let shift = (index - 32) / 16 + 1
        let sub = (index - 32) % 16 + 16
        return ((sub + 1) << shift) - 1
    }

    /// `# Commandstats` lines, in table order.
    func appendCommandStats(to text: inout [UInt8]) {
        for (slot, name) in CommandTable.statisticsNames.enumerated() where slot < self.counters.count - 1 {
            let c = self.counters[slot]
            guard c.calls > 0 || c.rejected > 0 || c.failed > 0 else { continue }
            let perCall = c.calls == 0 ? 0 : Double(c.microseconds) / Double(c.calls)
            text.append(contentsOf: "cmdstat_\(name):calls=\(c.calls),usec=\(c.microseconds),".utf8)
            text.append(contentsOf: "usec_per_call=\(Self.fixed(perCall, decimals: 2)),".utf8)
            text.append(contentsOf: "rejected_calls=\(c.rejected),failed_calls=\(c.failed)\r\n".utf8)
        }
    }

    /// `# Errorstats` lines, codes in byte order (Redis keeps them in a radix tree).
    func appendErrorStats(to text: inout [UInt8]) {
        for (code, count) in self.errors.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
            text.append(contentsOf: "errorstat_\(code):count=\(count)\r\n".utf8)
        }
    }

    /// `# Latencystats` lines: p50, p99 and p99.9 of each command that ran (Redis's default
    /// `latency-tracking-info-percentiles`), in microseconds.
    func appendLatencyStats(to text: inout [UInt8]) {
        for (slot, name) in CommandTable.statisticsNames.enumerated() where slot < self.counters.count - 1 {
            let histogram = self.counters[slot].latency
            guard !histogram.isEmpty else { continue }
            let total = histogram.reduce(0) { $0 + Int($1) }
            func percentile(_ p: Double) -> String {
                let rank = max(1, Int((p / 100 * Double(total)).rounded(.up)))
                var seen = 0
                for (index, count) in histogram.enumerated() {
                    seen += Int(count)
                    if seen >= rank { return Self.fixed(Double(Self.upperValue(index)), decimals: 3) }
                }
                return "0.000"
            }
            text.append(contentsOf: "latency_percentiles_usec_\(name):p50=\(percentile(50)),".utf8)
            text.append(contentsOf: "p99=\(percentile(99)),p99.9=\(percentile(99.9))\r\n".utf8)
        }
    }

    /// `value` with `decimals` digits after the point, rounded half up, as printf's `%.Nf` prints it.
    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int((value * Double(scale)).rounded())
        let fraction = String(scaled % scale)
        return "\(scaled / scale)." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
