// The open-addressing core of the large hash (HashTable.swift) and the large set (SetTable.swift):
// linear probing of 8-byte slots, each the address of one malloc'd entry with the top 16 bits of the
// key's hash (SipHash.swift, keyed per process, since keys come from the network) in its unused high
// bits, so most mismatches are rejected without touching the entry. An entry starts with its key's
// length (UInt32); the key's bytes start at the layout's ``ProbedEntryLayout/keyOffset`` (what
// follows them is the owner's). Both tables probe, grow, shrink and rebuild alike; they differ in
// their entries and in how they scan, which stay with them.
//
// Removal leaves a tombstone rather than moving entries, so that entries move only when the table is
// rebuilt (grown, shrunk, or cleared of tombstones). A rebuild is incremental, as Redis's dict rehash
// is: the old slot array is kept as the retiring one, every later write first moves a few of its
// entries into the new array (``migrationSlots`` slots read, at most ``migrationEntries`` entries
// moved; ``prepareWrite()``), and reads look in both until it is empty. Moving a million entries at
// once held the loop for a hundredth of a second and more; a step costs about what a few writes do,
// and the new array has room for the writes that come before the old one is empty (a rebuild that
// finds the previous one unfinished finishes it first). A moved entry's old slot becomes a
// tombstone, so the retiring array's probe runs stay whole for the entries still in it.
//
// Generic over the layout, not over a protocol value: within the module each table gets its own
// specialised copy, with the key offset a constant.

import Glibc

/// Where an entry's key starts (its length is the entry's first UInt32).
protocol ProbedEntryLayout {
    static var keyOffset: Int { get }
}

struct ProbingSlots<Layout: ProbedEntryLayout>: ~Copyable {
    /// The current slot array, always allocated.
    private(set) var slots: UnsafeMutablePointer<UInt>
    /// Slots of `slots`: a power of two.
    private(set) var capacity: Int
    /// Entries held (in both arrays).
    private(set) var count = 0
    /// Tombstones in `slots`.
    private var tombstones = 0
    /// The retiring array of a rebuild in progress (nil: none), its size, the entries still in it,
    /// and how far the migration has read it (slots below are empty or tombstones).
    private(set) var retiring: UnsafeMutablePointer<UInt>?
    private(set) var retiringCapacity = 0
    private(set) var retiringCount = 0
    private var retiringIndex = 0
    /// The bytes of the entries' allocations (headers included); the owner adjusts it when it
    /// replaces an entry in place.
    var entryBytes = 0
    /// Changes whenever entries start or stop moving (a rebuild's start and end).
    private(set) var generation: UInt64 = 0

    static var empty: UInt { 0 }
    static var tombstone: UInt { 1 }
    static var addressBits: UInt { 48 }
    static var addressMask: UInt { (1 << 48) - 1 }
    static var minimumCapacity: Int { 8 }
    /// One migration step: slots of the retiring array read, and entries moved, at most.
    static var migrationSlots: Int { 64 }
    static var migrationEntries: Int { 8 }

    /// An empty table sized for `expected` entries without a rebuild.
    init(expected: Int) {
        let capacity = Self.capacity(for: expected)
        self.slots = Self.allocateSlots(capacity)
        self.capacity = capacity
    }

    deinit {
        Self.freeEntries(self.slots, self.capacity)
        if let retiring = self.retiring { Self.freeEntries(retiring, self.retiringCapacity) }
    }

    private static func freeEntries(_ slots: UnsafeMutablePointer<UInt>, _ capacity: Int) {
        for index in 0..<capacity where slots[index] > Self.tombstone {
            Glibc.free(Self.entry(slots[index]))
        }
        Self.freeSlots(slots, capacity)
    }

    /// A zeroed slot array. A big one comes from mmap (KeyspaceMemory.swift's RawMemory), whose pages
    /// the kernel zeroes as they are first touched: filling megabytes of slots in the write that
    /// starts a rebuild would hold the loop for as long as the rebuild steps were meant to spare it.
    private static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<UInt> {
        RawMemory.allocateZeroed(capacity * 8).bindMemory(to: UInt.self, capacity: capacity)
    }

    private static func freeSlots(_ slots: UnsafeMutablePointer<UInt>, _ capacity: Int) {
        RawMemory.free(UnsafeMutableRawPointer(slots), byteCount: capacity * 8)
    }

    /// The bytes of both slot arrays and the entries.
    var usedBytes: Int { (self.capacity + self.retiringCapacity) * 8 + self.entryBytes }

    /// Whether a rebuild is in progress (entries remain in the retiring array).
    var isMigrating: Bool { self.retiring != nil }

    /// The capacity a table of `count` entries gets: load at most 1/2.
    static func capacity(for count: Int) -> Int {
        var capacity = Self.minimumCapacity
        while capacity < count * 2 { capacity *= 2 }
        return capacity
    }

    // MARK: - Entries and keys

    /// Whether a slot holds an entry (neither empty nor a tombstone).
    @inline(__always)
    static func isEntry(_ slot: UInt) -> Bool { slot > Self.tombstone }

    @inline(__always)
    static func entry(_ slot: UInt) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: slot & Self.addressMask)!
    }

    @inline(__always)
    static func key(of entry: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: entry + Layout.keyOffset, count: Int(entry.load(as: UInt32.self)))
    }

    /// A new entry's memory: `bytes`, from malloc, below 2^48 (the slot's tag takes the bits above).
    @inline(__always)
    static func allocateEntry(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let entry = malloc(bytes) else { fatalError("malloc failed: out of memory") }
        precondition(UInt(bitPattern: entry) & ~Self.addressMask == 0, "an address above 2^48")
        return entry
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        SipHash13.processKey.hash(bytes.baseAddress, count: bytes.count)
    }

    @inline(__always)
    static func tag(_ hash: UInt64) -> UInt { UInt(hash >> 48) << Self.addressBits }

    /// The slot of `slots` (of `capacity`) holding `key`, or nil.
    @inline(__always)
    private static func probe(
        _ slots: UnsafeMutablePointer<UInt>, _ capacity: Int, _ key: UnsafeRawBufferPointer, hash: UInt64
    ) -> Int? {
        let tag = Self.tag(hash)
        let mask = capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot == Self.empty { return nil }
            if slot > Self.tombstone && slot & ~Self.addressMask == tag {
                let candidate = Self.key(of: Self.entry(slot))
                if candidate.count == key.count
                    && (key.count == 0 || memcmp(candidate.baseAddress!, key.baseAddress!, key.count) == 0)
                {
                    return index
                }
            }
            index = (index + 1) & mask
        }
    }

    /// The slot of the current array holding `key` (hashing to `hash`), or nil. With
    /// ``retiringIndex(of:hash:)``, for a read that wants the retiring array's fields loaded only
    /// after the current array missed (one borrow of the whole table across the probe's memcmp loads
    /// and keeps them from the start).
    @inline(__always)
    func currentIndex(of key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        Self.probe(self.slots, self.capacity, key, hash: hash)
    }

    /// The slot of the retiring array holding `key`, or nil (nil also when no rebuild runs).
    @inline(__always)
    func retiringIndex(of key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        guard let retiring = self.retiring else { return nil }
        return Self.probe(retiring, self.retiringCapacity, key, hash: hash)
    }

    /// Where `key` (hashing to `hash`) is: its array (the current one, or the retiring one) and slot,
    /// or nil.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> (slots: UnsafeMutablePointer<UInt>, index: Int)? {
        if let index = Self.probe(self.slots, self.capacity, key, hash: hash) { return (self.slots, index) }
        if let retiring = self.retiring, let index = Self.probe(retiring, self.retiringCapacity, key, hash: hash) {
            return (retiring, index)
        }
        return nil
    }

    // MARK: - Reads over every entry

    /// Calls `body` with each entry (the retiring array's, then the current one's, in slot order)
    /// until it returns false.
    @inline(__always)
    func forEachEntry(_ body: (UnsafeMutableRawPointer) -> Bool) {
        if let retiring = self.retiring {
            for index in 0..<self.retiringCapacity where retiring[index] > Self.tombstone {
                guard body(Self.entry(retiring[index])) else { return }
            }
        }
        for index in 0..<self.capacity where self.slots[index] > Self.tombstone {
            guard body(Self.entry(self.slots[index])) else { return }
        }
    }

    /// Positions name slots of both arrays: the current one's first, then the retiring one's.
    var positions: Int { self.capacity + self.retiringCapacity }

    @inline(__always)
    func slot(atPosition position: Int) -> UInt {
        position < self.capacity ? self.slots[position] : self.retiring![position - self.capacity]
    }

    /// A uniformly drawn occupied position (rejection sampling: each array is kept at least about one
    /// slot in eight full, so a few draws). - Precondition: the table is not empty.
    func randomPosition<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        precondition(self.count > 0, "no entry to draw")
        let positions = self.positions
        while true {
            let position = Int.random(in: 0..<positions, using: &generator)
            if self.slot(atPosition: position) > Self.tombstone { return position }
        }
    }

    // MARK: - Changes

    /// What every write does first: one migration step while a rebuild runs.
    @inline(__always)
    mutating func prepareWrite() {
        if self.retiring != nil { self.migrate() }
    }

    /// Adds an entry (its address) whose key, absent, hashes to `hash`; `bytes` is its allocation's
    /// size. Grows the table first when the load would pass 3/4.
    @inline(__always)
    mutating func add(_ entry: UnsafeMutableRawPointer, hash: UInt64, bytes: Int) {
        if (self.count + self.tombstones + 1) * 4 > self.capacity * 3 {
            self.startRebuild(to: Self.capacity(for: self.count + 1))
        }
        self.place(hash: hash, UInt(bitPattern: entry))
        self.count += 1
        self.entryBytes += bytes
    }

    /// Frees the entry at `index` of `slots` (as ``find(_:hash:)`` gave them), whose allocation is
    /// `bytes`, and leaves a tombstone; shrinks the table when it falls below 1/8 full.
    @inline(__always)
    mutating func remove(in slots: UnsafeMutablePointer<UInt>, at index: Int, bytes: Int) {
        Glibc.free(Self.entry(slots[index]))
        slots[index] = Self.tombstone
        self.count -= 1
        self.entryBytes -= bytes
        if slots == self.slots {
            self.tombstones += 1
        } else {
            self.retiringCount -= 1
            if self.retiringCount == 0 { self.endRebuild() }
        }
        if self.retiring == nil && self.capacity > Self.minimumCapacity && self.count * 8 < self.capacity {
            self.startRebuild(to: Self.capacity(for: self.count))
        }
    }

    /// Puts an entry (its address) with hash `hash` into the current array.
    @inline(__always)
    private mutating func place(hash: UInt64, _ address: UInt) {
        let slots = self.slots
        let mask = self.capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] > Self.tombstone { index = (index + 1) & mask }
        if slots[index] == Self.tombstone { self.tombstones -= 1 }
        slots[index] = Self.tag(hash) | address
    }

    // MARK: - Rebuilds

    /// Starts moving every entry into a new array of `newCapacity` slots (none is copied): the current
    /// array becomes the retiring one, emptied by ``migrate()`` steps. A rebuild still running is
    /// finished first.
    private mutating func startRebuild(to newCapacity: Int) {
        while self.retiring != nil { self.migrate() }
        if self.count > 0 {
            self.retiring = self.slots
            self.retiringCapacity = self.capacity
            self.retiringCount = self.count
            self.retiringIndex = 0
        } else {
            Self.freeSlots(self.slots, self.capacity)
        }
        self.slots = Self.allocateSlots(newCapacity)
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
                self.place(hash: Self.hash(Self.key(of: Self.entry(slot))), slot & Self.addressMask)
                retiring[index] = Self.tombstone
                moved += 1
            }
            index += 1
        }
        self.retiringIndex = index
        self.retiringCount -= moved
        if self.retiringCount == 0 { self.endRebuild() }
    }

    private mutating func endRebuild() {
        Self.freeSlots(self.retiring!, self.retiringCapacity)
        self.retiring = nil
        self.retiringCapacity = 0
        self.retiringCount = 0
        self.retiringIndex = 0
        self.generation &+= 1
    }
}
