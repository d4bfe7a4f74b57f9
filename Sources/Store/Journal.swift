// The journal: the open write-ahead log, the records buffered for it, and where writing, syncing and
// cutting it back stand, as one explicit ``Journal/State`` and one set of ``Journal/Sequences`` that the
// store and the server read instead of keeping copies. Loop thread only; a ``SyncJob`` is the one piece that
// leaves it, holding descriptor numbers and plain values. It never touches the keyspace: when a write or a
// sync fails it cuts the file back and says which mutations to undo (``Journal/Failure``); the store undoes them.

import Glibc
import Logging

/// When the log is flushed to stable storage (README.md: `--fsync`; docs/architecture.md "Group commit").
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// fdatasync before a mutation is acknowledged (group commit through ``SyncJob``).
    case always
    /// Acknowledge once written to the file; the server syncs about once a second.
    case everysec
    /// Acknowledge once written to the file; the kernel decides when it reaches the disk.
    case no
}

/// The result of handing buffered log records to the kernel, or of a sync.
public enum WriteOutcome: Sendable, Equatable {
    /// Nothing failed. ``DurableStore/durableSequence`` tells what may now be acknowledged.
    case ok
    /// Every mutation with a sequence number in `sequences` that was not already durable failed: it was
    /// rolled back in memory and is not in the log. Answer `ERR` to its client.
    case failed(sequences: ClosedRange<UInt64>, error: StoreError)
}

/// What a ``SyncJob`` reports back.
public typealias SyncResult = Result<Void, StoreError>

/// One fdatasync of the log, to run off the loop thread (group commit: it covers every record written
/// before it was made), preceded by an fsync of the data directory when a log rotation changed it since
/// the last sync. Holds descriptor numbers, plain values and one reference: it is copied into the sync
/// thread's job and its result back, once per group, and a copy of ``StoreIO`` (a closure per syscall)
/// or of the path was a retain each.
public struct SyncJob: Sendable {
    /// What every sync of one log shares: the log's path (for errors) and the calls to make.
    final class Target: Sendable {
        let path: String
        let io: StoreIO

        init(path: String, io: StoreIO) {
            self.path = path
            self.io = io
        }
    }

    let fd: CInt
    let target: Target
    /// The data directory's descriptor, when its entries changed (a rotation renamed the log and created
    /// a new one) and no sync has made that durable yet: records in the new log are not durable until
    /// its name is.
    let directoryFD: CInt?
    /// The newest mutation this sync makes durable.
    public let sequence: UInt64
    /// The log size it covers.
    let offset: Int
    /// Records in the log at `offset`.
    let records: Int

    /// Calls fsync(2) on the directory if it must, then fdatasync(2) on the log. Any thread; blocks.
    /// Hand the result to ``DurableStore/completeSync(_:result:)``.
    public func run() -> SyncResult {
        let target = self.target
        if let directoryFD = self.directoryFD {
            do {
                try target.io.fsync(directoryFD)
            } catch {
                // The log lives in the directory: its path without the file name names it.
                let path = target.path
                let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
                return .failure(StoreError(operation: "fsync", path: directory, errno: error))
            }
        }
        do {
            try target.io.fdatasync(self.fd)
            return .success(())
        } catch {
            return .failure(StoreError(operation: "fdatasync", path: target.path, errno: error))
        }
    }
}

/// The write-ahead log and its buffer. Owned by one ``DurableStore``; loop thread only.
public final class Journal {
    /// Where the journal stands. Every transition is in this file.
    public enum State: Sendable, Equatable {
        /// Records go to the file at the next write; no sync is in flight.
        case idle
        /// A ``SyncJob`` covering every record through `through` is in flight.
        case syncing(through: UInt64)
        /// A compaction waits to rotate the log until the records written to it are synced, under every
        /// policy: under `always` rotating would put them in a segment a failed sync could not cut back;
        /// under every policy a record of the new log could reach the disk before the segment's unsynced
        /// tail, and a power cut would leave later writes without earlier ones. Syncing on the loop thread
        /// would hold it for a whole fdatasync, so new records stay in the buffer meanwhile (their replies
        /// wait, as they would for the sync under `always`). `syncing` is the sync in flight, if any.
        case holdingForRotation(syncing: UInt64?)
        /// Cutting the log back after a failed write or sync failed: it must be cut to `at` bytes before
        /// anything else is appended, and no sync starts until then (it would make a partial frame
        /// durable). `syncing` is a sync that was already in flight.
        case mustTruncate(at: Int, syncing: UInt64?)
        /// A rotation failed half-way and the log could not be put back under its name: nothing more is
        /// appended or synced; mutations fail with this error until a restart.
        case unusable(StoreError)
        /// ``DurableStore/close(compacting:)`` ran: the file is closed.
        case closed

        /// The sequence the sync in flight covers, or nil when none is.
        public var syncInFlight: UInt64? {
            switch self {
            case .syncing(let sequence): sequence
            case .holdingForRotation(let sequence), .mustTruncate(_, let sequence): sequence
            case .idle, .unusable, .closed: nil
            }
        }

        /// Whether a ``SyncJob`` is in flight.
        public var isSyncing: Bool { self.syncInFlight != nil }

        /// Whether the journal was closed.
        public var isClosed: Bool {
            if case .closed = self { true } else { false }
        }

        /// The same state once the sync in flight has finished.
        var afterSync: State {
            switch self {
            case .syncing: .idle
            case .holdingForRotation: .holdingForRotation(syncing: nil)
            case .mustTruncate(let offset, _): .mustTruncate(at: offset, syncing: nil)
            case .idle, .unusable, .closed: self
            }
        }
    }

    /// Sequence numbers of mutations. Invariant: `synced <= written <= appended`; `durable` is `synced` under
    /// `always` and `written` otherwise; the numbers of rolled-back mutations are never reused.
    public struct Sequences: Sendable, Equatable {
        /// The newest number handed out.
        public internal(set) var appended: UInt64 = 0
        /// Every mutation up to this one is in the file.
        public internal(set) var written: UInt64 = 0
        /// Every mutation up to this one was synced by a ``SyncJob`` (or on the loop thread where it must).
        public internal(set) var synced: UInt64 = 0
        /// Every mutation up to this one may be acknowledged.
        public internal(set) var durable: UInt64 = 0
    }

    /// What every mutation touches, behind one pointer: as class stored properties they paid a dynamic
    /// exclusivity check (`swift_beginAccess`) on each modify, because closures in the store reach them;
    /// memory behind a pointer is checked statically, as ``Keyspace`` does for its table. Invariant:
    /// `bufferedRecords` is the number of records in `buffer`.
    struct Pending: ~Copyable {
        var sequences = Sequences()
        /// Encoded records not yet written. Emptied by every write; capacity kept (bounded).
        var buffer = LogBuffer()
        var bufferedRecords = 0
    }

    /// Why a write or a sync failed, and what the store must undo.
    struct Failure: Error {
        /// The mutations that failed (answer `ERR` to their clients).
        let sequences: ClosedRange<UInt64>
        let error: StoreError
        /// Undo every mutation after this one: they are not in the log.
        let rollBackAfter: UInt64

        var outcome: WriteOutcome { .failed(sequences: self.sequences, error: self.error) }
    }

    /// Read by every mutation (``DurableStore`` refuses it when unusable) and, being public, by the server:
    /// loop thread only, each access whole before the next begins, so no dynamic exclusivity check (one per
    /// SET showed in the callgrind count, scripts/callgrind-hotpath.sh).
    @exclusivity(unchecked) public private(set) var state: State = .idle
    /// Whether a sync is in flight, for readers in other modules: `@exclusivity(unchecked)` holds only
    /// inside this module, so `state` read from the server paid a dynamic exclusivity check and a copy of
    /// the enum; this getter reads it here.
    public var isSyncing: Bool { self.state.isSyncing }
    /// Allocated in `init`, freed in `deinit`; loop thread only.
    let pending: UnsafeMutablePointer<Pending>
    /// Appended to by every write: loop thread only, each access whole before the next begins, so no
    /// dynamic exclusivity check.
    @exclusivity(unchecked) private(set) var log: WriteAheadLog
    /// The log's path and the store's calls, shared by every ``SyncJob`` (replaced when the log is).
    private var syncTarget: SyncJob.Target
    /// The data directory (owned by the store): fsynced by the first ``SyncJob`` after a rotation.
    private let directoryFD: CInt
    private let io: StoreIO
    private let logger: Logger

    /// Log size and record count as of the last successful sync (or recovery).
    private(set) var syncedOffset: Int
    private var syncedRecords: Int
    /// Records in the log file.
    @exclusivity(unchecked) private(set) var records: Int
    /// A rotation renamed the log and created a new one, and no fsync of the directory has made that
    /// durable yet: the next ``SyncJob`` does it before its fdatasync (so records in the new log are
    /// acknowledged only once its name survives a power cut), or the compaction's own directory fsync.
    private(set) var directoryUnsynced = false

    /// A sync failed under `everysec` or `no`: records acknowledged since the last good sync may never reach
    /// the disk. The log is unusable until ``reopenForRewrite()``.
    private(set) var lostUnsyncedRecords = false

    private(set) var fsyncs = 0
    private(set) var fsyncFailures = 0
    private(set) var writeFailures = 0
    /// Bytes appended to the log since open (metrics: reactord_log_written_bytes_total).
    @exclusivity(unchecked) private(set) var bytesWritten = 0
    /// The last failed log write or fsync, until a later one succeeds (metrics: /healthz).
    @exclusivity(unchecked) private var lastFailure: StoreError?

    private static let bufferCapacityKept = 4 << 20

    /// Takes over `log`, recovered with `records` valid records (its size already set).
    init(log: WriteAheadLog, records: Int, directoryFD: CInt, io: StoreIO, logger: Logger) {
        self.log = log
        self.syncedOffset = log.size
        self.syncedRecords = records
        self.records = records
        self.directoryFD = directoryFD
        self.io = io
        self.logger = logger
        self.syncTarget = SyncJob.Target(path: log.path, io: io)
        self.pending = .allocate(capacity: 1)
        self.pending.initialize(to: Pending())
    }

    deinit {
        // Without close(): a crash as far as the file is concerned (tests rely on that).
        if !self.state.isClosed { self.io.close(self.log.fd) }
        self.pending.deinitialize(count: 1)
        self.pending.deallocate()
    }

    /// The journal's sequence numbers.
    public var sequences: Sequences { self.pending.pointee.sequences }

    /// Bytes of records waiting for the next write.
    public var bufferedBytes: Int { self.pending.pointee.buffer.count }

    /// Why the log cannot be written now (a failed write or fsync not yet followed by a successful one,
    /// or a log left unusable), or nil when the last attempt succeeded.
    public var currentError: StoreError? {
        if case .unusable(let error) = self.state { return error }
        return self.lastFailure
    }

    /// Whether mutations may be logged (not unusable, not closed).
    var acceptsMutations: Bool {
        switch self.state {
        case .unusable, .closed: false
        default: true
        }
    }

    /// Hands out the next sequence number (the caller buffers its record).
    @inline(__always)
    func nextSequence() -> UInt64 {
        self.pending.pointee.sequences.appended += 1
        return self.pending.pointee.sequences.appended
    }

    // MARK: - Writing

    /// Writes the buffer unless a compaction holds appends for a sync (see ``State/holdingForRotation(syncing:)``).
    func write(policy: FsyncPolicy) throws(Failure) {
        if case .holdingForRotation(let syncing) = self.state {
            if self.log.size > self.syncedOffset { return }
            self.state = syncing.map { .syncing(through: $0) } ?? .idle
        }
        try self.flush(policy: policy)
    }

    /// Writes every buffered record with one write(2) (looping on short writes), first cutting the log back
    /// if it must be. Under `everysec`/`no` success makes the records durable.
    /// - Throws: the failure: the file was cut back to its size before this write (or must be,
    ///   ``State/mustTruncate(at:syncing:)``) and the buffer emptied; the store undoes the mutations.
    func flush(policy: FsyncPolicy) throws(Failure) {
        guard !self.pending.pointee.buffer.isEmpty else { return }
        if case .unusable(let error) = self.state {
            let failed = (self.pending.pointee.sequences.written + 1)...self.pending.pointee.sequences.appended
            let rollBackAfter = self.pending.pointee.sequences.written
            self.clearBuffer()
            throw Failure(sequences: failed, error: error, rollBackAfter: rollBackAfter)
        }
        var failure: StoreError?
        if case .mustTruncate(let target, let syncing) = self.state {
            do {
                try self.cutBack(to: target)
                self.state = syncing.map { .syncing(through: $0) } ?? .idle
            } catch {
                failure = error
            }
        }
        if failure == nil {
            do throws(StoreError) {
                try self.log.append(self.pending.pointee.buffer.bytes, io: self.io)
                self.bytesWritten += self.pending.pointee.buffer.count
                self.lastFailure = nil
            } catch {
                failure = error
            }
        }
        if let failure { throw self.writeFailed(failure) }
        self.wrote(policy: policy)
    }

    /// The buffer's write (or the cut-back before it) failed: the buffered mutations fail, the buffer is
    /// emptied and the file cut back to its size before the write (or marked to be).
    private func writeFailed(_ failure: StoreError) -> Failure {
        let failed = (self.pending.pointee.sequences.written + 1)...self.pending.pointee.sequences.appended
        let rollBackAfter = self.pending.pointee.sequences.written
        self.writeFailures += 1
        self.lastFailure = failure
        self.clearBuffer()
        if case .mustTruncate = self.state {
        } else {
            do {
                try self.cutBack(to: self.log.size)
            } catch {
                self.state = .mustTruncate(at: self.log.size, syncing: self.state.syncInFlight)
            }
        }
        self.logger.info("log write failed; mutations rolled back",
                         metadata: ["store.error": "\(failure)", "store.sequences": "\(failed)"])
        return Failure(sequences: failed, error: failure, rollBackAfter: rollBackAfter)
    }

    /// The buffer reached the file: its records are written (and under `everysec`/`no` durable).
    @inline(__always)
    private func wrote(policy: FsyncPolicy) {
        self.pending.pointee.sequences.written = self.pending.pointee.sequences.appended
        self.records += self.pending.pointee.bufferedRecords
        self.clearBuffer()
        if policy != .always {
            self.pending.pointee.sequences.durable = self.pending.pointee.sequences.written
        }
    }

    /// Cuts the log back to `length` and makes the cut durable before anything else happens: the records
    /// past it were (or are about to be) answered with an error, and a power cut must not bring them back,
    /// as it could while the cut is only in the page cache. Failure paths only: one fdatasync each.
    private func cutBack(to length: Int) throws(StoreError) {
        try self.log.truncate(to: length, io: self.io)
        do {
            try self.io.fdatasync(self.log.fd)
        } catch {
            throw StoreError(operation: "fdatasync", path: self.log.path, errno: error, detail: "after cutting it to \(length) bytes")
        }
    }

    private func clearBuffer() {
        self.pending.pointee.buffer.removeAll(keepingCapacityUpTo: Self.bufferCapacityKept)
        self.pending.pointee.bufferedRecords = 0
    }

    // MARK: - Syncing

    /// A group-commit sync covering everything written so far, or nil when nothing written is unsynced,
    /// a sync is already in flight, or the state allows none.
    func makeSyncJob() -> SyncJob? {
        let sequence = self.pending.pointee.sequences.written
        guard sequence > self.pending.pointee.sequences.synced else { return nil }
        switch self.state {
        case .idle: self.state = .syncing(through: sequence)
        case .holdingForRotation(nil): self.state = .holdingForRotation(syncing: sequence)
        default: return nil
        }
        return SyncJob(fd: self.log.fd, target: self.syncTarget,
                       directoryFD: self.directoryUnsynced ? self.directoryFD : nil, sequence: sequence, offset: self.log.size, records: self.records)
    }

    /// Takes back a finished ``SyncJob``. Success marks its records synced. A failure under `always` is
    /// never retried or trusted (the kernel may have dropped the dirty pages): everything after the last
    /// sync fails, and the log is cut back to it. Under `everysec`/`no` the failure is logged and counted.
    func completeSync(_ job: SyncJob, result: SyncResult, policy: FsyncPolicy) -> Failure? {
        precondition(self.state.isSyncing && job.fd == self.log.fd, "completeSync without its SyncJob")
        self.state = self.state.afterSync
        switch result {
        case .success:
            self.fsyncs += 1
            self.lastFailure = nil
            if job.directoryFD != nil { self.directoryUnsynced = false }
            self.markSynced(sequence: job.sequence, offset: job.offset, records: job.records, policy: policy)
            return nil
        case .failure(let error):
            self.fsyncFailures += 1
            self.lastFailure = error
            guard policy == .always else {
                // The records written since the last good sync were acknowledged, and the kernel may have
                // dropped their pages: no later sync can vouch for them, and records written after them
                // would make a history with a hole after a power cut. Writes are refused from here on;
                // the clean stop writes the state from memory (DurableStore.close).
                self.logger.error("log fdatasync failed; refusing writes until a restart",
                                  metadata: ["store.error": "\(error)"])
                self.lostUnsyncedRecords = true
                self.state = .unusable(StoreError(
                    operation: error.operation, path: error.path, errno: error.errno,
                    detail: "acknowledged writes since the last good sync may not be on disk; writes are refused "
                        + "until a clean restart writes them from memory"))
                return nil
            }
            return self.failUnsynced(error)
        }
    }

    /// Everything after the last sync fails: the buffer is dropped and the log cut back to the last
    /// synced size.
    private func failUnsynced(_ error: StoreError) -> Failure {
        let synced = self.pending.pointee.sequences.synced
        let failed = (synced + 1)...max(self.pending.pointee.sequences.appended, synced + 1)
        self.clearBuffer()
        self.pending.pointee.sequences.written = synced
        self.records = self.syncedRecords
        do {
            try self.cutBack(to: self.syncedOffset)
            if case .mustTruncate = self.state { self.state = .idle }
        } catch {
            self.state = .mustTruncate(at: self.syncedOffset, syncing: nil)
        }
        self.logger.info("log fdatasync failed; unsynced mutations rolled back",
                         metadata: ["store.error": "\(error)", "store.sequences": "\(failed)"])
        return Failure(sequences: failed, error: error, rollBackAfter: synced)
    }

    /// Notes that everything through `sequence` (`offset` bytes, `records` records) is synced.
    private func markSynced(sequence: UInt64, offset: Int, records: Int, policy: FsyncPolicy) {
        self.pending.pointee.sequences.synced = sequence
        self.syncedOffset = offset
        self.syncedRecords = records
        if policy == .always {
            self.pending.pointee.sequences.durable = sequence
        }
    }

    /// Redoes a cut-back that failed (``State/mustTruncate(at:syncing:)``, no sync in flight). Past its target
    /// lie records that were rolled back and answered with an error (a failed write or sync whose cut-back
    /// failed too): a sync, or a close that leaves the file as it is, would bring them back at the next start.
    func redoCutBack() throws(StoreError) {
        guard case .mustTruncate(let target, nil) = self.state else { return }
        try self.cutBack(to: target)
        self.state = .idle
    }

    /// Syncs on the caller's thread whatever was written and not yet synced (a policy change to `always`,
    /// a clean stop), and marks it synced. - Throws: the fdatasync's failure (counted).
    func syncNow(policy: FsyncPolicy) throws(StoreError) {
        precondition(!self.state.isSyncing, "a sync on the loop thread while a SyncJob is in flight")
        try self.redoCutBack()
        let sequences = self.pending.pointee.sequences
        if self.log.size > self.syncedOffset || sequences.written > sequences.synced {
            do {
                try self.io.fdatasync(self.log.fd)
            } catch {
                self.fsyncFailures += 1
                throw StoreError(operation: "fdatasync", path: self.log.path, errno: error)
            }
            self.fsyncs += 1
        }
        self.markSynced(sequence: self.pending.pointee.sequences.written, offset: self.log.size, records: self.records,
                        policy: policy)
    }

    /// After ``lostUnsyncedRecords``, for the clean stop only: the log takes writes again (the buffer's last
    /// records, then a rotation), so the stop can rotate it into a segment and cover it with a snapshot
    /// written from memory, which holds every acknowledged write.
    /// - Returns: whether it did (the stop must then compact).
    func reopenForRewrite() -> Bool {
        guard self.lostUnsyncedRecords, case .unusable = self.state else { return false }
        self.lostUnsyncedRecords = false
        self.state = .idle
        return true
    }

    /// Away from `always`: everything written so far is durable at once, as under the new policy it would
    /// have been when written.
    func markWrittenDurable() {
        self.pending.pointee.sequences.durable = self.pending.pointee.sequences.written
    }

    // MARK: - Rotation

    /// Gets the log ready to be rotated (no sync in flight, not unusable): cuts it back if it must be, and
    /// makes the rotation wait for a sync of records written but not yet synced, under every policy (see
    /// ``State/holdingForRotation(syncing:)``): so the segment is durable, whole, before its rename is and
    /// before any record of the new log is written.
    /// - Returns: false when the rotation must wait (appends are held until a sync, in flight or the next,
    ///   has covered the log); true when it may rotate now.
    /// - Throws: ``StoreError`` when the log could not be cut back.
    func prepareRotation() throws(StoreError) -> Bool {
        precondition(!self.state.isSyncing, "rotation with a sync in flight")
        if case .mustTruncate(let target, _) = self.state {
            // Records past `target` were rolled back: they must not be rotated into a segment the snapshot
            // and recovery would replay.
            try self.cutBack(to: target)
            self.state = .idle
        }
        guard self.log.size > self.syncedOffset else {
            if case .holdingForRotation = self.state { self.state = .idle }
            return true
        }
        if case .holdingForRotation = self.state {
        } else {
            self.state = .holdingForRotation(syncing: nil)
            self.logger.debug("compaction waits for the log's sync before rotating it")
        }
        return false
    }

    /// Renames the log to `segmentPath` and switches to a new empty `database.wal`, or leaves everything
    /// as it was and throws (``State/unusable(_:)`` when not even the old name could be restored). The
    /// directory is left for a later sync (``directoryUnsynced``).
    func rotate(to segmentPath: String) throws(StoreError) {
        let walPath = self.log.path
        do {
            try self.io.rename(walPath, segmentPath)
        } catch {
            throw StoreError(operation: "rename", path: walPath, errno: error, detail: "to \(segmentPath)")
        }
        let newLog: WriteAheadLog
        do {
            newLog = try WriteAheadLog.open(path: walPath, io: self.io)
        } catch {
            // Put the old log back under its name so recovery and appends stay consistent.
            do {
                try self.io.rename(segmentPath, walPath)
            } catch let renameError {
                self.state = .unusable(StoreError(operation: "rename", path: segmentPath, errno: renameError,
                                                  detail: "could not restore the log after a failed rotation; restart"))
            }
            throw error
        }
        self.directoryUnsynced = true
        self.io.close(self.log.fd)
        self.log = newLog
        self.syncTarget = SyncJob.Target(path: newLog.path, io: self.io)
        self.syncedOffset = 0
        self.syncedRecords = 0
        self.records = 0
    }

    /// A compaction fsynced the directory after its rename, and with it the rotation's entries.
    func directorySynced() {
        self.directoryUnsynced = false
    }

    /// Closes the file (``DurableStore/close(compacting:)``); nothing may use the journal after.
    func close() {
        guard !self.state.isClosed else { return }
        // An unusable log stays reported (`currentError`, the health check) after the close.
        if case .unusable(let error) = self.state { self.lastFailure = error }
        self.state = .closed
        self.io.close(self.log.fd)
    }
}
