// Compaction's snapshot, written from the live table a slice at a time (docs/file-formats.md "Compaction").
//
// The snapshot must be the state as of the log's rotation exactly: replay of the new log over it is
// exactly-once (a RENAME or an LPUSH replayed over a state that already holds it would apply twice). It is
// made without a second copy of the keyspace:
//
// - The loop writes the entries of each table, in entry order, a bounded slice per iteration
//   (``SnapshotCapture/slice(budgetNanoseconds:)``), into chunks of text that the compaction's thread
//   writes to `database.txt.tmp` (``SnapshotFeed``). The text is never held whole: at most a few chunks
//   wait for the writer, and the loop makes no more until it has taken them.
// - Each table of the rotation carries a pending bitmap (``SnapshotCapture/Part``): bit i says entry i
//   is part of the rotation's state and not yet written. Nothing is copied at the rotation; the bits are
//   set for entries `0..<count`, and an entry added afterwards lands past them or on a cleared bit.
// - Copy-on-write per key: before the table changes, deletes or overwrites a pending entry (KeyTable.swift,
//   Keyspace+Values.swift call ``Part/willChange(_:)`` and ``Part/willRemove(_:last:)``), the entry is
//   written out as it stands, before the change, and its bit cleared. So a key is written exactly once,
//   as it was at the rotation; what happens to it afterwards is in the new log.
// - A removal moves the table's last entry into the freed index. Its bit goes with it; if that index is
//   behind the cursor (already passed), the moved entry is written at once instead, before the move.
// - SWAPDB exchanges two tables' contents (Databases.swift): a part belongs to a table, not to a database
//   number, and follows it; it writes under the database its table was at the rotation. FLUSHDB installs
//   a new empty table: the old one stays alive (held by its part) until it has been written. A table
//   rebuild (resize) moves buckets, never entries.
// - Keys whose deadline had passed at the rotation are left out (no command could see them after it).
//   Entries written out of order are preceded by `#!db<TAB>N` naming their database, and the cursor's
//   database is named again after them (`#!db<TAB>0` included): a server that only used database 0 still
//   writes the seed's format.

import Glibc

/// Chunks of snapshot text on their way from the loop, which makes them, to the compaction's writer.
/// Any thread; a mutex and a condition variable.
final class SnapshotFeed: @unchecked Sendable {
    struct Chunk {
        let pointer: UnsafeMutablePointer<UInt8>
        let count: Int
    }

    enum Next {
        case chunk(Chunk)
        /// Every chunk has been taken and the loop has written the last entry.
        case finished
        /// ``cancel()`` was called.
        case cancelled
        /// Nothing queued yet (only when not waiting).
        case empty
    }

    /// Chunks queued beyond which the loop makes no more slices (a chunk is about a MiB).
    static let highWater = 4
    /// Chunks queued beyond which a push waits for the writer (while one runs on another thread): one
    /// large value or collection, written whole, would otherwise queue all of its text. The loop then
    /// waits as long as the writer takes to write what passes the limit.
    static let hardLimit = 16

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Signalled when the writer takes a chunk or stops (a push waiting at ``hardLimit``).
    private let space = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The writer runs on another thread (``CompactionJob/runWritingSlices(wakingTheLoop:)``): a push
    /// may wait for it.
    private var concurrentWriter = false
    private var chunks: [Chunk] = []
    private var head = 0
    private var finished = false
    private var cancelled = false
    /// The writer has stopped (failed or cancelled): chunks pushed from now on are dropped.
    private var abandoned = false

    init() {
        pthread_mutex_init(self.lock, nil)
        pthread_cond_init(self.condition, nil)
        pthread_cond_init(self.space, nil)
    }

    deinit {
        for chunk in self.chunks[self.head...] { chunk.pointer.deallocate() }
        pthread_cond_destroy(self.condition)
        pthread_cond_destroy(self.space)
        pthread_mutex_destroy(self.lock)
        self.lock.deallocate()
        self.condition.deallocate()
        self.space.deallocate()
    }

    private func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(self.lock)
        defer { pthread_mutex_unlock(self.lock) }
        return body()
    }

    /// Whether the writer is still taking chunks and has fewer than ``highWater`` waiting.
    var wantsMore: Bool {
        self.locked { !self.abandoned && !self.finished && self.chunks.count - self.head < Self.highWater }
    }

    /// Whether the writer stopped before the end.
    var isAbandoned: Bool { self.locked { self.abandoned } }

    /// The writer runs on another thread from now on.
    func writerIsConcurrent() {
        self.locked { self.concurrentWriter = true }
    }

    /// Hands a chunk (allocated as `UnsafeMutablePointer<UInt8>`) to the writer, which frees it. Waits
    /// while ``hardLimit`` chunks are queued for a writer on another thread.
    func push(_ chunk: Chunk) {
        let dropped = self.locked { () -> Bool in
            while self.concurrentWriter && !self.abandoned && !self.cancelled
                && self.chunks.count - self.head >= Self.hardLimit
            {
                pthread_cond_wait(self.space, self.lock)
            }
            if self.abandoned || self.finished { return true }
            self.chunks.append(chunk)
            pthread_cond_signal(self.condition)
            return false
        }
        if dropped { chunk.pointer.deallocate() }
    }

    /// The loop wrote the last entry (after pushing its last chunk).
    func finish() {
        self.locked {
            self.finished = true
            pthread_cond_signal(self.condition)
        }
    }

    /// Asks the writer to stop at its next chunk.
    func cancel() {
        self.locked {
            self.cancelled = true
            pthread_cond_signal(self.condition)
            pthread_cond_signal(self.space)
        }
    }

    var isCancelled: Bool { self.locked { self.cancelled } }

    /// The writer's next chunk, waiting for one when `waiting`. `queued` is what is left after it.
    func next(waiting: Bool) -> (next: Next, queued: Int) {
        self.locked {
            while true {
                if self.cancelled { return (.cancelled, 0) }
                if self.head < self.chunks.count {
                    let chunk = self.chunks[self.head]
                    self.head += 1
                    pthread_cond_signal(self.space)
                    if self.head == self.chunks.count {
                        self.chunks.removeAll(keepingCapacity: true)
                        self.head = 0
                    }
                    return (.chunk(chunk), self.chunks.count - self.head)
                }
                if self.finished { return (.finished, 0) }
                if !waiting { return (.empty, 0) }
                pthread_cond_wait(self.condition, self.lock)
            }
        }
    }

    /// The writer stopped: frees what is queued, and whatever is pushed later.
    func abandon() {
        let dropped = self.locked { () -> [Chunk] in
            self.abandoned = true
            pthread_cond_signal(self.space)
            defer {
                self.chunks.removeAll()
                self.head = 0
            }
            return Array(self.chunks[self.head...])
        }
        for chunk in dropped { chunk.pointer.deallocate() }
    }
}

/// The loop's half of a compaction: the pending bitmaps of the rotation's tables, the cursor, and the
/// output being filled. Loop thread only (or the store's own thread for a synchronous run).
final class SnapshotCapture {
    /// One table of the rotation's state: what of it is still to be written.
    final class Part {
        /// The keyspace that holds the table now (a swap moves the table to another keyspace object;
        /// a clear leaves it in one no database names any more, kept alive here until written).
        var keyspace: Keyspace
        /// The database the table was at the rotation: its entries are written under that number.
        let database: Int
        /// Bit i: entry i is of the rotation's state and not yet written. Bits from ``limit`` are never set.
        let pending: UnsafeMutablePointer<UInt64>
        let limit: Int
        /// Entries below it have been passed: none of them is pending.
        var cursor = 0
        unowned(unsafe) let capture: SnapshotCapture

        init(keyspace: Keyspace, database: Int, capture: SnapshotCapture) {
            self.keyspace = keyspace
            self.database = database
            self.limit = keyspace.count
            let words = (self.limit + 63) / 64
            self.pending = .allocate(capacity: max(words, 1))
            self.pending.initialize(repeating: ~0, count: max(words, 1))
            if self.limit % 64 != 0 { self.pending[words - 1] = (1 << UInt64(self.limit % 64)) - 1 }
            if self.limit == 0 { self.pending[0] = 0 }
            self.capture = capture
        }

        deinit { self.pending.deallocate() }

        @inline(__always)
        func isPending(_ index: Int) -> Bool {
            index < self.limit && self.pending[index >> 6] & (1 << UInt64(index & 63)) != 0
        }

        @inline(__always)
        func clear(_ index: Int) {
            self.pending[index >> 6] &= ~(1 << UInt64(index & 63))
        }

        /// Entry `index` is about to change (value, type, deadline, elements): written first if pending.
        @inline(never)
        func willChange(_ index: Int) {
            guard self.isPending(index) else { return }
            self.clear(index)
            self.capture.emit(self, at: index, keepingCompactForm: false)  // about to change anyway
        }

        /// Entry `index` is about to be removed and entry `last` to move into its place.
        @inline(never)
        func willRemove(_ index: Int, last: Int) {
            self.willChange(index)
            guard index != last, self.isPending(last) else { return }
            self.clear(last)
            if index < self.cursor {
                self.capture.emit(self, at: last)  // the cursor has passed `index`: written now, before the move
            } else {
                self.pending[index >> 6] |= 1 << UInt64(index & 63)  // index < last < limit
            }
        }
    }

    let feed: SnapshotFeed
    private var output: Snapshot.OutputBuffer
    /// The rotation's time: keys whose deadline had passed then are left out.
    let now: Int64
    let path: String
    let io: StoreIO
    private(set) var parts: [Part] = []
    private var current = 0
    /// The database the output's last lines belong to (its last `#!db` line; 0 before any).
    private var outputDatabase = 0
    /// Keys written (the header's count is the rotation's, written first).
    private(set) var written = 0

    /// Starts capturing every database of `root` (database 0's keyspace): writes the header, the
    /// `#!segments` line and the function libraries into the first chunk, and sets every table's bits.
    init(root: Keyspace, now: Int64, coveringSegments: Int?, path: String, io: StoreIO) {
        self.feed = SnapshotFeed()
        self.output = Snapshot.OutputBuffer(capacity: Snapshot.chunkBytes + 4096)
        self.output.sink = self.feed
        self.now = now
        self.path = path
        self.io = io
        let databases = root.allDatabases.filter { $0.index == 0 || $0.keyspace.count > 0 }
        let count = databases.reduce(0) { $0 + $1.keyspace.count - $1.keyspace.countExpired(before: now) }
        self.output.append(Array("# reactord snapshot, \(count) keys\n".utf8))
        if let coveringSegments {
            self.output.append(Array("#!segments\t\(coveringSegments)\n".utf8))  // Snapshot+Typed.swift
        }
        self.emitting {  () throws(StoreError) in
            for library in root.functionLibraries {  // FunctionLibraries.swift
                self.output.append(Array("#!function\t".utf8))
                try self.escape(library.name)
                self.output.append(Array("\n\t".utf8))
                try self.escape(library.code)
                self.output.append(Array("\n#!end\n".utf8))
            }
        }
        for (database, keyspace) in databases where keyspace.count > 0 {
            let part = Part(keyspace: keyspace, database: database, capture: self)
            keyspace.table.pointee.capture = part
            self.parts.append(part)
        }
    }

    deinit { self.output.deallocate() }

    private func escape(_ bytes: [UInt8]) throws(StoreError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(StoreError) in try self.escape(raw, leadingHash: false) }
        }
        try result.get()
    }

    private func escape(_ bytes: UnsafeRawBufferPointer, leadingHash: Bool) throws(StoreError) {
        try Snapshot.escapeInPieces(bytes, escapeLeadingHash: leadingHash, into: &self.output, fd: -1, path: self.path,
                                    io: self.io, stopIf: { false })
    }

    /// Runs `body`, which writes into the output: its flushes go to the feed and cannot fail.
    private func emitting(_ body: () throws(StoreError) -> Void) {
        do {
            try body()
        } catch {
            preconditionFailure("snapshot output to the feed failed: \(error)")
        }
    }

    /// Writes entry `index` of `part`'s table as it stands (unless its deadline had passed at the rotation).
    /// Writing a small set or sorted set held in its slot's compact form asks for its object, which
    /// expands the slot (KeyTable+Compact.swift); `keepingCompactForm` puts it back in that form after.
    func emit(_ part: Part, at index: Int, keepingCompactForm: Bool = true) {
        let keyspace = part.keyspace
        let deadline = keyspace.deadline(at: index)
        if let deadline, self.now > deadline { return }  // as everywhere in the store: it lives through its millisecond
        self.written += 1
        if part.database != self.outputDatabase {
            self.output.append(Array("#!db\t\(part.database)\n".utf8))
            self.outputDatabase = part.database
        }
        self.emitting { () throws(StoreError) in
            if keyspace.type(at: index) != .string {
                let compact = keepingCompactForm && Slot.isCompact(keyspace.table.pointee.slot(index))
                try Snapshot.writeBlock(keyspace, at: index, into: &self.output, fd: -1, path: self.path, io: self.io,
                                        yielding: false, stopIf: { false })
                if compact { keyspace.compactCollection(at: index) }
                return
            }
            try self.escape(keyspace.key(at: index), leadingHash: true)
            self.output.append(byte: Snapshot.tab)
            try self.escape(keyspace.value(at: index), leadingHash: false)
            if let deadline {
                self.output.append(byte: Snapshot.tab)
                self.output.append(byte: Snapshot.at)
                self.output.append(Array(String(deadline).utf8))
            }
            self.output.append(byte: Snapshot.newline)
        }
    }

    /// Writes pending entries from the cursor on, until the output has handed a chunk to the feed or
    /// `budgetNanoseconds` have passed. - Returns: whether every table has been written (the last chunk
    /// is then in the feed, and the feed finished).
    /// `maximumEntries` (tests) bounds the entries the slice passes.
    func slice(budgetNanoseconds: UInt64, maximumEntries: Int = .max) -> Bool {
        let start = DurableStore.monotonicNanoseconds()
        let chunks = self.output.flushes
        var visited = 0
        while self.current < self.parts.count {
            let part = self.parts[self.current]
            let end = min(part.keyspace.count, part.limit)
            while part.cursor < end {
                let index = part.cursor
                part.cursor += 1
                if part.isPending(index) {
                    part.clear(index)
                    self.emit(part, at: index)
                }
                visited += 1
                if visited >= maximumEntries { return false }
                if visited & 63 == 0
                    && (self.output.flushes != chunks || DurableStore.monotonicNanoseconds() - start >= budgetNanoseconds)
                {
                    return false
                }
            }
            self.current += 1
        }
        self.emitting { () throws(StoreError) in
            try self.output.flush(to: -1, path: self.path, io: self.io)
        }
        self.feed.finish()
        return true
    }

    /// Stops capturing: the tables change freely again (done, failed or cancelled).
    func detach() {
        for part in self.parts where part.keyspace.table.pointee.capture === part {
            part.keyspace.table.pointee.capture = nil
        }
        self.parts.removeAll()
    }
}

extension Keyspace {
    /// Entries whose deadline is before `now` (not yet removed): a walk of the deadline pairs alone.
    func countExpired(before now: Int64) -> Int {
        let table = self.table.pointee
        var expired = 0
        for position in 0..<table.deadlineCount where now > table.deadlines.element(position).load(as: Int64.self) {
            expired += 1
        }
        return expired
    }
}
