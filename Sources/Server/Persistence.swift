// The store as the kv protocols see it: mutations apply at once, and the replies that
// acknowledge them are held until their log records are durable by group commit
// (GroupCommit.swift), which this drives from the loop's before-sleep hook and the sync inbox.

import Dispatch
import Logging
import Reactor
import Services
import Store

/// The store as the kv protocols see it, plus group commit. Loop thread only.
final class Persistence: CommandContext {
    let store: DurableStore
    private unowned let loop: EventLoop
    private let logger: Logger
    private let statisticsExtra: () -> [(name: String, value: String)]
    /// The server's part of INFO (connections, port, uptime); the store's part is added here.
    var serverFacts: () -> ServerFacts = { ServerFacts() }
    /// Asks the server for a graceful stop (SHUTDOWN).
    var shutdownHandler: () -> Void = {}
    /// Whether the stop compacts (SHUTDOWN SAVE / NOSAVE; a signal: when it fits).
    private var closingCompaction = DurableStore.ClosingCompaction.withinBudget
    let clients = ClientRegistry()
    let slowLog = SlowLog()
    /// `--requirepass`, as bytes; nil when none is set.
    @exclusivity(unchecked) var password: [UInt8]?

    func setPassword(_ password: [UInt8]?) { self.password = password }
    let watches = WatchRegistry()
    /// BGSAVE/BGREWRITEAOF/SAVE asked for a compaction that has not started yet.
    private var compactionRequested = false
    /// SAVE asked for it during the batch being answered (see ``takeSaveRequest()``).
    @exclusivity(unchecked) private var saveRequestedInBatch = false
    /// Connections whose replies wait for the requested compaction to end (SAVE).
    /// Unix seconds of the last finished compaction, or of the start before any.
    private(set) var lastSaveTime = SystemClock.wallClock().seconds
    private var lastCompactionSucceeded = true
    private var mutationsAtLastSave: UInt64 = 0
    /// Per-command counts while the metrics port is on (nil: off, and sessions count nothing).
    @exclusivity(unchecked) var commandStatistics: CommandStatistics?
    /// The loop's metrics counters (fsync durations, compactions), when the metrics port is on.
    var metrics: ServerMetrics? { didSet { self.groupCommit.metrics = self.metrics } }
    /// When the last timed batch of commands ended (monotonic ns): see ``endCommandBatch()``.
    @exclusivity(unchecked) private var lastBatchEnd: UInt64 = 0
    /// Counted once per batch (loop thread only, never re-entered: no dynamic exclusivity check).
    @exclusivity(unchecked) private var commandsProcessed = 0

    // What every batch and mutation touches (loop thread only, each access whole before the next
    // begins): no dynamic exclusivity check, which cost ~100 instructions an access.
    /// The newest mutation made through this adapter (the handler compares it before and after a batch).
    @exclusivity(unchecked) private(set) var lastMutationSequence: UInt64 = 0
    /// The held connections and the log's writes and syncs.
    let groupCommit: GroupCommit
    /// The compaction in flight (`store.isCompacting`), so a stop can cancel it.
    private var compactionJob: CompactionJob?
    private var closeRequested: (() -> Void)?
    private var isClosed = false
    private let compactionQueue = DispatchQueue(label: "reactord.compaction")
    private var compactionInbox: Inbox<CompactionDone>!
    private var everysecTimer: TimerID?
    /// A policy CONFIG SET asked for while a sync was in flight: the store changes policy between
    /// syncs only, so it applies when that sync finishes.
    private var requestedFsyncPolicy: FsyncPolicy?
    private var expiryTimer: TimerID?
    private var expiryInbox: Inbox<ExpiryBacklog>!
    private var expiryBacklogPosted = false

    /// `--max-memory` (CONFIG SET maxmemory); 0: no limit. Read at every read and batch of every kv
    /// connection; loop thread only and never re-entered: no dynamic exclusivity check.
    @exclusivity(unchecked) var maxMemoryBytes = 0 {
        didSet { self.memoryRoom.isLimited = self.maxMemoryBytes > 0 }
    }
    /// `--eviction` (CONFIG SET maxmemory-policy).
    var evictionPolicy = EvictionPolicy.noeviction
    /// What kv connections hold in their buffers: unsent output (each connection reports at its
    /// flushes) and received input not yet answered (``KVConnection`` reports between batches).
    let connectionBuffers = ByteGauge()
    /// The room left under the limit, for the RESP parser's check of announced bulk lengths.
    let memoryRoom = MemoryRoom()
    /// Bytes a refused command wanted room for: the eviction backlog frees them too, so that a retry
    /// finds room (0: none owed).
    private var evictionShortfall = 0
    private var evictionInbox: Inbox<EvictionBacklog>!
    private var evictionBacklogPosted = false

    /// A slice of eviction is owed on the next loop iteration.
    struct EvictionBacklog: Sendable {}

    /// A slice of active expiry is owed on the next loop iteration.
    struct ExpiryBacklog: Sendable {}

    struct CompactionDone: Sendable {
        let job: CompactionJob
        let result: Result<Void, StoreError>
    }

    init(store: DurableStore, loop: EventLoop, logger: Logger, statisticsExtra: @escaping () -> [(name: String, value: String)]) {
        self.store = store
        self.loop = loop
        self.logger = logger
        self.statisticsExtra = statisticsExtra
        self.groupCommit = GroupCommit(store: store, loop: loop, logger: logger)
        self.groupCommit.syncDone = loop.makeInbox { [unowned self] (done: GroupCommit.SyncDone) in self.syncFinished(done) }
        self.compactionInbox = loop.makeInbox { [unowned self] (done: CompactionDone) in self.compactionFinished(done) }
        loop.addBeforeSleepHook { [unowned self] in self.endOfIteration() }
        self.expiryInbox = loop.makeInbox { [unowned self] (_: ExpiryBacklog) in
            self.expiryBacklogPosted = false
            self.expireSlice()
        }
        self.evictionInbox = loop.makeInbox { [unowned self] (_: EvictionBacklog) in
            self.evictionBacklogPosted = false
            self.evictSlice()
        }
        self.memoryRoom.bytesLeft = { [unowned self] in
            guard self.maxMemoryBytes > 0 else { return .max }
            // Under an allkeys policy every key may go to make room; otherwise only what is free now.
            let evictable = self.evictionPolicy == .allkeysLRU || self.evictionPolicy == .allkeysRandom
            return self.maxMemoryBytes - self.connectionBuffers.bytes - (evictable ? 0 : self.store.usedBytes)
        }
        self.advanceLRUClock()  // keys written before the first tick are stamped with the time, not 0
        self.expiryTimer = loop.scheduleTimer(
            after: Self.activeExpiryPeriod, repeating: Self.activeExpiryPeriod, leeway: .milliseconds(10)
        ) { [unowned self] in
            self.advanceLRUClock()
            self.expireSlice()
            self.evictSlice()
        }
        self.scheduleEverysecTimer()
    }

    /// Under `everysec`, a sync every second; under the other policies no timer.
    private func scheduleEverysecTimer() {
        if self.store.configuration.fsync == .everysec, self.everysecTimer == nil {
            self.everysecTimer = self.loop.scheduleTimer(after: .seconds(1), repeating: .seconds(1), leeway: .milliseconds(50)) {
                [unowned self] in self.groupCommit.startSync()
            }
        } else if self.store.configuration.fsync != .everysec, let timer = self.everysecTimer {
            self.loop.cancelTimer(timer)
            self.everysecTimer = nil
        }
    }

    /// CONFIG SET appendfsync. With a sync in flight the change waits for it (at most one fsync);
    /// otherwise it applies now. Returns the reason when it cannot apply.
    func setFsyncPolicy(_ name: String) -> String? {
        guard let policy = FsyncPolicy(rawValue: name) else { return "argument(s) must be one of the following: always, everysec, no" }
        guard !self.store.journal.state.isSyncing else {
            self.requestedFsyncPolicy = policy
            return nil
        }
        return self.applyFsyncPolicy(policy)
    }

    private func applyFsyncPolicy(_ policy: FsyncPolicy) -> String? {
        self.requestedFsyncPolicy = nil
        guard self.closeRequested == nil, !self.isClosed else { return "the server is stopping" }
        let old = self.store.configuration.fsync
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
        // Connections the change made durable are sent at the end of this iteration (GroupCommit).
        return nil
    }

    /// CONFIG SET timeout, handed to the server (it owns the idle sweep).
    var idleTimeoutChanged: (Duration) -> Void = { _ in }

    func setIdleTimeout(seconds: Int) { self.idleTimeoutChanged(.seconds(seconds)) }

    // MARK: CommandContext

    var count: Int { self.store.count }

    func value(forKey key: [UInt8]) -> [UInt8]? { self.store.value(forKey: key) }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StorageError) {
        let outcome = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                Result { () throws(StoreError) -> UInt64 in try self.store.set(v, forKey: k, deadline: nil, now: 0) }
            }
        }
        switch outcome {
        case .success(let sequence): self.lastMutationSequence = sequence
        case .failure(let error): throw StorageError(reason: error.description)
        }
    }

    func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        key.withUnsafeBytes { k in self.store.withValue(forKey: k, body) } != nil
    }

    func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError) {
        do {
            self.lastMutationSequence = try self.store.set(value, forKey: key)
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool {
        do {
            guard let sequence = try self.store.removeValue(forKey: key) else { return false }
            self.lastMutationSequence = sequence
            return true
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyDeadline {
        switch self.store.expiry(forKey: key, now: now) {
        case .missing: .missing
        case .never: .never
        case .at(let deadline): .at(deadline)
        }
    }

    func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StorageError) {
        do {
            self.lastMutationSequence = max(
                self.lastMutationSequence, try self.store.set(value, forKey: key, deadline: deadline, now: now))
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func expire(_ key: [UInt8], at deadline: Int64, now: Int64) throws(StorageError) -> Bool {
        do {
            guard let sequence = try self.store.expire(key, at: deadline, now: now) else { return false }
            self.lastMutationSequence = max(self.lastMutationSequence, sequence)
            return true
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func persist(_ key: [UInt8], now: Int64) throws(StorageError) -> Bool {
        do {
            guard let sequence = try self.store.persist(key, now: now) else { return false }
            self.lastMutationSequence = max(self.lastMutationSequence, sequence)
            return true
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func randomKey(now: Int64) -> [UInt8]? { self.store.randomKey(now: now) }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        self.store.scan(cursor: cursor, count: count, pattern: pattern, now: now)
    }

    func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] { self.store.keys(matching: pattern, now: now) }

    func usedBytes(forKey key: [UInt8], now: Int64) -> Int? { self.store.usedBytes(forKey: key, now: now) }
    func idleSeconds(forKey key: [UInt8], now: Int64) -> Int? {
        self.advanceLRUClock()  // to the moment of asking, not the last timer tick
        return self.store.idleTicks(forKey: key, now: now).map { Int(UInt64($0) * Self.lruClockTickNanoseconds / 1_000_000_000) }
    }

    func removeAll() throws(StorageError) {
        do {
            self.lastMutationSequence = try self.store.removeAll()
        } catch {
            throw StorageError(reason: error.description)
        }
    }

    func statistics() -> [(name: String, value: String)] {
        self.statisticsExtra() + self.store.statistics()
    }

    func beginAtomicGroup() { self.store.beginAtomicGroup() }

    func endAtomicGroup() { self.store.endAtomicGroup() }

    func facts() -> ServerFacts {
        var facts = self.serverFacts()
        facts.keys = self.store.count
        facts.keysWithExpiry = self.store.keysWithExpiry
        facts.expiredKeys = self.store.expiredKeyCount
        facts.usedMemoryBytes = self.usedMemoryBytes
        facts.maxMemoryBytes = self.maxMemoryBytes
        facts.maxMemoryPolicy = self.evictionPolicy.rawValue
        facts.evictedKeys = self.store.evictedKeyCount
        facts.totalCommandsProcessed = self.commandsProcessed
        facts.changesSinceLastSave = Int(self.store.lastSequence - min(self.store.lastSequence, self.mutationsAtLastSave))
        facts.compactionInProgress = self.store.isCompacting
        facts.lastSaveTime = self.lastSaveTime
        facts.lastCompactionSucceeded = self.lastCompactionSucceeded
        facts.fsyncPolicy = self.store.configuration.fsync.rawValue
        let statistics = self.store.statistics()
        for (name, value) in statistics {
            if name == "compactions" { facts.compactions = Int(value) ?? 0 }
            if name == "log_bytes" { facts.logBytes = Int(value) ?? 0 }
        }
        facts.extra = self.statistics()
        return facts
    }

    func configuration() -> [(name: String, value: String)] {
        let facts = self.serverFacts()
        return [
            ("appendonly", "yes"), ("appendfsync", self.store.configuration.fsync.rawValue), ("save", ""),
            ("databases", "1"), ("port", String(facts.tcpPort)), ("maxclients", String(facts.maxClients)),
            ("maxmemory", String(self.maxMemoryBytes)), ("maxmemory-policy", self.evictionPolicy.rawValue),
            ("maxmemory-samples", String(Self.evictionSamples)),
            ("dir", self.store.configuration.directory),
            ("requirepass", String(decoding: self.password ?? [], as: UTF8.self)),
            ("slowlog-log-slower-than", String(self.slowLog.thresholdMicroseconds)),
            ("slowlog-max-len", String(self.slowLog.maxLength)),
        ] + self.extraConfiguration()
    }

    /// Settings the server adds (bind, timeout, proto-max-bulk-len).
    var extraConfiguration: () -> [(name: String, value: String)] = { [] }

    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        if self.store.isCompacting || self.compactionRequested { return .alreadyRunning }
        self.compactionRequested = true
        if replyWhenDone { self.saveRequestedInBatch = true }
        return .started
    }

    /// SAVE ran in the batch just answered: its connection must wait for the compaction. Resets.
    func takeSaveRequest() -> Bool {
        defer { self.saveRequestedInBatch = false }
        return self.saveRequestedInBatch
    }

    func shutdown(save: Bool?) {
        self.closingCompaction = save.map { $0 ? .always : .never } ?? .withinBudget
        self.shutdownHandler()
    }

    func resetStatistics() { self.commandsProcessed = 0 }

    func countCommands(_ count: Int) { self.commandsProcessed += count }

    /// Ends the batch of commands one connection just answered (metrics on): its duration runs
    /// from the later of the read event's dispatch (``EventLoop/now``) and the previous batch's
    /// end, to now. One clock read per batch, none when the batch ran no command.
    func endCommandBatch() {
        guard let statistics = self.commandStatistics, statistics.hasBatch else { return }
        let now = SystemClock.monotonicNanoseconds()
        let start = max(self.loop.now, self.lastBatchEnd)
        self.lastBatchEnd = now
        statistics.endBatch(nanoseconds: now &- min(start, now))
    }

    // MARK: Group commit

    /// Once per loop iteration, after group commit's (not after a stop closed the store: the loop
    /// then returns).
    private func endOfIteration() {
        guard !self.isClosed else { return }
        self.compactIfNeeded()
        // Output left unsent this iteration counts too: under the limit before the loop sleeps.
        if self.maxMemoryBytes > 0 { self.settleMemory() }
    }

    /// A sync reported back: a policy CONFIG SET asked for meanwhile applies before the next one.
    private func syncFinished(_ done: GroupCommit.SyncDone) {
        self.groupCommit.finishSync(done)
        if let policy = self.requestedFsyncPolicy { _ = self.applyFsyncPolicy(policy) }
        self.groupCommit.continueAfterSync(done)
        self.compactIfNeeded()
        self.closeIfIdle()
    }

    // MARK: Compaction

    private func compactIfNeeded() {
        guard !self.store.isCompacting, !self.store.journal.state.isSyncing, self.closeRequested == nil,
              self.store.needsCompaction || self.compactionRequested else { return }
        let job: CompactionJob?
        do {
            job = try self.store.beginCompaction()
        } catch {
            self.logger.error("compaction could not start", metadata: ["error": "\(error)"])
            return
        }
        guard let job else { return }
        self.compactionRequested = false
        self.mutationsAtLastSave = self.store.lastSequence
        self.compactionJob = job
        self.logger.info("compaction started", metadata: ["keys": "\(job.keyCount)"])
        let inbox = self.compactionInbox!
        let run: @Sendable () -> Void = { inbox.post(CompactionDone(job: job, result: job.run())) }
        if !YieldingThread.run(run) { self.compactionQueue.async(execute: run) }
    }

    private func compactionFinished(_ done: CompactionDone) {
        self.compactionJob = nil
        self.store.finishCompaction(done.job, result: done.result)
        self.lastCompactionSucceeded = true
        if case .failure(let error) = done.result {
            self.metrics?.compactionsFailed += 1
            self.lastCompactionSucceeded = false
            self.logger.error("compaction failed", metadata: ["error": "\(error)"])
            self.groupCommit.saveFinished(failure: error.description)
        } else {
            self.metrics?.compactionsSucceeded += 1
            self.lastSaveTime = SystemClock.wallClock().seconds
            self.logger.info("compaction finished", metadata: ["keys": "\(done.job.keyCount)"])
            self.groupCommit.saveFinished(failure: nil)
        }
        self.closeIfIdle()
    }

    // MARK: Active expiry

    /// How often the loop looks for keys past their deadline that nobody reads (Redis's `hz` 10).
    static let activeExpiryPeriod: Duration = .milliseconds(100)
    /// The longest one slice of active expiry holds the loop. When a slice ends with expired keys
    /// still being found, the next slice runs on the next loop iteration, after the clients ready
    /// meanwhile are served: a million keys expiring together cost many short slices, not a stall.
    static let activeExpirySliceNanoseconds: UInt64 = 1_000_000
    /// Deadlines examined per call into the store between two looks at the clock.
    static let activeExpiryBatch = 256

    /// One slice of active expiry: deletes expired keys (each logged as a delete, written with the
    /// iteration's other records) until the store finds few of them or the slice's time is up.
    private func expireSlice() {
        guard !self.isClosed, self.closeRequested == nil, self.store.keysWithExpiry > 0 else { return }
        let start = SystemClock.monotonicNanoseconds()
        let now = self.store.configuration.clock()
        while true {
            let result = self.store.expireCycle(now: now, budget: Self.activeExpiryBatch)
            guard result.worthRepeating else { return }
            if SystemClock.monotonicNanoseconds() - start >= Self.activeExpirySliceNanoseconds { break }
        }
        if !self.expiryBacklogPosted {
            self.expiryBacklogPosted = true
            self.expiryInbox.post(ExpiryBacklog())
        }
    }

    // MARK: Memory limit

    /// Keys sampled per eviction choice (Redis's `maxmemory-samples` default).
    static let evictionSamples = 5
    /// The most keys one command may evict before it runs (or after): past that it is refused
    /// with OOM and the backlog carries on between requests.
    static let evictionKeysPerCommand = 64
    /// Keys evicted per call into the store between two looks at the clock in a backlog slice.
    static let evictionBatch = 128
    /// The LRU clock's tick (the keys' `lastAccess` stamps count in these).
    static let lruClockTickNanoseconds: UInt64 = 100_000_000

    /// INFO `used_memory`: the keyspace's exact account plus every kv connection's buffers.
    var usedMemoryBytes: Int { self.store.usedBytes + self.connectionBuffers.bytes }

    /// Touches an evicted key in the WATCH registry (an eviction aborts an EXEC watching it, as in
    /// Redis); nil while nobody watches, so eviction then pays nothing for it.
    private var watchedEviction: ((UnsafeRawBufferPointer) -> Void)? {
        guard !self.watches.isEmpty else { return nil }
        return { [watches = self.watches] key in watches.touch([UInt8](key)) }
    }

    private var keyEviction: KeyEviction? {
        switch self.evictionPolicy {
        case .noeviction: nil
        case .allkeysLRU: .allKeysLRU
        case .allkeysRandom: .allKeysRandom
        case .volatileLRU: .volatileLRU
        case .volatileRandom: .volatileRandom
        case .volatileTTL: .volatileTTL
        }
    }

    func makeRoom(forBytes bytes: Int) -> Bool {
        guard self.maxMemoryBytes > 0, !self.isClosed else { return true }
        let over = self.usedMemoryBytes + bytes - self.maxMemoryBytes
        guard over > 0 else { return true }
        guard let policy = self.keyEviction else {
            // noeviction: Redis's rule, refused once used memory is past the limit.
            return self.usedMemoryBytes <= self.maxMemoryBytes
        }
        _ = self.store.evict(
            policy, bytesToFree: over, maxKeys: Self.evictionKeysPerCommand, samples: Self.evictionSamples,
            now: self.store.configuration.clock(), evicting: self.watchedEviction)
        if self.usedMemoryBytes + bytes <= self.maxMemoryBytes { return true }
        self.evictionShortfall = max(self.evictionShortfall, bytes)
        self.postEvictionBacklog()
        return false
    }

    func settleMemory() {
        guard self.maxMemoryBytes > 0, let policy = self.keyEviction, !self.isClosed else { return }
        let over = self.usedMemoryBytes - self.maxMemoryBytes
        guard over > 0 else { return }
        _ = self.store.evict(
            policy, bytesToFree: over, maxKeys: Self.evictionKeysPerCommand, samples: Self.evictionSamples,
            now: self.store.configuration.clock(), evicting: self.watchedEviction)
        if self.usedMemoryBytes > self.maxMemoryBytes { self.postEvictionBacklog() }
    }

    func setMemoryLimit(bytes: Int?, policy: [UInt8]?) -> Bool {
        var newPolicy = self.evictionPolicy
        if let policy {
            guard let named = EvictionPolicy(rawValue: String(decoding: policy, as: UTF8.self)) else { return false }
            newPolicy = named
        }
        if let bytes { self.maxMemoryBytes = bytes }
        self.evictionPolicy = newPolicy
        self.evictionShortfall = 0
        // A lower limit is reached by the backlog, slice by slice, as Redis does after CONFIG SET.
        if self.maxMemoryBytes > 0 && self.usedMemoryBytes > self.maxMemoryBytes { self.postEvictionBacklog() }
        return true
    }

    /// Advances the LRU clock the store stamps accesses with (every timer tick: 100 ms resolution).
    private func advanceLRUClock() {
        guard !self.isClosed else { return }
        self.store.lruClock = Self.currentLRUClock()
    }

    /// The LRU clock's value now: 100 ms ticks of the monotonic clock.
    static func currentLRUClock() -> UInt32 {
        UInt32(truncatingIfNeeded: SystemClock.monotonicNanoseconds() / Self.lruClockTickNanoseconds)
    }

    private func postEvictionBacklog() {
        if !self.evictionBacklogPosted {
            self.evictionBacklogPosted = true
            self.evictionInbox.post(EvictionBacklog())
        }
    }

    /// One slice of eviction outside any command (the timer, or the backlog a command left): evicts
    /// until used memory plus what a refused command wanted fits, or the slice's time is up (then the
    /// next loop iteration carries on, after the clients ready meanwhile are served).
    private func evictSlice() {
        guard !self.isClosed, self.closeRequested == nil, self.maxMemoryBytes > 0, let policy = self.keyEviction else {
            self.evictionShortfall = 0
            return
        }
        let start = SystemClock.monotonicNanoseconds()
        let now = self.store.configuration.clock()
        while true {
            let over = self.usedMemoryBytes + self.evictionShortfall - self.maxMemoryBytes
            if over <= 0 {
                self.evictionShortfall = 0
                return
            }
            let result = self.store.evict(
                policy, bytesToFree: over, maxKeys: Self.evictionBatch, samples: Self.evictionSamples, now: now,
                evicting: self.watchedEviction)
            if result.exhausted || result.evicted == 0 {
                // Nothing left to evict: the shortfall cannot be met; commands will say OOM.
                self.evictionShortfall = 0
                return
            }
            if SystemClock.monotonicNanoseconds() - start >= Self.activeExpirySliceNanoseconds { break }
        }
        self.postEvictionBacklog()
    }

    // MARK: Shutdown

    /// Waits for background work, then writes, syncs and compacts the store and calls `done`.
    /// Not from inside group commit's sends (the server asks for it from its own inbox).
    func close(then done: @escaping () -> Void) {
        if let timer = self.everysecTimer { self.loop.cancelTimer(timer) }
        self.everysecTimer = nil
        // A long compaction in flight would hold the stop: it stops at its next megabyte, its
        // segments stay (replayed at the next start), and the store decides whether a final
        // compaction fits in the time a stop has.
        self.compactionJob?.cancel()
        if let timer = self.expiryTimer { self.loop.cancelTimer(timer) }
        self.closeRequested = done
        self.closeIfIdle()
    }

    private func closeIfIdle() {
        guard let done = self.closeRequested, !self.store.journal.state.isSyncing, !self.store.isCompacting
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
