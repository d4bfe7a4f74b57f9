// Opening a data directory: checks and locks it, loads `database.txt`, replays leftover rotated segments and
// then `database.wal` (cutting a torn tail), and drops keys whose deadline passed. Replay applies each record
// through one dispatch over its kind (``Recovery/apply(_:to:diskValues:)``), shared with compaction, which
// rebuilds the state the same way. Touches only the keyspace it builds: any thread.

import Glibc
import Logging

/// What opening a data directory recovered, for ``DurableStore`` to take over.
struct Recovery {
    /// The data directory, open and locked (flock) against a second store.
    let directoryFD: CInt
    let keyspace: Keyspace
    /// `database.wal`, open for appending, its size set to its valid bytes.
    let log: WriteAheadLog
    /// Valid records in `log`.
    let records: Int
    /// Rotated segments left on disk, ascending.
    let segments: [Int]
    /// The highest segment `database.txt` already holds (its `#!segments` line; 0 without one).
    let coveredSegments: Int

    /// Opens `directory` (without trailing slashes), creating it if missing, and recovers its state.
    /// - Throws: ``StoreError`` for an unwritable or locked directory, a malformed snapshot line, or a corrupt
    ///   log record (naming the file and byte offset).
    static func open(
        directory: String, configuration: DurableStore.Configuration, io: StoreIO, logger: Logger
    ) throws(StoreError) -> Recovery {
        try Self.makeDirectories(directory, io: io)
        let directoryFD: CInt
        do {
            directoryFD = try io.open(directory, O_RDONLY | O_DIRECTORY, 0)
        } catch {
            throw StoreError(operation: "open data directory", path: directory, errno: error)
        }
        var opened = false
        defer {
            if !opened {
                io.unlock(directoryFD)
                io.close(directoryFD)
            }
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
        let loaded = try Self.loadDurableState(directory: directory, segments: segments, io: io, into: keyspace,
                                               logger: logger)

        let walPath = directory + "/" + WriteAheadLog.fileName
        var log = try WriteAheadLog.open(path: walPath, io: io)
        var logOpened = false
        defer {
            if !logOpened { io.close(log.fd) }
        }
        if !names.contains(WriteAheadLog.fileName) {
            try Self.syncDirectory(directory, io: io)  // the new log's name must survive a power cut
        }
        let replayed = try WriteAheadLog.replay(path: walPath, fd: log.fd, io: io) { record in
            Self.apply(record, to: keyspace)
        }
        if let torn = loaded.tornSegment {
            if replayed.records > 0 { throw torn.gap(before: walPath) }
            try torn.cutBack(io: io)
        }
        let dropped = Self.dropExpired(keyspace, now: configuration.clock())
        if replayed.tornBytes > 0 {
            logger.warning(
                "dropping the torn, unsynced tail of the log (a crash or power cut during an append)",
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
        logOpened = true
        opened = true
        logger.info(
            "store recovered",
            metadata: [
                "store.directory": "\(directory)", "store.keys": "\(keyspace.count)",
                "store.log_records": "\(replayed.records)", "store.segments": "\(segments.count)",
                "store.expired_at_load": "\(dropped)",
            ])
        return Recovery(directoryFD: directoryFD, keyspace: keyspace, log: log, records: replayed.records,
                        segments: segments, coveredSegments: loaded.covered)
    }

    /// Loads `database.txt` and replays the rotated `segments` in order into `keyspace`, deadlines kept.
    /// `diskValues` (compaction only): values from its threshold stay where they are (DiskValues.swift);
    /// the files they are in stay open in it, for the caller to close.
    ///
    /// Exactly once: a segment the snapshot already holds (numbered up to its `#!segments` line) is
    /// skipped, not replayed again. Segments are numbered upwards across compactions (Compaction.swift),
    /// so a number at or below the marker can only be one the snapshot was built from, left behind by a
    /// crash between the snapshot's rename and the segments' deletion. Replaying it again would be wrong:
    /// set, delete and clear are idempotent, but RENAME and COPY (kinds 10, 11) are not. A snapshot
    /// without the line (an older server's, or hand-written) covers none: every segment replays.
    ///
    /// A segment may end in a torn tail only as the last file holding records (a power cut before its
    /// tail was synced, left by a server that rotated unsynced records): it is dropped with a warning. A
    /// torn tail followed by records in a later segment would be a gap in the history: refused.
    /// - Returns: the snapshot's `#!segments` number (0 without one), and the segment with a torn tail.
    @discardableResult
    static func loadDurableState(
        directory: String, segments: [Int], io: StoreIO, into keyspace: Keyspace, logger: Logger?,
        diskValues: DiskValues? = nil
    ) throws(StoreError) -> (covered: Int, tornSegment: TornSegment?) {
        var covered = 0
        var tornSegment: TornSegment?
        _ = try Snapshot.load(path: directory + "/" + Snapshot.fileName, io: io, into: keyspace, diskValues: diskValues,
                              coveredSegments: &covered)
        var pace = CPUYield()
        for segment in segments {
            if segment <= covered {
                logger?.info("skipped a rotated log segment database.txt already holds",
                             metadata: ["store.segment": "\(segment)", "store.covered_segments": "\(covered)"])
                continue
            }
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
                replayed = try WriteAheadLog.replay(path: path, fd: fd, io: io) { record in
                    pace.tick()
                    Self.apply(record, to: keyspace)
                }
            }
            if let tornSegment, replayed.records > 0 { throw tornSegment.gap(before: path) }
            if replayed.tornBytes > 0 {
                tornSegment = TornSegment(path: path, offset: replayed.validBytes, bytes: replayed.tornBytes)
                logger?.warning("dropping the torn, unsynced tail of a rotated log segment (a power cut before it was synced)",
                                metadata: ["store.path": "\(path)", "store.offset": "\(replayed.validBytes)",
                                           "store.dropped_bytes": "\(replayed.tornBytes)"])
            }
            logger?.info("replayed rotated log segment",
                         metadata: ["store.path": "\(path)", "store.records": "\(replayed.records)"])
        }
        return (covered, tornSegment)
    }

    /// A rotated segment whose tail was torn (WriteAheadLog.swift, the torn-tail rule).
    struct TornSegment {
        let path: String
        /// Its valid bytes.
        let offset: Int
        let bytes: Int

        /// The refusal when `later` holds records after the torn tail.
        func gap(before later: String) -> StoreError {
            StoreError(operation: "corrupt log record in", path: self.path,
                       detail: "at byte offset \(self.offset): a torn tail of \(self.bytes) bytes, and \(later) holds "
                           + "later records (a gap in the log's history); refusing to start (move the later files "
                           + "aside to recover up to that point by hand)")
        }

        /// Cuts the segment back to its valid bytes, durably, so a later start finds it whole whatever the
        /// log holds by then.
        func cutBack(io: StoreIO) throws(StoreError) {
            do {
                let fd = try io.open(self.path, O_WRONLY, 0)
                defer { io.close(fd) }
                try io.ftruncate(fd, self.offset)
                try io.fdatasync(fd)
            } catch {
                throw StoreError(operation: "cut back", path: self.path, errno: error, detail: "to \(self.offset) bytes")
            }
        }
    }

    /// Applies one replayed record: the one dispatch over record kinds, for recovery and compaction alike
    /// (a new kind is a new case here). Deadlines are kept as written, even past ones: see Record.swift.
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
        case Record.kindClear:
            // Drop everything (replay never runs on a keyspace anyone else holds).
            diskValues?.forgetAll()
            while keyspace.count > 0 { keyspace.remove(at: keyspace.count - 1) }
        case Record.kindDatabase:
            Self.applyDatabase(record, root: keyspace, diskValues: diskValues)  // Databases.swift
        case Record.kindSwapDatabases:
            Self.applySwap(record, root: keyspace, diskValues: diskValues)  // Databases.swift
        case Record.kindFunction:
            keyspace.setFunctionLibrary(record.key, code: record.value.isEmpty ? nil : record.value)  // FunctionLibraries.swift
        default:
            // Kinds 8-11, typed values: DurableStore+Values.swift.
            DurableStore.applyTyped(record, to: keyspace, diskValues: diskValues)
        }
    }

    /// Removes every key whose deadline is before `now`. - Returns: how many.
    @discardableResult
    static func dropExpired(_ root: Keyspace, now: Int64) -> Int {
        root.allDatabases.reduce(0) { $0 + Self.dropExpired(in: $1.keyspace, now: now) }
    }

    private static func dropExpired(in keyspace: Keyspace, now: Int64) -> Int {
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
}
