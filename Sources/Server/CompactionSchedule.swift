// When the log is compacted into `database.txt`: past the store's size threshold, or when BGSAVE,
// BGREWRITEAOF or SAVE asked (Redis's rewrite trigger in serverCron, and its aof.c's background
// rewrite). The loop makes the snapshot a slice per iteration (the store's writeSnapshotSlice); a
// thread of the compaction's own writes it to the file; its end comes back through the loop's
// inbox. Group commit (Persistence.swift) starts it between syncs and holds SAVE's replies until it
// ends.

import CLinux
import Dispatch
import Logging
import Reactor
import Services
import Store

/// Compaction's trigger, the job in flight and what INFO reports of it. Loop thread only.
final class CompactionSchedule {
    private let store: DurableStore
    /// The loop this schedule runs on; the server keeps it for longer than this schedule.
    private unowned(unsafe) let loop: EventLoop
    private let logger: Logger
    /// The loop's metrics counters (compactions), when the metrics port is on.
    var metrics: ServerMetrics?
    /// BGSAVE/BGREWRITEAOF/SAVE asked for a compaction that has not started yet.
    private var requested = false
    /// SAVE asked for it during the batch being answered (see ``takeSaveRequest()``).
    @exclusivity(unchecked) private var saveRequestedInBatch = false
    /// The job running now (`store.isCompacting`), so a stop can cancel it, and who hears when it ends.
    private var job: CompactionJob? {
        didSet { self.jobRunning = self.job != nil }
    }
    /// `job != nil`, kept as a flag.
    private var jobRunning = false
    private var finished: ((Result<Void, StoreError>) -> Void)?
    private let queue = DispatchQueue(label: "reactord.compaction")
    private var inbox: Inbox<Done>!
    /// The next slice of the snapshot is made when a message comes through it: posted by the job's
    /// writer when it has taken a chunk, and by the loop itself while the snapshot wants more, so that
    /// the loop does not sleep meanwhile (``keepSlicing()``).
    private var slices: Inbox<Bool>!
    private var slicePosted = false
    /// Unix seconds of the last finished compaction, or of the start before any.
    private(set) var lastSaveTime = SystemClock.wallClock().seconds
    private(set) var lastSucceeded = true
    private var mutationsAtLastSave: UInt64 = 0

    struct Done: Sendable {
        let job: CompactionJob
        let result: Result<Void, StoreError>
    }

    init(store: DurableStore, loop: EventLoop, logger: Logger) {
        self.store = store
        self.loop = loop
        self.logger = logger
        self.inbox = loop.makeInbox { [unowned self] (done: Done) in self.jobFinished(done) }
        self.slices = loop.makeInbox { [unowned self] (_: Bool) in
            self.slicePosted = false
            self.store.writeSnapshotSlice()
        }
    }

    /// Whether a compaction is running now (the store's own state: nothing shadows it here).
    var isRunning: Bool { self.store.isCompacting }

    /// Mutations since the last compaction started (Redis's `rdb_changes_since_last_save`).
    var changesSinceLastSave: Int {
        Int(self.store.lastSequence - min(self.store.lastSequence, self.mutationsAtLastSave))
    }

    /// ``ServerControl/requestCompaction(replyWhenDone:)``: it starts at the end of this loop
    /// iteration, between two syncs.
    func request(replyWhenDone: Bool) -> CompactionRequest {
        if self.isRunning || self.requested { return .alreadyRunning }
        self.requested = true
        if replyWhenDone { self.saveRequestedInBatch = true }
        return .started
    }

    /// SAVE ran in the batch just answered: its connection must wait for the compaction. Resets.
    func takeSaveRequest() -> Bool {
        defer { self.saveRequestedInBatch = false }
        return self.saveRequestedInBatch
    }

    /// Starts a compaction if one is due (the log passed its threshold, or one was asked for) and
    /// none runs; `finished` hears its end on the loop thread. The caller makes sure no sync is in
    /// flight and the server is not stopping.
    func startIfDue(then finished: @escaping (Result<Void, StoreError>) -> Void) {
        guard self.isDue else { return }
        self.start(then: finished)
    }

    /// Whether a compaction is due and none runs: the test ``startIfDue(then:)`` makes, for a
    /// caller that checks every loop iteration and builds its completion only when one starts.
    /// A request (BGSAVE, SAVE, BGREWRITEAOF) or a start the store put off (its log waits for a
    /// sync) is looked at every time; the log's size and the save points at most every 100 ms, as
    /// Redis's serverCron looks at its rewrite and save triggers (hz 10). Asked at every
    /// iteration, those looks (the store's state, the points, the wall clock) were a cost per
    /// request at `-P 1`. The loop's `now` is its last clock read: no read here.
    var isDue: Bool {
        if self.requested || self.startPutOff { return !self.isRunning }
        return self.lookNow()
    }

    /// Whether ``isDue`` has anything to look at this iteration: a request, a start put off, or
    /// the time of its next look reached (a test with no reads of the store's state).
    var mayBeDue: Bool { self.requested || self.startPutOff || self.loop.now >= self.nextLook }

    private func lookNow() -> Bool {
        let now = self.loop.now
        guard now >= self.nextLook else { return false }
        self.nextLook = now &+ Self.lookInterval
        return !self.isRunning && (self.store.needsCompaction || self.savePointDue())
    }

    /// How often ``isDue`` looks at the log's size and the save points.
    static let lookInterval: UInt64 = 100_000_000
    /// The loop's monotonic time before which ``isDue`` does not look again.
    private var nextLook: UInt64 = 0
    /// ``start(then:)`` found the store not ready (beginCompaction returned nil): try again at the
    /// next iteration, not the next look (appends may be held until the rotation).
    private(set) var startPutOff = false

    /// Starts the compaction ``isDue`` found due (the caller has just asked).
    func start(then finished: @escaping (Result<Void, StoreError>) -> Void) {
        let job: CompactionJob?
        do {
            job = try self.store.beginCompaction()
        } catch {
            self.logger.error("compaction could not start", metadata: ["error": "\(error)"])
            self.startPutOff = false
            return
        }
        self.startPutOff = job == nil
        guard let job else { return }
        self.requested = false
        self.mutationsAtLastSave = self.store.lastSequence
        self.job = job
        self.finished = finished
        self.logger.info("compaction started", metadata: ["keys": "\(job.keyCount)"])
        let (inbox, slices) = (self.inbox!, self.slices!)
        // The loop makes the snapshot's text a slice at a time (the store's writeSnapshotSlice, here and
        // once per iteration); the job writes it to the file.
        let run: @Sendable () -> Void = {
            inbox.post(Done(job: job, result: job.runWritingSlices(wakingTheLoop: { slices.post(true) })))
        }
        // At normal priority: the thread only writes what the loop made (its CPU is the copy into the
        // page cache), and under SCHED_IDLE a busy host would starve it while the text waiting for it
        // grew (docs/architecture.md, "Persistence").
        if !YieldingThread.detached(run) { self.queue.async(execute: run) }
    }

    /// The save points (CONFIG SET save), read where a compaction may start.
    var savePoints: () -> [SavePoint] = { [] }
    /// Unix seconds of the last compaction that started for a save point.
    private var lastSavePointAttempt = 0

    /// Whether a save point is due (Redis's serverCron: enough changes and more than its seconds
    /// since the last save; after a failed save, not again within 5 seconds).
    private func savePointDue() -> Bool {
        let points = self.savePoints()
        guard !points.isEmpty else { return false }
        let now = SystemClock.wallClock().seconds
        guard self.lastSucceeded || now - self.lastSavePointAttempt > 5 else { return false }
        let (changes, elapsed) = (self.changesSinceLastSave, now - self.lastSaveTime)
        guard points.contains(where: { $0.isDue(changesSinceLastSave: changes, secondsSinceLastSave: elapsed) }) else {
            return false
        }
        self.lastSavePointAttempt = now
        return true
    }

    /// Once per loop iteration, before it sleeps: while a running compaction's snapshot wants more (its
    /// writer has room), a wake-up for the next slice, so the loop makes one slice per iteration and does
    /// not sleep until it is done or the writer is behind (the writer wakes it when it catches up).
    func keepSlicing() {
        // `jobRunning` first: asked at every iteration, and the store's own state (or a copy of
        // the optional job) costs more to read.
        if self.jobRunning && !self.slicePosted && self.store.snapshotWantsSlice {
            self.slicePosted = true
            self.slices.post(true)
        }
    }

    /// A stop: a long compaction in flight would hold it, so it stops at its next megabyte (its
    /// segments stay, replayed at the next start) and still reports its end.
    func cancel() { self.job?.cancel() }

    private func jobFinished(_ done: Done) {
        let finished = self.finished
        self.job = nil
        self.finished = nil
        self.store.finishCompaction(done.job, result: done.result)
        self.lastSucceeded = true
        if case .failure(let error) = done.result {
            self.metrics?.compactionsFailed += 1
            self.lastSucceeded = false
            self.logger.error("compaction failed", metadata: ["error": "\(error)"])
        } else {
            self.metrics?.compactionsSucceeded += 1
            self.lastSaveTime = SystemClock.wallClock().seconds
            self.logger.info("compaction finished", metadata: ["keys": "\(done.job.keyCount)"])
        }
        finished?(done.result)
        Self.returnFreedMemory()
    }

    /// The compaction rebuilt the state on its own thread, in a malloc arena of its own, and freed it
    /// as it finished; glibc keeps those pages resident (a heap shrinks only from its top), so a second
    /// copy of the data would stay in RSS for good. malloc_trim(3) gives them back. It runs on a thread
    /// started from here, at the loop's priority (the compaction's idle-priority thread could be
    /// preempted while holding the loop's arena lock), and locks each arena only while it trims it.
    private static func returnFreedMemory() {
        _ = YieldingThread.detached { _ = malloc_trim(0) }
    }
}
