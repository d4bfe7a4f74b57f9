// The large encoding of a hash (OBJECT ENCODING `hashtable`): an open-addressing table with linear
// probing, keyed by the field's bytes under the keyspace's SipHash (SipHash.swift, so a client cannot
// aim its fields at one chain). Each field and its value live in one malloc'd entry, `[field length:
// UInt32][value length: UInt32][field][value]`; a slot is one word, the entry's address with the top 16
// bits of the field's hash in its unused high bits, so most mismatches are rejected without touching
// the entry. No Swift object and no array per field: this is what keeps a large hash near the size of
// its bytes (Benchmarks/README.md compares it with Redis's dict).
//
// Probing, tombstones and the incremental rebuild are ProbingSlots.swift's, shared with the large
// set (SetTable.swift); this file holds the entries' layout, the writes that build them, and HSCAN.
//
// HSCAN's cursor names a position and the table's generation: positions run over the retiring array
// first, then the current one, so an entry moving forward during a scan is met again rather than
// skipped. Starting and ending a migration change the generation, and a cursor from another
// generation starts again from position 0 (repeats are allowed by SCAN's contract; omissions are not).

import Glibc

/// A hash entry's layout for ``ProbingSlots``: the field (the key) after the two lengths.
enum FieldEntryLayout: ProbedEntryLayout {
    @inline(__always) static var keyOffset: Int { 8 }
}

struct FieldTable: ~Copyable {
    private typealias Slots = ProbingSlots<FieldEntryLayout>
    private var core: Slots

    private static let entryHeader = 8
    /// One migration step: slots of the retiring array read, and entries moved, at most.
    static var migrationSlots: Int { Slots.migrationSlots }
    static var migrationEntries: Int { Slots.migrationEntries }

    init() { self.core = Slots(expected: 0) }

    /// An empty table sized for `count` entries without a rebuild.
    init(reservingCapacityFor count: Int) { self.core = Slots(expected: count) }

    /// Slots of the current array: a power of two.
    var capacity: Int { self.core.capacity }
    /// Entries held (in both arrays).
    var count: Int { self.core.count }
    /// The retiring array's size and the entries still in it (0: no rebuild under way).
    var retiringCapacity: Int { self.core.retiringCapacity }
    var retiringCount: Int { self.core.retiringCount }
    /// The bytes of the entries' allocations (headers included).
    var entryBytes: Int { self.core.entryBytes }
    /// Changes whenever entries start or stop moving (a rebuild's start and end).
    var generation: UInt64 { self.core.generation }

    /// The bytes this table accounts for: its slot arrays and its entries.
    var usedBytes: Int { self.core.usedBytes }

    /// Whether a rebuild is in progress (entries remain in the retiring array).
    var isMigrating: Bool { self.core.isMigrating }

    // MARK: - Entries

    @inline(__always)
    static func field(of entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        Slots.key(of: entry)
    }

    @inline(__always)
    static func value(of entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let fieldLength = Int(entry.load(as: UInt32.self))
        let length = Int(entry.load(fromByteOffset: 4, as: UInt32.self))
        return UnsafeRawBufferPointer(start: entry + Self.entryHeader + fieldLength, count: length)
    }

    private static func makeEntry(_ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer {
        precondition(field.count <= Int(UInt32.max) && value.count <= Int(UInt32.max), "hash field or value over 4 GiB")
        let entry = Slots.allocateEntry(Self.entryHeader + field.count + value.count)
        entry.storeBytes(of: UInt32(field.count), as: UInt32.self)
        entry.storeBytes(of: UInt32(value.count), toByteOffset: 4, as: UInt32.self)
        if let base = field.baseAddress { (entry + Self.entryHeader).copyMemory(from: base, byteCount: field.count) }
        if let base = value.baseAddress {
            (entry + Self.entryHeader + field.count).copyMemory(from: base, byteCount: value.count)
        }
        return entry
    }

    @inline(__always)
    private static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    // MARK: - Reads

    /// The entry of `field`, or nil (valid until the table next changes).
    func entry(for field: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        // The hash first: the table's fields are then read after it, not held across it.
        let hash = Slots.hash(field)
        return self.core.find(field, hash: hash).map { Slots.entry($0.slots[$0.index]) }
    }

    /// Calls `body` with each field and value until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        self.core.forEachEntry { body(Self.field(of: $0), Self.value(of: $0)) }
    }

    /// The entry at position `index` (see ``occupiedSlots()``), or nil when that slot holds none.
    func entry(atSlot index: Int) -> UnsafeMutableRawPointer? {
        guard index >= 0, index < self.core.positions else { return nil }
        let slot = self.core.slot(atPosition: index)
        return Slots.isEntry(slot) ? Slots.entry(slot) : nil
    }

    /// A uniformly drawn occupied position. - Precondition: the table is not empty.
    func randomSlot<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        self.core.randomPosition(using: &generator)
    }

    /// Every occupied position (slots of the current array, then of the retiring one), in order.
    func occupiedSlots() -> [Int] {
        var found: [Int] = []
        found.reserveCapacity(self.count)
        for index in 0..<self.core.positions where Slots.isEntry(self.core.slot(atPosition: index)) {
            found.append(index)
        }
        return found
    }

    // MARK: - Writes

    /// Sets `field` to `value`, recording into `inverse` what undoes it. - Returns: whether anything
    /// changed (false: it held that value).
    mutating func set(
        _ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, inverse: inout ElementInverse
    ) -> Bool {
        self.core.prepareWrite()
        let hash = Slots.hash(field)
        if let (slots, index) = self.core.find(field, hash: hash) {
            let slot = slots[index]
            let old = Slots.entry(slot)
            let oldValue = Self.value(of: old)
            if Self.bytesEqual(oldValue, value) { return false }
            inverse.record(.add, field, oldValue)
            if oldValue.count == value.count, let source = value.baseAddress {
                UnsafeMutableRawPointer(mutating: oldValue.baseAddress!).copyMemory(from: source, byteCount: value.count)
                return true
            }
            let replacement = Self.makeEntry(field, value)
            self.core.entryBytes += value.count - oldValue.count
            Glibc.free(old)
            slots[index] = (slot & ~Slots.addressMask) | UInt(bitPattern: replacement)
            return true
        }
        inverse.record(.remove, field)
        self.core.add(Self.makeEntry(field, value), hash: hash, bytes: Self.entryHeader + field.count + value.count)
        return true
    }

    /// Removes `field`, recording into `inverse` what undoes it. - Returns: whether it was there.
    mutating func remove(_ field: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        self.core.prepareWrite()
        let hash = Slots.hash(field)
        guard let (slots, index) = self.core.find(field, hash: hash) else { return false }
        let entry = Slots.entry(slots[index])
        let value = Self.value(of: entry)
        inverse.record(.add, field, value)
        self.core.remove(in: slots, at: index, bytes: Self.entryHeader + field.count + value.count)
        return true
    }

    /// Sets `field` to `value` (building, tests). - Returns: whether anything changed.
    mutating func set(_ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        var ignored = ElementInverse.ignoring
        return self.set(field, value, inverse: &ignored)
    }

    /// Removes `field` (tests). - Returns: whether it was there.
    mutating func remove(_ field: UnsafeRawBufferPointer) -> Bool {
        var ignored = ElementInverse.ignoring
        return self.remove(field, inverse: &ignored)
    }

    /// A deep copy (COPY): new entries, in one array the size of the current one (a rebuild under way
    /// is not carried over: the copy has every entry in place).
    func duplicate() -> FieldTable {
        var copy = FieldTable(reservingCapacityFor: self.capacity / 2)  // capacity(for:) gives it back
        self.forEach { field, value in
            _ = copy.set(field, value)
            return true
        }
        return copy
    }

    // MARK: - Scan

    private static let cursorSlotBits: UInt64 = 40
    private static let cursorGenerationMask: UInt64 = (1 << 24) - 1

    /// The slot at scan position `position`: the retiring array's slots first, then the current one's
    /// (an entry moves only from the retiring array to the current one, so forward).
    private func slot(atScanPosition position: Int) -> UInt {
        let retiringCapacity = self.core.retiringCapacity
        return position < retiringCapacity ? self.core.retiring![position] : self.core.slots[position - retiringCapacity]
    }

    /// One HSCAN step from `cursor` (0: the start): visits slots until about `count` entries were
    /// given to `body` (or `count` × 10 empty slots were passed). - Returns: the next cursor, 0 at the end.
    /// A cursor from another generation (entries started or stopped moving since) starts over.
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> UInt64 {
        let generation = self.core.generation & Self.cursorGenerationMask
        var index = 0
        if cursor != 0 && cursor >> Self.cursorSlotBits == generation {
            index = Int(cursor & ((1 << Self.cursorSlotBits) - 1))
        }
        var given = 0
        var visited = 0
        let visitLimit = count.multipliedReportingOverflow(by: 10).overflow ? Int.max : count * 10
        let positions = self.core.positions
        while index < positions && given < count && visited < visitLimit {
            let slot = self.slot(atScanPosition: index)
            if Slots.isEntry(slot) {
                let entry = Slots.entry(slot)
                body(Self.field(of: entry), Self.value(of: entry))
                given += 1
            }
            visited += 1
            index += 1
        }
        return index >= positions ? 0 : generation << Self.cursorSlotBits | UInt64(index)
    }
}
