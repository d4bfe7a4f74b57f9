// Redis's numbered databases (SELECT, MOVE, SWAPDB): one keyspace per database. Database 0's keyspace is
// the store's root and holds the others (``Keyspace/otherDatabases``), so recovery, compaction and the
// snapshot, which are handed one keyspace, see them all. The store works on one database at a time
// (``DurableStore/keyspace``, database ``DurableStore/selectedDatabase``): database 0 outside
// ``DurableStore/withDatabase(_:_:)``, so the string hot paths never look at a database index.
//
// In the log (docs/file-formats.md): database 0's records are exactly what they were before databases
// existed. The records of one operation on database n ≠ 0 are wrapped in one kind-12 frame,
// `keyLength 0, index:u32, frames…`; its members are complete frames of the other kinds (a group
// included: a whole collection logged in database n), never another kind 12. A group (one EXEC, MOVE)
// may hold kind-12 frames. SWAPDB is one kind-14 record naming the two databases, never inside a kind 12.
// In `database.txt`, database n's keys follow a `#!db<TAB>n` line (Snapshot+Writing.swift), after
// database 0's unmarked ones.
//
// Rolling back a failed write or sync walks the undo log newest first; each switch of database pushes a
// ``UndoKind/database`` entry naming the database the older entries belong to.

extension Record {
    /// The highest database index a record may name (a corrupt index never allocates much).
    static let maximumDatabaseIndex: UInt32 = 1 << 16
    /// A database record's frame, payload header and index, before its member frames.
    static let databaseHeaderBytes = frameHeaderBytes + payloadHeaderBytes + 4

    /// Whether `members` are whole valid frames, none of them a database record.
    static func isValidDatabaseBody(_ members: UnsafeRawBufferPointer) -> Bool {
        var rest = members
        while !rest.isEmpty {
            guard case .record(let member, let used) = Self.decodeView(rest), member.kind != Self.kindDatabase,
                  member.kind != Self.kindFunction, member.kind != Self.kindSwapDatabases
            else {
                return false
            }
            if member.kind == Self.kindGroup, Self.forEachMember(of: member.value, { _ in }) == nil { return false }
            rest = UnsafeRawBufferPointer(rebasing: rest[used...])
        }
        return true
    }

    /// Calls `body` with each record of a database record's `view` (groups opened), in order.
    static func forEachDatabaseMember(of view: View, _ body: (View) -> Void) {
        var rest = UnsafeRawBufferPointer(rebasing: view.value[(view.value.startIndex + 4)...])
        while !rest.isEmpty {
            guard case .record(let member, let used) = Self.decodeView(rest) else { return }  // validated on decode
            if member.kind == Self.kindGroup {
                _ = Self.forEachMember(of: member.value, body)
            } else {
                body(member)
            }
            rest = UnsafeRawBufferPointer(rebasing: rest[used...])
        }
    }

    /// Turns the ``databaseHeaderBytes`` reserved at `start` of the log buffer into a database record
    /// for `index` over the frames that follow them.
    static func closeDatabase(startingAt start: Int, index: Int, in buffer: inout LogBuffer) {
        let frame = buffer.mutableBytes(from: start)
        let payloadLength = buffer.count - start - Self.frameHeaderBytes
        precondition(payloadLength <= Self.maximumPayloadBytes, "log record too large")
        frame.storeBytes(of: UInt32(payloadLength).littleEndian, as: UInt32.self)
        let payload = frame + Self.frameHeaderBytes
        payload.storeBytes(of: Self.kindDatabase, as: UInt8.self)
        payload.storeBytes(of: UInt32(0).littleEndian, toByteOffset: 1, as: UInt32.self)
        payload.storeBytes(of: UInt32(index).littleEndian, toByteOffset: Self.payloadHeaderBytes, as: UInt32.self)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: payload, count: payloadLength))
        frame.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }
}

extension Keyspace {
    /// Database `index`'s keyspace, from database 0's (this one), created when first named.
    func database(_ index: Int) -> Keyspace {
        if index == 0 { return self }
        while self.otherDatabases.count < index {
            let added = Keyspace()
            added.lruClock = self.lruClock
            self.otherDatabases.append(added)
        }
        return self.otherDatabases[index - 1]
    }

    /// This keyspace (database 0) and every other database's, with its index.
    var allDatabases: [(index: Int, keyspace: Keyspace)] {
        [(0, self)] + self.otherDatabases.enumerated().map { ($0.offset + 1, $0.element) }
    }
}

extension Recovery {
    /// Replays a database record into its database (`root` is database 0's keyspace). With `diskValues`
    /// (compaction), its members forget and place values in that database's places (DiskValues.swift).
    static func applyDatabase(_ record: Record.View, root: Keyspace, diskValues: DiskValues?) {
        let index = Int(record.deadline)
        let target = root.database(index)
        diskValues?.select(index)
        defer { diskValues?.select(0) }
        Record.forEachDatabaseMember(of: record) { member in Self.apply(member, to: target, diskValues: diskValues) }
    }

    /// Replays a swap record: the two databases exchange their entries, and any values left on disk
    /// (compaction) go with their keys.
    static func applySwap(_ record: Record.View, root: Keyspace, diskValues: DiskValues?) {
        let (first, second) = (Int(record.deadline), Record.swapSecond(record))
        root.database(first).exchangeEntries(with: root.database(second))
        diskValues?.exchange(first, second)
    }
}

extension Record {
    /// The rest of a swap record (kind 14).
    static func swapRest(_ first: Int, _ second: Int) -> [UInt8] {
        var rest: [UInt8] = []
        withUnsafeBytes(of: UInt32(first).littleEndian) { rest.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(second).littleEndian) { rest.append(contentsOf: $0) }
        return rest
    }

    /// The second index of a swap record (the first is its view's `deadline`).
    static func swapSecond(_ view: View) -> Int {
        Int(UInt32(littleEndian: view.value.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    }
}

extension Keyspace {
    /// SWAPDB: this keyspace and `other` exchange their entries, in O(1): the two tables trade places
    /// (each keeps its own LRU clock reading; the objects stay where the store and the root hold them).
    func exchangeEntries(with other: Keyspace) {
        guard other !== self else { return }
        let (mine, theirs) = (self.lruClock, other.lruClock)
        swap(&self.table.pointee, &other.table.pointee)
        // A compaction's capture follows its table (SnapshotCapture.swift).
        self.table.pointee.capture?.keyspace = self
        other.table.pointee.capture?.keyspace = other
        self.lruClock = mine
        other.lruClock = theirs
    }
}

extension DurableStore {
    /// Keys that carry a deadline, in every database (active expiry visits them all).
    public var keysWithExpiry: Int {
        self.root.otherDatabases.reduce(self.root.countWithDeadline) { $0 + $1.countWithDeadline }
    }

    /// Runs `body` on database `index`: its reads and writes go to that database's keyspace, and the
    /// records it logs are wrapped in one database record (none when it logs nothing). Database 0, and a
    /// call inside another for the same database, cost nothing. Calls do not nest across databases.
    @inline(__always)
    public func withDatabase<R, E: Error>(_ index: Int, _ body: () throws(E) -> R) throws(E) -> R {
        if index == self.selectedDatabase { return try body() }
        self.enterDatabase(index)
        defer { self.leaveDatabase() }
        return try body()
    }

    /// ``withDatabase(_:_:)`` in two halves, for callers whose body cannot be a closure (a `rethrows`
    /// function): switches to database `index` (> 0; from database 0) and opens its database record.
    public func enterDatabase(_ index: Int) {
        precondition(self.databaseFrameStart == nil && self.selectedDatabase == 0, "withDatabase calls do not nest")
        precondition(index > 0 && index <= Int(Record.maximumDatabaseIndex), "database index out of range")
        self.select(index, markingUndo: true)
        self.databaseFrameStart = self.journal.pending.pointee.buffer.count
        _ = self.journal.pending.pointee.buffer.extend(by: Record.databaseHeaderBytes)
    }

    /// Closes the database record ``enterDatabase(_:)`` opened (dropping it when nothing was logged) and
    /// switches back to database 0.
    public func leaveDatabase() {
        guard let start = self.databaseFrameStart else { preconditionFailure("no database entered") }
        self.databaseFrameStart = nil
        if self.journal.pending.pointee.buffer.count == start + Record.databaseHeaderBytes {
            self.journal.pending.pointee.buffer.remove(start..<(start + Record.databaseHeaderBytes))
        } else {
            Record.closeDatabase(startingAt: start, index: self.selectedDatabase, in: &self.journal.pending.pointee.buffer)
        }
        self.select(0, markingUndo: true)
    }

    /// Makes database `index` the one ``keyspace`` is. `markingUndo`: note the switch in the undo log so
    /// a rollback knows which database older entries belong to (not while rolling back).
    func select(_ index: Int, markingUndo: Bool) {
        guard index != self.selectedDatabase else { return }
        if markingUndo && !self.undo.pointee.isEmpty {
            self.undo.pointee.pushDatabase(sequence: self.lastSequence, previous: self.selectedDatabase)
        }
        if self.selectedDatabase == 0 {
            self.otherExpireCursors[0] = self.expireCursor
        } else {
            self.otherExpireCursors[self.selectedDatabase] = self.expireCursor
        }
        self.keyspace = self.root.database(index)
        self.selectedDatabase = index
        self.expireCursor = self.otherExpireCursors[index] ?? 0
        self.evictionPool.removeAll()
    }

    /// Puts `keyspace` in place of the selected database's (a clear, or its rollback).
    func install(_ keyspace: Keyspace) {
        if self.selectedDatabase == 0 {
            keyspace.otherDatabases = self.root.otherDatabases
            self.root.otherDatabases = []
            self.root = keyspace
        } else {
            _ = self.root.database(self.selectedDatabase)
            self.root.otherDatabases[self.selectedDatabase - 1] = keyspace
        }
        self.keyspace = keyspace
    }

    /// The LRU clock every read and write stamps on its key (``Keyspace/lruClock``). The server advances
    /// it from a monotonic clock; eviction compares keys' stamps with it.
    public var lruClock: UInt32 {
        get { self.keyspace.lruClock }
        set {
            self.keyspace.lruClock = newValue
            // Every database's keys are stamped with the one clock (Databases.swift).
            if !self.root.otherDatabases.isEmpty {
                self.root.lruClock = newValue
                for other in self.root.otherDatabases { other.lruClock = newValue }
            }
        }
    }

    /// Keys in every database.
    public var totalKeyCount: Int { self.root.otherDatabases.reduce(self.root.count) { $0 + $1.count } }

    /// The number of keys and of keys with a deadline of each database that has keys (INFO keyspace).
    public func databaseSizes() -> [(index: Int, keys: Int, withDeadline: Int)] {
        self.root.allDatabases.filter { $0.keyspace.count > 0 }.map { ($0.index, $0.keyspace.count, $0.keyspace.countWithDeadline) }
    }

    /// The indexes of the databases other than 0 that hold keys, ascending.
    var occupiedOtherDatabases: [Int] {
        self.root.otherDatabases.indices.filter { self.root.otherDatabases[$0].count > 0 }.map { $0 + 1 }
    }
}

/// What ``DurableStore/transfer(_:from:to:copying:replacing:now:)`` did.
public enum TransferOutcome: Sendable, Equatable {
    /// The source key is absent: nothing changed.
    case missing
    /// The destination database holds the key and replacing was not asked: nothing changed.
    case destinationExists
    /// Done; acknowledge once ``DurableStore/durableSequence`` reaches it.
    case done(sequence: UInt64)
}

extension DurableStore {
    /// MOVE (`copying` false) and COPY … DB (true): the value of `key` in database `source`, of any type,
    /// and its deadline, go to the same key in database `destination`, as one atomic group (a set or
    /// whole collection in one database, the delete in the other). A collection is copied deeply.
    /// Called outside ``withDatabase(_:_:)``. - Throws: ``StoreError`` when the log cannot take writes.
    public func transfer(
        _ key: [UInt8], as destinationKey: [UInt8]? = nil, from source: Int, to destination: Int, copying: Bool,
        replacing: Bool, now: Int64
    ) throws(StoreError) -> TransferOutcome {
        let target = destinationKey ?? key  // COPY … DB may name another key
        enum Held { case string([UInt8], raw: Bool), collection(any CollectionValue) }
        let found: (Held, Int64?)? = self.withDatabase(source) {
            key.withUnsafeBytes { raw in
                guard let index = self.liveIndex(raw, now: now, touching: false) else { return nil }
                let deadline = self.keyspace.deadline(at: index)
                if let object = self.keyspace.collection(at: index) { return (.collection(object.copy()), deadline) }
                let raw = Slot.isRaw(self.keyspace.table.pointee.slot(index))
                return (.string([UInt8](self.keyspace.value(at: index)), raw: raw), deadline)
            }
        }
        guard let (held, deadline) = found else { return .missing }
        if !replacing && self.withDatabase(destination, { target.withUnsafeBytes { self.liveIndex($0, now: now) != nil } }) {
            return .destinationExists
        }
        try self.checkWritable(recordBytes: key.count)
        let grouped = self.atomicGroupStart == nil
        if grouped { self.beginAtomicGroup() }
        defer { if grouped { self.endAtomicGroup() } }
        var sequence = try self.withDatabase(destination) { () throws(StoreError) -> UInt64 in
            switch held {
            case .string(let value, let raw):
                let sequence = try self.set(value, forKey: target, deadline: deadline, now: now)
                // Redis moves (or copies) a `raw` string as `raw` (KeyspaceMemory.swift).
                if raw, let index = self.keyspace.find(target) { self.keyspace.table.pointee.markRaw(index) }
                return sequence
            case .collection(let object): return try self.setCollection(object, forKey: target, deadline: deadline, now: now)
            }
        }
        if !copying {
            let removed = try self.withDatabase(source) { () throws(StoreError) -> UInt64? in
                try self.removeValue(forKey: key, now: now)
            }
            sequence = max(sequence, removed ?? 0)
        }
        return .done(sequence: sequence)
    }

    /// SWAPDB: databases `first` and `second` exchange their keys, in O(1) whatever they hold: their
    /// tables trade places, and the log takes one small record (kind 14, Record.swift) that replay and
    /// compaction apply the same way. Called outside ``withDatabase(_:_:)``.
    /// - Returns: the sequence number. - Throws: ``StoreError`` when the log cannot take writes.
    public func swapDatabases(_ first: Int, _ second: Int, now: Int64) throws(StoreError) -> UInt64 {
        precondition(self.databaseFrameStart == nil, "SWAPDB runs outside withDatabase")
        guard first != second else { return self.durableSequence }
        try self.checkWritable(recordBytes: 8)
        let sequence = self.journal.nextSequence()
        self.undo.pointee.pushSwap(sequence: sequence, first, second)
        self.exchangeDatabases(first, second)
        Record.swapRest(first, second).withUnsafeBytes { rest in
            Record.append(kind: Record.kindSwapDatabases, key: UnsafeRawBufferPointer(start: nil, count: 0), value: rest,
                          to: &self.journal.pending.pointee.buffer)
        }
        self.journal.pending.pointee.bufferedRecords += 1
        return sequence
    }

    /// The in-memory half of a swap (and of its rollback): the tables trade places; the two databases'
    /// active-expiry cursors and the eviction pool (positions in the old tables) start over.
    func exchangeDatabases(_ first: Int, _ second: Int) {
        self.root.database(first).exchangeEntries(with: self.root.database(second))
        for index in [first, second] {
            if index == self.selectedDatabase { self.expireCursor = 0 } else { self.otherExpireCursors[index] = 0 }
        }
        self.evictionPool.removeAll()
    }

    /// FLUSHALL: every database emptied, as one atomic group (database 0's clear alone when no other
    /// database holds keys: the log of a server that only used database 0 is as it always was).
    public func removeAllDatabases() throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: 0)
        let grouped = self.atomicGroupStart == nil
        if grouped { self.beginAtomicGroup() }
        defer { if grouped { self.endAtomicGroup() } }
        for database in self.occupiedOtherDatabases {
            _ = try self.withDatabase(database) { () throws(StoreError) -> UInt64 in try self.removeAll() }
        }
        return try self.removeAll()
    }
}
