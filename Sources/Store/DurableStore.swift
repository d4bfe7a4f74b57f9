// The durable key-value store: the in-memory ``Keyspace`` with a ``Journal`` in front of every mutation
// (expiries included): the data operations, rolling back what a failed write or sync lost, close and
// statistics. Recovery (Recovery.swift), compaction (Compaction.swift) and the log itself (Journal.swift) live
// in files of their own. Not thread-safe: the event loop's thread calls every method; only a ``SyncJob`` or
// ``CompactionJob`` value leaves it. Knows nothing of sockets or the loop; reads the time only through
// ``DurableStore/Configuration/clock`` (recovery, compaction, and the APIs without `now:`).

import Glibc
import Logging

/// The durable key-value store. See the file header for the threading rule.
///
/// Lifecycle of a mutation: ``set(_:forKey:)`` applies it to the keyspace at once (every reader sees it),
/// appends its record to the journal's buffer and keeps the previous state in the undo log. Expiry is lazy
/// (a read past a key's deadline removes it) plus ``expireCycle(now:budget:)``; both log a delete, like any
/// other mutation, so a restart never brings an expired key back. ``writeBuffered()`` (once
/// per loop iteration) writes the buffer with one write(2). Under `always`, ``makeSyncJob()`` /
/// ``completeSync(_:result:)`` make it durable. A mutation may be acknowledged once its sequence number
/// is at most ``durableSequence``; if a write or sync fails first, it is rolled back and reported.
public final class DurableStore {
    /// Where and how the store persists.
    public struct Configuration: Sendable {
        /// The data directory (created if missing).
        public var directory: String
        /// When the log is synced.
        public var fsync: FsyncPolicy
        /// Log size that makes ``needsCompaction`` true.
        public var compactionThresholdBytes: Int
        /// The longest ``DurableStore/close()`` may expect its final compaction to take; past it the
        /// compaction is left out (the log keeps everything and the next start replays it), so a
        /// stop stays within the few seconds a service manager waits. Estimated from the last
        /// compaction's pace, or 100 MB/s of keyspace before the first.
        public var shutdownCompactionBudget: Duration = .milliseconds(1500)
        /// Not read: compaction writes the snapshot from the live table (SnapshotCapture.swift). It sized
        /// the values the former compaction, which rebuilt the state from the files, left on disk
        /// (DiskValues.swift, now reached only by tests); kept so configurations that set it still build.
        public var diskValueThresholdBytes = Self.defaultDiskValueThreshold
        /// ``DurableStore/lruClock`` at start: the keys recovery loads are stamped with it (as Redis's
        /// loaded keys are idle from the load on, not since some earlier epoch).
        public var initialLRUClock: UInt32 = 0
        public static let defaultDiskValueThreshold = 1 << 20
        /// The wall clock in Unix milliseconds, read at recovery and compaction (to drop keys whose deadline
        /// passed) and by the APIs that take no `now:`. Tests inject a manual clock.
        public var clock: @Sendable () -> Int64

        public init(
            directory: String, fsync: FsyncPolicy = .always, compactionThresholdBytes: Int = 64 << 20,
            clock: @escaping @Sendable () -> Int64 = DurableStore.realtimeMilliseconds
        ) {
            self.directory = directory
            self.fsync = fsync
            self.compactionThresholdBytes = compactionThresholdBytes
            self.clock = clock
        }
    }

    /// CLOCK_REALTIME in milliseconds (the default ``Configuration/clock``).
    @Sendable public static func realtimeMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Read every loop iteration (``fsyncPolicy``), changed between them: loop thread only, unchecked.
    @exclusivity(unchecked) public internal(set) var configuration: Configuration
    let directory: String
    let logger: Logger
    let io: StoreIO
    /// The data directory, open for fsync and holding the flock that keeps a second store out.
    private let directoryFD: CInt

    /// The live keyspace of the selected database (``selectedDatabase``; Databases.swift). Replaced (not
    /// copied) by ``removeAll()``.
    var keyspace: Keyspace
    /// Database 0's keyspace, which holds the others' (``Keyspace/otherDatabases``).
    var root: Keyspace
    /// The database ``keyspace`` belongs to: 0 but inside ``withDatabase(_:_:)``.
    public internal(set) var selectedDatabase = 0
    /// Where the open database record starts in the journal's buffer, inside ``withDatabase(_:_:)``.
    var databaseFrameStart: Int?
    /// The active expiry cursors of databases other than 0.
    var otherExpireCursors: [Int: Int] = [:]
    /// The write-ahead log, its buffer and its state; read ``Journal/state`` and ``Journal/sequences``.
    public let journal: Journal
    /// Previous states of every mutation newer than ``durableSequence``, oldest first, sequences ascending,
    /// encoded in one reused byte buffer (no allocation per mutation; see ``UndoLog``). Behind a pointer
    /// for the reason given at ``Journal/Pending``. Allocated last in `init`, freed in `deinit`.
    let undo: UnsafeMutablePointer<UndoLog>
    @exclusivity(unchecked) var inverse = ElementInverse(recording: true)  // rollback's record (apply); loop only: unchecked
    @exclusivity(unchecked) var collectionHint = -1  // the entry a collection read found last (DurableStore+Values.swift)
    /// Where the open atomic group's frame starts in the journal's buffer (``beginAtomicGroup()``).
    @exclusivity(unchecked) var atomicGroupStart: Int?  // read by every log write: unchecked
    var atomicGroupOpening = AtomicGroupOpening()  // where it began (DurableStore+AbandonGroup.swift)
    /// Keyspaces replaced by a ``removeAll()`` not yet durable, oldest first (their undo entries name them).
    @exclusivity(unchecked) var clearedKeyspaces: [Keyspace] = []  // loop only: unchecked
    /// A failure of a large SET's early write (``setLarge(_:forKey:deadline:)``), returned by the next
    /// ``writeBuffered()``.
    @exclusivity(unchecked) var unreportedFailure: WriteOutcome?  // read by every write: unchecked
    /// Position in the deadline array where the next ``expireCycle(now:budget:)`` resumes.
    var expireCursor = 0
    var expiredKeys = 0
    public var onExpire: ((UnsafeRawBufferPointer) -> Void)?  // told of each key expiring, before it goes
    var evictedKeys = 0
    /// Candidates carried between eviction calls (Redis keeps its pool across calls too).
    var evictionPool = EvictionPool()
    var compaction = CompactionProgress()

    /// The newest sequence number handed out (``Journal/Sequences/appended``).
    public var lastSequence: UInt64 { self.journal.pending.pointee.sequences.appended }
    /// Every mutation up to this one is in the log: acknowledged once written (`everysec`, `no`) or synced
    /// (`always`) (``Journal/Sequences/durable``).
    public var durableSequence: UInt64 { self.journal.pending.pointee.sequences.durable }
    /// Bytes appended to the log since open (metrics: reactord_log_written_bytes_total).
    public var logBytesWritten: Int { self.journal.bytesWritten }
    var isClosed: Bool { self.journal.state.isClosed }

    // MARK: - Opening

    /// Opens the store in `configuration.directory`, recovering its state (Recovery.swift): creates the
    /// directory if missing and checks it is writable, removes a leftover temporary snapshot, loads
    /// `database.txt`, replays leftover rotated segments in order, then `database.wal`. A torn record at the
    /// end of `database.wal` is dropped with a warning and the file cut back to the last good record.
    /// - Throws: ``StoreError`` for an unwritable or locked directory, a malformed snapshot line, or a corrupt
    ///   log record (naming the file and byte offset).
    public init(
        configuration: Configuration,
        logger: Logger = Logger(label: "reactord.store", factory: { _ in SwiftLogNoOpLogHandler() }),
        io: StoreIO = .system
    ) throws(StoreError) {
        var directory = configuration.directory
        while directory.count > 1 && directory.hasSuffix("/") {
            directory.removeLast()
        }
        let recovered = try Recovery.open(directory: directory, configuration: configuration, io: io, logger: logger)
        self.configuration = configuration
        self.directory = directory
        self.logger = logger
        self.io = io
        self.directoryFD = recovered.directoryFD
        self.keyspace = recovered.keyspace
        self.root = recovered.keyspace
        self.journal = Journal(log: recovered.log, records: recovered.records, directoryFD: recovered.directoryFD,
                               io: io, logger: logger)
        self.compaction.segments = recovered.segments
        self.compaction.coveredSegments = recovered.coveredSegments
        self.compaction.wanted = !recovered.segments.isEmpty
        self.undo = .allocate(capacity: 1)
        self.undo.initialize(to: UndoLog())
    }

    deinit {
        // Without close(): a crash as far as the files are concerned (tests rely on that). Only release
        // the descriptors (the journal its own) and with them the directory lock.
        if !self.isClosed {
            self.io.unlock(self.directoryFD)
            self.io.close(self.directoryFD)
        }
        self.undo.deinitialize(count: 1)
        self.undo.deallocate()
    }

    // MARK: - Reads (loop thread; no syscalls except the clock in the APIs without `now:`)

    /// The number of keys (including keys whose deadline passed that nothing reclaimed yet, as Redis's
    /// DBSIZE counts them).
    public var count: Int { self.keyspace.count }

    /// The exact byte account of the keyspace (``Keyspace/usedBytes``): INFO `used_memory`, the memory limit.
    public var usedBytes: Int { self.root.otherDatabases.reduce(self.root.usedBytes) { $0 + $1.usedBytes } }

    /// Why the log cannot be written now (a failed write or fsync not yet followed by a
    /// successful one, or a log left unusable), or nil when the last attempt succeeded.
    public var logWriteFailure: StoreError? { self.journal.currentError }

    /// Keys removed because their deadline passed (lazily or by ``expireCycle(now:budget:)``), since open.
    public var expiredKeyCount: Int { self.expiredKeys }

    /// Keys removed by ``evict(_:bytesToFree:maxKeys:now:)`` since open (INFO `evicted_keys`).
    public var evictedKeyCount: Int { self.evictedKeys }

    /// The value stored under `key`, or nil (reads ``Configuration/clock`` only when the key has a deadline).
    public func value(forKey key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { raw in
            self.liveString(raw, now: nil).map { [UInt8](KeyTable.value(self.keyspace.table.pointee.slot($0))) }
        }
    }

    /// The value stored under `key` at time `now` (Unix ms), or nil. A key past its deadline is removed
    /// (and its removal logged as a delete) on the way.
    public func value(forKey key: [UInt8], now: Int64) -> [UInt8]? {
        key.withUnsafeBytes { raw in
            self.liveString(raw, now: now).map { [UInt8](KeyTable.value(self.keyspace.table.pointee.slot($0))) }
        }
    }

    /// Whether `key` is present at `now`.
    public func contains(_ key: [UInt8], now: Int64) -> Bool {
        key.withUnsafeBytes { self.liveIndex($0, now: now) != nil }
    }

    /// Whether `key` exists and when it expires (TTL, PTTL, EXPIRETIME).
    public func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry {
        key.withUnsafeBytes { raw in
            guard let index = self.liveIndex(raw, now: now) else { return .missing }
            return self.keyspace.deadline(at: index).map { .at(milliseconds: $0) } ?? .never
        }
    }

    /// OBJECT IDLETIME: LRU clock ticks (``lruClock``) since `key` was last read or written, or nil when
    /// absent. Asking is not an access: the key's stamp stays as it was.
    public func idleTicks(forKey key: [UInt8], now: Int64) -> UInt32? {
        key.withUnsafeBytes { raw in self.liveIndex(raw, now: now, touching: false).map { self.keyspace.idleTicks(at: $0) } }
    }

    /// MEMORY USAGE: the bytes `key` accounts for in ``usedBytes``, or nil when absent.
    public func usedBytes(forKey key: [UInt8], now: Int64) -> Int? {
        key.withUnsafeBytes { raw in self.liveIndex(raw, now: now, touching: false).map { self.keyspace.usedBytes(at: $0) } }
    }

    /// ``liveIndex(_:now:touching:)`` for the string reads above, which see a collection as absent: the
    /// typed reads (``withString(forKey:now:_:)``, DurableStore+Values.swift) answer WRONGTYPE instead.
    @inline(__always)
    private func liveString(_ key: UnsafeRawBufferPointer, now: Int64?) -> Int? {
        guard let index = self.liveIndex(key, now: now), !Slot.isCollection(self.keyspace.table.pointee.slot(index)) else {
            return nil
        }
        return index
    }

    /// The entry holding `key` unless it is absent or past its deadline (then it is expired on the way).
    /// `now` nil reads ``Configuration/clock``, only if the key has a deadline.
    /// `touching` false: the lookup does not count as an access (OBJECT IDLETIME).
    @inline(__always)
    func liveIndex(_ key: UnsafeRawBufferPointer, now: Int64?, touching: Bool = true) -> Int? {
        // Through the table pointer, as in `set`: no retain and release of the keyspace per lookup.
        let table = self.keyspace.table
        let index = table.pointee.lookup(key, rehashSteps: 1).index
        guard index >= 0 else { return nil }
        if let deadline = table.pointee.deadline(ofEntry: index), (now ?? self.configuration.clock()) > deadline {
            self.expireEntry(index)
            return nil
        }
        if touching {
            table.pointee.slot(index).storeBytes(of: table.pointee.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        }
        return index
    }

    // MARK: - Mutations (loop thread; no syscalls)

    /// Inserts or overwrites, in memory at once, and buffers the log record. Clears any deadline.
    /// - Returns: the mutation's sequence number; acknowledge it once ``durableSequence`` reaches it.
    /// - Throws: ``StoreError`` when the log cannot take writes at all, or the record would be too large.
    public func set(_ value: [UInt8], forKey key: [UInt8]) throws(StoreError) -> UInt64 {
        try key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                Result { () throws(StoreError) -> UInt64 in try self.set(v, forKey: k, deadline: nil, now: 0) }
            }
        }.get()
    }

    /// Inserts or overwrites with a deadline (nil: none, clearing any; SET … PXAT, SETEX, KEEPTTL is the
    /// caller's: pass the old deadline). A deadline at or before `now` removes the key instead, logged as
    /// a delete, as Redis does for SET with an expiry already in the past.
    /// - Returns: the sequence number to wait for (``durableSequence`` when nothing changed).
    public func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StoreError) -> UInt64 {
        try key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                Result { () throws(StoreError) -> UInt64 in try self.set(v, forKey: k, deadline: deadline, now: now) }
            }
        }.get()
    }

    /// ``set(_:forKey:deadline:now:)`` over borrowed bytes (no allocation beyond amortised buffers).
    @inline(__always)
    public func set(
        _ value: UnsafeRawBufferPointer, forKey key: UnsafeRawBufferPointer, deadline: Int64?, now: Int64
    ) throws(StoreError) -> UInt64 {
        try self.set(value, forKey: key, deadline: deadline.map { .at($0) } ?? .cleared, now: now)
    }

    /// Inserts or overwrites over borrowed bytes; `write` says what becomes of the key's deadline (kept:
    /// read from the entry this lookup replaces, so APPEND or INCR costs one lookup).
    public func set(
        _ value: UnsafeRawBufferPointer, forKey key: UnsafeRawBufferPointer, deadline write: WriteDeadline, now: Int64
    ) throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: key.count + value.count + 8)
        var deadline: Int64?
        if case .at(let at) = write {
            guard at > now else {
                guard let index = self.keyspace.find(key) else { return self.durableSequence }
                return self.logRemoval(index)
            }
            deadline = at
        }
        if value.count >= Self.largeValueBytes && self.atomicGroupStart == nil && self.unreportedFailure == nil
            && self.databaseFrameStart == nil
        {
            if write.keepsDeadline, let index = self.liveIndex(key, now: now) { deadline = self.keyspace.deadline(at: index) }
            return try self.setLarge(value, forKey: key, deadline: deadline)
        }
        let sequence = self.journal.nextSequence()
        // Through the table pointer: holding the Keyspace object in a local costs a retain and a release
        // per SET; the store keeps it alive and nothing here replaces it.
        let table = self.keyspace.table
        let (previous, hash) = table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
        if previous >= 0 {
            if write.keepsDeadline, let old = table.pointee.deadline(ofEntry: previous), old > now { deadline = old }
            self.undo.pointee.push(sequence: sequence, key: key, previousAt: previous, in: table)
            table.pointee.replace(at: previous, value: value, deadline: deadline)
            if write == .keptEdited { table.pointee.markRaw(previous) }  // Redis's `raw` (KeyspaceMemory.swift)
        } else {
            self.undo.pointee.push(sequence: sequence, key: key, previousAt: nil, in: table)
            table.pointee.insertNew(key, hash: hash, value: value, deadline: deadline)
            if write == .keptEdited { table.pointee.markRaw(table.pointee.count - 1) }  // inserted last
        }
        self.bufferSetRecord(key, value, deadline: deadline)
        return sequence
    }

    /// Buffers the log record of a SET.
    @inline(__always)
    private func bufferSetRecord(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, deadline: Int64?) {
        if let deadline {
            Record.append(kind: Record.kindSetWithDeadline, key: key, deadline: deadline, value: value,
                          to: &self.journal.pending.pointee.buffer)
        } else {
            Record.append(kind: Record.kindSet, key: key, value: value, to: &self.journal.pending.pointee.buffer)
        }
        self.journal.pending.pointee.bufferedRecords += 1
    }

    /// Values from this size on are written to the log before the keyspace copies them.
    static let largeValueBytes = 1 << 20

    /// ``set(_:forKey:deadline:now:)`` for a large value: its record is written at once (after whatever
    /// was buffered, so the log keeps sequence order) and the log buffer gives its memory back before
    /// the keyspace takes its copy. The caller's bytes, the log buffer and the keyspace never hold the
    /// value all three at once: a 512 MiB SET peaks at twice the value, not three times. If the write
    /// fails, this mutation was never applied and throws; earlier buffered ones are rolled back and
    /// reported by the next ``writeBuffered()``, as any failed write is.
    private func setLarge(
        _ value: UnsafeRawBufferPointer, forKey key: UnsafeRawBufferPointer, deadline: Int64?
    ) throws(StoreError) -> UInt64 {
        let sequence = self.journal.nextSequence()
        self.bufferSetRecord(key, value, deadline: deadline)
        let outcome = self.settle { () throws(Journal.Failure) in try self.journal.flush(policy: self.configuration.fsync) }
        if case .failed(_, let error) = outcome {
            self.unreportedFailure = outcome
            throw error
        }
        let table = self.keyspace.table
        let (previous, hash) = table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
        // Written: under `everysec`/`no` already durable (nothing to roll back); under `always` the
        // undo entry lets a failed fsync take it back like any other unsynced write.
        let keepsUndo = self.configuration.fsync == .always
        if previous >= 0 {
            if keepsUndo { self.undo.pointee.push(sequence: sequence, key: key, previousAt: previous, in: table) }
            table.pointee.replace(at: previous, value: value, deadline: deadline)
        } else {
            if keepsUndo { self.undo.pointee.push(sequence: sequence, key: key, previousAt: nil, in: table) }
            table.pointee.insertNew(key, hash: hash, value: value, deadline: deadline)
        }
        return sequence
    }

    /// Removes `key` (reads ``Configuration/clock`` only if the key has a deadline).
    /// - Returns: the mutation's sequence number, or nil when the key was absent (nothing is logged).
    /// - Throws: ``StoreError`` when the log cannot take writes.
    public func removeValue(forKey key: [UInt8]) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: key.count)
        return key.withUnsafeBytes { raw in
            self.liveIndex(raw, now: nil).map { self.logRemoval($0) }
        }
    }

    /// Removes `key` as of `now` (a key past its deadline counts as absent; it is expired on the way).
    /// - Returns: the mutation's sequence number, or nil when the key was absent.
    public func removeValue(forKey key: [UInt8], now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: key.count)
        return key.withUnsafeBytes { raw in
            self.liveIndex(raw, now: now).map { self.logRemoval($0) }
        }
    }

    /// Sets the deadline of a present key (EXPIRE, PEXPIREAT…; the NX/XX/GT/LT conditions are the caller's,
    /// from ``expiry(forKey:now:)``). A deadline at or before `now` removes the key, logged as a delete.
    /// - Returns: the sequence number, or nil when the key is absent (nothing changes).
    public func expire(_ key: [UInt8], at deadline: Int64, now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: key.count + 8)
        return key.withUnsafeBytes { raw in
            guard let index = self.liveIndex(raw, now: now) else { return nil }
            if deadline <= now {
                return self.logRemoval(index)
            }
            let sequence = self.journal.nextSequence()
            self.undo.pointee.pushDeadline(sequence: sequence, key: raw, deadline: self.keyspace.deadline(at: index))
            self.keyspace.setDeadline(at: index, deadline)
            Record.append(kind: Record.kindExpire, key: raw, deadline: deadline, value: UnsafeRawBufferPointer(start: nil, count: 0),
                          to: &self.journal.pending.pointee.buffer)
            self.journal.pending.pointee.bufferedRecords += 1
            return sequence
        }
    }

    /// Clears the deadline of `key` (PERSIST).
    /// - Returns: the sequence number, or nil when the key is absent or has no deadline (nothing changes).
    public func persist(_ key: [UInt8], now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: key.count)
        return key.withUnsafeBytes { raw in
            guard let index = self.liveIndex(raw, now: now), self.keyspace.deadline(at: index) != nil else { return nil }
            let sequence = self.journal.nextSequence()
            self.undo.pointee.pushDeadline(sequence: sequence, key: raw, deadline: self.keyspace.deadline(at: index))
            self.keyspace.setDeadline(at: index, nil)
            Record.append(kind: Record.kindPersist, key: raw, value: UnsafeRawBufferPointer(start: nil, count: 0),
                          to: &self.journal.pending.pointee.buffer)
            self.journal.pending.pointee.bufferedRecords += 1
            return sequence
        }
    }

    /// Removes every key (logged even when already empty, so the reply can follow the usual path). O(1):
    /// the old keyspace is kept whole for rollback until the clear is durable, then freed.
    /// - Returns: the mutation's sequence number. - Throws: ``StoreError`` when the log cannot take writes.
    public func removeAll() throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: 0)
        let sequence = self.journal.nextSequence()
        self.clearedKeyspaces.append(self.keyspace)
        self.undo.pointee.pushClear(sequence: sequence)
        let clock = self.keyspace.lruClock
        let emptied = Keyspace()
        emptied.lruClock = clock
        self.install(emptied)
        self.evictionPool.removeAll()
        self.expireCursor = 0
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        Record.append(kind: Record.kindClear, key: none, value: none, to: &self.journal.pending.pointee.buffer)
        self.journal.pending.pointee.bufferedRecords += 1
        return sequence
    }

    /// Logs and applies the removal of entry `index`. - Returns: its sequence number.
    @inline(__always)
    func logRemoval(_ index: Int) -> UInt64 {
        let sequence = self.journal.nextSequence()
        let key = self.keyspace.key(at: index)
        self.undo.pointee.push(sequence: sequence, key: key, previousAt: index, in: self.keyspace.table)
        Record.append(kind: Record.kindDelete, key: key, value: UnsafeRawBufferPointer(start: nil, count: 0),
                      to: &self.journal.pending.pointee.buffer)
        self.journal.pending.pointee.bufferedRecords += 1
        self.keyspace.remove(at: index)
        return sequence
    }

    /// Bytes of records waiting for ``writeBuffered()`` (the server may flush early past a limit).
    public var bufferedBytes: Int { self.journal.bufferedBytes }

    /// Starts a group of mutations logged as one record (a MULTI/EXEC): replayed all or none after
    /// a crash, whatever part of it reached the disk. Groups do not nest; the buffer is not written
    /// while one is open (mutations never write; only ``writeBuffered()`` does, after the group).
    public func beginAtomicGroup() {
        precondition(self.atomicGroupStart == nil, "atomic groups do not nest")
        self.atomicGroupStart = self.journal.pending.pointee.buffer.count
        self.atomicGroupOpening = AtomicGroupOpening(opening: self)
        // Room for the group's own header, written by `endAtomicGroup` once the members are known.
        _ = self.journal.pending.pointee.buffer.extend(by: Record.groupHeaderBytes)
    }

    /// Closes the group: its records become one frame. A group that logged nothing leaves no trace;
    /// one of a single record stays that record.
    public func endAtomicGroup() {
        guard let start = self.atomicGroupStart else { preconditionFailure("no atomic group is open") }
        if self.atomicGroupOpening.abandoned { return self.abandonAtomicGroup() }
        self.atomicGroupStart = nil
        let membersStart = start + Record.groupHeaderBytes
        let members = self.journal.pending.pointee.buffer.count - membersStart
        if members == 0 || Record.frameHeaderBytes + Int(self.frameLength(at: membersStart)) == members
            || members > Record.maximumPayloadBytes - Record.payloadHeaderBytes
        {
            // Nothing, one record (atomic already), or past the frame limit: no group frame. A
            // transaction over 1 GiB of records is logged record by record (README).
            self.journal.pending.pointee.buffer.remove(start..<membersStart)
            return
        }
        Record.closeGroup(startingAt: start, in: &self.journal.pending.pointee.buffer)
    }

    private func frameLength(at offset: Int) -> UInt32 {
        let bytes = self.journal.pending.pointee.buffer.bytes
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    func checkWritable(recordBytes: Int) throws(StoreError) {
        switch self.journal.state {
        case .unusable(let error): throw error
        case .closed: preconditionFailure("DurableStore used after close()")
        default: break
        }
        if recordBytes > Record.maximumPayloadBytes - Record.payloadHeaderBytes - 8 {
            throw StoreError(operation: "append", path: self.journal.log.path,
                             detail: "record of \(recordBytes) bytes is too large")
        }
    }

    // MARK: - Shutdown and statistics

    /// Whether ``close(compacting:)`` compacts.
    public enum ClosingCompaction: Sendable {
        /// When the log holds anything and the compaction fits in ``Configuration/shutdownCompactionBudget``.
        case withinBudget
        /// When the log holds anything, however long it takes (SHUTDOWN SAVE).
        case always
        /// Never: the log keeps everything and the next start replays it (SHUTDOWN NOSAVE).
        case never
    }

    /// Clean shutdown: writes and syncs the log, compacts synchronously (as `compacting` says), closes the files.
    /// - Precondition: no ``SyncJob`` or ``CompactionJob`` is in flight (wait for it first).
    /// - Throws: ``StoreError`` when the final write, sync or compaction failed; the files are closed anyway
    ///   and the log still holds everything that was acknowledged.
    public func close(compacting: ClosingCompaction = .withinBudget) throws(StoreError) {
        guard !self.isClosed else { return }
        precondition(!self.journal.state.isSyncing && !self.isCompacting,
                     "close() while a SyncJob or CompactionJob is in flight")
        defer {  // on every path, failures included: the next store may open the directory at once
            self.journal.close()
            self.io.unlock(self.directoryFD)
            self.io.close(self.directoryFD)
        }
        self.unreportedFailure = nil
        // A failed sync under `everysec`/`no` may have cost the log acknowledged records: memory covers it.
        let rewrite = self.journal.reopenForRewrite()
        if case .failed(_, let error) = self.settle({ () throws(Journal.Failure) in try self.journal.flush(policy: self.configuration.fsync) }) {
            throw error
        }
        let compacts = switch compacting {
        case .withinBudget: rewrite || self.closingCompactionIsWorthIt()
        case .always: rewrite || self.journal.log.size > 0 || !self.compaction.segments.isEmpty
        case .never: rewrite
        }
        try self.journal.redoCutBack()
        // Synced here, the loop having stopped: then a compaction rotates with nothing left to wait for.
        if self.journal.log.size > self.journal.syncedOffset {
            try self.journal.syncNow(policy: self.configuration.fsync)
            self.dropUndo(through: self.durableSequence)
        }
        if !compacts {
            // Written and synced, nothing else: the log holds every mutation the snapshot lacks.
            if self.journal.directoryUnsynced {
                try Recovery.syncDirectory(self.directory, io: self.io)
            }
            if case .unusable(let error) = self.journal.state { throw error }
            return
        }
        guard let job = try self.beginCompaction() else {
            if case .failed(_, let error)? = self.unreportedFailure {
                throw error
            }
            if case .unusable(let error) = self.journal.state { throw error }
            return
        }
        let result = job.run()
        self.finishCompaction(job, result: result)
        if case .failure(let error) = result {
            throw error
        }
    }

    /// `name=value` fields for `stats` and `INFO`, in a stable order.
    public func statistics() -> [(name: String, value: String)] {
        [
            ("keys", String(self.keyspace.count)),
            ("keys_with_expiry", String(self.keyspace.countWithDeadline)),
            ("expired_keys", String(self.expiredKeys)),
            ("evicted_keys", String(self.evictedKeys)),
            ("used_bytes", String(self.keyspace.usedBytes)),
            ("log_bytes", String(self.journal.log.size)),
            ("log_records", String(self.journal.records)),
            ("log_buffered_bytes", String(self.journal.bufferedBytes)),
            ("last_sequence", String(self.lastSequence)),
            ("durable_sequence", String(self.durableSequence)),
            ("fsync_policy", self.configuration.fsync.rawValue),
            ("fsyncs", String(self.journal.fsyncs)),
            ("fsync_failures", String(self.journal.fsyncFailures)),
            ("write_failures", String(self.journal.writeFailures)),
            ("compactions", String(self.compaction.completed)),
            ("compaction_failures", String(self.compaction.failures)),
            ("compaction_in_progress", self.isCompacting ? "1" : "0"),
            ("last_compaction_ms", String(self.compaction.lastMilliseconds)),
        ]
    }

    /// Checks the keyspace's invariants (tests; O(keys)).
    func checkInvariants() {
        self.keyspace.checkInvariants()
        precondition(self.clearedKeyspaces.count == self.undo.pointee.clearCount,
                     "cleared keyspaces out of step with undo")
    }
}
