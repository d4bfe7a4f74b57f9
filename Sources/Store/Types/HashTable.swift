// The large encoding of a hash (OBJECT ENCODING `hashtable`): an open-addressing table with linear
// probing, keyed by the field's bytes under the keyspace's SipHash (SipHash.swift, so a client cannot
// aim its fields at one chain). Each field and its value live in one malloc'd entry, `[field length:
// UInt32][value length: UInt32][field][value]`; a slot is one word, the entry's address with the top 16
// bits of the field's hash in its unused high bits, so most mismatches are rejected without touching
// the entry. No Swift object and no array per field: this is what keeps a large hash near the size of
// its bytes (Benchmarks/README.md compares it with Redis's dict).
//
// Removal leaves a tombstone rather than moving entries, so that entries move only when the table is
// rebuilt (grown, shrunk, or cleared of tombstones). A rebuild is incremental, as Redis's dict rehash
// is: the old slot array is kept as the retiring table, every later write first moves a few of its
// entries into the new array (``migrationSlots`` slots scanned, at most ``migrationEntries`` entries
// moved), and reads look in both until it is empty. Moving a million entries at once held the loop
// for a hundredth of a second and more; a step costs about what a few writes do, and the new array
// has room for the writes that come before the old one is empty (a rebuild that finds the previous
// one unfinished finishes it first). A moved entry's old slot becomes a tombstone, so the old array's
// probe runs stay whole for the entries still in it.
//
// HSCAN's cursor names a position and the table's generation: positions run over the retiring array
// first, then the current one, so an entry moving forward during a scan is met again rather than
// skipped. Starting and ending a migration change the generation, and a cursor from another
// generation starts again from position 0 (repeats are allowed by SCAN's contract; omissions are not).

import Glibc

struct FieldTable: ~Copyable {
    private var slots: UnsafeMutablePointer<UInt>?
    /// Slots allocated: zero or a power of two.
    private(set) var capacity = 0
    /// Entries held (in both arrays).
    private(set) var count = 0
    /// Tombstones in `slots`.
    private var tombstones = 0
    /// The retiring array of a rebuild in progress (nil: none), its size, the entries still in it, and
    /// how far the migration has read it (slots below are empty or tombstones).
    private var retiring: UnsafeMutablePointer<UInt>?
    private(set) var retiringCapacity = 0
    private(set) var retiringCount = 0
    private var retiringIndex = 0
    /// The bytes of the entries' allocations (headers included).
    private(set) var entryBytes = 0
    /// Changes whenever entries start or stop moving (a rebuild's start and end).
    private(set) var generation: UInt64 = 0

    private static let empty: UInt = 0
    private static let tombstone: UInt = 1
    private static let addressBits: UInt = 48
    private static let addressMask: UInt = (1 << 48) - 1
    private static let entryHeader = 8
    private static let minimumCapacity = 8
    /// One migration step: slots of the retiring array read, and entries moved, at most.
    static let migrationSlots = 64
    static let migrationEntries = 8

    init() {}

    /// An empty table sized for `count` entries without a rebuild.
    init(reservingCapacityFor count: Int) {
        let capacity = Self.capacity(for: count)
        self.slots = Self.allocateSlots(capacity)
        self.capacity = capacity
    }

    deinit {
        Self.freeEntries(self.slots, self.capacity)
        Self.freeEntries(self.retiring, self.retiringCapacity)
    }

    private static func freeEntries(_ slots: UnsafeMutablePointer<UInt>?, _ capacity: Int) {
        guard let slots else { return }
        for index in 0..<capacity where slots[index] > Self.tombstone {
            Glibc.free(Self.entry(slots[index]))
        }
        Self.freeSlots(slots, capacity)
    }

    /// A zeroed slot array; a big one from mmap, zeroed by the kernel page by page as it is first
    /// touched, not all in the write that starts a rebuild (see SetTable.swift).
    private static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<UInt> {
        RawMemory.allocateZeroed(capacity * 8).bindMemory(to: UInt.self, capacity: capacity)
    }

    private static func freeSlots(_ slots: UnsafeMutablePointer<UInt>, _ capacity: Int) {
        RawMemory.free(UnsafeMutableRawPointer(slots), byteCount: capacity * 8)
    }

    /// The bytes this table accounts for: its slot arrays and its entries.
    var usedBytes: Int { (self.capacity + self.retiringCapacity) * MemoryLayout<UInt>.stride + self.entryBytes }

    /// Whether a rebuild is in progress (entries remain in the retiring array).
    var isMigrating: Bool { self.retiring != nil }

    // MARK: - Entries

    @inline(__always)
    private static func entry(_ slot: UInt) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: slot & Self.addressMask)!
    }

    @inline(__always)
    static func field(of entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let length = Int(entry.load(as: UInt32.self))
        return UnsafeRawBufferPointer(start: entry + Self.entryHeader, count: length)
    }

    @inline(__always)
    static func value(of entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let fieldLength = Int(entry.load(as: UInt32.self))
        let length = Int(entry.load(fromByteOffset: 4, as: UInt32.self))
        return UnsafeRawBufferPointer(start: entry + Self.entryHeader + fieldLength, count: length)
    }

    private static func makeEntry(_ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer {
        precondition(field.count <= Int(UInt32.max) && value.count <= Int(UInt32.max), "hash field or value over 4 GiB")
        guard let entry = malloc(Self.entryHeader + field.count + value.count) else {
            fatalError("malloc failed: out of memory")
        }
        precondition(UInt(bitPattern: entry) & ~Self.addressMask == 0, "an address above 2^48")
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

    @inline(__always)
    private static func hash(_ field: UnsafeRawBufferPointer) -> UInt64 {
        SipHash13.processKey.hash(field.baseAddress, count: field.count)
    }

    /// The slot of `slots` (of `capacity`) holding `field`, or nil.
    @inline(__always)
    private static func probe(
        _ slots: UnsafeMutablePointer<UInt>, _ capacity: Int, _ field: UnsafeRawBufferPointer, hash: UInt64
    ) -> Int? {
        let tag = UInt(hash >> 48) << Self.addressBits
        let mask = capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot == Self.empty { return nil }
            if slot > Self.tombstone && slot & ~Self.addressMask == tag
                && Self.bytesEqual(Self.field(of: Self.entry(slot)), field)
            {
                return index
            }
            index = (index + 1) & mask
        }
    }

    /// Where `field` is: its array (the current one, or the retiring one) and slot, or nil.
    private func find(_ field: UnsafeRawBufferPointer) -> (slots: UnsafeMutablePointer<UInt>, index: Int)? {
        guard let slots = self.slots else { return nil }
        let hash = Self.hash(field)
        if let index = Self.probe(slots, self.capacity, field, hash: hash) { return (slots, index) }
        if let retiring = self.retiring, let index = Self.probe(retiring, self.retiringCapacity, field, hash: hash) {
            return (retiring, index)
        }
        return nil
    }

    // MARK: - Reads

    /// The entry of `field`, or nil (valid until the table next changes).
    func entry(for field: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        self.find(field).map { Self.entry($0.slots[$0.index]) }
    }

    /// Calls `body` with each field and value until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        for (slots, capacity) in [(self.retiring, self.retiringCapacity), (self.slots, self.capacity)] {
            guard let slots else { continue }
            for index in 0..<capacity where slots[index] > Self.tombstone {
                let entry = Self.entry(slots[index])
                guard body(Self.field(of: entry), Self.value(of: entry)) else { return }
            }
        }
    }

    /// Positions name slots of both arrays: the current one's first, then the retiring one's.
    private var positions: Int { self.capacity + self.retiringCapacity }

    private func slot(atPosition position: Int) -> UInt {
        position < self.capacity ? self.slots![position] : self.retiring![position - self.capacity]
    }

    /// The entry at position `index` (see ``occupiedSlots()``), or nil when that slot holds none.
    func entry(atSlot index: Int) -> UnsafeMutableRawPointer? {
        guard self.slots != nil, index >= 0, index < self.positions else { return nil }
        let slot = self.slot(atPosition: index)
        return slot > Self.tombstone ? Self.entry(slot) : nil
    }

    /// A uniformly drawn occupied position (rejection sampling: the load is kept above 1/8, so a few draws).
    /// - Precondition: the table is not empty.
    func randomSlot<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        precondition(self.count > 0, "no entry to draw")
        while true {
            let index = Int.random(in: 0..<self.positions, using: &generator)
            if self.slot(atPosition: index) > Self.tombstone { return index }
        }
    }

    /// Every occupied position (slots of the current array, then of the retiring one), in order.
    func occupiedSlots() -> [Int] {
        guard self.slots != nil else { return [] }
        var found: [Int] = []
        found.reserveCapacity(self.count)
        for index in 0..<self.positions where self.slot(atPosition: index) > Self.tombstone { found.append(index) }
        return found
    }

    // MARK: - Writes

    /// Sets `field` to `value`, recording into `inverse` what undoes it. - Returns: whether anything
    /// changed (false: it held that value).
    mutating func set(
        _ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, inverse: inout ElementInverse
    ) -> Bool {
        if self.retiring != nil { self.migrate() }
        if let (slots, index) = self.find(field) {
            let slot = slots[index]
            let old = Self.entry(slot)
            let oldValue = Self.value(of: old)
            if Self.bytesEqual(oldValue, value) { return false }
            inverse.record(.add, field, oldValue)
            if oldValue.count == value.count, let source = value.baseAddress {
                UnsafeMutableRawPointer(mutating: oldValue.baseAddress!).copyMemory(from: source, byteCount: value.count)
                return true
            }
            let replacement = Self.makeEntry(field, value)
            self.entryBytes += value.count - oldValue.count
            Glibc.free(old)
            slots[index] = (slot & ~Self.addressMask) | UInt(bitPattern: replacement)
            return true
        }
        inverse.record(.remove, field)
        if (self.count + self.tombstones + 1) * 4 > self.capacity * 3 {
            self.startRebuild(to: Self.capacity(for: self.count + 1))
        }
        self.place(tagged: Self.hash(field), UInt(bitPattern: Self.makeEntry(field, value)))
        self.count += 1
        self.entryBytes += Self.entryHeader + field.count + value.count
        return true
    }

    /// Puts an entry (its address) with hash `hash` into the current array.
    @inline(__always)
    private mutating func place(tagged hash: UInt64, _ address: UInt) {
        let tag = UInt(hash >> 48) << Self.addressBits
        let slots = self.slots!
        let mask = self.capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] > Self.tombstone { index = (index + 1) & mask }
        if slots[index] == Self.tombstone { self.tombstones -= 1 }
        slots[index] = tag | address
    }

    /// Removes `field`, recording into `inverse` what undoes it. - Returns: whether it was there.
    mutating func remove(_ field: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        if self.retiring != nil { self.migrate() }
        guard let (slots, index) = self.find(field) else { return false }
        let entry = Self.entry(slots[index])
        inverse.record(.add, field, Self.value(of: entry))
        self.entryBytes -= Self.entryHeader + Self.field(of: entry).count + Self.value(of: entry).count
        Glibc.free(entry)
        slots[index] = Self.tombstone
        self.count -= 1
        if slots == self.slots {
            self.tombstones += 1
        } else {
            self.retiringCount -= 1
            if self.retiringCount == 0 { self.endRebuild() }
        }
        if self.retiring == nil && self.capacity > Self.minimumCapacity && self.count * 8 < self.capacity {
            self.startRebuild(to: Self.capacity(for: self.count))
        }
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
        var copy = FieldTable()
        guard self.capacity > 0 else { return copy }
        copy.slots = Self.allocateSlots(self.capacity)
        copy.capacity = self.capacity
        self.forEach { field, value in
            _ = copy.set(field, value)
            return true
        }
        return copy
    }

    /// The capacity a rebuild for `count` entries gets: load at most 1/2 after it.
    private static func capacity(for count: Int) -> Int {
        var capacity = Self.minimumCapacity
        while capacity < count * 2 { capacity *= 2 }
        return capacity
    }

    // MARK: - Rebuilds

    /// Starts moving every entry into a new array of `newCapacity` slots (none is copied): the current
    /// array becomes the retiring one, emptied by ``migrate()`` steps. A rebuild still running is
    /// finished first.
    private mutating func startRebuild(to newCapacity: Int) {
        if self.retiring != nil { self.finishRebuild() }
        let fresh = Self.allocateSlots(newCapacity)
        let liveInOld = self.count
        if let old = self.slots, liveInOld > 0 {
            self.retiring = old
            self.retiringCapacity = self.capacity
            self.retiringCount = liveInOld
            self.retiringIndex = 0
        } else if let old = self.slots {
            Self.freeSlots(old, self.capacity)
        }
        self.slots = fresh
        self.capacity = newCapacity
        self.tombstones = 0
        self.generation &+= 1
    }

    /// One step of the rebuild: moves up to ``migrationEntries`` entries from the next
    /// ``migrationSlots`` slots of the retiring array into the current one.
    private mutating func migrate() {
        let retiring = self.retiring!
        let end = min(self.retiringIndex + Self.migrationSlots, self.retiringCapacity)
        var moved = 0
        var index = self.retiringIndex
        while index < end && moved < Self.migrationEntries {
            let slot = retiring[index]
            if slot > Self.tombstone {
                self.place(tagged: Self.hash(Self.field(of: Self.entry(slot))), slot & Self.addressMask)
                retiring[index] = Self.tombstone
                moved += 1
            }
            index += 1
        }
        self.retiringIndex = index
        self.retiringCount -= moved
        if self.retiringCount == 0 { self.endRebuild() }
    }

    /// Moves every entry still in the retiring array.
    private mutating func finishRebuild() {
        while self.retiring != nil { self.migrate() }
    }

    private mutating func endRebuild() {
        Self.freeSlots(self.retiring!, self.retiringCapacity)
        self.retiring = nil
        self.retiringCapacity = 0
        self.retiringCount = 0
        self.retiringIndex = 0
        self.generation &+= 1
    }

    // MARK: - Scan

    private static let cursorSlotBits: UInt64 = 40
    private static let cursorGenerationMask: UInt64 = (1 << 24) - 1

    /// The slot at scan position `position`: the retiring array's slots first, then the current one's
    /// (an entry moves only from the retiring array to the current one, so forward).
    private func slot(atScanPosition position: Int) -> UInt {
        position < self.retiringCapacity ? self.retiring![position] : self.slots![position - self.retiringCapacity]
    }

    /// One HSCAN step from `cursor` (0: the start): visits slots until about `count` entries were
    /// given to `body` (or `count` × 10 empty slots were passed). - Returns: the next cursor, 0 at the end.
    /// A cursor from another generation (entries started or stopped moving since) starts over.
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> UInt64 {
        guard self.slots != nil else { return 0 }
        let generation = self.generation & Self.cursorGenerationMask
        var index = 0
        if cursor != 0 && cursor >> Self.cursorSlotBits == generation {
            index = Int(cursor & ((1 << Self.cursorSlotBits) - 1))
        }
        var given = 0
        var visited = 0
        let visitLimit = count.multipliedReportingOverflow(by: 10).overflow ? Int.max : count * 10
        let positions = self.positions
        while index < positions && given < count && visited < visitLimit {
            let slot = self.slot(atScanPosition: index)
            if slot > Self.tombstone {
                let entry = Self.entry(slot)
                body(Self.field(of: entry), Self.value(of: entry))
                given += 1
            }
            visited += 1
            index += 1
        }
        return index >= positions ? 0 : generation << Self.cursorSlotBits | UInt64(index)
    }
}
