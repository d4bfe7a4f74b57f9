// The server's own upkeep of the keyspace, as Redis's serverCron, expire.c and evict.c do it: the
// LRU clock the store stamps accesses with, active expiry of keys nobody reads, and eviction under
// the memory limit (before and after commands, and in slices between requests). Compaction's
// trigger is CompactionSchedule.swift; group commit Persistence.swift.

import Logging
import Reactor
import Services
import Store

/// LRU clock, active expiry and eviction on one loop. Loop thread only.
final class Housekeeping {
    private let store: DurableStore
    private unowned let loop: EventLoop
    /// The limit and policy (CONFIG SET changes them there), and the WATCH registry evictions touch.
    private let state: ServerState
    /// What kv connections hold in their buffers: unsent output (each connection reports at its
    /// flushes) and received input not yet answered (``KVStream`` reports between batches). Part
    /// of used memory.
    let connectionBuffers = ByteGauge()
    private var expiryTimer: TimerID?
    private var expiryInbox: Inbox<ExpiryBacklog>!
    private var expiryBacklogPosted = false
    /// Bytes a refused command wanted room for: the eviction backlog frees them too, so that a retry
    /// finds room (0: none owed).
    private var evictionShortfall = 0
    private var evictionInbox: Inbox<EvictionBacklog>!
    private var evictionBacklogPosted = false
    /// Set by ``stop()``: no more slices; the store is about to close.
    private var stopped = false
    /// The most ``usedMemoryBytes`` has been at a sample (INFO `used_memory_peak`).
    private var usedMemoryPeak = 0

    /// A slice of eviction is owed on the next loop iteration.
    struct EvictionBacklog: Sendable {}

    /// A slice of active expiry is owed on the next loop iteration.
    struct ExpiryBacklog: Sendable {}

    init(store: DurableStore, loop: EventLoop, state: ServerState) {
        self.store = store
        self.loop = loop
        self.state = state
        store.onExpire = { [pubsub = state.pubsub, state, unowned store] key in
            // Told inside the database the key expires in (Sources/Store/Databases.swift): its `@N`.
            pubsub.notifyFromServer(.expired, "expired", key: key, database: store.selectedDatabase)
            if pubsub.tracking.isActive { pubsub.tracking.serverChanged(key, state: state) }
        }
        self.expiryInbox = loop.makeInbox { [unowned self] (_: ExpiryBacklog) in
            self.expiryBacklogPosted = false
            self.expireSlice()
        }
        self.evictionInbox = loop.makeInbox { [unowned self] (_: EvictionBacklog) in
            self.evictionBacklogPosted = false
            self.evictSlice()
        }
        state.memoryRoom.bytesLeft = { [unowned self] in
            let state = self.state
            guard state.maxMemoryBytes > 0 else { return .max }
            // Under an allkeys policy every key may go to make room; otherwise only what is free now.
            let evictable = state.evictionPolicy == .allKeysLRU || state.evictionPolicy == .allKeysRandom
            return state.maxMemoryBytes - self.connectionBuffers.bytes - (evictable ? 0 : self.store.usedBytes)
        }
        self.advanceLRUClock()  // keys written before the first tick are stamped with the time, not 0
        self.expiryTimer = loop.scheduleTimer(
            after: Self.activeExpiryPeriod, repeating: Self.activeExpiryPeriod, leeway: .milliseconds(10)
        ) { [unowned self] in
            self.advanceLRUClock()
            _ = self.sampleMemoryPeak()
            self.expireSlice()
            self.evictSlice()
        }
    }

    /// A graceful stop began: the timer stops and no slice runs from now on.
    func stop() {
        self.stopped = true
        if let timer = self.expiryTimer { self.loop.cancelTimer(timer) }
        self.expiryTimer = nil
    }

    // MARK: LRU clock

    /// The LRU clock's tick (the keys' `lastAccess` stamps count in these).
    static let lruClockTickNanoseconds: UInt64 = 100_000_000

    /// Advances the LRU clock the store stamps accesses with (every timer tick: 100 ms resolution).
    private func advanceLRUClock() {
        guard !self.stopped else { return }
        self.store.lruClock = Self.currentLRUClock()
    }

    /// The LRU clock's value now: 100 ms ticks of the monotonic clock.
    static func currentLRUClock() -> UInt32 {
        UInt32(truncatingIfNeeded: SystemClock.monotonicNanoseconds() / Self.lruClockTickNanoseconds)
    }

    // MARK: Active expiry

    /// How often the loop looks for keys past their deadline that nobody reads (Redis's `hz` 10).
    static let activeExpiryPeriod: Duration = .milliseconds(100)
    /// The longest one slice of active expiry (or eviction) holds the loop. When a slice ends with
    /// work left, the next slice runs on the next loop iteration, after the clients ready meanwhile
    /// are served: a million keys expiring together cost many short slices, not a stall.
    static let activeExpirySliceNanoseconds: UInt64 = 1_000_000
    /// Deadlines examined per call into the store between two looks at the clock.
    static let activeExpiryBatch = 256

    /// One slice of active expiry: deletes expired keys (each logged as a delete, written with the
    /// iteration's other records) until the store finds few of them or the slice's time is up.
    private func expireSlice() {
        guard !self.stopped, self.store.keysWithExpiry > 0 else { return }
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

    /// Whether a memory limit is set (a flag behind a pointer: cheap to read from here).
    var isLimited: Bool { self.state.memoryRoom.isLimited }

    /// INFO `used_memory`: the keyspace's exact account plus every kv connection's buffers.
    var usedMemoryBytes: Int { self.store.usedBytes + self.connectionBuffers.bytes }

    /// Takes a sample of ``usedMemoryBytes`` for the peak (the timer's tick, INFO). - Returns: the peak.
    func sampleMemoryPeak() -> Int {
        self.usedMemoryPeak = max(self.usedMemoryPeak, self.usedMemoryBytes)
        return self.usedMemoryPeak
    }

    /// Touches an evicted key in the WATCH registry (an eviction aborts an EXEC watching it, as in
    /// Redis) and announces it (`evicted` keyspace event); nil while nobody watches and the event
    /// is off, so eviction then pays nothing for it. `aheadOfReply`: the eviction makes room for the
    /// command about to run, so the running client's invalidations go before that command's reply
    /// (Redis evicts before a command, never after one).
    private func watchedEviction(aheadOfReply: Bool) -> ((UnsafeRawBufferPointer) -> Void)? {
        let notifies = self.state.pubsub.keyspaceEvents.contains(.evicted)
        guard !self.state.watches.isEmpty || notifies || self.state.pubsub.tracking.isActive else { return nil }
        return { [watches = self.state.watches, pubsub = self.state.pubsub, state = self.state, store = self.store] key in
            let database = store.selectedDatabase  // evictions run inside the key's database
            if !watches.isEmpty { watches.touch([UInt8](key), database: database) }
            if pubsub.tracking.isActive { pubsub.tracking.serverChanged(key, aheadOfReply: aheadOfReply, state: state) }
            if notifies { pubsub.notifyFromServer(.evicted, "evicted", key: key, database: database) }
        }
    }

    /// The policy, unless it evicts nothing.
    private var evictingPolicy: KeyEviction? {
        let policy = self.state.evictionPolicy
        return policy == .noEviction ? nil : policy
    }

    /// ``ServerControl/makeRoom(forBytes:)``. The store is closed only once every connection has
    /// closed: no command runs after it.
    func makeRoom(forBytes bytes: Int) -> Bool {
        let limit = self.state.maxMemoryBytes
        guard limit > 0 else { return true }
        let over = self.usedMemoryBytes + bytes - limit
        guard over > 0 else { return true }
        guard let policy = self.evictingPolicy else {
            // noeviction: Redis's rule, refused once used memory is past the limit.
            return self.usedMemoryBytes <= limit
        }
        _ = self.store.evict(
            policy, bytesToFree: over, maxKeys: Self.evictionKeysPerCommand, samples: Self.evictionSamples,
            now: self.store.configuration.clock(), evicting: self.watchedEviction(aheadOfReply: true))
        if self.usedMemoryBytes + bytes <= limit { return true }
        self.evictionShortfall = max(self.evictionShortfall, bytes)
        self.postEvictionBacklog()
        return false
    }

    /// ``ServerControl/settleMemory()``; also after a connection's input grew, and at the end of a
    /// loop iteration (output left unsent counts too).
    func settleMemory() {
        // Nothing is evicted under a busy script (Sources/Services/Scripting/ScriptBusy.swift).
        guard self.state.busyScript == nil else { return }
        let limit = self.state.maxMemoryBytes
        guard limit > 0, let policy = self.evictingPolicy else { return }
        let over = self.usedMemoryBytes - limit
        guard over > 0 else { return }
        _ = self.store.evict(
            policy, bytesToFree: over, maxKeys: Self.evictionKeysPerCommand, samples: Self.evictionSamples,
            now: self.store.configuration.clock(), evicting: self.watchedEviction(aheadOfReply: false))
        if self.usedMemoryBytes > limit { self.postEvictionBacklog() }
    }

    /// CONFIG SET maxmemory / maxmemory-policy: changes the state's figures; a lower limit is
    /// reached by the backlog, slice by slice, as Redis does after CONFIG SET.
    func setMemoryLimit(bytes: Int?, policy: KeyEviction?) {
        if let bytes { self.state.maxMemoryBytes = bytes }
        if let policy { self.state.evictionPolicy = policy }
        self.evictionShortfall = 0
        let limit = self.state.maxMemoryBytes
        if limit > 0 && self.usedMemoryBytes > limit { self.postEvictionBacklog() }
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
        let limit = self.state.maxMemoryBytes
        guard !self.stopped, limit > 0, let policy = self.evictingPolicy else {
            self.evictionShortfall = 0
            return
        }
        let start = SystemClock.monotonicNanoseconds()
        let now = self.store.configuration.clock()
        while true {
            let over = self.usedMemoryBytes + self.evictionShortfall - limit
            if over <= 0 {
                self.evictionShortfall = 0
                return
            }
            let result = self.store.evict(
                policy, bytesToFree: over, maxKeys: Self.evictionBatch, samples: Self.evictionSamples, now: now,
                evicting: self.watchedEviction(aheadOfReply: false))
            if result.exhausted || result.evicted == 0 {
                // Nothing left to evict: the shortfall cannot be met; commands will say OOM.
                self.evictionShortfall = 0
                return
            }
            if SystemClock.monotonicNanoseconds() - start >= Self.activeExpirySliceNanoseconds { break }
        }
        self.postEvictionBacklog()
    }
}
