// The large encoding of a hash (OBJECT ENCODING `hashtable`): an open-addressing table with linear
// probing, keyed by the field's bytes under the keyspace's SipHash (SipHash.swift, so a client cannot
// aim its fields at one chain). Each field and its value live in one malloc'd entry, `[field length:
// UInt32][value length: UInt32][field][value]`; a slot is one word, the entry's address with the top 16
// bits of the field's hash in its unused high bits, so most mismatches are rejected without touching
// the entry. No Swift object and no array per field: this is what keeps a large hash near the size of
// its bytes (Benchmarks/README.md compares it with Redis's dict).
//
// Removal leaves a tombstone rather than moving entries, so that entries move only when the table is
// rebuilt (grown, shrunk, or cleared of tombstones): HSCAN's cursor names a slot and the table's
// generation, and a cursor from an older generation starts again from slot 0 (repeats are allowed by
// SCAN's contract; omissions are not).

import Glibc

struct FieldTable: ~Copyable {
    private var slots: UnsafeMutablePointer<UInt>?
    /// Slots allocated: zero or a power of two.
    private(set) var capacity = 0
    /// Entries held.
    private(set) var count = 0
    private var tombstones = 0
    /// The bytes of the entries' allocations (headers included).
    private(set) var entryBytes = 0
    /// Changes whenever entries move (every rebuild).
    private(set) var generation: UInt64 = 0

    private static let empty: UInt = 0
    private static let tombstone: UInt = 1
    private static let addressBits: UInt = 48
    private static let addressMask: UInt = (1 << 48) - 1
    private static let entryHeader = 8
    private static let minimumCapacity = 8

    init() {}

    /// An empty table sized for `count` entries without a rebuild.
    init(reservingCapacityFor count: Int) {
        self.rebuild(to: Self.capacity(for: count))
    }

    deinit {
        guard let slots = self.slots else { return }
        for index in 0..<self.capacity where slots[index] > Self.tombstone {
            Glibc.free(Self.entry(slots[index]))
        }
        slots.deallocate()
    }

    /// The bytes this table accounts for: its slots and its entries.
    var usedBytes: Int { self.capacity * MemoryLayout<UInt>.stride + self.entryBytes }

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

    /// The slot holding `field`, or nil.
    private func find(_ field: UnsafeRawBufferPointer) -> Int? {
        guard let slots = self.slots else { return nil }
        let hash = Self.hash(field)
        let tag = UInt(hash >> 48) << Self.addressBits
        let mask = self.capacity - 1
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

    // MARK: - Reads

    /// The entry of `field`, or nil (valid until the table next changes).
    func entry(for field: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        self.find(field).map { Self.entry(self.slots![$0]) }
    }

    /// Calls `body` with each field and value until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool) {
        guard let slots = self.slots else { return }
        for index in 0..<self.capacity where slots[index] > Self.tombstone {
            let entry = Self.entry(slots[index])
            guard body(Self.field(of: entry), Self.value(of: entry)) else { return }
        }
    }

    /// The entry at slot `index`, or nil when the slot holds none.
    func entry(atSlot index: Int) -> UnsafeMutableRawPointer? {
        guard let slots = self.slots, index >= 0, index < self.capacity, slots[index] > Self.tombstone else { return nil }
        return Self.entry(slots[index])
    }

    /// A uniformly drawn occupied slot (rejection sampling: the load is kept above 1/8, so a few draws).
    /// - Precondition: the table is not empty.
    func randomSlot<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        precondition(self.count > 0, "no entry to draw")
        let slots = self.slots!
        while true {
            let index = Int.random(in: 0..<self.capacity, using: &generator)
            if slots[index] > Self.tombstone { return index }
        }
    }

    /// Every occupied slot, in slot order.
    func occupiedSlots() -> [Int] {
        guard let slots = self.slots else { return [] }
        var found: [Int] = []
        found.reserveCapacity(self.count)
        for index in 0..<self.capacity where slots[index] > Self.tombstone { found.append(index) }
        return found
    }

    // MARK: - Writes

    /// Sets `field` to `value`, recording into `inverse` what undoes it. - Returns: whether anything
    /// changed (false: it held that value).
    mutating func set(
        _ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, inverse: inout ElementInverse
    ) -> Bool {
        if let index = self.find(field) {
            let slot = self.slots![index]
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
            self.slots![index] = (slot & ~Self.addressMask) | UInt(bitPattern: replacement)
            return true
        }
        inverse.record(.remove, field)
        if (self.count + self.tombstones + 1) * 4 > self.capacity * 3 {
            self.rebuild(to: Self.capacity(for: self.count + 1))
        }
        let hash = Self.hash(field)
        let tag = UInt(hash >> 48) << Self.addressBits
        let mask = self.capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while self.slots![index] > Self.tombstone { index = (index + 1) & mask }
        if self.slots![index] == Self.tombstone { self.tombstones -= 1 }
        self.slots![index] = tag | UInt(bitPattern: Self.makeEntry(field, value))
        self.count += 1
        self.entryBytes += Self.entryHeader + field.count + value.count
        return true
    }

    /// Removes `field`, recording into `inverse` what undoes it. - Returns: whether it was there.
    mutating func remove(_ field: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        guard let index = self.find(field) else { return false }
        let entry = Self.entry(self.slots![index])
        inverse.record(.add, field, Self.value(of: entry))
        self.entryBytes -= Self.entryHeader + Self.field(of: entry).count + Self.value(of: entry).count
        Glibc.free(entry)
        self.slots![index] = Self.tombstone
        self.count -= 1
        self.tombstones += 1
        if self.capacity > Self.minimumCapacity && self.count * 8 < self.capacity {
            self.rebuild(to: Self.capacity(for: self.count))
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

    /// A deep copy (COPY): the same layout, new entries.
    func duplicate() -> FieldTable {
        var copy = FieldTable()
        guard self.capacity > 0 else { return copy }
        copy.rebuild(to: self.capacity)
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

    /// Moves every entry into a new slot array of `newCapacity` slots (no entry is copied).
    private mutating func rebuild(to newCapacity: Int) {
        let fresh = UnsafeMutablePointer<UInt>.allocate(capacity: newCapacity)
        fresh.initialize(repeating: Self.empty, count: newCapacity)
        let mask = newCapacity - 1
        if let old = self.slots {
            for index in 0..<self.capacity where old[index] > Self.tombstone {
                let slot = old[index]
                let hash = Self.hash(Self.field(of: Self.entry(slot)))
                var target = Int(truncatingIfNeeded: hash) & mask
                while fresh[target] != Self.empty { target = (target + 1) & mask }
                fresh[target] = slot
            }
            old.deallocate()
        }
        self.slots = fresh
        self.capacity = newCapacity
        self.tombstones = 0
        self.generation &+= 1
    }

    // MARK: - Scan

    private static let cursorSlotBits: UInt64 = 40
    private static let cursorGenerationMask: UInt64 = (1 << 24) - 1

    /// One HSCAN step from `cursor` (0: the start): visits slots until about `count` entries were
    /// given to `body` (or `count` × 10 empty slots were passed). - Returns: the next cursor, 0 at the end.
    /// A cursor from another generation (the entries moved since) starts over.
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> UInt64 {
        guard let slots = self.slots else { return 0 }
        let generation = self.generation & Self.cursorGenerationMask
        var index = 0
        if cursor != 0 && cursor >> Self.cursorSlotBits == generation {
            index = Int(cursor & ((1 << Self.cursorSlotBits) - 1))
        }
        var given = 0
        var visited = 0
        let visitLimit = count.multipliedReportingOverflow(by: 10).overflow ? Int.max : count * 10
        while index < self.capacity && given < count && visited < visitLimit {
            if slots[index] > Self.tombstone {
                let entry = Self.entry(slots[index])
                body(Self.field(of: entry), Self.value(of: entry))
                given += 1
            }
            visited += 1
            index += 1
        }
        return index >= self.capacity ? 0 : generation << Self.cursorSlotBits | UInt64(index)
    }
}
