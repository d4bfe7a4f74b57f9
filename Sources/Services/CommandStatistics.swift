// Per-command counters the kv sessions record into while metrics are on: calls, calls answered
// with an error, and a duration histogram, all plain integers owned by the loop thread (no lock,
// no allocation once warm). The server reads them when /metrics is scraped and hands them to
// the metrics registry then. Durations are given, never measured here: the caller times a batch
// of requests and ``endBatch(nanoseconds:)`` shares it evenly among the batch's commands.

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

    // Loop thread only and never re-entered, so the dynamic exclusivity checks a class's stored
    // properties get are skipped (as Persistence's command counter does): they would cost more
    // than the counting itself.
    /// Calls per slot (every request dispatched, refused ones included; not those MULTI queued).
    @exclusivity(unchecked) public private(set) var calls: [Int]
    /// Calls answered with an error reply, per slot.
    @exclusivity(unchecked) public private(set) var errors: [Int]
    /// Durations per slot.
    @exclusivity(unchecked) public private(set) var durations: [BucketCounts]
    /// The slots recorded since the last ``endBatch(nanoseconds:)`` (capacity kept).
    @exclusivity(unchecked) private var batch: [Int32] = []

    public init() {
        let n = Self.names.count
        self.calls = Array(repeating: 0, count: n)
        self.errors = Array(repeating: 0, count: n)
        self.durations = Array(repeating: BucketCounts(bounds: Self.durationBounds), count: n)
        self.batch.reserveCapacity(64)
    }

    /// One call of `slot`, failed or not; its duration comes with the batch's end.
    @inline(__always)
    func record(slot: Int, failed: Bool) {
        self.calls[slot] &+= 1
        if failed { self.errors[slot] &+= 1 }
        self.batch.append(Int32(truncatingIfNeeded: slot))
    }

    /// Whether commands were recorded since the last ``endBatch(nanoseconds:)``.
    public var hasBatch: Bool { !self.batch.isEmpty }

    /// Ends a batch that took `nanoseconds`: each of its commands is observed at an equal share.
    public func endBatch(nanoseconds: UInt64) {
        guard !self.batch.isEmpty else { return }
        let share = nanoseconds / UInt64(self.batch.count)
        var run = self.batch[0]
        var length = 0
        // Pipelines repeat one command: one histogram update per run of equal slots.
        for slot in self.batch {
            if slot == run {
                length &+= 1
            } else {
                self.durations[Int(run)].record(share, count: length)
                run = slot
                length = 1
            }
        }
        self.durations[Int(run)].record(share, count: length)
        self.batch.removeAll(keepingCapacity: true)
    }
}
