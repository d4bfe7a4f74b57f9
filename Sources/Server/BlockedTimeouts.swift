// The timeouts of blocked clients (BLPOP, BLMOVE, BZPOPMIN … with a timeout; Sources/Services/
// Blocking.swift): one loop timer for all of them, armed for the earliest deadline, over a min-heap
// of deadlines (Redis keeps its blocked clients' timeouts in one radix tree ordered by deadline, for
// the same reason). Ten thousand waiting clients are ten thousand heap entries and one Dispatch
// source, not ten thousand sources. A wait that ends otherwise (served, CLIENT UNBLOCK, its
// connection closing) leaves its entry behind, dead: it is dropped when it reaches the top, or when
// dead entries outnumber the live ones (the heap is rebuilt), so a busy queue whose waiters are
// served long before their timeouts does not grow the heap without bound. Waits with the same
// deadline time out in the order they began. Each wait's entry and its connection share one
// ``BlockedTimeouts/Timeout`` object, which says whether the wait still runs: a job queue's worker
// starts and ends a wait per job, and this way neither is a dictionary update by client ID.

import Reactor
import Services

/// The deadlines of every blocked connection of a server, and the one timer that ends them. Loop
/// thread only.
final class BlockedTimeouts {
    /// One wait's timeout: held by its heap entry and by the connection that waits, which ends it
    /// with ``BlockedTimeouts/remove(_:)`` when the wait ends otherwise.
    final class Timeout {
        let clientID: Int
        /// The wait still runs (set once, by its end).
        fileprivate(set) var isLive = true

        fileprivate init(clientID: Int) { self.clientID = clientID }
    }

    private struct Entry {
        let deadline: UInt64
        /// The order waits began in (ties).
        let sequence: UInt64
        let timeout: Timeout

        func precedes(_ other: Entry) -> Bool {
            self.deadline != other.deadline ? self.deadline < other.deadline : self.sequence < other.sequence
        }
    }

    private unowned(unsafe) let loop: EventLoop
    /// Ends client `id`'s wait with the timeout's reply (the blocking registry's cancel hook).
    private let expire: (_ id: Int) -> Void
    // Loop thread only, and no access spans a call out (`expire` runs after the heap work): no
    // dynamic exclusivity checks (a runtime call per access, several per wait).
    @exclusivity(unchecked) private var heap: [Entry] = []
    /// The live timeouts.
    @exclusivity(unchecked) private(set) var count = 0
    @exclusivity(unchecked) private var nextSequence: UInt64 = 0
    @exclusivity(unchecked) private var timer: TimerID?
    /// The deadline the timer is armed for (`.max`: not armed).
    @exclusivity(unchecked) private var armedFor = UInt64.max

    init(loop: EventLoop, expire: @escaping (_ id: Int) -> Void) {
        self.loop = loop
        self.expire = expire
    }

    /// Entries held, dead ones included (tests: the heap stays bounded).
    var heapCount: Int { self.heap.count }

    /// Client `id` began a wait of `milliseconds` (> 0) from now. - Returns: its timeout, for
    /// ``remove(_:)`` if the wait ends before it.
    func add(_ id: Int, after milliseconds: Int64) -> Timeout {
        let now = SystemClock.monotonicNanoseconds()
        let (nanoseconds, overflow) = UInt64(max(milliseconds, 0)).multipliedReportingOverflow(by: 1_000_000)
        let (deadline, past) = now.addingReportingOverflow(nanoseconds)
        let timeout = Timeout(clientID: id)
        let entry = Entry(deadline: overflow || past ? .max : deadline, sequence: self.nextSequence, timeout: timeout)
        self.nextSequence += 1
        self.count += 1
        self.push(entry)
        if entry.deadline < self.armedFor { self.arm(entry.deadline, now: now) }
        return timeout
    }

    /// The wait of `timeout` ended another way (served, unblocked, closed): it no longer runs.
    func remove(_ timeout: Timeout) {
        guard timeout.isLive else { return }
        timeout.isLive = false
        self.count -= 1
        if self.count == 0 {
            self.heap.removeAll(keepingCapacity: false)
            self.disarm()
        } else if self.heap.count > 64 && self.heap.count > 2 * self.count {
            self.rebuild()
        }
    }

    // MARK: - The timer

    private func arm(_ deadline: UInt64, now: UInt64) {
        self.disarm()
        self.armedFor = deadline
        // At least a millisecond: the Dispatch timer's own resolution; a deadline already past fires
        // on the next pass of the loop.
        let delay = deadline > now ? deadline - now : 0
        self.timer = self.loop.scheduleTimer(after: .nanoseconds(Int64(clamping: delay)), leeway: .milliseconds(1)) {
            [unowned(unsafe) self] in
            self.timer = nil
            self.armedFor = .max
            self.fire()
        }
    }

    private func disarm() {
        if let timer = self.timer { self.loop.cancelTimer(timer) }
        self.timer = nil
        self.armedFor = .max
    }

    /// Ends every wait whose deadline has passed, earliest first, then arms for the next one.
    private func fire() {
        let now = SystemClock.monotonicNanoseconds()
        var due: [Int] = []
        while let top = self.heap.first, top.deadline <= now {
            self.popTop()
            if top.timeout.isLive {
                top.timeout.isLive = false
                self.count -= 1
                due.append(top.timeout.clientID)
            }
        }
        // Dead entries on top would arm the timer for nothing.
        while let top = self.heap.first, !top.timeout.isLive { self.popTop() }
        if let top = self.heap.first { self.arm(top.deadline, now: now) }
        // Armed first: a client whose wait ends here may block again at once (its pipeline), adding
        // a deadline that must compare with the armed one.
        for id in due { self.expire(id) }
    }

    // MARK: - The heap

    private func push(_ entry: Entry) {
        self.heap.append(entry)
        var child = self.heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self.heap[child].precedes(self.heap[parent]) else { break }
            self.heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popTop() {
        let last = self.heap.removeLast()
        guard !self.heap.isEmpty else { return }
        self.heap[0] = last
        self.siftDown(0)
    }

    private func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < self.heap.count else { return }
            let right = left + 1
            let child = right < self.heap.count && self.heap[right].precedes(self.heap[left]) ? right : left
            guard self.heap[child].precedes(self.heap[parent]) else { return }
            self.heap.swapAt(child, parent)
            parent = child
        }
    }

    /// Keeps the live entries only (a heap again).
    private func rebuild() {
        self.heap.removeAll { !$0.timeout.isLive }
        for index in stride(from: self.heap.count / 2 - 1, through: 0, by: -1) { self.siftDown(index) }
    }
}
