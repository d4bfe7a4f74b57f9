// What drives durability around group commit (GroupCommit.swift, which also keeps the fsync
// policy: CONFIG SET appendfsync, the `everysec` timer): the before-sleep hook's second half
// (compaction's start, the memory limit, a close waiting for the log) and the graceful close. What the commands see of
// the store is StoreAdapter.swift; the serverCron's work Housekeeping.swift and
// CompactionSchedule.swift; CONFIG, INFO and SHUTDOWN Control.swift.

import Dispatch
import Logging
import Reactor
import Services
import Store

/// Group commit's surroundings: compaction's start, the memory limit, the close. Loop thread only.
final class Persistence {
    let store: DurableStore
    private let logger: Logger
    /// The held connections and the log's writes and syncs.
    let groupCommit: GroupCommit
    private let housekeeping: Housekeeping
    private let compaction: CompactionSchedule
    /// Whether the stop compacts (SHUTDOWN SAVE / NOSAVE; a signal: when it fits).
    var closingCompaction = DurableStore.ClosingCompaction.withinBudget
    /// The loop's metrics counters (fsync durations), when the metrics port is on.
    var metrics: ServerMetrics? { didSet { self.groupCommit.metrics = self.metrics } }
    private var closeRequested: (() -> Void)?
    private var isClosed = false

    init(
        store: DurableStore, loop: EventLoop, logger: Logger, housekeeping: Housekeeping, compaction: CompactionSchedule
    ) {
        self.store = store
        self.logger = logger
        self.housekeeping = housekeeping
        self.compaction = compaction
        self.groupCommit = GroupCommit(store: store, loop: loop, logger: logger)
        loop.addBeforeSleepHook { [unowned self] in self.endOfIteration() }
    }

    // MARK: Fsync policy

    /// CONFIG SET appendfsync (GroupCommit keeps the policy). Returns the reason when it cannot apply.
    func setFsyncPolicy(_ name: String) -> String? {
        guard let policy = FsyncPolicy(rawValue: name) else {
            return "argument(s) must be one of the following: always, everysec, no"
        }
        guard self.closeRequested == nil, !self.isClosed else { return "the server is stopping" }
        return self.groupCommit.setFsyncPolicy(policy)
    }

    // MARK: Group commit

    /// Once per loop iteration, after group commit's (not after a stop closed the store: the loop
    /// then returns). A sync that finished this iteration (GroupCommit's inbox) has been taken
    /// back by then: a compaction or a close waiting for the log to be idle goes on here.
    private func endOfIteration() {
        guard !self.isClosed else { return }
        self.compactIfNeeded()
        self.compaction.keepSlicing()
        // Output left unsent this iteration counts too: under the limit before the loop sleeps.
        if self.housekeeping.isLimited { self.housekeeping.settleMemory() }
        if self.closeRequested != nil { self.closeIfIdle() }
    }

    // MARK: Compaction

    /// Starts a compaction if one is due, between syncs and never while stopping.
    private func compactIfNeeded() {
        // This runs at every loop iteration: the schedule's own flags and clock first (the store's
        // state costs more to read), and the completion below, a closure, is built only for a start.
        guard self.closeRequested == nil, self.compaction.mayBeDue, !self.store.journal.isSyncing else { return }
        if self.compaction.isDue { self.startCompaction() }
        // The store holds the rotation (and appends) until a sync has covered the log's written records,
        // under every policy (Journal.swift, holdingForRotation): under `everysec` and `no` nothing else
        // would start that sync soon. Only a start it put off leaves it so.
        if self.compaction.startPutOff, case .holdingForRotation = self.store.journal.state { self.groupCommit.startSync() }
    }

    private func startCompaction() {
        self.compaction.start { [unowned self] result in
            // SAVE's connections hear its end (everything before it is durable too).
            if case .failure(let error) = result {
                self.groupCommit.saveFinished(failure: error.description)
            } else {
                self.groupCommit.saveFinished(failure: nil)
            }
            self.closeIfIdle()
        }
    }

    // MARK: Shutdown

    /// Waits for background work, then writes, syncs and compacts the store and calls `done`.
    /// Not from inside group commit's sends (the server asks for it from its own inbox).
    func close(then done: @escaping () -> Void) {
        self.groupCommit.beginClose()
        // A long compaction in flight would hold the stop: it stops at its next megabyte, its
        // segments stay (replayed at the next start), and the store decides whether a final
        // compaction fits in the time a stop has.
        self.compaction.cancel()
        self.housekeeping.stop()
        self.closeRequested = done
        self.closeIfIdle()
    }

    private func closeIfIdle() {
        guard let done = self.closeRequested, !self.store.journal.isSyncing, !self.store.isCompacting
        else { return }
        self.closeRequested = nil
        self.isClosed = true
        self.groupCommit.stop()
        do {
            try self.store.close(compacting: self.closingCompaction)
        } catch {
            self.logger.error("closing the store failed", metadata: ["error": "\(error)"])
        }
        done()
    }
}
