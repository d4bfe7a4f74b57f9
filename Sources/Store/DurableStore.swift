// The durable key-value store: the in-memory ``Keyspace``, a write-ahead log in front of every mutation
// (expiries included), recovery on open, and compaction into database.txt. Not thread-safe: the event loop's
// thread calls every method. The only work that leaves that thread is a ``SyncJob`` or ``CompactionJob``
// value, which captures descriptors, paths and file names, never the store or its keyspace: compaction
// rebuilds the state from the files already durable. Knows nothing of sockets or the loop; reads the time
// only through ``DurableStore/Configuration/clock`` (recovery, compaction, and the APIs without `now:`).

import Glibc
import Logging
import Synchronization

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
/// the last sync. Holds only descriptor numbers and plain values.
public struct SyncJob: Sendable {
    let fd: CInt
    let path: String
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
    let io: StoreIO

    /// Calls fsync(2) on the directory if it must, then fdatasync(2) on the log. Any thread; blocks.
    /// Hand the result to ``DurableStore/completeSync(_:result:)``.
    public func run() -> SyncResult {
        if let directoryFD = self.directoryFD {
            do {
                try self.io.fsync(directoryFD)
            } catch {
                // The log lives in the directory: its path without the file name names it.
                let directory = String(self.path[..<(self.path.lastIndex(of: "/") ?? self.path.endIndex)])
                return .failure(StoreError(operation: "fsync", path: directory, errno: error))
            }
        }
        do {
            try self.io.fdatasync(self.fd)
            return .success(())
        } catch {
            return .failure(StoreError(operation: "fdatasync", path: self.path, errno: error))
        }
    }
}

/// Writes a snapshot of the state as of a log rotation, off the loop thread.
///
/// It never looks at the live keyspace: it rebuilds the state from what is already durable, `database.txt`
/// plus every rotated segment, replayed exactly as recovery does, in a keyspace of its own. The loop thread
/// pays only for the rotation (a rename and an open; no sync); the cost is a second copy of the data in
/// memory while the job runs, on the compaction thread.
public struct CompactionJob: Sendable {
    /// Set by ``cancel()`` from any thread; the job checks it between megabytes of output.
    final class Cancellation: Sendable {
        let flag = Atomic<Bool>(false)
        var isSet: Bool { self.flag.load(ordering: .relaxed) }
    }

    let directory: String
    /// Rotated segments the snapshot makes redundant (deleted by ``run()`` once the snapshot is durable).
    let segments: [Int]
    let io: StoreIO
    let clock: @Sendable () -> Int64
    /// The live key count when the log was rotated (the snapshot leaves out keys expired by then).
    public let keyCount: Int
    /// The segment just rotated, when its last records were written but not yet synced (`everysec`,
    /// `no`): ``run()`` syncs it first, off the loop thread, so the snapshot never rests on records a
    /// power cut could take back while later ones survive.
    var segmentToSync: String? = nil
    /// Values from this many bytes are copied from the files into the snapshot, never held in memory
    /// (DiskValues.swift): ``DurableStore/Configuration/diskValueThresholdBytes``.
    var diskValueThreshold = DurableStore.Configuration.defaultDiskValueThreshold
    let cancellation = Cancellation()

    /// Asks a running job to stop soon (a graceful stop must not wait for a long compaction): it
    /// removes its temporary file and fails, keeping the segments, which the next start replays.
    public func cancel() { self.cancellation.flag.store(true, ordering: .relaxed) }

    /// Rebuilds the state from `database.txt` and the segments (dropping keys whose deadline passed), then
    /// writes `database.txt.tmp`, fsyncs it, renames it over `database.txt`, fsyncs the directory.
    /// Any thread; blocks for as long as reading and writing take. On an I/O failure the temporary file
    /// is removed; a failure injected by ``StoreIO/compactionStep`` (a simulated crash) leaves everything.
    public func run() -> Result<Void, StoreError> { self.run(writing: nil) }

    /// ``run()``, but writing `live` instead of rebuilding the state from disk: only for
    /// ``DurableStore/close()``, when the loop has stopped, everything in the keyspace has been written
    /// and synced, and nothing can change it while the snapshot is written. No second copy of the data,
    /// no replay: a clean stop takes the time of writing the snapshot and no more.
    func run(writing live: Keyspace?) -> Result<Void, StoreError> {
        let temporaryPath = self.directory + "/" + Snapshot.temporaryFileName
        let finalPath = self.directory + "/" + Snapshot.fileName
        var fd: CInt = -1
        var crashed = false
        func step(_ step: CompactionStep) throws(StoreError) {
            do {
                try self.io.compactionStep(step)
            } catch {
                crashed = true
                throw error
            }
        }
        do throws(StoreError) {
            if let name = self.segmentToSync {
                let path = self.directory + "/" + name
                let segment: CInt
                do {
                    segment = try self.io.open(path, O_RDONLY, 0)
                } catch {
                    throw StoreError(operation: "open", path: path, errno: error)
                }
                defer { self.io.close(segment) }
                // Under `no` or `everysec` most of the segment may still be dirty: its writeback is
                // started a piece at a time (PageCache.swift) before the sync waits for it.
                if let size = try? self.io.fileSize(segment) {
                    PageCache.startWriteback(segment, from: 0, to: size, io: self.io)
                }
                do {
                    try self.io.fdatasync(segment)
                } catch {
                    throw StoreError(operation: "fdatasync", path: path, errno: error)
                }
            }
            let keyspace: Keyspace
            var diskValues: DiskValues?
            defer { diskValues?.close(io: self.io) }
            if let live {
                keyspace = live
            } else {
                keyspace = Keyspace()
                diskValues = DiskValues(threshold: self.diskValueThreshold)
                try DurableStore.loadDurableState(directory: self.directory, segments: self.segments, io: self.io,
                                                  into: keyspace, logger: nil, diskValues: diskValues)
                DurableStore.dropExpired(keyspace, now: self.clock())
            }
            do {
                fd = try self.io.open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            } catch {
                throw StoreError(operation: "open", path: temporaryPath, errno: error)
            }
            let cancellation = self.cancellation
            try Snapshot.write(keyspace, to: fd, path: temporaryPath, io: self.io,
                               leavingOutExpiredAt: live == nil ? nil : self.clock(), diskValues: diskValues) {
                cancellation.isSet
            }
            try step(.wroteTemporary)
            do {
                try self.io.fsync(fd)
            } catch {
                throw StoreError(operation: "fsync", path: temporaryPath, errno: error)
            }
            try step(.syncedTemporary)
            self.io.close(fd)
            fd = -1
            // Held open across the rename, so that the replaced file's cache is dropped a piece at a
            // time below instead of all at once when its last reference goes (PageCache.swift).
            let replaced = try? self.io.open(finalPath, O_RDONLY, 0)
            defer {
                if let replaced {
                    PageCache.drop(replaced, io: self.io)
                    self.io.close(replaced)
                }
            }
            do {
                try self.io.rename(temporaryPath, finalPath)
            } catch {
                throw StoreError(operation: "rename", path: temporaryPath, errno: error, detail: "to \(finalPath)")
            }
            try step(.renamed)
            try DurableStore.syncDirectory(self.directory, io: self.io)
            try step(.syncedDirectory)
            // The segments are redundant now. Deleted here, not on the loop: unlinking a 64 MiB file
            // whose pages are cached took 2-125 ms on this machine's ext4, all of it a stall for every
            // client; here its cache goes first, a piece at a time.
            // ``DurableStore/finishCompaction(_:result:)`` drops them from the list (and retries any
            // this could not delete).
            for segment in self.segments {
                let path = self.directory + "/" + WriteAheadLog.segmentPrefix + String(segment)
                try? PageCache.dropAndUnlink(path, io: self.io)
            }
            try? self.io.compactionStep(.deletedSegment)
            return .success(())
        } catch {
            if fd >= 0 {
                self.io.close(fd)
            }
            if !crashed {
                try? self.io.unlink(temporaryPath)
            }
            return .failure(error)
        }
    }
}

/// The durable key-value store. See the file header for the threading rule.
///
/// Lifecycle of a mutation: ``set(_:forKey:)`` applies it to the keyspace at once (every reader sees it),
/// appends its record to an in-memory buffer and keeps the previous state in the undo log. Expiry is lazy
/// (a read past a key's deadline removes it) plus ``expireCycle(now:budget:)``; both log a delete, like any
/// other mutation, so a restart never brings an expired key back. ``writeBuffered()`` (once
/// per loop iteration) writes the buffer with one write(2). Under `always`, ``makeSyncJob()`` /
/// ``completeSync(_:result:)`` make it durable. A mutation may be acknowledged once its sequence number
/// is at most ``durableSequence``; if a write or sync fails first, it is rolled back and reported.
/// The mutable state every mutation touches, owned by one ``DurableStore`` through a pointer (see
/// ``DurableStore/pending``). Invariant: `bufferedRecords` is the number of records in `buffer`.
struct PendingMutations: ~Copyable {
    /// The newest sequence number handed out (see ``DurableStore/lastSequence``).
    var lastSequence: UInt64 = 0
    /// Encoded records not yet written. Emptied by every ``DurableStore/writeBuffered()``; capacity kept
    /// (bounded).
    var buffer = LogBuffer()
    var bufferedRecords = 0
    /// Previous states of every mutation newer than ``DurableStore/durableSequence``, oldest first,
    /// sequences ascending, encoded in one reused byte buffer (no allocation per mutation; see ``UndoLog``).
    var undo = UndoLog()
}

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
        /// A compaction copies values of at least this many bytes from `database.txt` and the log
        /// segments into the new snapshot a piece at a time instead of rebuilding them in memory
        /// (DiskValues.swift). 1 MiB: a rebuilt 512 MiB value cost 1 GiB more while it ran.
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

    public private(set) var configuration: Configuration
    private let directory: String
    private let logger: Logger
    private let io: StoreIO
    /// The data directory, open for fsync and holding the flock that keeps a second store out.
    private let directoryFD: CInt

    /// The live keyspace. Replaced (not copied) by ``removeAll()``.
    private var keyspace: Keyspace
    private var log: WriteAheadLog
    /// What every mutation writes (sequence counter, record buffer, undo log), behind one pointer the store
    /// owns. As class stored properties they paid a dynamic exclusivity check (`swift_beginAccess`, ~100
    /// instructions) on each modify, three per SET, because closures in this class also reach them; memory
    /// behind a pointer is checked statically, as ``Keyspace`` does for its table. Allocated last in `init`
    /// (nothing throws after it), freed in `deinit`; loop thread only, like the rest of the store.
    private let pending: UnsafeMutablePointer<PendingMutations>
    /// Where the open atomic group's frame starts in the pending log buffer, between
    /// ``beginAtomicGroup()`` and ``endAtomicGroup()``.
    private var atomicGroupStart: Int?
    /// Keyspaces replaced by a ``removeAll()`` not yet durable, oldest first (their undo entries name them).
    private var clearedKeyspaces: [Keyspace] = []
    /// Position in the deadline array where the next ``expireCycle(now:budget:)`` resumes.
    private var expireCursor = 0
    private var expiredKeys = 0
    private var evictedKeys = 0
    /// Candidates carried between eviction calls (Redis keeps its pool across calls too).
    private var evictionPool = EvictionPool()

    /// Sequence numbers. Invariant: `durableSequence <= syncedSequence or writtenSequence <= lastSequence`,
    /// `syncedSequence <= writtenSequence`; rolled-back numbers are never reused.
    public var lastSequence: UInt64 { self.pending.pointee.lastSequence }
    /// Every mutation up to this one is in the log: acknowledged once written (`everysec`, `no`) or synced
    /// (`always`).
    public private(set) var durableSequence: UInt64 = 0
    private var writtenSequence: UInt64 = 0
    private var syncedSequence: UInt64 = 0
    /// Log size and record count as of the last successful sync (or recovery).
    private var syncedOffset = 0
    private var syncedRecords = 0
    private var logRecords = 0

    private var syncInFlight = false
    /// A rotation renamed the log and created a new one, and no fsync of the directory has made that
    /// durable yet: the next ``SyncJob`` does it before its fdatasync (so records in the new log are
    /// acknowledged only once its name survives a power cut), or the compaction's own directory fsync.
    private var directoryUnsynced = false
    /// Under `always`, ``beginCompaction()`` found records written and not yet synced: rotating would put
    /// them in a segment that a failed sync could not cut back, and syncing them there would hold the loop
    /// thread for a whole fdatasync. So ``writeBuffered()`` appends nothing more (the records stay in the
    /// buffer) until the sync in flight or next has covered the log; then ``beginCompaction()`` rotates
    /// with nothing to sync.
    private var appendsHeldForRotation = false
    /// Set while a ``CompactionJob`` runs: when it started (monotonic nanoseconds).
    private var compactionStartedNanoseconds: UInt64?
    /// Rotated segments on disk, ascending.
    private var segments: [Int] = []
    /// Leftover segments were found at open: compact soon even below the threshold.
    private var compactionWanted = false
    /// A failure found by ``beginCompaction()``'s flush, returned by the next ``writeBuffered()``.
    private var pendingOutcome: WriteOutcome?
    /// The log must be cut back to this size before the next append (an earlier ftruncate failed).
    private var pendingTruncation: Int?
    /// Set when the log can no longer be appended to (a rotation failed half-way): mutations throw it.
    private var unusable: StoreError?
    private var isClosed = false

    private var fsyncs = 0
    /// Bytes appended to the log since open (metrics: reactord_log_written_bytes_total).
    public private(set) var logBytesWritten = 0
    /// The last failed log write or fsync, until a later one succeeds (metrics: /healthz).
    private var lastLogFailure: StoreError?
    private var fsyncFailures = 0
    private var writeFailures = 0
    private var compactions = 0
    private var compactionFailures = 0
    private var lastCompactionMilliseconds = 0
    /// The keyspace's ``Keyspace/usedBytes`` when the last successful compaction began (its pace).
    private var lastCompactionBytes = 0
    private var compactionStartBytes = 0

    private static let bufferCapacityKept = 4 << 20

    // MARK: - Opening and recovery

    /// Opens the store in `configuration.directory`, recovering its state: creates the directory if
    /// missing and checks it is writable, removes a leftover temporary snapshot, loads `database.txt`,
    /// replays leftover rotated segments in order, then `database.wal`. A torn record at the end of
    /// `database.wal` is dropped with a warning and the file cut back to the last good record.
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
        self.configuration = configuration
        self.directory = directory
        self.logger = logger
        self.io = io

        try Self.makeDirectories(directory, io: io)
        let directoryFD: CInt
        do {
            directoryFD = try io.open(directory, O_RDONLY | O_DIRECTORY, 0)
        } catch {
            throw StoreError(operation: "open data directory", path: directory, errno: error)
        }
        var opened = false
        defer {
            if !opened { io.close(directoryFD) }
        }
        do {
            try io.lockExclusive(directoryFD)
        } catch {
            throw StoreError(operation: "lock data directory", path: directory, errno: error,
                             detail: error.code == EWOULDBLOCK ? "another store has it open" : nil)
        }

        // A temporary snapshot can only be the leftover of a crashed compaction. Creating and removing it
        // again also proves the directory is writable before anything else is touched.
        let temporaryPath = directory + "/" + Snapshot.temporaryFileName
        do {
            try io.unlink(temporaryPath)
            logger.info("removed leftover temporary snapshot", metadata: ["store.path": "\(temporaryPath)"])
        } catch {
            if error.code != ENOENT {
                throw StoreError(operation: "remove", path: temporaryPath, errno: error)
            }
        }
        do {
            let probe = try io.open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            io.close(probe)
            try io.unlink(temporaryPath)
        } catch {
            throw StoreError(operation: "data directory is not writable: create", path: temporaryPath, errno: error)
        }

        let names: [String]
        do {
            names = try io.listDirectory(directory)
        } catch {
            throw StoreError(operation: "list", path: directory, errno: error)
        }
        let segments = names.compactMap { name -> Int? in
            guard name.hasPrefix(WriteAheadLog.segmentPrefix) else { return nil }
            let suffix = name.dropFirst(WriteAheadLog.segmentPrefix.count)
            guard !suffix.isEmpty, suffix.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return nil }
            return Int(suffix)
        }.sorted()

        let keyspace = Keyspace()
        keyspace.lruClock = configuration.initialLRUClock  // recovered keys count as accessed at start
        try Self.loadDurableState(directory: directory, segments: segments, io: io, into: keyspace, logger: logger)

        let walPath = directory + "/" + WriteAheadLog.fileName
        var log = try WriteAheadLog.open(path: walPath, io: io)
        var logOpened = false
        defer {
            if !logOpened { io.close(log.fd) }
        }
        if !names.contains(WriteAheadLog.fileName) {
            try Self.syncDirectory(directory, io: io)  // the new log's name must survive a power cut
        }
        let replayed = try WriteAheadLog.replay(path: walPath, fd: log.fd, io: io, isLast: true) { record in
            Self.apply(record, to: keyspace)
        }
        let dropped = Self.dropExpired(keyspace, now: configuration.clock())
        if replayed.tornBytes > 0 {
            logger.warning(
                "dropping a torn record at the end of the log (crash during an append)",
                metadata: [
                    "store.path": "\(walPath)", "store.offset": "\(replayed.validBytes)",
                    "store.dropped_bytes": "\(replayed.tornBytes)",
                ])
            try log.truncate(to: replayed.validBytes, io: io)
            do {
                try io.fdatasync(log.fd)
            } catch {
                throw StoreError(operation: "fdatasync", path: walPath, errno: error)
            }
        }
        log.setRecoveredSize(replayed.validBytes)

        self.directoryFD = directoryFD
        self.pending = .allocate(capacity: 1)
        self.pending.initialize(to: PendingMutations())
        self.keyspace = keyspace
        self.log = log
        self.segments = segments
        self.compactionWanted = !segments.isEmpty
        self.syncedOffset = replayed.validBytes
        self.syncedRecords = replayed.records
        self.logRecords = replayed.records
        logOpened = true
        opened = true
        logger.info(
            "store recovered",
            metadata: [
                "store.directory": "\(directory)", "store.keys": "\(keyspace.count)",
                "store.log_records": "\(replayed.records)", "store.segments": "\(segments.count)",
                "store.expired_at_load": "\(dropped)",
            ])
    }

    deinit {
        // Without close(): a crash as far as the files are concerned (tests rely on that). Only release
        // the descriptors and with them the directory lock.
        if !self.isClosed {
            self.io.close(self.log.fd)
            self.io.close(self.directoryFD)
        }
        self.pending.deinitialize(count: 1)
        self.pending.deallocate()
    }

    // MARK: - Reads (loop thread; no syscalls except the clock in the APIs without `now:`)

    /// The number of keys (including keys whose deadline passed that nothing reclaimed yet, as Redis's
    /// DBSIZE counts them).
    public var count: Int { self.keyspace.count }

    /// Keys that carry a deadline.
    public var keysWithExpiry: Int { self.keyspace.countWithDeadline }

    /// The exact byte account of the keyspace (``Keyspace/usedBytes``): INFO `used_memory`, the memory limit.
    public var usedBytes: Int { self.keyspace.usedBytes }

    /// Why the log cannot be written now (a failed write or fsync not yet followed by a
    /// successful one, or a log left unusable), or nil when the last attempt succeeded.
    public var logWriteFailure: StoreError? { self.unusable ?? self.lastLogFailure }

    /// Keys removed because their deadline passed (lazily or by ``expireCycle(now:budget:)``), since open.
    public var expiredKeyCount: Int { self.expiredKeys }

    /// Keys removed by ``evict(_:bytesToFree:maxKeys:now:)`` since open (INFO `evicted_keys`).
    public var evictedKeyCount: Int { self.evictedKeys }

    /// The LRU clock every read and write stamps on its key (``Keyspace/lruClock``). The server advances
    /// it from a monotonic clock; eviction compares keys' stamps with it.
    public var lruClock: UInt32 {
        get { self.keyspace.lruClock }
        set { self.keyspace.lruClock = newValue }
    }

    /// The value stored under `key`, or nil (reads ``Configuration/clock`` only when the key has a deadline).
    public func value(forKey key: [UInt8]) -> [UInt8]? {
        key.withUnsafeBytes { raw in
            self.liveIndex(raw, now: nil).map { [UInt8](KeyTable.value(self.keyspace.table.pointee.slot($0))) }
        }
    }

    /// The value stored under `key` at time `now` (Unix ms), or nil. A key past its deadline is removed
    /// (and its removal logged as a delete) on the way.
    public func value(forKey key: [UInt8], now: Int64) -> [UInt8]? {
        key.withUnsafeBytes { raw in
            self.liveIndex(raw, now: now).map { [UInt8](KeyTable.value(self.keyspace.table.pointee.slot($0))) }
        }
    }

    /// Calls `body` with the value stored under `key` at `now` without copying it; nil when absent.
    /// `body` must not call back into the store (the bytes move on the next mutation).
    /// ``withValue(forKey:now:_:)`` reading ``Configuration/clock`` only if the key has a deadline
    /// (GET's hot path: no clock read for a key without one).
    public func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let index = self.liveIndex(key, now: nil) else { return nil }
        return try body(self.keyspace.value(at: index))
    }

    public func withValue<R>(
        forKey key: UnsafeRawBufferPointer, now: Int64, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R? {
        guard let index = self.liveIndex(key, now: now) else { return nil }
        return try body(self.keyspace.value(at: index))
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
        key.withUnsafeBytes { raw in self.liveIndex(raw, now: now).map { self.keyspace.usedBytes(at: $0) } }
    }

    /// The entry holding `key` unless it is absent or past its deadline (then it is expired on the way).
    /// `now` nil reads ``Configuration/clock``, only if the key has a deadline.
    /// `touching` false: the lookup does not count as an access (OBJECT IDLETIME).
    @inline(__always)
    private func liveIndex(_ key: UnsafeRawBufferPointer, now: Int64?, touching: Bool = true) -> Int? {
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
    public func set(
        _ value: UnsafeRawBufferPointer, forKey key: UnsafeRawBufferPointer, deadline: Int64?, now: Int64
    ) throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: key.count + value.count + 8)
        if let deadline, deadline <= now {
            guard let index = self.keyspace.find(key) else { return self.durableSequence }
            return self.logRemoval(index)
        }
        if value.count >= Self.largeValueBytes && self.atomicGroupStart == nil && self.pendingOutcome == nil {
            return try self.setLarge(value, forKey: key, deadline: deadline)
        }
        let sequence = self.nextSequence()
        // Through the table pointer: holding the Keyspace object in a local cost a retain and a release
        // (~40 instructions) per SET; the store keeps it alive and nothing here replaces it.
        let table = self.keyspace.table
        let (previous, hash) = table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
        if previous >= 0 {
            self.pending.pointee.undo.push(sequence: sequence, key: key, previousAt: previous, in: table)
            table.pointee.replace(at: previous, value: value, deadline: deadline)
        } else {
            self.pending.pointee.undo.push(sequence: sequence, key: key, previousAt: nil, in: table)
            table.pointee.insertNew(key, hash: hash, value: value, deadline: deadline)
        }
        self.bufferSetRecord(key, value, deadline: deadline)
        return sequence
    }

    /// Buffers the log record of a SET.
    @inline(__always)
    private func bufferSetRecord(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, deadline: Int64?) {
        if let deadline {
            Record.append(kind: Record.kindSetWithDeadline, key: key, deadline: deadline, value: value,
                          to: &self.pending.pointee.buffer)
        } else {
            Record.append(kind: Record.kindSet, key: key, value: value, to: &self.pending.pointee.buffer)
        }
        self.pending.pointee.bufferedRecords += 1
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
        let sequence = self.nextSequence()
        self.bufferSetRecord(key, value, deadline: deadline)
        if let failure = self.flushBuffer() {
            self.pendingOutcome = failure
            guard case .failed(_, let error) = failure else { preconditionFailure("flushBuffer reports failures only") }
            throw error
        }
        let table = self.keyspace.table
        let (previous, hash) = table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
        // Written: under `everysec`/`no` already durable (nothing to roll back); under `always` the
        // undo entry lets a failed fsync take it back like any other unsynced write.
        let keepsUndo = self.configuration.fsync == .always
        if previous >= 0 {
            if keepsUndo { self.pending.pointee.undo.push(sequence: sequence, key: key, previousAt: previous, in: table) }
            table.pointee.replace(at: previous, value: value, deadline: deadline)
        } else {
            if keepsUndo { self.pending.pointee.undo.push(sequence: sequence, key: key, previousAt: nil, in: table) }
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
            let sequence = self.nextSequence()
            self.pending.pointee.undo.push(sequence: sequence, key: raw, previousAt: index, in: self.keyspace.table)
            self.keyspace.setDeadline(at: index, deadline)
            Record.append(kind: Record.kindExpire, key: raw, deadline: deadline, value: UnsafeRawBufferPointer(start: nil, count: 0),
                          to: &self.pending.pointee.buffer)
            self.pending.pointee.bufferedRecords += 1
            return sequence
        }
    }

    /// Clears the deadline of `key` (PERSIST).
    /// - Returns: the sequence number, or nil when the key is absent or has no deadline (nothing changes).
    public func persist(_ key: [UInt8], now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: key.count)
        return key.withUnsafeBytes { raw in
            guard let index = self.liveIndex(raw, now: now), self.keyspace.deadline(at: index) != nil else { return nil }
            let sequence = self.nextSequence()
            self.pending.pointee.undo.push(sequence: sequence, key: raw, previousAt: index, in: self.keyspace.table)
            self.keyspace.setDeadline(at: index, nil)
            Record.append(kind: Record.kindPersist, key: raw, value: UnsafeRawBufferPointer(start: nil, count: 0),
                          to: &self.pending.pointee.buffer)
            self.pending.pointee.bufferedRecords += 1
            return sequence
        }
    }

    /// Removes every key (logged even when already empty, so the reply can follow the usual path). O(1):
    /// the old keyspace is kept whole for rollback until the clear is durable, then freed.
    /// - Returns: the mutation's sequence number. - Throws: ``StoreError`` when the log cannot take writes.
    public func removeAll() throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: 0)
        let sequence = self.nextSequence()
        self.clearedKeyspaces.append(self.keyspace)
        self.pending.pointee.undo.pushClear(sequence: sequence)
        let clock = self.keyspace.lruClock
        self.keyspace = Keyspace()
        self.keyspace.lruClock = clock
        self.evictionPool.removeAll()
        self.expireCursor = 0
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        Record.append(kind: Record.kindClear, key: none, value: none, to: &self.pending.pointee.buffer)
        self.pending.pointee.bufferedRecords += 1
        return sequence
    }

    /// Logs and applies the removal of entry `index`. - Returns: its sequence number.
    @inline(__always)
    private func logRemoval(_ index: Int) -> UInt64 {
        let sequence = self.nextSequence()
        let key = self.keyspace.key(at: index)
        self.pending.pointee.undo.push(sequence: sequence, key: key, previousAt: index, in: self.keyspace.table)
        Record.append(kind: Record.kindDelete, key: key, value: UnsafeRawBufferPointer(start: nil, count: 0),
                      to: &self.pending.pointee.buffer)
        self.pending.pointee.bufferedRecords += 1
        self.keyspace.remove(at: index)
        return sequence
    }

    /// Removes an entry whose deadline passed, logged as a delete. When the log cannot take writes the key
    /// stays (reads still treat it as gone): removing it unlogged could let a restart bring it back if the
    /// clock went backwards, and it costs nothing to retry later.
    private func expireEntry(_ index: Int) {
        guard self.unusable == nil, !self.isClosed else { return }
        _ = self.logRemoval(index)
        self.expiredKeys += 1
    }

    @inline(__always)
    private func nextSequence() -> UInt64 {
        self.pending.pointee.lastSequence += 1
        return self.pending.pointee.lastSequence
    }

    /// Bytes of records waiting for ``writeBuffered()`` (the server may flush early past a limit).
    public var bufferedBytes: Int { self.pending.pointee.buffer.count }

    /// Starts a group of mutations logged as one record (a MULTI/EXEC): replayed all or none after
    /// a crash, whatever part of it reached the disk. Groups do not nest; the buffer is not written
    /// while one is open (mutations never write; only ``writeBuffered()`` does, after the group).
    public func beginAtomicGroup() {
        precondition(self.atomicGroupStart == nil, "atomic groups do not nest")
        self.atomicGroupStart = self.pending.pointee.buffer.count
        // Room for the group's own header, written by `endAtomicGroup` once the members are known.
        _ = self.pending.pointee.buffer.extend(by: Record.groupHeaderBytes)
    }

    /// Closes the group: its records become one frame. A group that logged nothing leaves no trace;
    /// one of a single record stays that record.
    public func endAtomicGroup() {
        guard let start = self.atomicGroupStart else { preconditionFailure("no atomic group is open") }
        self.atomicGroupStart = nil
        let membersStart = start + Record.groupHeaderBytes
        let members = self.pending.pointee.buffer.count - membersStart
        if members == 0 || Record.frameHeaderBytes + Int(self.frameLength(at: membersStart)) == members
            || members > Record.maximumPayloadBytes - Record.payloadHeaderBytes
        {
            // Nothing, one record (atomic already), or past the frame limit: no group frame. A
            // transaction over 1 GiB of records is logged record by record (README).
            self.pending.pointee.buffer.remove(start..<membersStart)
            return
        }
        Record.closeGroup(startingAt: start, in: &self.pending.pointee.buffer)
    }

    private func frameLength(at offset: Int) -> UInt32 {
        UInt32(littleEndian: self.pending.pointee.buffer.bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    private func checkWritable(recordBytes: Int) throws(StoreError) {
        precondition(!self.isClosed, "DurableStore used after close()")
        if let unusable = self.unusable {
            throw unusable
        }
        if recordBytes > Record.maximumPayloadBytes - Record.payloadHeaderBytes - 8 {
            throw StoreError(operation: "append", path: self.log.path, detail: "record of \(recordBytes) bytes is too large")
        }
    }

    // MARK: - Expiry, sampling, scanning (loop thread)

    /// One step of active expiry: examines up to `budget` keys that carry a deadline, resuming where the
    /// previous call stopped (a rotating cursor over the dense deadline array, so repeated calls cover
    /// every such key), and removes those past `now`, each logged as a delete. Also moves a few buckets
    /// of a running resize. Work is O(budget) whatever the keyspace holds; the server calls it from a
    /// timer on the loop and again in the same tick while ``ExpireCycleResult/worthRepeating`` and its
    /// time slice last (Redis spends at most ~25% of a tick).
    public func expireCycle(now: Int64, budget: Int) -> ExpireCycleResult {
        precondition(!self.isClosed, "DurableStore used after close()")
        var result = ExpireCycleResult(examined: 0, expired: 0)
        if self.keyspace.isResizing {
            self.keyspace.rehash(steps: max(1, budget / 4))
        }
        guard self.unusable == nil else { return result }
        // At most one pass over the keys with deadlines per call, however large the budget.
        let limit = min(budget, self.keyspace.countWithDeadline)
        while result.examined < limit {
            let withDeadline = self.keyspace.countWithDeadline
            if withDeadline == 0 { break }
            if self.expireCursor >= withDeadline { self.expireCursor = 0 }
            let index = self.keyspace.entryWithDeadline(atPosition: self.expireCursor)
            result.examined += 1
            if let deadline = self.keyspace.deadline(at: index), now > deadline {
                self.expireEntry(index)
                result.expired += 1
                // The last deadline moved into this position: examine it next without advancing.
            } else {
                self.expireCursor += 1
            }
        }
        return result
    }

    /// Evicts keys chosen by `policy` (sampling `samples` keys per choice, Redis's `maxmemory-samples`)
    /// until the byte account has gone down by `bytesToFree` or `maxKeys` keys are gone, each logged as a
    /// delete like any removal, so a restart never brings an evicted key back. Bounded: at most `maxKeys`
    /// evictions and a few sampling rounds each. Does nothing while the log refuses writes.
    /// `evicting`, if given, sees each key just before it goes (WATCH: an evicted key is a change).
    public func evict(
        _ policy: KeyEviction, bytesToFree: Int, maxKeys: Int, samples: Int = 5, now: Int64,
        evicting: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) -> EvictionResult {
        precondition(!self.isClosed, "DurableStore used after close()")
        var result = EvictionResult()
        guard self.unusable == nil, bytesToFree > 0 else { return result }
        let start = self.keyspace.usedBytes
        while result.evicted < maxKeys && start - self.keyspace.usedBytes < bytesToFree {
            guard let index = self.keyspace.chooseVictim(policy, samples: samples, now: now, pool: &self.evictionPool)
            else {
                result.exhausted = true
                break
            }
            evicting?(self.keyspace.key(at: index))
            _ = self.logRemoval(index)
            result.evicted += 1
        }
        self.evictedKeys += result.evicted
        result.bytesFreed = start - self.keyspace.usedBytes
        return result
    }

    /// A random key (RANDOMKEY, eviction), in O(1) expected: a uniform sample of the dense entry array.
    /// Sampled keys past `now` are expired on the way and another is drawn.
    public func randomKey(now: Int64) -> [UInt8]? {
        var attempts = 0
        while let index = self.keyspace.randomEntry() {
            if let deadline = self.keyspace.deadline(at: index), now > deadline {
                attempts += 1
                self.expireEntry(index)
                if self.unusable != nil && attempts > 100 { return nil }
                continue
            }
            return [UInt8](self.keyspace.key(at: index))
        }
        return nil
    }

    /// A random key that carries a deadline, with it (volatile eviction policies, tests); O(1).
    public func randomKeyWithDeadline() -> (key: [UInt8], deadline: Int64)? {
        guard let position = self.keyspace.randomDeadlinePosition() else { return nil }
        let index = self.keyspace.entryWithDeadline(atPosition: position)
        return ([UInt8](self.keyspace.key(at: index)), self.keyspace.deadline(at: index)!)
    }

    /// One SCAN call: visits buckets from `cursor` until about `count` keys were seen (or the scan ends)
    /// and returns the live keys among them matching `pattern` (nil: all), with the next cursor (0: done).
    /// Every key present for the whole scan is returned at least once, across growth and shrinking.
    public func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        var keys: [[UInt8]] = []
        var visited = 0
        var next = cursor
        var buckets = 0
        let keyspace = self.keyspace
        repeat {
            next = keyspace.scan(cursor: next) { index in
                visited += 1
                if let deadline = keyspace.deadline(at: index), now > deadline { return }
                let key = keyspace.key(at: index)
                if let pattern, !pattern.withUnsafeBytes({ Glob.matches(pattern: $0, key) }) { return }
                keys.append([UInt8](key))
            }
            buckets += 1
        } while next != 0 && visited < count && buckets < count * 10
        return (next, keys)
    }

    /// KEYS: every live key matching `pattern`. O(keys): the caller owns that cost, as with Redis.
    public func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        pattern.withUnsafeBytes { pattern in
            for index in 0..<self.keyspace.count {
                if let deadline = self.keyspace.deadline(at: index), now > deadline { continue }
                let key = self.keyspace.key(at: index)
                if Glob.matches(pattern: pattern, key) { keys.append([UInt8](key)) }
            }
        }
        return keys
    }

    /// Checks the keyspace's invariants (tests; O(keys)).
    func checkInvariants() {
        self.keyspace.checkInvariants()
        precondition(self.clearedKeyspaces.count == self.pending.pointee.undo.clearCount,
                     "cleared keyspaces out of step with undo")
    }

    // MARK: - Recovery helpers (any thread: they touch only the keyspace they are given)

    /// Loads `database.txt` and replays the rotated `segments` in order into `keyspace`, deadlines kept.
    /// `diskValues` (compaction only): values from its threshold stay where they are (DiskValues.swift);
    /// the files they are in stay open in it, for the caller to close.
    static func loadDurableState(
        directory: String, segments: [Int], io: StoreIO, into keyspace: Keyspace, logger: Logger?,
        diskValues: DiskValues? = nil
    ) throws(StoreError) {
        _ = try Snapshot.load(path: directory + "/" + Snapshot.fileName, io: io, into: keyspace, diskValues: diskValues)
        var pace = CPUYield()
        for segment in segments {
            let path = directory + "/" + WriteAheadLog.segmentPrefix + String(segment)
            let fd: CInt
            do {
                fd = try io.open(path, O_RDONLY, 0)
            } catch {
                throw StoreError(operation: "open", path: path, errno: error)
            }
            let replayed: WriteAheadLog.ReplayResult
            if let diskValues {
                let file = diskValues.addSource(path: path, fd: fd, escaped: false)
                replayed = try WriteAheadLog.replay(
                    path: path, fd: fd, io: io, leavingOnDiskFrom: diskValues.threshold,
                    onDisk: { record in
                        file.place(record.key, offset: record.valueOffset, length: record.valueLength,
                                   deadline: record.deadline, in: keyspace)
                    },
                    apply: { record in
                        pace.tick()
                        Self.apply(record, to: keyspace, diskValues: diskValues)
                    })
            } else {
                defer { io.close(fd) }
                replayed = try WriteAheadLog.replay(path: path, fd: fd, io: io, isLast: false) { record in
                    pace.tick()
                    Self.apply(record, to: keyspace)
                }
            }
            logger?.info("replayed rotated log segment",
                         metadata: ["store.path": "\(path)", "store.records": "\(replayed.records)"])
        }
    }

    /// Applies one replayed record. Deadlines are kept as written, even past ones: see Record.swift.
    /// With `diskValues`, a set or delete also forgets any value of the key left on disk, and a clear all.
    static func apply(_ record: Record.View, to keyspace: Keyspace, diskValues: DiskValues? = nil) {
        switch record.kind {
        case Record.kindSet:
            diskValues?.forget(record.key)
            keyspace.set(record.key, record.value, deadline: nil)
        case Record.kindSetWithDeadline:
            diskValues?.forget(record.key)
            keyspace.set(record.key, record.value, deadline: record.deadline)
        case Record.kindDelete:
            diskValues?.forget(record.key)
            keyspace.remove(record.key)
        case Record.kindExpire:
            if let index = keyspace.find(record.key) { keyspace.setDeadline(at: index, record.deadline) }
        case Record.kindPersist:
            if let index = keyspace.find(record.key) { keyspace.setDeadline(at: index, nil) }
        default:
            // clear: drop everything (replay never runs on a keyspace anyone else holds).
            diskValues?.forgetAll()
            while keyspace.count > 0 { keyspace.remove(at: keyspace.count - 1) }
        }
    }

    /// Removes every key whose deadline is before `now`. - Returns: how many.
    @discardableResult
    static func dropExpired(_ keyspace: Keyspace, now: Int64) -> Int {
        var dropped = 0
        var position = keyspace.countWithDeadline - 1
        while position >= 0 {
            // Positions above this one were kept; the pair that fills a removed one comes from above.
            let index = keyspace.entryWithDeadline(atPosition: position)
            if let deadline = keyspace.deadline(at: index), now > deadline {
                keyspace.remove(at: index)
                dropped += 1
            }
            position = min(position - 1, keyspace.countWithDeadline - 1)
        }
        return dropped
    }

    // MARK: - Writing and syncing the log (loop thread)

    /// Writes every buffered record with one write(2) (looping on short writes). Call once per loop
    /// iteration, before replies go out. Under `everysec`/`no` success makes the records durable.
    /// While a compaction waits for the log to be synced before it rotates it (`always` only), writes
    /// nothing: the records wait in the buffer, as they would for the sync anyway.
    /// - Returns: `.failed` when the write failed (ENOSPC, EIO…): the file was cut back to its size before
    ///   this write and every buffered mutation rolled back in memory; or a failure stashed by a large
    ///   SET's early write (then nothing is written this time: call again next iteration).
    public func writeBuffered() -> WriteOutcome {
        precondition(!self.isClosed, "DurableStore used after close()")
        if let pending = self.pendingOutcome {
            self.pendingOutcome = nil
            return pending
        }
        if self.appendsHeldForRotation {
            if self.rotationWaitsForSync { return .ok }
            self.appendsHeldForRotation = false
        }
        if let error = self.flushBuffer() {
            return error
        }
        return .ok
    }

    /// The body of ``writeBuffered()``. - Returns: the failure, or nil.
    private func flushBuffer() -> WriteOutcome? {
        precondition(self.atomicGroupStart == nil, "the log buffer is written while an atomic group is open")
        guard !self.pending.pointee.buffer.isEmpty else {
            return nil
        }
        var failure: StoreError?
        if let target = self.pendingTruncation {
            do {
                try self.log.truncate(to: target, io: self.io)
                self.pendingTruncation = nil
            } catch {
                failure = error
            }
        }
        if failure == nil {
            let io = self.io
            do throws(StoreError) {
                try self.log.append(self.pending.pointee.buffer.bytes, io: io)
                self.logBytesWritten += self.pending.pointee.buffer.count
                self.lastLogFailure = nil
            } catch {
                failure = error
            }
        }
        if let failure {
            self.writeFailures += 1
            self.lastLogFailure = failure
            let failed = (self.writtenSequence + 1)...self.pending.pointee.lastSequence
            self.rollBack(after: self.writtenSequence)
            self.clearBuffer()
            if self.pendingTruncation == nil {
                do {
                    try self.log.truncate(to: self.log.size, io: self.io)
                } catch {
                    self.pendingTruncation = self.log.size
                }
            }
            self.logger.info("log write failed; mutations rolled back",
                             metadata: ["store.error": "\(failure)", "store.sequences": "\(failed)"])
            return .failed(sequences: failed, error: failure)
        }
        self.writtenSequence = self.pending.pointee.lastSequence
        self.logRecords += self.pending.pointee.bufferedRecords
        self.clearBuffer()
        if self.configuration.fsync != .always {
            self.durableSequence = self.writtenSequence
            self.pending.pointee.undo.removeAll()
            self.clearedKeyspaces.removeAll()
        }
        return nil
    }

    private func clearBuffer() {
        self.pending.pointee.buffer.removeAll(keepingCapacityUpTo: Self.bufferCapacityKept)
        self.pending.pointee.bufferedRecords = 0
    }

    /// A group-commit sync covering everything written so far, or nil when nothing written is unsynced
    /// or a sync is already in flight. Run it with ``SyncJob/run()`` on another thread, then hand the
    /// result back here with ``completeSync(_:result:)`` on the loop thread.
    public func makeSyncJob() -> SyncJob? {
        precondition(!self.isClosed, "DurableStore used after close()")
        guard !self.syncInFlight, self.writtenSequence > self.syncedSequence, self.pendingTruncation == nil else {
            return nil
        }
        self.syncInFlight = true
        return SyncJob(fd: self.log.fd, path: self.log.path, directoryFD: self.directoryUnsynced ? self.directoryFD : nil,
                       sequence: self.writtenSequence, offset: self.log.size, records: self.logRecords, io: self.io)
    }

    /// Takes back a finished ``SyncJob``.
    ///
    /// Success: under `always`, ``durableSequence`` advances to the job's sequence. Failure under `always`:
    /// a failed fsync is never retried or trusted (the kernel may have dropped the dirty pages): every
    /// mutation after the last durable one is rolled back in memory, the log cut back to the last synced
    /// size, and `.failed` returned. Under `everysec`/`no` those mutations were already acknowledged: the
    /// failure is logged and counted.
    public func completeSync(_ job: SyncJob, result: SyncResult) -> WriteOutcome {
        precondition(self.syncInFlight && job.fd == self.log.fd, "completeSync without its SyncJob")
        self.syncInFlight = false
        switch result {
        case .success:
            self.fsyncs += 1
            self.lastLogFailure = nil
            if job.directoryFD != nil { self.directoryUnsynced = false }
            self.markSynced(sequence: job.sequence, offset: job.offset, records: job.records)
            return .ok
        case .failure(let error):
            self.fsyncFailures += 1
            self.lastLogFailure = error
            guard self.configuration.fsync == .always else {
                self.logger.info("log fdatasync failed", metadata: ["store.error": "\(error)"])
                return .ok
            }
            return self.failUnsynced(error)
        }
    }

    /// Changes when the log is synced (CONFIG SET appendfsync). Call only with no ``SyncJob`` in flight.
    ///
    /// To `always`: what was written and acknowledged under the old policy is made durable first,
    /// with one fdatasync on the caller's thread, so a later failed sync under `always` (which cuts
    /// the log back to the last synced size) can never take acknowledged records with it; if that
    /// sync fails, the policy stays. Away from `always`: everything written so far counts as durable
    /// at once, as under the new policy it would have when written; mutations still buffered keep
    /// their undo entries until they are written.
    public func changeFsyncPolicy(to policy: FsyncPolicy) throws(StoreError) {
        precondition(!self.isClosed && !self.syncInFlight, "changeFsyncPolicy with a sync in flight")
        guard policy != self.configuration.fsync else { return }
        if policy == .always {
            if self.writtenSequence > self.syncedSequence {
                do {
                    try self.io.fdatasync(self.log.fd)
                } catch {
                    self.fsyncFailures += 1
                    throw StoreError(operation: "fdatasync", path: self.log.path, errno: error)
                }
                self.fsyncs += 1
            }
            self.configuration.fsync = .always
            self.markSynced(sequence: self.writtenSequence, offset: self.log.size, records: self.logRecords)
        } else {
            self.configuration.fsync = policy
            self.durableSequence = self.writtenSequence
            self.dropUndo(through: self.writtenSequence)
        }
    }

    private func markSynced(sequence: UInt64, offset: Int, records: Int) {
        self.syncedSequence = sequence
        self.syncedOffset = offset
        self.syncedRecords = records
        if self.configuration.fsync == .always {
            self.durableSequence = sequence
            self.dropUndo(through: sequence)
        }
    }

    /// Forgets the undo entries of mutations up to `sequence`: they can no longer be rolled back.
    private func dropUndo(through sequence: UInt64) {
        var clears = 0
        while let entry = self.pending.pointee.undo.first, entry.sequence <= sequence {
            if entry.kind == .clear { clears += 1 }
            self.pending.pointee.undo.removeFirst()
        }
        self.clearedKeyspaces.removeFirst(clears)
    }

    /// Rolls back everything after the last sync and cuts the log back to it.
    private func failUnsynced(_ error: StoreError) -> WriteOutcome {
        let failed = (self.syncedSequence + 1)...max(self.pending.pointee.lastSequence, self.syncedSequence + 1)
        self.rollBack(after: self.syncedSequence)
        self.clearBuffer()
        self.writtenSequence = self.syncedSequence
        self.logRecords = self.syncedRecords
        do {
            try self.log.truncate(to: self.syncedOffset, io: self.io)
        } catch {
            self.pendingTruncation = self.syncedOffset
        }
        self.logger.info("log fdatasync failed; unsynced mutations rolled back",
                         metadata: ["store.error": "\(error)", "store.sequences": "\(failed)"])
        return .failed(sequences: failed, error: error)
    }

    /// Undoes, newest first, every mutation with a sequence number above `sequence`.
    private func rollBack(after sequence: UInt64) {
        while let entry = self.pending.pointee.undo.last, entry.sequence > sequence {
            switch entry.kind {
            case .present:
                self.keyspace.set(entry.key, entry.value, deadline: entry.deadline)
            case .absent:
                self.keyspace.remove(entry.key)
            case .clear:
                let clock = self.keyspace.lruClock
                self.keyspace = self.clearedKeyspaces.removeLast()
                self.keyspace.lruClock = clock
                self.expireCursor = 0
            }
            self.pending.pointee.undo.removeLast()
        }
    }

    // MARK: - Compaction

    /// True when the log passed the threshold (or leftover segments were found at open) and no compaction
    /// is running.
    public var needsCompaction: Bool {
        self.compactionStartedNanoseconds == nil
            && (self.log.size >= self.configuration.compactionThresholdBytes || self.compactionWanted)
    }

    /// Starts a compaction (loop thread): renames `database.wal` to the next segment `database.wal.N`, opens
    /// a new empty `database.wal`, and notes the segments the snapshot is to cover. Nothing is synced here:
    /// the directory's new entries are synced by the next ``SyncJob`` before any record of the new log is
    /// acknowledged under `always` (or by the compaction's own directory fsync), and records written but not
    /// yet synced are left to a sync off this thread (see below). Mutations still buffered go to the new log.
    /// The live keyspace is neither copied nor captured: the job rebuilds the state from those files (see
    /// ``CompactionJob``).
    ///
    /// Under `always`, records written and not yet synced wait for their sync: the rotation would put them
    /// in a segment a failed sync could not cut back, so this returns nil and holds further appends until
    /// that sync (in flight or the next) has covered the log; the call after it rotates. Under `everysec`
    /// and `no` nothing waits for them: the job syncs the segment on its own thread before reading it.
    /// - Returns: the job to run on another thread, then to pass to ``finishCompaction(_:result:)``; nil
    ///   when a compaction or a ``SyncJob`` is in flight or the log waits for its sync (call again after
    ///   ``completeSync(_:result:)``).
    /// - Throws: ``StoreError`` when the rotation failed, or the log could not be cut back after an earlier
    ///   failure; the store keeps its current log.
    public func beginCompaction() throws(StoreError) -> CompactionJob? {
        precondition(!self.isClosed, "DurableStore used after close()")
        guard self.compactionStartedNanoseconds == nil, !self.syncInFlight, self.pendingOutcome == nil,
            self.unusable == nil
        else {
            return nil
        }
        if let target = self.pendingTruncation {
            // Records past `target` were rolled back: they must not be rotated into a segment the snapshot
            // and recovery would replay.
            try self.log.truncate(to: target, io: self.io)
            self.pendingTruncation = nil
        }
        var segmentToSync: String?
        if self.log.size > self.syncedOffset {
            if self.configuration.fsync == .always {
                if !self.appendsHeldForRotation {
                    self.appendsHeldForRotation = true
                    self.logger.debug("compaction waits for the log's sync before rotating it")
                }
                return nil
            }
            // Synced on the job's thread before it reads the segment: a log of up to 64 MiB of dirty
            // pages synced here held the loop for ~30 ms at every compaction.
            segmentToSync = WriteAheadLog.segmentPrefix + String((self.segments.last ?? 0) + 1)
            self.markSynced(sequence: self.writtenSequence, offset: self.log.size, records: self.logRecords)
        }
        self.appendsHeldForRotation = false

        let segment = (self.segments.last ?? 0) + 1
        let segmentPath = self.directory + "/" + WriteAheadLog.segmentPrefix + String(segment)
        try self.rotate(to: segmentPath)
        self.segments.append(segment)
        self.compactionWanted = false
        self.compactionStartedNanoseconds = Self.monotonicNanoseconds()
        self.compactionStartBytes = self.keyspace.usedBytes
        try self.io.compactionStep(.rotated)
        return CompactionJob(directory: self.directory, segments: self.segments, io: self.io,
                             clock: self.configuration.clock, keyCount: self.keyspace.count,
                             segmentToSync: segmentToSync,
                             diskValueThreshold: self.configuration.diskValueThresholdBytes)
    }

    /// Whether appends held by ``beginCompaction()`` must stay held: under `always`, records written and
    /// not yet synced (with nothing to cut back first).
    private var rotationWaitsForSync: Bool {
        self.configuration.fsync == .always && self.log.size > self.syncedOffset && self.pendingTruncation == nil
    }

    /// Renames the log to `segmentPath` and switches to a new empty `database.wal`, or leaves everything
    /// as it was and throws. The directory is left for a later sync (``directoryUnsynced``).
    private func rotate(to segmentPath: String) throws(StoreError) {
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
                self.unusable = StoreError(operation: "rename", path: segmentPath, errno: renameError,
                                           detail: "could not restore the log after a failed rotation; restart")
            }
            throw error
        }
        self.directoryUnsynced = true
        self.io.close(self.log.fd)
        self.log = newLog
        self.syncedOffset = 0
        self.syncedRecords = 0
        self.logRecords = 0
    }

    /// Takes back a finished ``CompactionJob`` (loop thread). Success: forgets the segments the snapshot
    /// replaced (the job deleted them; one it could not is retried here, and kept with a warning if it
    /// still cannot be). Failure: keeps them (recovery replays them; the next compaction covers them) and logs.
    public func finishCompaction(_ job: CompactionJob, result: Result<Void, StoreError>) {
        guard let started = self.compactionStartedNanoseconds else {
            preconditionFailure("finishCompaction without beginCompaction")
        }
        self.compactionStartedNanoseconds = nil
        switch result {
        case .success:
            // The job fsynced the directory after its rename, and with it the rotation's entries.
            self.directoryUnsynced = false
            for segment in job.segments {
                let path = self.directory + "/" + WriteAheadLog.segmentPrefix + String(segment)
                do {
                    try self.io.unlink(path)
                } catch {
                    if error.code != ENOENT {
                        self.logger.warning("could not delete a compacted log segment; it will be replayed",
                                            metadata: ["store.path": "\(path)", "store.error": "\(error)"])
                        continue
                    }
                }
                self.segments.removeAll { $0 == segment }
            }
            self.compactions += 1
            self.lastCompactionMilliseconds = Int((Self.monotonicNanoseconds() - started) / 1_000_000)
            self.lastCompactionBytes = self.compactionStartBytes
            self.logger.info("compaction finished",
                             metadata: ["store.keys": "\(job.keyCount)", "store.ms": "\(self.lastCompactionMilliseconds)"])
        case .failure(let error):
            self.compactionFailures += 1
            self.logger.warning("compaction failed; keeping the rotated log segment",
                                metadata: ["store.error": "\(error)"])
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
        precondition(!self.syncInFlight && self.compactionStartedNanoseconds == nil,
                     "close() while a SyncJob or CompactionJob is in flight")
        defer {
            self.isClosed = true
            self.io.close(self.log.fd)
            self.io.close(self.directoryFD)
        }
        self.pendingOutcome = nil
        if case .failed(_, let error)? = self.flushBuffer() {
            throw error
        }
        let compacts = switch compacting {
        case .withinBudget: self.closingCompactionIsWorthIt()
        case .always: self.log.size > 0 || !self.segments.isEmpty
        case .never: false
        }
        // Synced here, the loop having stopped: then a compaction rotates with nothing left to wait for.
        if self.log.size > self.syncedOffset {
            do {
                try self.io.fdatasync(self.log.fd)
            } catch {
                throw StoreError(operation: "fdatasync", path: self.log.path, errno: error)
            }
            self.markSynced(sequence: self.writtenSequence, offset: self.log.size, records: self.logRecords)
        }
        if !compacts {
            // Written and synced, nothing else: the log holds every mutation the snapshot lacks.
            if self.directoryUnsynced {
                try Self.syncDirectory(self.directory, io: self.io)
            }
            if let unusable { throw unusable }
            return
        }
        guard let job = try self.beginCompaction() else {
            if case .failed(_, let error)? = self.pendingOutcome {
                throw error
            }
            if let unusable { throw unusable }
            return
        }
        let result = job.run(writing: self.keyspace)
        self.finishCompaction(job, result: result)
        if case .failure(let error) = result {
            throw error
        }
    }

    /// Whether ``close()`` compacts: not when the log is empty and no segment is left (the snapshot
    /// is the state), nor when the compaction would likely outlast
    /// ``Configuration/shutdownCompactionBudget`` at the last compaction's pace per keyspace byte.
    private func closingCompactionIsWorthIt() -> Bool {
        if self.log.size == 0 && self.segments.isEmpty { return false }
        let bytesPerMillisecond = self.lastCompactionMilliseconds > 0 && self.lastCompactionBytes > 0
            ? Double(self.lastCompactionBytes) / Double(self.lastCompactionMilliseconds)
            : 100_000.0
        let estimate = Double(self.keyspace.usedBytes) / bytesPerMillisecond
        let budget = Double(self.configuration.shutdownCompactionBudget.components.seconds) * 1000
            + Double(self.configuration.shutdownCompactionBudget.components.attoseconds) / 1e15
        if estimate > budget {
            self.logger.info("closing without a compaction: it would outlast the stop's budget",
                             metadata: ["store.estimated_ms": "\(Int(estimate))", "store.log_bytes": "\(self.log.size)"])
            return false
        }
        return true
    }

    /// `name=value` fields for `stats` and `INFO`, in a stable order.
    public func statistics() -> [(name: String, value: String)] {
        [
            ("keys", String(self.keyspace.count)),
            ("keys_with_expiry", String(self.keyspace.countWithDeadline)),
            ("expired_keys", String(self.expiredKeys)),
            ("evicted_keys", String(self.evictedKeys)),
            ("used_bytes", String(self.keyspace.usedBytes)),
            ("log_bytes", String(self.log.size)),
            ("log_records", String(self.logRecords)),
            ("log_buffered_bytes", String(self.pending.pointee.buffer.count)),
            ("last_sequence", String(self.pending.pointee.lastSequence)),
            ("durable_sequence", String(self.durableSequence)),
            ("fsync_policy", self.configuration.fsync.rawValue),
            ("fsyncs", String(self.fsyncs)),
            ("fsync_failures", String(self.fsyncFailures)),
            ("write_failures", String(self.writeFailures)),
            ("compactions", String(self.compactions)),
            ("compaction_failures", String(self.compactionFailures)),
            ("compaction_in_progress", self.compactionStartedNanoseconds == nil ? "0" : "1"),
            ("last_compaction_ms", String(self.lastCompactionMilliseconds)),
        ]
    }

    // MARK: - Helpers

    /// fsync(2) on a directory, so renames and new names in it survive a power cut.
    static func syncDirectory(_ path: String, io: StoreIO) throws(StoreError) {
        let fd: CInt
        do {
            fd = try io.open(path, O_RDONLY | O_DIRECTORY, 0)
        } catch {
            throw StoreError(operation: "open", path: path, errno: error)
        }
        defer { io.close(fd) }
        do {
            try io.fsync(fd)
        } catch {
            throw StoreError(operation: "fsync", path: path, errno: error)
        }
    }

    /// `mkdir -p`.
    private static func makeDirectories(_ path: String, io: StoreIO) throws(StoreError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            do {
                try io.mkdir(prefix, 0o755)
            } catch {
                if error.code != EEXIST {
                    throw StoreError(operation: "create directory", path: prefix, errno: error)
                }
            }
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
