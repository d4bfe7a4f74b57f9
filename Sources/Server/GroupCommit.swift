// Group commit (docs/architecture.md "Group commit"): replies that acknowledge a mutation wait
// until its log record is durable. A held connection records the sequence it waits for; this
// keeps the list of held connections (Redis's `clients_pending_write`) and, when the log reports
// a sequence durable, sends the replies of those whose sequence it covers. Once per loop iteration
// the buffered records go out in one write (under `--fsync always` when the next sync starts: they
// wait for it anyway); under `--fsync always` one fdatasync then covers the
// group, started when SyncGate.swift allows. While the disk syncs fast (InlineSyncGuard below) it
// runs right there on the loop thread, as Redis's single thread pays its fsync: no hand-off to
// another thread and back for every group. Otherwise it runs on the sync thread (SyncThread.swift)
// while the loop goes on serving reads and gathering the next group; that sync's result comes back
// to this type's own inbox. It also keeps
// the fsync policy (CONFIG SET appendfsync, the `everysec` timer), as Redis's aof.c does. Every
// list is settled before a connection is called, so a connection that closes meanwhile (or writes
// and is held again) only changes data: no callback reaches back.

import Dispatch
import Logging
import Reactor
import Store

/// A connection whose replies group commit may hold. The hold is data the connection keeps;
/// group commit settles it before calling either method.
protocol HeldConnection: AnyObject {
    /// The log sequence the held replies wait for; 0: not held for the log.
    var heldUntil: UInt64 { get set }
    /// SAVE ran: the replies wait for its compaction as well.
    var awaitingSave: Bool { get set }
    /// Nothing holds the replies any more: send them, and answer the input that waited meanwhile.
    func sendHeld()
    /// The log refused the mutations the held replies acknowledge (they were rolled back): answer
    /// `reason` instead, then close.
    func refuseHeld(reason: String)
}

/// The held connections and the log's write and sync schedule. Loop thread only.
final class GroupCommit {
    private let store: DurableStore
    private unowned let loop: EventLoop
    private let logger: Logger
    /// Where fsync durations go (nil: metrics are off).
    var metrics: ServerMetrics?
    /// Called after a failed write or sync rolled back the store (the server puts the interpreter's
    /// function libraries back in line with the store's).
    var afterRollback: (() -> Void)?
    // Touched at every held batch (loop thread only, each access whole before the next begins):
    // no dynamic exclusivity check (a runtime call per access).
    /// Connections held for the log, in the order they were first held: they are sent in that order.
    @exclusivity(unchecked) private var held: [HeldConnection] = []
    /// The held list's spare (``release()`` swaps them), and whether a release is walking it.
    @exclusivity(unchecked) private var spareHeld: [HeldConnection] = []
    @exclusivity(unchecked) private var releasingAll = false
    /// The newest sequence any held connection waits for: once durable they all go, with no walk.
    @exclusivity(unchecked) private var newestHeld: UInt64 = 0
    /// Connections waiting for the compaction SAVE started.
    private var savers: [HeldConnection] = []
    /// Holds the next sync briefly after one ends (SyncGate.swift).
    private var syncGate = SyncGate()
    /// Under `always`, buffered records are written when a sync starts, or once this many bytes wait.
    static let writeBehindBytes = 256 * 1024
    /// When the sync in flight (the store's `journal.state`) started.
    private var syncStartedAt: UInt64 = 0
    /// How long the last sync took (its fdatasync).
    private var lastSyncNanoseconds: UInt64 = 0
    private var stopped = false
    /// ``beginClose()`` was called.
    private var closing = false
    /// Where the fdatasync runs (SyncThread.swift); the queue if no thread could be created.
    @exclusivity(unchecked) private var syncThread: SyncThread<SyncJob>?  // set once, in init
    private let background = DispatchQueue(label: "reactord.fsync")
    /// Where a finished sync reports (``syncFinished(_:)``).
    private var syncDone: Inbox<SyncDone>!
    /// Whether the next `always` sync may run on the loop thread.
    var inlineGuard = InlineSyncGuard()
    /// What the syncs did, for tests and debugging.
    struct Counts {
        /// Syncs started on the loop thread and on the sync thread (or queue).
        var inlineSyncs = 0
        var threadSyncs = 0
        /// Iterations that had the loop wait for a sync's result before polling again, and those
        /// that had it wait through SyncGate's hold.
        var postWaits = 0
        var holdWaits = 0
    }
    private(set) var counts = Counts()
    /// Under `everysec`, the timer that starts a sync every second.
    private var everysecTimer: TimerID?
    /// A policy CONFIG SET asked for while a sync was in flight: the store changes policy between
    /// syncs only, so it applies when that sync finishes.
    private var requestedFsyncPolicy: FsyncPolicy?

    /// A sync's result, posted from the sync thread to the loop.
    struct SyncDone: Sendable {
        let job: SyncJob
        let result: SyncResult
        /// How long the fdatasync took.
        let nanoseconds: UInt64
        /// It ran on the loop thread.
        var inline = false
    }

    /// Registers the loop's before-sleep hook first: the iteration's records are written (and a
    /// sync started, or replies sent) before the owner's hooks run.
    init(store: DurableStore, loop: EventLoop, logger: Logger) {
        self.store = store
        self.loop = loop
        self.logger = logger
        // Once per loop iteration: one write for every record the iteration produced, then the
        // replies that write made durable go out (everysec/no), or a sync starts (always). Not once
        // the store is closing. (The hook does it itself: no method it would only forward to.)
        loop.addBeforeSleepHook { [unowned self] in
            let groupCommit = self  // one strong load, not one per use
            guard !groupCommit.stopped else { return }
            let buffered = groupCommit.store.bufferedBytes
            let policy = groupCommit.store.fsyncPolicy  // one read: a write does not change it
            // Under `always` the iteration's records stay in the buffer until a sync starts (startSync
            // writes them first): they cannot be acknowledged before it anyway, and while one is in
            // flight or SyncGate holds the next, the loop wakes for every few requests — one write
            // per group instead of one per loop iteration. Past the bound they go now, so the
            // buffer's memory stays small and the sync's write short.
            if buffered > 0
                && (buffered >= GroupCommit.writeBehindBytes || policy != .always)
            {
                groupCommit.apply(groupCommit.store.writeBuffered())
            }
            let inlineBefore = groupCommit.counts.inlineSyncs
            if policy == .always { groupCommit.startSync(mayRunInline: true) }
            groupCommit.release()
            // While the clients wait for the log, the loop need not wake for each of them: the next
            // wait first waits for the sync thread's result alone (up to a bound), and what arrives
            // meanwhile is read together after it, as a server that blocks in its fsync reads it.
            // Two cases, one budget (InlineSyncGuard.swift's pause a read may wait):
            // - a sync running on the sync thread and due to end within the bound (due: as long
            //   after its start as the last sync took; not early in a slow sync, where a wait that
            //   ends before the result only adds a wake-up);
            // - SyncGate holding the next sync with its clock running, after a sync within the
            //   bound: the clients just answered are coming back, and waking for each was most of a
            //   group's loop iterations. The sync then starts at the hold's end, not at the last
            //   client's return: a quarter of a fast sync later at most. After a slow sync, whose
            //   hold is longer, starting the next the moment its group is complete is worth more
            //   than the wake-ups (Benchmarks/README.md).
            // Not after an iteration that answered someone (a reader may be waiting on its next
            // request); a read waits at most the bound.
            let bound = groupCommit.inlineGuard.fastNanoseconds
            if policy == .always && bound > 0 && !groupCommit.loop.dispatchWroteOutput {
                let now = SystemClock.monotonicNanoseconds()
                if groupCommit.store.journal.isSyncing {
                    if groupCommit.syncStartedAt &+ groupCommit.lastSyncNanoseconds <= now &+ bound {
                        groupCommit.counts.postWaits &+= 1
                        groupCommit.loop.waitForPostFirst(noLaterThan: now &+ bound)
                    }
                } else if groupCommit.syncGate.deadline != 0 && groupCommit.lastSyncNanoseconds <= bound {
                    groupCommit.counts.holdWaits &+= 1
                    groupCommit.loop.waitForPostFirst(noLaterThan: min(groupCommit.syncGate.deadline, now &+ bound))
                }
            }
            // A sync run inline released connections here, after this iteration's write: the input
            // they answered then (pipelined requests that waited) logged records the next iteration
            // writes, and nothing else may wake the loop for it. (Only then: records the store keeps
            // buffered on purpose, for a compaction's rotation, must not spin the loop.)
            if groupCommit.counts.inlineSyncs != inlineBefore && groupCommit.store.bufferedBytes > 0 { groupCommit.loop.wakeNoLaterThan(0) }
        }
        let syncDone = loop.makeInbox { [unowned self] (done: SyncDone) in self.syncFinished(done) }
        self.syncDone = syncDone
        self.syncThread = SyncThread { job in GroupCommit.runSync(job, reportingTo: syncDone) }
        self.scheduleEverysecTimer()
    }

    /// A server dropped without a close still ends its sync thread.
    deinit { self.syncThread?.stop() }

    // MARK: Holds

    /// Whether replies depending on `sequence` may go out now.
    func isDurable(_ sequence: UInt64) -> Bool { sequence <= self.store.durableSequence }

    /// Holds `connection`'s replies until `sequence` (and every mutation before it) is durable.
    /// The caller has corked the connection.
    func hold(_ connection: HeldConnection, until sequence: UInt64) {
        if connection.heldUntil == 0 { self.held.append(connection) }
        connection.heldUntil = max(connection.heldUntil, sequence)
        self.newestHeld = max(self.newestHeld, sequence)
    }

    /// Holds `connection`'s replies until the compaction SAVE asked for ends.
    func holdUntilSaved(_ connection: HeldConnection) {
        if !connection.awaitingSave { self.savers.append(connection) }
        connection.awaitingSave = true
    }

    /// Forgets `connection` (it closed).
    func drop(_ connection: HeldConnection) {
        if connection.heldUntil != 0 {
            connection.heldUntil = 0
            self.held.removeAll { $0 === connection }
        }
        if connection.awaitingSave {
            connection.awaitingSave = false
            self.savers.removeAll { $0 === connection }
        }
    }

    /// Sends the replies of every connection whose sequence is now durable, oldest hold first.
    private func release() {
        guard !self.held.isEmpty else { return }
        let durable = self.store.durableSequence
        if self.newestHeld <= durable && self.held.count == 1 {
            // One connection (every write at `-c 1`): no list to walk or swap. Its hold is cleared
            // before it is called, as on the paths below; if it is held again meanwhile, it is
            // appended to the emptied list.
            let connection = self.held.removeLast()
            self.newestHeld = 0
            connection.heldUntil = 0
            if !connection.awaitingSave { connection.sendHeld() }
            return
        }
        if self.newestHeld <= durable && !self.releasingAll {
            // Every iteration's log write under everysec and no, most syncs under always: the list
            // changes places with an empty spare, so neither allocates (keeping a copy of the list
            // while emptying it did, every iteration). A release reached from inside these sends
            // (a command that ends a sync inline) takes the copying path below.
            swap(&self.held, &self.spareHeld)
            self.newestHeld = 0
            self.releasingAll = true
            defer {
                self.releasingAll = false
                // removeLast, not removeAll(keepingCapacity:): the generic replaceSubrange behind
                // that was a fixed cost per iteration.
                while !self.spareHeld.isEmpty { self.spareHeld.removeLast() }
            }
            for connection in self.spareHeld { connection.heldUntil = 0 }
            for connection in self.spareHeld where !connection.awaitingSave { connection.sendHeld() }
            return
        }
        let due: [HeldConnection]
        if self.newestHeld <= durable {
            due = self.held
            self.held = []
            self.newestHeld = 0
            for connection in due { connection.heldUntil = 0 }
        } else {
            due = self.take { $0 <= durable }
        }
        for connection in due where !connection.awaitingSave { connection.sendHeld() }
    }

    /// Takes the held connections `isDue` picks out of the list, their holds cleared, before
    /// any of them is called.
    private func take(where isDue: (UInt64) -> Bool) -> [HeldConnection] {
        var due: [HeldConnection] = []
        var newest: UInt64 = 0
        self.held.removeAll { connection in
            guard isDue(connection.heldUntil) else {
                newest = max(newest, connection.heldUntil)
                return false
            }
            due.append(connection)
            return true
        }
        self.newestHeld = newest
        for connection in due { connection.heldUntil = 0 }
        return due
    }

    /// The compaction SAVE asked for ended: it synced the log it rotated, so every write made
    /// before it began is durable too. A saver still held for a later write (its next request,
    /// read while the compaction ran, went to the new log) stays on the held list and goes out
    /// when that write is durable, as any held connection. `failure`: the reason it failed,
    /// which its waiters are answered instead.
    func saveFinished(failure: String?) {
        let savers = self.savers
        self.savers = []
        for connection in savers { connection.awaitingSave = false }
        for connection in savers {
            if let failure {
                connection.refuseHeld(reason: failure)
            } else if connection.heldUntil == 0 {
                connection.sendHeld()
            }
        }
    }

    // MARK: The log's writes and syncs

    /// Starts one fdatasync covering everything written, unless one runs or SyncGate holds it.
    /// Also while a compaction runs: it reads the rotated segment, the sync covers the new log
    /// (and, first after a rotation, the directory); under `everysec` a long compaction must not
    /// stretch the second of writes a power cut may take. `mayRunInline`: called from this type's
    /// before-sleep hook, where a sync run on the loop thread is followed by the same iteration's
    /// sends and the other hooks (Persistence.swift's compaction start, the close); elsewhere
    /// nothing would wake the loop to go on after it.
    func startSync(mayRunInline: Bool = false) {
        guard !self.stopped, !self.store.journal.isSyncing else { return }
        let now = SystemClock.monotonicNanoseconds()
        let waiting = Int(self.store.lastSequence - min(self.store.lastSequence, self.store.journal.sequences.synced))
        if self.store.fsyncPolicy == .always {
            guard self.syncGate.mayStart(waiting: waiting, now: now) else {
                // Held (SyncGate.swift): the loop must not sleep past the hold's end, once its clock
                // runs (held with nothing waiting, no write is delayed: the loop sleeps untimed).
                let deadline = self.syncGate.deadline
                if deadline != 0 { self.loop.wakeNoLaterThan(deadline) }
                return
            }
        } else {
            // The everysec timer's sync is never held: a hold left from `always` (CONFIG SET
            // appendfsync) would push it to the next tick, two seconds of writes unsynced.
            self.syncGate = SyncGate()
        }
        // Records left in the buffer while the last sync ran (the before-sleep hook) join this one.
        if self.store.bufferedBytes > 0 { self.apply(self.store.writeBuffered()) }
        guard let job = self.store.makeSyncJob() else { return }
        self.syncStartedAt = now
        if mayRunInline && self.store.fsyncPolicy == .always && self.inlineGuard.mayRunInline {
            // Nothing else runs meanwhile: reads wait for this sync, as they do in Redis, which
            // the guard allows only while syncs are fast. A failure or the next group's hold is
            // settled by syncFinished just as for a sync that ran on the thread.
            self.counts.inlineSyncs &+= 1
            let result = job.run()
            let end = SystemClock.monotonicNanoseconds()
            self.syncFinished(SyncDone(job: job, result: result, nanoseconds: end &- now, inline: true))
            return
        }
        self.counts.threadSyncs &+= 1
        if let thread = self.syncThread {
            thread.submit(job)
        } else {
            let inbox = self.syncDone!
            self.background.async { GroupCommit.runSync(job, reportingTo: inbox) }
        }
    }

    /// Runs `job` off the loop thread and posts its result to the loop.
    private static func runSync(_ job: SyncJob, reportingTo inbox: Inbox<SyncDone>) {
        let start = SystemClock.monotonicNanoseconds()
        let result = job.run()
        inbox.post(SyncDone(job: job, result: result, nanoseconds: SystemClock.monotonicNanoseconds() &- start))
    }

    /// A sync reported back (its inbox): the log learns its result (a failure rolls the group back
    /// and refuses its connections), a policy CONFIG SET asked for meanwhile applies, the replies
    /// it made durable go out, and the next group's sync starts, held by SyncGate until the
    /// clients just answered have written again. What waits for the log to be idle (compaction's
    /// start, the close) looks at the end of this iteration (Persistence.swift).
    private func syncFinished(_ done: SyncDone) {
        let syncedBefore = self.store.journal.sequences.synced
        self.metrics?.fsyncDurations.record(done.nanoseconds)
        self.inlineGuard.syncFinished(nanoseconds: done.nanoseconds, inline: done.inline)
        self.lastSyncNanoseconds = done.nanoseconds
        self.apply(self.store.completeSync(done.job, result: done.result))
        let answered = Int(done.job.sequence - min(done.job.sequence, syncedBefore))
        if let policy = self.requestedFsyncPolicy { _ = self.applyFsyncPolicy(policy) }
        self.release()
        let now = SystemClock.monotonicNanoseconds()
        let waiting = Int(self.store.lastSequence - min(self.store.lastSequence, self.store.journal.sequences.synced))
        if self.store.fsyncPolicy == .always, case .success = done.result {
            // The writes of the clients just answered join the next group, up to the hold; while
            // its clock runs, startSync keeps the loop from sleeping past its end (no timer).
            self.syncGate.syncFinished(answered: answered, waiting: waiting,
                                       duration: now - min(now, self.syncStartedAt), now: now)
        }
        // Records written while this sync ran on the thread form the next group. After an inline
        // sync the before-sleep hook that ran it starts the next (it wakes the loop at once for
        // the records the sends just logged), where that sync may run inline too: started from
        // here it went to the thread whenever a sub-microsecond hold had already run out.
        if self.store.fsyncPolicy == .always && !done.inline { self.startSync() }
    }

    // MARK: Fsync policy

    /// Under `everysec`, a sync every second; under the other policies no timer.
    private func scheduleEverysecTimer() {
        if self.store.fsyncPolicy == .everysec, self.everysecTimer == nil, !self.stopped {
            self.everysecTimer = self.loop.scheduleTimer(
                after: .seconds(1), repeating: .seconds(1), leeway: .milliseconds(50)
            ) { [unowned self] in self.startSync() }
        } else if self.store.fsyncPolicy != .everysec || self.stopped, let timer = self.everysecTimer {
            self.loop.cancelTimer(timer)
            self.everysecTimer = nil
        }
    }

    /// CONFIG SET appendfsync. With a sync in flight the change waits for it (at most one fsync);
    /// otherwise it applies now. Returns the reason when it cannot apply.
    func setFsyncPolicy(_ policy: FsyncPolicy) -> String? {
        guard !self.store.journal.isSyncing else {
            self.requestedFsyncPolicy = policy
            return nil
        }
        return self.applyFsyncPolicy(policy)
    }

    private func applyFsyncPolicy(_ policy: FsyncPolicy) -> String? {
        self.requestedFsyncPolicy = nil
        guard !self.closing else { return "the server is stopping" }
        let old = self.store.fsyncPolicy
        do {
            try self.store.changeFsyncPolicy(to: policy)
        } catch {
            self.logger.error("fsync policy unchanged: the log could not be synced", metadata: ["error": "\(error)"])
            return error.description
        }
        self.scheduleEverysecTimer()
        if old != policy {
            self.logger.info("fsync policy changed", metadata: ["from": "\(old.rawValue)", "to": "\(policy.rawValue)"])
        }
        // Connections the change made durable are sent at the end of this iteration.
        return nil
    }

    /// A failed write or sync rolled back every mutation not yet durable: a held connection is
    /// affected exactly when the sequence it waits for is in the failed range.
    private func apply(_ outcome: WriteOutcome) {
        guard case .failed(let sequences, let error) = outcome else { return }
        self.logger.error("log write failed: refusing the affected writes", metadata: ["error": "\(error)"])
        for connection in self.take(where: { sequences.contains($0) }) {
            connection.refuseHeld(reason: error.description)
        }
        self.afterRollback?()
    }

    /// The server is stopping: no more timed syncs, and no policy change (one asked for while a
    /// sync ran is dropped). Syncs still start until ``stop()``: the close waits for the log's.
    func beginClose() {
        self.closing = true
        self.requestedFsyncPolicy = nil
        if let timer = self.everysecTimer { self.loop.cancelTimer(timer) }
        self.everysecTimer = nil
    }

    /// No sync starts after this (the store is closing); the sync thread ends.
    func stop() {
        self.stopped = true
        self.syncThread?.stop()
    }
}
