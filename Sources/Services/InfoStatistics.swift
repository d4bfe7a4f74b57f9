// What INFO's commandstats, errorstats and latencystats report, counted as Redis counts them
// (server.c call() and processCommand(), networking.c afterErrorReply()): per command, the calls
// that ran and their total microseconds, the calls refused before running (`rejected_calls`:
// arity, authentication, a transaction's or memory limit's refusal) and the calls that ran and
// answered an error (`failed_calls`); per error code, every error reply; per command, a latency
// histogram for the percentiles. Always on, as in Redis: a few stores per command.

/// INFO's per-command and per-error counters. Loop thread only.
public final class InfoStatistics {
    private let slotCount = CommandTable.infoNames.count
    // Plain buffers, as in CommandStatistics.swift: counting costs a few stores, with no
    // copy-on-write or exclusivity checks. A command's latency buckets are allocated at its first call.
    private let calls: UnsafeMutablePointer<Int>
    private let microseconds: UnsafeMutablePointer<Int>
    private let rejected: UnsafeMutablePointer<Int>
    private let failed: UnsafeMutablePointer<Int>
    /// Per slot, `bucketCount` log-linear buckets of microseconds (``bucket(_:)``), or nil before its first call.
    private let latency: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>
    /// Error replies per code (`ERR`, `WRONGTYPE`, …).
    @exclusivity(unchecked) private var errors: [String: Int] = [:]

    public init() {
        func zeroed(_ count: Int) -> UnsafeMutablePointer<Int> {
            let p = UnsafeMutablePointer<Int>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }
        self.calls = zeroed(self.slotCount)
        self.microseconds = zeroed(self.slotCount)
        self.rejected = zeroed(self.slotCount)
        self.failed = zeroed(self.slotCount)
        self.latency = .allocate(capacity: self.slotCount)
        self.latency.initialize(repeating: nil, count: self.slotCount)
    }

    deinit {
        for p in [self.calls, self.microseconds, self.rejected, self.failed] { p.deallocate() }
        for slot in 0..<self.slotCount { self.latency[slot]?.deallocate() }
        self.latency.deallocate()
    }

    /// A slot's latency buckets, allocated (zeroed) at its first call.
    @inline(never)
    private func makeHistogram(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: Self.bucketCount)
        p.initialize(repeating: 0, count: Self.bucketCount)
        self.latency[slot] = p
        return p
    }

    /// One command's outcome. `slot` is its statistics slot; a request naming no command has
    /// none and only counts its error.
    @inline(__always)
    func record(slot: Int, microseconds: Int, rejected: Bool, failed: Bool) {
        if rejected {
            self.rejected[slot] &+= 1
            return
        }
        self.calls[slot] &+= 1
        self.microseconds[slot] &+= microseconds
        if failed { self.failed[slot] &+= 1 }
        let histogram = self.latency[slot] ?? self.makeHistogram(slot)
        histogram[Self.bucket(microseconds)] &+= 1
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
        for p in [self.calls, self.microseconds, self.rejected, self.failed] { p.update(repeating: 0, count: self.slotCount) }
        for slot in 0..<self.slotCount { self.latency[slot]?.update(repeating: 0, count: Self.bucketCount) }
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
        for (slot, name) in CommandTable.infoNames.enumerated() where slot != CommandStatistics.unknownSlot {
            let (calls, usec, rejected, failed) = (self.calls[slot], self.microseconds[slot], self.rejected[slot], self.failed[slot])
            guard calls > 0 || rejected > 0 || failed > 0 else { continue }
            let perCall = calls == 0 ? 0 : Double(usec) / Double(calls)
            text.append(contentsOf: "cmdstat_\(name):calls=\(calls),usec=\(usec),".utf8)
            text.append(contentsOf: "usec_per_call=\(Self.fixed(perCall, decimals: 2)),".utf8)
            text.append(contentsOf: "rejected_calls=\(rejected),failed_calls=\(failed)\r\n".utf8)
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
        for (slot, name) in CommandTable.infoNames.enumerated() where slot != CommandStatistics.unknownSlot {
            guard self.calls[slot] > 0, let buckets = self.latency[slot] else { continue }
            let histogram = UnsafeBufferPointer(start: buckets, count: Self.bucketCount)
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
