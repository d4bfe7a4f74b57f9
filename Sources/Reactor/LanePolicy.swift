// Which of the loop's two lanes a connection reads in, and how much it may read per turn, as a
// value (the lanes themselves: EventLoop.swift). Connection asks it for each turn's budget and
// tells it how the turn went; it answers with the lane the connection should move to, and
// Connection makes the move. Tested on its own (Tests/ReactorTests/LanePolicyTests.swift).

/// A connection's read budget and lane: light peers in the priority lane, peers with a backlog
/// in the bulk lane.
struct LanePolicy {
    /// The most bytes read per readiness event in the bulk lane, so one busy peer cannot starve
    /// the others (the loop serves a bounded number of bulk events per iteration).
    var readBudgetPerWakeup = 32 * 1024
    /// The most bytes read per readiness event in the priority lane. A connection that finds more
    /// waiting than this moves to the bulk lane; one that has been quiet there for
    /// `quietBeforePriority` and then sends no more than this moves back. Small, because when
    /// thousands of connections start flooding at once each has one priority turn before it is
    /// known as a flooder, and a newcomer among them waits for all those turns: 1 KiB is about
    /// twenty pipelined SETs.
    var priorityReadBudget = 1024
    /// How long (ns) a bulk-lane connection must have had nothing waiting (from one turn that
    /// drained its socket to the next) before a small request moves it back to the priority lane.
    /// Moving back at the first drained read would let a flooder that the server keeps up with
    /// bounce between lanes, a priority turn each time, and a few thousand such bounces are what
    /// a newcomer would wait behind. The size condition keeps a flooder that merely waited its
    /// turn in a long bulk rotation where it is.
    var quietBeforePriority: UInt64 = 100_000_000
    /// Whether the connection is in the bulk lane.
    private(set) var inBulkLane = false
    private var hasRead = false
    /// In the bulk lane: when the last turn that drained the socket ended (nil after a turn that
    /// used its whole budget).
    private var drainedAt: UInt64?

    /// Bytes read on a connection's first readable turn in the priority lane: smaller still,
    /// because when thousands of connections start sending at the same instant, a newcomer waits
    /// behind one first turn of each before any is known as a flooder.
    static let firstTurnBudget = 512

    /// The bytes this turn may read.
    @inline(__always)
    mutating func startTurn() -> Int {
        let budget = self.inBulkLane ? self.readBudgetPerWakeup : self.hasRead ? self.priorityReadBudget : Self.firstTurnBudget
        self.hasRead = true
        return budget
    }

    /// How a turn that could still read more (the connection is open and not at EOF) went, and
    /// the lane the connection should move to, if any: a turn that used its whole budget means a
    /// backlog (bulk); a bulk connection quiet since its last drained turn that sent a small
    /// request this time is light again (priority).
    /// - Parameters:
    ///   - budget: what ``startTurn()`` gave this turn.
    ///   - left: what remained of it (0 or less: all used).
    ///   - drained: the socket had nothing more to read.
    ///   - now: the loop's time (ns).
    @inline(__always)
    mutating func endTurn(budget: Int, left: Int, drained: Bool, now: UInt64) -> EventLoop.Lane? {
        if left <= 0 {
            self.drainedAt = nil
            return self.inBulkLane ? nil : .bulk
        }
        guard drained && self.inBulkLane else { return nil }
        if let drainedAt = self.drainedAt, now &- drainedAt >= self.quietBeforePriority,
           budget - left <= self.priorityReadBudget
        {
            return .priority
        }
        self.drainedAt = now
        return nil
    }

    /// The connection moved to `lane`.
    mutating func moved(to lane: EventLoop.Lane) {
        self.inBulkLane = lane == .bulk
        self.drainedAt = nil
    }
}
