// Per-command counters the kv sessions record into while metrics are on: calls, calls answered
// with an error, and a duration histogram, all plain integers owned by the loop thread (no lock,
// no allocation once warm). The server reads them when /metrics is scraped and hands them to
// the metrics registry then. Durations are given, never measured here: the caller times a batch
// of requests and ``endBatch(nanoseconds:)`` shares it evenly among the batch's commands, and
// observes that share once for each command name the batch ran.

/// Cumulative bucket counts over fixed upper bounds, and the sum of the observations in each
/// bucket (so a reader can replay a bucket's observations at their mean without losing the sum).
public struct BucketCounts: Sendable, Equatable {
    /// Upper bounds in nanoseconds, ascending; a last implicit bucket takes everything above.
    public let bounds: [UInt64]
    /// Observations per bucket (not cumulative), `bounds.count + 1` of them.
    public private(set) var counts: [Int]
    /// Sum of the observations per bucket, nanoseconds.
    public private(set) var sums: [UInt64]

    public init(bounds: [UInt64]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds ascend")
        self.bounds = bounds
        self.counts = Array(repeating: 0, count: bounds.count + 1)
        self.sums = Array(repeating: 0, count: bounds.count + 1)
    }

    /// Counts already gathered (`counts` and `sums` hold `bounds.count + 1` entries each).
    public init(bounds: [UInt64], counts: [Int], sums: [UInt64]) {
        precondition(counts.count == bounds.count + 1 && sums.count == counts.count)
        self.bounds = bounds
        self.counts = counts
        self.sums = sums
    }

    /// The bucket `nanoseconds` falls in (the first whose bound is at least it).
    @inline(__always)
    public func bucket(for nanoseconds: UInt64) -> Int {
        var i = 0
        while i < self.bounds.count && self.bounds[i] < nanoseconds { i &+= 1 }
        return i
    }

    /// Counts `count` observations of `nanoseconds` each.
    @inline(__always)
    public mutating func record(_ nanoseconds: UInt64, count: Int = 1) {
        let i = self.bucket(for: nanoseconds)
        self.counts[i] &+= count
        self.sums[i] &+= nanoseconds &* UInt64(count)
    }

    /// Total observations.
    public var total: Int { self.counts.reduce(0, +) }
}

/// Counters per kv command, recorded by the sessions on the loop thread. Loop thread only.
///
/// The counters live in buffers this object allocates once; sessions write them through a
/// ``Recorder``, a plain struct of pointers, so counting a command costs a few stores: no
/// reference counting, no copy-on-write or exclusivity checks.
public final class CommandStatistics {
    /// Command duration bucket bounds: 1 µs to 1 s.
    public static let durationBounds: [UInt64] = [
        1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 100_000_000, 1_000_000_000,
    ]
    /// The label of every slot: each distinct command name of the table, then `unknown` for
    /// requests naming no command.
    public static let names: [String] = CommandTable.statisticsNames
    /// The slot of requests that name no command.
    static var unknownSlot: Int { Self.names.count - 1 }

    /// Where a session counts: pointers into the buffers of the ``CommandStatistics`` that made
    /// it, valid while that object lives (the context holds it for the server's lifetime).
    struct Recorder {
        let calls: UnsafeMutablePointer<Int>
        let errors: UnsafeMutablePointer<Int>
        /// Calls per slot in the batch being answered.
        let inBatch: UnsafeMutablePointer<Int>
        /// The slots with calls in the batch (at most one entry per slot: no growth).
        let touched: UnsafeMutablePointer<Int>
        let touchedCount: UnsafeMutablePointer<Int>

        /// One call of `slot`, failed or not; its duration comes with the batch's end.
        @inline(__always)
        func record(slot: Int, failed: Bool) {
            self.calls[slot] &+= 1
            if failed { self.errors[slot] &+= 1 }
            if self.inBatch[slot] == 0 {
                self.touched[self.touchedCount.pointee] = slot
                self.touchedCount.pointee &+= 1
            }
            self.inBatch[slot] &+= 1
        }
    }

    let recorder: Recorder
    private let slotCount = CommandStatistics.names.count
    private let bucketCount = CommandStatistics.durationBounds.count + 1
    /// Durations per slot: `bucketCount` counts, then sums (ns), per slot.
    private let bucketCounts: UnsafeMutablePointer<Int>
    private let bucketSums: UnsafeMutablePointer<UInt64>
    private let bounds = CommandStatistics.durationBounds

    public init() {
        func zeroed<T: FixedWidthInteger>(_ count: Int, _: T.Type) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }
        let n = self.slotCount
        self.recorder = Recorder(
            calls: zeroed(n, Int.self), errors: zeroed(n, Int.self), inBatch: zeroed(n, Int.self),
            touched: zeroed(n, Int.self), touchedCount: zeroed(1, Int.self))
        self.bucketCounts = zeroed(n * self.bucketCount, Int.self)
        self.bucketSums = zeroed(n * self.bucketCount, UInt64.self)
    }

    deinit {
        for p in [self.recorder.calls, self.recorder.errors, self.recorder.inBatch, self.recorder.touched,
                  self.recorder.touchedCount, self.bucketCounts] { p.deallocate() }
        self.bucketSums.deallocate()
    }

    /// Calls per slot (every request dispatched, refused ones included; not those MULTI queued).
    public var calls: [Int] { Array(UnsafeBufferPointer(start: self.recorder.calls, count: self.slotCount)) }
    /// Calls answered with an error reply, per slot.
    public var errors: [Int] { Array(UnsafeBufferPointer(start: self.recorder.errors, count: self.slotCount)) }

    /// The durations of `slot`'s calls.
    public func durations(slot: Int) -> BucketCounts {
        let base = slot * self.bucketCount
        return BucketCounts(
            bounds: self.bounds,
            counts: Array(UnsafeBufferPointer(start: self.bucketCounts + base, count: self.bucketCount)),
            sums: Array(UnsafeBufferPointer(start: self.bucketSums + base, count: self.bucketCount)))
    }

    /// Whether commands were recorded since the last ``endBatch(nanoseconds:)``.
    public var hasBatch: Bool { self.recorder.touchedCount.pointee > 0 }

    /// Ends a batch that took `nanoseconds`: each of its commands is observed at an equal share.
    public func endBatch(nanoseconds: UInt64) {
        let r = self.recorder
        var commands = 0
        for i in 0..<r.touchedCount.pointee { commands &+= r.inBatch[r.touched[i]] }
        guard commands > 0 else { return }
        let share = nanoseconds / UInt64(commands)
        var bucket = 0
        while bucket < self.bounds.count && self.bounds[bucket] < share { bucket &+= 1 }
        // One observation per command name the batch ran, of its share: the registry takes
        // observations one call at a time when a scrape hands them over, so one per command would
        // cost a pipelined server noticeably more CPU per request (Benchmarks/metrics-cost.sh).
        for i in 0..<r.touchedCount.pointee {
            let slot = r.touched[i]
            let cell = slot &* self.bucketCount &+ bucket
            self.bucketCounts[cell] &+= 1
            self.bucketSums[cell] &+= share
            r.inBatch[slot] = 0
        }
        r.touchedCount.pointee = 0
    }
}
