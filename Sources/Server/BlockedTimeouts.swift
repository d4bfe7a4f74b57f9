// The timeouts of blocked clients (BLPOP, BLMOVE, BZPOPMIN … with a timeout; Sources/Services/
// Blocking.swift): one loop timer for all of them, armed for the earliest deadline, over a min-heap
// of deadlines (Redis keeps its blocked clients' timeouts in one radix tree ordered by deadline, for
// the same reason). Ten thousand waiting clients are ten thousand heap entries and one Dispatch
// source, not ten thousand sources. A wait that ends otherwise (served, CLIENT UNBLOCK, its
// connection closing) leaves its entry behind, dead: it is dropped when it reaches the top, or when
// dead entries outnumber the live ones (the heap is rebuilt), so a busy queue whose waiters are
// served long before their timeouts does not grow the heap without bound. Waits with the same
// deadline time out in the order they began.

import Reactor
import Services

/// The deadlines of every blocked connection of a server, and the one timer that ends them. Loop
/// thread only.
final class BlockedTimeouts {
    private struct Entry {
        let deadline: UInt64
        /// The order waits began in (ties), and the entry's identity: a client's live wait is the
        /// entry with the sequence `live` holds for it.
        let sequence: UInt64
        let clientID: Int

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
    /// The live entry's sequence of each waiting client.
    @exclusivity(unchecked) private var live: [Int: UInt64] = [:]
    @exclusivity(unchecked) private var nextSequence: UInt64 = 0
    @exclusivity(unchecked) private var timer: TimerID?
    /// The deadline the timer is armed for (`.max`: not armed).
    @exclusivity(unchecked) private var armedFor = UInt64.max

    init(loop: EventLoop, expire: @escaping (_ id: Int) -> Void) {
        self.loop = loop
        self.expire = expire
    }

    /// Clients with a timeout running.
    var count: Int { self.live.count }
    /// Entries held, dead ones included (tests: the heap stays bounded).
    var heapCount: Int { self.heap.count }

    /// Client `id` began a wait of `milliseconds` (> 0) from now; a wait it had running is replaced.
    func add(_ id: Int, after milliseconds: Int64) {
        let now = SystemClock.monotonicNanoseconds()
        let (nanoseconds, overflow) = UInt64(max(milliseconds, 0)).multipliedReportingOverflow(by: 1_000_000)
        let (deadline, past) = now.addingReportingOverflow(nanoseconds)
        let entry = Entry(deadline: overflow || past ? .max : deadline, sequence: self.nextSequence, clientID: id)
        self.nextSequence += 1
        self.live[id] = entry.sequence
        self.push(entry)
        if entry.deadline < self.armedFor { self.arm(entry.deadline, now: now) }
    }

    /// Client `id`'s wait ended another way (served, unblocked, closed): its timeout no longer runs.
    func remove(_ id: Int) {
        guard self.live.removeValue(forKey: id) != nil else { return }
        if self.live.isEmpty {
            self.heap.removeAll(keepingCapacity: false)
            self.disarm()
        } else if self.heap.count > 64 && self.heap.count > 2 * self.live.count {
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
            if self.live[top.clientID] == top.sequence {
                self.live.removeValue(forKey: top.clientID)
                due.append(top.clientID)
            }
        }
        // Dead entries on top would arm the timer for nothing.
        while let top = self.heap.first, self.live[top.clientID] != top.sequence { self.popTop() }
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
        self.heap.removeAll { self.live[$0.clientID] != $0.sequence }
        for index in stride(from: self.heap.count / 2 - 1, through: 0, by: -1) { self.siftDown(index) }
    }
}
