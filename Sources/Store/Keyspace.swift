// The keyspace class: the public face of the table in KeyTable.swift (layout in KeyspaceMemory.swift).

import Glibc


/// The keyspace: a hash table from byte-string keys to byte-string values with optional absolute
/// deadlines (Unix milliseconds). Knows nothing of the log or the clock: expiry *policy* (when a key with a
/// deadline counts as gone) belongs to the caller, which passes `now`. Not thread-safe: one owner at a time
/// (the loop thread, or a compaction thread for a keyspace it built itself).
public final class Keyspace {
    let table: UnsafeMutablePointer<KeyTable>
    /// Databases 1, 2, … when this is database 0's keyspace (Databases.swift); empty otherwise.
    var otherDatabases: [Keyspace] = []
    /// The function libraries, in load order, when this is database 0's keyspace (FunctionLibraries.swift).
    var functionLibraries: [(name: [UInt8], code: [UInt8])] = []

    /// An empty keyspace hashing with the process key (or `hashKey`, for tests that need a fixed layout).
    public init(hashKey: (UInt64, UInt64)? = nil) {
        let hasher = hashKey.map { SipHash13(k0: $0.0, k1: $0.1) } ?? SipHash13.processKey
        self.table = .allocate(capacity: 1)
        self.table.initialize(to: KeyTable(hasher: hasher, buckets: KeyTable.minimumBuckets))
    }

    /// Whether this keyspace's values are freed on the thread that lets the keyspace go, big ones
    /// too (BackgroundFree.swift): set by the compaction for the keyspace it builds.
    var freesValuesInPlace = false

    deinit {
        self.table.pointee.freeAll(inPlace: self.freesValuesInPlace)
        self.table.deinitialize(count: 1)
        self.table.deallocate()
    }

    // MARK: Reading

    /// The number of entries (including any whose deadline passed but that nobody removed yet).
    public var count: Int { self.table.pointee.count }

    /// Entries that carry a deadline.
    public var countWithDeadline: Int { self.table.pointee.deadlineCount }

    /// The entry index of `key`, or nil. Indices stay valid until the next mutation.
    @inline(__always)
    public func find(_ key: UnsafeRawBufferPointer) -> Int? {
        let index = self.table.pointee.lookup(key, rehashSteps: 1).index
        return index < 0 ? nil : index
    }

    /// Convenience over an array.
    public func find(_ key: [UInt8]) -> Int? {
        key.withUnsafeBytes { self.find($0) }
    }

    /// The key of entry `index` (valid until the next mutation).
    @inline(__always)
    public func key(at index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        return KeyTable.key(self.table.pointee.slot(index))
    }

    /// The value of entry `index`, a string (valid until the next mutation). A collection's is
    /// ``collection(at:)``: ask ``type(at:)`` first.
    @inline(__always)
    public func value(at index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        assert(!Slot.isCollection(self.table.pointee.slot(index)), "value(at:) of a collection")
        return KeyTable.value(self.table.pointee.slot(index))
    }

    /// The deadline of entry `index` (Unix ms), or nil.
    @inline(__always)
    public func deadline(at index: Int) -> Int64? {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        return self.table.pointee.deadline(ofEntry: index)
    }

    // MARK: Mutating

    /// Inserts or overwrites `key`, setting its deadline to `deadline` (nil: none).
    /// - Returns: the entry index.
    @discardableResult
    public func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, deadline: Int64? = nil) -> Int {
        let table = self.table
        if table.pointee.isResizing { table.pointee.rehash(steps: KeyTable.bucketsMovedPerOperation) }
        let h = table.pointee.hash(key)
        var index = table.pointee.find(key, hash: h)
        if index < 0 {
            index = table.pointee.insert(key, hash: h, value: value)
        } else {
            table.pointee.replaceValue(index, with: value)
        }
        table.pointee.setDeadline(index, deadline)
        return index
    }

    /// Looks `key` up and returns its hash too, so a caller that inserts next does not hash twice.
    /// - Returns: the entry index or -1, and the hash to pass to ``insert(_:hash:_:deadline:)``.
    @inline(__always)
    func lookup(_ key: UnsafeRawBufferPointer) -> (index: Int, hash: UInt32) {
        self.table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
    }

    /// Inserts an absent key whose hash ``lookup(_:)`` returned, with no mutation in between.
    @inline(__always)
    func insert(_ key: UnsafeRawBufferPointer, hash h: UInt32, _ value: UnsafeRawBufferPointer, deadline: Int64?) {
        self.table.pointee.insertNew(key, hash: h, value: value, deadline: deadline)
    }

    /// Replaces the value and deadline of entry `index`.
    @inline(__always)
    func replace(at index: Int, _ value: UnsafeRawBufferPointer, deadline: Int64?) {
        self.table.pointee.replace(at: index, value: value, deadline: deadline)
    }

    /// Convenience over arrays.
    @discardableResult
    public func set(_ key: [UInt8], _ value: [UInt8], deadline: Int64? = nil) -> Int {
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in self.set(k, v, deadline: deadline) } }
    }

    /// Sets or clears the deadline of entry `index`.
    public func setDeadline(at index: Int, _ deadline: Int64?) {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        self.table.pointee.setDeadline(index, deadline)
    }

    /// Removes entry `index`. The last entry takes its index.
    public func remove(at index: Int) {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        let table = self.table
        if table.pointee.isResizing { table.pointee.rehash(steps: KeyTable.bucketsMovedPerOperation) }
        table.pointee.remove(index)
    }

    /// Removes `key`. - Returns: whether it was present.
    @discardableResult
    public func remove(_ key: UnsafeRawBufferPointer) -> Bool {
        guard let index = self.find(key) else { return false }
        self.remove(at: index)
        return true
    }

    /// Sizes an empty table for `count` keys at once (recovery), so loading does not resize.
    public func reserveCapacity(_ count: Int) {
        let table = self.table
        guard table.pointee.count == 0, !table.pointee.isResizing else { return }
        var buckets = KeyTable.minimumBuckets
        while buckets < count { buckets *= 2 }
        guard buckets > table.pointee.mask0 + 1 else { return }
        RawMemory.free(UnsafeMutableRawPointer(table.pointee.buckets0), byteCount: (table.pointee.mask0 + 1) * 4)
        table.pointee.buckets0 = RawMemory.allocateZeroed(buckets * 4).bindMemory(to: UInt32.self, capacity: buckets)
        table.pointee.mask0 = buckets - 1
    }

    /// Moves up to `steps` buckets of a running resize (for idle time; operations also move a few).
    /// - Returns: whether a resize is still running.
    @discardableResult
    public func rehash(steps: Int) -> Bool {
        self.table.pointee.rehash(steps: steps)
        return self.table.pointee.isResizing
    }

    /// Whether an incremental resize is running.
    public var isResizing: Bool { self.table.pointee.isResizing }

    /// Buckets in the main table (and in the target table while resizing).
    public var bucketCounts: (main: Int, target: Int) {
        (self.table.pointee.mask0 + 1, self.table.pointee.buckets1 == nil ? 0 : self.table.pointee.mask1 + 1)
    }

    // MARK: Memory account

    /// Bytes per entry slot (key and small value inline).
    public static let slotBytes = Slot.bytes
    /// Bytes per deadline.
    public static let deadlineBytes = 16

    /// The exact account of what the keyspace holds: a slot per key, key and value bytes stored out of
    /// line, a pair per deadline, and every bucket of both tables. It moves with every mutation (pages are
    /// allocated ahead in 256 KiB steps; ``allocatedBytes`` counts those).
    public var usedBytes: Int {
        let table = self.table.pointee
        return table.count * Slot.bytes + table.externalBytes + table.deadlineCount * Self.deadlineBytes
            + table.bucketBytes + table.collectionBytes
    }

    /// What the keyspace has actually mapped: whole pages, both bucket arrays, out-of-line blocks.
    public var allocatedBytes: Int {
        let table = self.table.pointee
        return table.entries.allocatedBytes + table.deadlines.allocatedBytes + table.bucketBytes + table.externalBytes
            + table.collectionBytes
    }

    /// The bytes one entry accounts for (MEMORY USAGE): its slot, its out-of-line bytes, its deadline, and
    /// one bucket's share.
    public func usedBytes(at index: Int) -> Int {
        let slot = self.table.pointee.slot(index)
        var bytes = Slot.bytes + 4
        if Slot.isCollection(slot) {
            bytes += Self.collectionKeyBytes(Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)))
                + KeyTable.collectionBytes(slot)
        } else if !KeyTable.isInline(slot) {
            bytes += Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                + Slot.valueLength(slot)
        }
        if slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) != 0 { bytes += Self.deadlineBytes }
        return bytes
    }

    /// What ``usedBytes`` should be for entries of these sizes, computed independently (tests).
    /// `raw`: a string edited in place, always out of line (KeyspaceMemory.swift).
    static func expectedBytes(keyLength: Int, valueLength: Int, raw: Bool = false, hasDeadline: Bool) -> Int {
        Slot.bytes + (raw || keyLength + valueLength > Slot.inlineCapacity ? keyLength + valueLength : 0)
            + (hasDeadline ? Self.deadlineBytes : 0)
    }

    /// What ``usedBytes`` should be for a collection entry (tests).
    static func expectedBytes(keyLength: Int, collectionBytes: Int, hasDeadline: Bool) -> Int {
        Slot.bytes + Self.collectionKeyBytes(keyLength) + collectionBytes + (hasDeadline ? Self.deadlineBytes : 0)
    }

    /// The bytes a collection's key of `keyLength` bytes takes outside its slot: none when it fits in the
    /// slot (KeyspaceMemory.swift), else its own block.
    public static func collectionKeyBytes(_ keyLength: Int) -> Int {
        Slot.keepsKeyInSlot(keyLength) ? 0 : keyLength
    }

    // MARK: Invariants

    /// Checks every invariant of the table (O(buckets + entries)); traps on a violation. Tests call it after
    /// every step; it is also cheap enough for debug assertions at coarse points.
    public func checkInvariants() {
        let table = self.table.pointee
        var seen = [Bool](repeating: false, count: table.count)
        var chained = 0
        func walk(_ buckets: UnsafeMutablePointer<UInt32>, mask: Int, isTarget: Bool) {
            for bucket in 0...mask {
                if !isTarget && table.buckets1 != nil && bucket < table.rehashIndex {
                    precondition(buckets[bucket] == 0, "moved bucket \(bucket) not empty")
                    continue
                }
                var link = buckets[bucket]
                while link != 0 {
                    let index = Int(link) - 1
                    precondition(index < table.count, "chain links past the live entries")
                    precondition(!seen[index], "entry \(index) on two chains or a cycle")
                    seen[index] = true
                    chained += 1
                    let slot = table.slot(index)
                    let h = slot.load(fromByteOffset: Slot.hash, as: UInt32.self)
                    precondition(h == table.hash(KeyTable.key(slot)), "stored hash of entry \(index) is stale")
                    precondition(Int(h) & mask == bucket, "entry \(index) in the wrong bucket")
                    precondition(table.head(h) == buckets + bucket, "entry \(index) not where lookups search")
                    link = slot.load(fromByteOffset: Slot.next, as: UInt32.self)
                }
            }
        }
        walk(table.buckets0, mask: table.mask0, isTarget: false)
        if let buckets1 = table.buckets1 {
            walk(buckets1, mask: table.mask1, isTarget: true)
        }
        precondition(chained == table.count, "\(chained) entries chained, \(table.count) counted")
        var external = 0
        var withDeadline = 0
        var collections = 0
        var collectionBytes = 0
        for index in 0..<table.count {
            let slot = table.slot(index)
            if Slot.isCollection(slot) {
                // Read without expanding a compact slot (KeyTable+Compact.swift): checking changes nothing.
                if Slot.isCompact(slot) {
                    precondition(KeyTable.compactFacts(slot).count > 0, "entry \(index): an empty collection is kept")
                } else {
                    let object = KeyTable.object(slot)
                    precondition(object.type == KeyTable.type(slot), "entry \(index): type tag \(KeyTable.type(slot)), object \(object.type)")
                    precondition(object.count > 0, "entry \(index): an empty collection is kept")
                }
                collections += 1
                collectionBytes += KeyTable.collectionBytes(slot)
                let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                external += Self.collectionKeyBytes(keyLength)
                precondition(Slot.keepsKeyInSlot(keyLength) == (KeyTable.bytes(slot) == slot + Slot.collectionKeyOffset),
                             "entry \(index): collection key pointer")
            } else if !KeyTable.isInline(slot) {
                external += Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                    + Slot.valueLength(slot)
            }
            let link = slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self)
            if link != 0 {
                withDeadline += 1
                precondition(Int(link) <= table.deadlineCount, "deadline link past the pairs")
                let entry = table.deadlines.element(Int(link) - 1).load(fromByteOffset: 8, as: UInt32.self)
                precondition(Int(entry) == index, "deadline pair of entry \(index) points at \(entry)")
            }
        }
        precondition(withDeadline == table.deadlineCount, "deadline pairs without entries")
        precondition(collections == table.collectionCount, "\(collections) collections, \(table.collectionCount) counted")
        precondition(collectionBytes == table.collectionBytes,
                     "collection byte account \(table.collectionBytes), actual \(collectionBytes) (a change not reported?)")
        var accounted = table.bucketBytes
        for index in 0..<table.count {
            let slot = table.slot(index)
            if Slot.isCollection(slot) {
                accounted += Self.expectedBytes(
                    keyLength: Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)),
                    collectionBytes: KeyTable.collectionBytes(slot),
                    hasDeadline: slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) != 0)
                continue
            }
            accounted += Self.expectedBytes(
                keyLength: Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)),
                valueLength: Slot.valueLength(slot), raw: Slot.isRaw(slot),
                hasDeadline: slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) != 0)
        }
        precondition(accounted == self.usedBytes, "byte account \(self.usedBytes), recomputed \(accounted)")
        precondition(external == table.externalBytes, "external byte account \(table.externalBytes), actual \(external)")
        precondition(table.entries.pageCount * table.entries.elementsPerPage >= table.count, "entries past the pages")
        precondition(table.count <= table.entries.pageCount * table.entries.elementsPerPage, "pages")
    }
}
