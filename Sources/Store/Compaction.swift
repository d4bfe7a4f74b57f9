// Compaction: rotate the log (loop thread), write the state as of the rotation to `database.txt` from the
// live table a slice at a time (SnapshotCapture.swift: the loop makes the text, ``CompactionJob`` writes
// it to the file off the loop), then forget the rotated segments. The order of the steps, and why a crash
// between any two of them loses nothing, is in the comments below; the steps are named for fault injection
// by ``CompactionStep`` (StoreIO.swift).

import Glibc

/// Writes a snapshot of the state as of a log rotation to `database.txt`.
///
/// The text comes from the live table (SnapshotCapture.swift): the store's own thread makes it a slice at a
/// time (``DurableStore/writeSnapshotSlice()``), each key once, as it stood at the rotation (a key about to
/// change is written first). No second copy of the data is made: what waits for the writer is a few chunks
/// of text and the keys written out of turn since the writer's last chunk. The job writes the chunks to
/// `database.txt.tmp`, fsyncs it, renames it over `database.txt` and fsyncs the directory.
public struct CompactionJob: Sendable {
    /// Makes one slice of the snapshot on the store's thread (``run()`` only).
    final class Driver: @unchecked Sendable {
        let slice: () -> Void
        init(_ slice: @escaping () -> Void) { self.slice = slice }
    }

    let directory: String
    /// Rotated segments the snapshot makes redundant (deleted by ``run()`` once the snapshot is durable).
    let segments: [Int]
    let io: StoreIO
    /// The live key count when the log was rotated.
    public let keyCount: Int
    let feed: SnapshotFeed
    let driver: Driver

    /// Asks a running job to stop soon (a graceful stop must not wait for a long compaction): it
    /// removes its temporary file and fails, keeping the segments, which the next start replays.
    public func cancel() { self.feed.cancel() }

    /// Writes the whole snapshot on the store's own thread, making every slice itself (nothing else may
    /// use the store meanwhile): for a store without a loop (tests, ``DurableStore/close()``).
    /// On an I/O failure the temporary file is removed; a failure injected by ``StoreIO/compactionStep``
    /// (a simulated crash) leaves everything.
    public func run() -> Result<Void, StoreError> {
        self.write { () -> SnapshotFeed.Next in
            while true {
                let (next, _) = self.feed.next(waiting: false)
                guard case .empty = next else { return next }
                self.driver.slice()
            }
        }
    }

    /// Writes the snapshot on another thread while the store's loop makes it: the loop calls
    /// ``DurableStore/writeSnapshotSlice()`` each iteration, and `wake` (called from this thread when
    /// few chunks are left) must make the loop run an iteration soon. Blocks until the file is durable.
    public func runWritingSlices(wakingTheLoop wake: @escaping @Sendable () -> Void) -> Result<Void, StoreError> {
        self.feed.writerIsConcurrent()
        return self.write { () -> SnapshotFeed.Next in
            let (next, queued) = self.feed.next(waiting: false)
            if case .empty = next {
                wake()
                return self.feed.next(waiting: true).next
            }
            if queued < SnapshotFeed.highWater / 2 { wake() }
            return next
        }
    }

    private func write(_ next: () -> SnapshotFeed.Next) -> Result<Void, StoreError> {
        defer { self.feed.abandon() }  // the loop stops capturing at its next slice
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
            do {
                fd = try self.io.open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            } catch {
                throw StoreError(operation: "open", path: temporaryPath, errno: error)
            }
            var writeBehind = PageCache.WriteBehind()
            chunks: while true {
                switch next() {
                case .chunk(let chunk):
                    defer { chunk.pointer.deallocate() }
                    try Self.writeAll(UnsafeRawBufferPointer(start: chunk.pointer, count: chunk.count), to: fd,
                                      path: temporaryPath, io: self.io)
                    writeBehind.wrote(chunk.count, to: fd, io: self.io)
                case .finished:
                    break chunks
                case .cancelled, .empty:
                    throw StoreError(operation: "compaction", path: temporaryPath, detail: "cancelled by a stop")
                }
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
            try Recovery.syncDirectory(self.directory, io: self.io)
            try step(.syncedDirectory)
            // The segments are redundant now. Deleted here, not on the loop: unlinking a large file
            // whose pages are cached frees them all inside unlink(2), a stall for every client on the
            // loop (measured in Benchmarks/README.md, pauses); here its cache goes first, a piece at a time.
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

    /// Writes all of `bytes`, looping on short writes.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: CInt, path: String, io: StoreIO) throws(StoreError) {
        var offset = 0
        while offset < bytes.count {
            let written: Int
            do {
                written = try io.write(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            } catch {
                throw StoreError(operation: "write", path: path, errno: error)
            }
            if written == 0 {
                throw StoreError(operation: "write", path: path, errno: Errno(EIO), detail: "write returned 0")
            }
            offset += written
        }
    }
}


/// Where compaction stands, kept by the store (loop thread).
struct CompactionProgress {
    /// Set while a ``CompactionJob`` runs: when it started (monotonic nanoseconds).
    var startedNanoseconds: UInt64?
    /// Rotated segments on disk, ascending.
    var segments: [Int] = []
    /// The highest segment `database.txt` holds (its `#!segments` line): the next rotation numbers its
    /// segment above both it and ``segments``, so numbers never repeat while a snapshot names them.
    var coveredSegments = 0
    /// Leftover segments were found at open: compact soon even below the threshold.
    var wanted = false
    var completed = 0
    var failures = 0
    var lastMilliseconds = 0
    /// The keyspace's ``Keyspace/usedBytes`` when the last successful compaction began (its pace).
    var lastBytes = 0
    var startBytes = 0
    /// The running compaction's capture of the live table, until every entry of the rotation's state has
    /// been handed to the job (or the job stopped): SnapshotCapture.swift.
    var capture: SnapshotCapture?
}

extension DurableStore {
    /// True when the log passed the threshold (or leftover segments were found at open) and no compaction
    /// is running.
    public var needsCompaction: Bool {
        self.compaction.startedNanoseconds == nil
            && (self.journal.log.size >= self.configuration.compactionThresholdBytes || self.compaction.wanted)
    }

    /// Whether a ``CompactionJob`` is running (from ``beginCompaction()`` to ``finishCompaction(_:result:)``).
    public var isCompacting: Bool { self.compaction.startedNanoseconds != nil }

    /// Starts a compaction (loop thread): renames `database.wal` to the next segment `database.wal.N`, opens
    /// a new empty `database.wal`, and notes the segments the snapshot is to cover. Nothing is synced here:
    /// the directory's new entries are synced by the next ``SyncJob`` before any record of the new log is
    /// acknowledged under `always` (or by the compaction's own directory fsync), and records written but not
    /// yet synced wait for a sync off this thread first (see below). Mutations still buffered go to the new log.
    /// The live keyspace is not copied: from here on each table of the rotation's state is written a slice
    /// at a time by ``writeSnapshotSlice()``, and a key about to change first (SnapshotCapture.swift).
    ///
    /// Under every policy, records written and not yet synced wait for their sync: this returns nil and
    /// holds further appends until that sync (in flight or the next: the caller starts one) has covered
    /// the log (``Journal/State/holdingForRotation(syncing:)``); the call after it rotates. So the segment
    /// is durable, whole, before its rename, and no record of the new log can reach the disk before the
    /// segment's last one (under `always`, too, no segment holds a record a failed sync would refuse).
    /// - Returns: the job to run on another thread, then to pass to ``finishCompaction(_:result:)``; nil
    ///   when a compaction or a ``SyncJob`` is in flight or the log waits for its sync (call again after
    ///   ``completeSync(_:result:)``).
    /// - Throws: ``StoreError`` when the rotation failed, or the log could not be cut back after an earlier
    ///   failure; the store keeps its current log.
    public func beginCompaction() throws(StoreError) -> CompactionJob? {
        precondition(!self.isClosed, "DurableStore used after close()")
        guard self.compaction.startedNanoseconds == nil, !self.journal.state.isSyncing, self.unreportedFailure == nil
        else {
            return nil
        }
        if case .unusable = self.journal.state { return nil }
        guard try self.journal.prepareRotation() else { return nil }
        let segment = max(self.compaction.segments.last ?? 0, self.compaction.coveredSegments) + 1
        let segmentName = WriteAheadLog.segmentPrefix + String(segment)
        try self.journal.rotate(to: self.directory + "/" + segmentName)
        self.compaction.segments.append(segment)
        self.compaction.wanted = false
        self.compaction.startedNanoseconds = Self.monotonicNanoseconds()
        self.compaction.startBytes = self.usedBytes
        try self.io.compactionStep(.rotated)
        // `#!segments`: the snapshot holds every segment of the job (the last is the newest), so a crash
        // before they are deleted never replays them twice (Recovery.loadDurableState).
        let capture = SnapshotCapture(root: self.root, now: self.configuration.clock(),
                                      coveringSegments: self.compaction.segments.last,
                                      path: self.directory + "/" + Snapshot.temporaryFileName, io: self.io)
        self.compaction.capture = capture
        return CompactionJob(directory: self.directory, segments: self.compaction.segments, io: self.io,
                             keyCount: self.totalKeyCount, feed: capture.feed,
                             driver: CompactionJob.Driver { [unowned self] in self.writeSnapshotSlice() })
    }

    /// How long one slice of the snapshot may take on the loop (plus the one entry that passes it).
    static let snapshotSliceNanoseconds: UInt64 = 1_000_000

    /// Makes the next slice of the running compaction's snapshot (loop thread, once per iteration and
    /// whenever the job's writer asks): up to about a chunk of text or
    /// ``snapshotSliceNanoseconds``, when the writer has room for it. Ends the capture once the last
    /// entry is written, or once the writer stopped (failed or cancelled).
    /// `maximumEntries` (tests) bounds the entries the slice passes.
    public func writeSnapshotSlice(maximumEntries: Int = .max) {
        guard let capture = self.compaction.capture else { return }
        if capture.feed.isAbandoned {
            capture.detach()
            self.compaction.capture = nil
            return
        }
        guard capture.feed.wantsMore else { return }
        if capture.slice(budgetNanoseconds: Self.snapshotSliceNanoseconds, maximumEntries: maximumEntries) {
            capture.detach()
            self.compaction.capture = nil
        }
    }

    /// Whether the running compaction still has entries to write.
    public var isWritingSnapshot: Bool { self.compaction.capture != nil }

    /// Whether ``writeSnapshotSlice()`` would do anything now: entries are left to write and the job's
    /// writer has room for them (or stopped, which ends the capture).
    public var snapshotWantsSlice: Bool {
        guard let capture = self.compaction.capture else { return false }
        return capture.feed.wantsMore || capture.feed.isAbandoned
    }

    /// Takes back a finished ``CompactionJob`` (loop thread). Success: forgets the segments the snapshot
    /// replaced (the job deleted them; one it could not is retried here, and kept with a warning if it
    /// still cannot be). Failure: keeps them (recovery replays them; the next compaction covers them) and logs.
    public func finishCompaction(_ job: CompactionJob, result: Result<Void, StoreError>) {
        guard let started = self.compaction.startedNanoseconds else {
            preconditionFailure("finishCompaction without beginCompaction")
        }
        self.compaction.startedNanoseconds = nil
        if let capture = self.compaction.capture {  // the job stopped before the last entry
            capture.detach()
            self.compaction.capture = nil
        }
        switch result {
        case .success:
            // The job fsynced the directory after its rename, and with it the rotation's entries.
            self.journal.directorySynced()
            self.compaction.coveredSegments = max(self.compaction.coveredSegments, job.segments.last ?? 0)
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
                self.compaction.segments.removeAll { $0 == segment }
            }
            self.compaction.completed += 1
            self.compaction.lastMilliseconds = Int((Self.monotonicNanoseconds() - started) / 1_000_000)
            self.compaction.lastBytes = self.compaction.startBytes
            self.logger.info("compaction finished",
                             metadata: ["store.keys": "\(job.keyCount)",
                                        "store.ms": "\(self.compaction.lastMilliseconds)"])
        case .failure(let error):
            self.compaction.failures += 1
            self.logger.warning("compaction failed; keeping the rotated log segment",
                                metadata: ["store.error": "\(error)"])
        }
    }

    /// Whether ``close(compacting:)`` compacts: not when the log is empty and no segment is left (the
    /// snapshot is the state), nor when the compaction would likely outlast
    /// ``Configuration/shutdownCompactionBudget`` at the last compaction's pace per keyspace byte.
    func closingCompactionIsWorthIt() -> Bool {
        if self.journal.log.size == 0 && self.compaction.segments.isEmpty { return false }
        let bytesPerMillisecond = self.compaction.lastMilliseconds > 0 && self.compaction.lastBytes > 0
            ? Double(self.compaction.lastBytes) / Double(self.compaction.lastMilliseconds)
            : 100_000.0
        let estimate = Double(self.usedBytes) / bytesPerMillisecond
        let budget = Double(self.configuration.shutdownCompactionBudget.components.seconds) * 1000
            + Double(self.configuration.shutdownCompactionBudget.components.attoseconds) / 1e15
        if estimate > budget {
            self.logger.info("closing without a compaction: it would outlast the stop's budget",
                             metadata: ["store.estimated_ms": "\(Int(estimate))",
                                        "store.log_bytes": "\(self.journal.log.size)"])
            return false
        }
        return true
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
