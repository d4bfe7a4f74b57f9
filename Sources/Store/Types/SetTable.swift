// A large set's structure (OBJECT ENCODING `hashtable`): an open-addressing table with linear probing
// of 8-byte slots. Each member is one malloc'd entry, `[length: UInt32][bytes]`; a slot holds the
// entry's address with the top 16 bits of the member's hash (SipHash.swift, keyed per process, since
// members come from the network) in its unused high bits, so most mismatches are rejected without
// touching the entry. No Swift object and no array per member.
//
// Nothing here is done for the whole set in one step, so that a set of millions never holds the loop:
// members are never copied (an entry keeps its address for life), removal leaves a tombstone, and a
// rebuild (growth, shrinking, clearing tombstones) is incremental as the hash table's is
// (HashTable.swift): the old slot array becomes the retiring one, every later write first moves a few
// of its entries (``migrationSlots`` slots read, at most ``migrationEntries`` entries moved), and reads
// look in both arrays until it is empty. A moved entry's old slot becomes a tombstone, so the retiring
// array's probe runs stay whole for the entries still in it.
//
// Two reads need the layout: a uniformly random member is a uniformly random occupied position of the
// two arrays, drawn again while empty (each array is kept at least about one slot in eight full),
// which is what SPOP and SRANDMEMBER need; SSCAN's cursor walks home buckets in Redis's reverse-binary
// order, and a bucket's members all lie in the probe run that starts at it (tombstones do not end a
// run). While a rebuild runs, one cursor step visits a bucket of the smaller array and every bucket
// of the larger one that shares its low bits, as Redis's dictScan does with its two tables; so a
// member present for the whole scan is returned at least once even if it moves between the arrays,
// or the table grows or shrinks, between calls.

import Glibc

/// The members of a large set. Loop thread (or whichever thread owns the keyspace).
final class SetTable {
    // Unchecked exclusivity: see SetValue.swift.
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt>
    /// Slots allocated: a power of two.
    @exclusivity(unchecked) private(set) var capacity: Int
    /// Tombstones in `slots`.
    @exclusivity(unchecked) private var tombstones = 0
    /// The retiring array of a rebuild in progress (nil: none), its size, the entries still in it,
    /// and how far the migration has read it (slots below are empty or tombstones).
    @exclusivity(unchecked) private var retiring: UnsafeMutablePointer<UInt>?
    @exclusivity(unchecked) private(set) var retiringCapacity = 0
    @exclusivity(unchecked) private(set) var retiringCount = 0
    @exclusivity(unchecked) private var retiringIndex = 0
    /// Members held (in both arrays).
    @exclusivity(unchecked) private(set) var count = 0
    /// The bytes of the entries' allocations (headers included).
    @exclusivity(unchecked) private(set) var entryBytes = 0

    private static let empty: UInt = 0
    private static let tombstone: UInt = 1
    private static let addressBits: UInt = 48
    private static let addressMask: UInt = (1 << 48) - 1
    private static let entryHeader = 4
    private static let minimumCapacity = 8
    /// One migration step: slots of the retiring array read, and entries moved, at most.
    static let migrationSlots = 64
    static let migrationEntries = 8
    /// What the object itself accounts for (its header and fields).
    private static let objectBytes = 88

    /// An empty table presized for `expected` members.
    init(expected: Int = 0) {
        let capacity = Self.capacity(for: expected)
        self.capacity = capacity
        self.slots = Self.allocateSlots(capacity)
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

    /// The exact bytes held: the object, both slot arrays and the entries.
    var usedBytes: Int { Self.objectBytes + (self.capacity + self.retiringCapacity) * 8 + self.entryBytes }

    /// Whether a rebuild is in progress (entries remain in the retiring array).
    var isMigrating: Bool { self.retiring != nil }

    /// A copy with nothing shared: every member in one array (a rebuild under way is not carried over).
    func duplicate() -> SetTable {
        let copy = SetTable(expected: self.count)
        self.forEach { member in
            _ = copy.insert(member)
            return true
        }
        return copy
    }

    // MARK: - Entries

    @inline(__always)
    private static func entry(_ slot: UInt) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: slot & Self.addressMask)!
    }

    @inline(__always)
    private static func member(_ slot: UInt) -> UnsafeRawBufferPointer {
        let entry = Self.entry(slot)
        return UnsafeRawBufferPointer(start: entry + Self.entryHeader, count: Int(entry.load(as: UInt32.self)))
    }

    private static func makeEntry(_ member: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer {
        precondition(member.count <= Int(UInt32.max), "set member over 4 GiB")
        guard let entry = malloc(Self.entryHeader + member.count) else { fatalError("malloc failed: out of memory") }
        precondition(UInt(bitPattern: entry) & ~Self.addressMask == 0, "an address above 2^48")
        entry.storeBytes(of: UInt32(member.count), as: UInt32.self)
        if let base = member.baseAddress { (entry + Self.entryHeader).copyMemory(from: base, byteCount: member.count) }
        return entry
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        SipHash13.processKey.hash(bytes.baseAddress, count: bytes.count)
    }

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt { UInt(hash >> 48) << Self.addressBits }

    /// The slot of `slots` (of `capacity`) holding `member`, or nil.
    @inline(__always)
    private static func probe(
        _ slots: UnsafeMutablePointer<UInt>, _ capacity: Int, _ member: UnsafeRawBufferPointer, hash: UInt64
    ) -> Int? {
        let tag = Self.tag(hash)
        let mask = capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot == Self.empty { return nil }
            if slot > Self.tombstone && slot & ~Self.addressMask == tag {
                let candidate = Self.member(slot)
                if candidate.count == member.count
                    && (member.count == 0 || memcmp(candidate.baseAddress!, member.baseAddress!, member.count) == 0)
                {
                    return index
                }
            }
            index = (index + 1) & mask
        }
    }

    /// Where `member` is: its array (the current one, or the retiring one) and slot, or nil.
    @inline(__always)
    private func find(_ member: UnsafeRawBufferPointer, hash: UInt64) -> (slots: UnsafeMutablePointer<UInt>, index: Int)? {
        if let index = Self.probe(self.slots, self.capacity, member, hash: hash) { return (self.slots, index) }
        if let retiring = self.retiring, let index = Self.probe(retiring, self.retiringCapacity, member, hash: hash) {
            return (retiring, index)
        }
        return nil
    }

    // MARK: - Reads

    func contains(_ member: UnsafeRawBufferPointer) -> Bool {
        self.find(member, hash: Self.hash(member)) != nil
    }

    /// Calls `body` with each member (the retiring array's, then the current one's, in slot order)
    /// until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer) -> Bool) {
        if let retiring = self.retiring {
            for index in 0..<self.retiringCapacity where retiring[index] > Self.tombstone {
                guard body(Self.member(retiring[index])) else { return }
            }
        }
        for index in 0..<self.capacity where self.slots[index] > Self.tombstone {
            guard body(Self.member(self.slots[index])) else { return }
        }
    }

    /// A uniformly random member (the table must not be empty), borrowed until the next change.
    func randomMember<G: RandomNumberGenerator>(using generator: inout G) -> UnsafeRawBufferPointer {
        precondition(self.count > 0, "random member of an empty table")
        let positions = self.capacity + self.retiringCapacity
        while true {
            let position = Int.random(in: 0..<positions, using: &generator)
            let slot = position < self.capacity ? self.slots[position] : self.retiring![position - self.capacity]
            if slot > Self.tombstone { return Self.member(slot) }
        }
    }

    /// One SSCAN step from `cursor`: visits home buckets in reverse-binary order until about `count`
    /// members were given to `body` or the walk wrapped. - Returns: the next cursor (0: done).
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> UInt64 {
        var cursor = cursor
        var given = 0
        var visits = 0
        let visitLimit = count.multipliedReportingOverflow(by: 10).overflow ? Int.max : count * 10
        guard let retiring = self.retiring else {
            let mask = UInt64(self.capacity - 1)
            repeat {
                given += Self.visitBucket(self.slots, self.capacity, Int(cursor & mask), body)
                cursor = Self.increment(cursor, mask: mask)
                visits += 1
            } while cursor != 0 && given < count && visits < visitLimit
            return cursor
        }
        // Two arrays: a bucket of the smaller, then every bucket of the larger with the same low bits.
        let retiringIsSmaller = self.retiringCapacity <= self.capacity
        let (small, smallCapacity) = retiringIsSmaller ? (retiring, self.retiringCapacity) : (self.slots, self.capacity)
        let (large, largeCapacity) = retiringIsSmaller ? (self.slots, self.capacity) : (retiring, self.retiringCapacity)
        let smallMask = UInt64(smallCapacity - 1)
        let largeMask = UInt64(largeCapacity - 1)
        repeat {
            given += Self.visitBucket(small, smallCapacity, Int(cursor & smallMask), body)
            repeat {
                given += Self.visitBucket(large, largeCapacity, Int(cursor & largeMask), body)
                // The next of the larger array's bits above the smaller's mask, in reverse-binary order.
                cursor = Self.increment(cursor | smallMask, mask: largeMask) & ~smallMask | (cursor & smallMask)
            } while cursor & (smallMask ^ largeMask) != 0
            cursor = Self.increment(cursor, mask: smallMask)
            visits += 1
        } while cursor != 0 && given < count && visits < visitLimit
        return cursor
    }

    /// Gives `body` the members of `slots` whose home is `bucket` (all in the probe run from it).
    /// - Returns: how many.
    private static func visitBucket(
        _ slots: UnsafeMutablePointer<UInt>, _ capacity: Int, _ bucket: Int, _ body: (UnsafeRawBufferPointer) -> Void
    ) -> Int {
        let mask = capacity - 1
        var given = 0
        var index = bucket
        while slots[index] != Self.empty {
            let slot = slots[index]
            if slot > Self.tombstone {
                let member = Self.member(slot)
                if Int(truncatingIfNeeded: Self.hash(member)) & mask == bucket {
                    body(member)
                    given += 1
                }
            }
            index = (index + 1) & mask
        }
        return given
    }

    /// Redis's dictScan cursor step: the reverse-binary increment of the bits under `mask`.
    @inline(__always)
    private static func increment(_ cursor: UInt64, mask: UInt64) -> UInt64 {
        Self.reversed(Self.reversed(cursor | ~mask) &+ 1)
    }

    @inline(__always)
    private static func reversed(_ value: UInt64) -> UInt64 {
        var v = value
        v = (v >> 1) & 0x5555_5555_5555_5555 | (v & 0x5555_5555_5555_5555) << 1
        v = (v >> 2) & 0x3333_3333_3333_3333 | (v & 0x3333_3333_3333_3333) << 2
        v = (v >> 4) & 0x0F0F_0F0F_0F0F_0F0F | (v & 0x0F0F_0F0F_0F0F_0F0F) << 4
        return v.byteSwapped
    }

    // MARK: - Changes

    /// Inserts `member`. - Returns: whether it was absent.
    func insert(_ member: UnsafeRawBufferPointer) -> Bool {
        if self.retiring != nil { self.migrate() }
        let hash = Self.hash(member)
        guard self.find(member, hash: hash) == nil else { return false }
        if (self.count + self.tombstones + 1) * 4 > self.capacity * 3 {
            self.startRebuild(to: Self.capacity(for: self.count + 1))
        }
        self.place(hash: hash, UInt(bitPattern: Self.makeEntry(member)))
        self.count += 1
        self.entryBytes += Self.entryHeader + member.count
        return true
    }

    /// Removes `member`. - Returns: whether it was present.
    func remove(_ member: UnsafeRawBufferPointer) -> Bool {
        if self.retiring != nil { self.migrate() }
        guard let (slots, index) = self.find(member, hash: Self.hash(member)) else { return false }
        Glibc.free(Self.entry(slots[index]))
        slots[index] = Self.tombstone
        self.count -= 1
        self.entryBytes -= Self.entryHeader + member.count
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

    /// Puts an entry (its address) with hash `hash` into the current array.
    @inline(__always)
    private func place(hash: UInt64, _ address: UInt) {
        let slots = self.slots
        let mask = self.capacity - 1
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index] > Self.tombstone { index = (index + 1) & mask }
        if slots[index] == Self.tombstone { self.tombstones -= 1 }
        slots[index] = Self.tag(hash) | address
    }

    /// The capacity a table of `count` members gets: load at most 1/2.
    private static func capacity(for count: Int) -> Int {
        var capacity = Self.minimumCapacity
        while capacity < count * 2 { capacity *= 2 }
        return capacity
    }

    // MARK: - Rebuilds

    /// Starts moving every entry into a new array of `newCapacity` slots (none is copied): the current
    /// array becomes the retiring one, emptied by ``migrate()`` steps. A rebuild still running is
    /// finished first (the new array has room for the writes that come before that could happen).
    private func startRebuild(to newCapacity: Int) {
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
    }

    /// One step of the rebuild: moves up to ``migrationEntries`` entries from the next
    /// ``migrationSlots`` slots of the retiring array into the current one.
    private func migrate() {
        let retiring = self.retiring!
        let end = min(self.retiringIndex + Self.migrationSlots, self.retiringCapacity)
        var moved = 0
        var index = self.retiringIndex
        while index < end && moved < Self.migrationEntries {
            let slot = retiring[index]
            if slot > Self.tombstone {
                self.place(hash: Self.hash(Self.member(slot)), slot & Self.addressMask)
                retiring[index] = Self.tombstone
                moved += 1
            }
            index += 1
        }
        self.retiringIndex = index
        self.retiringCount -= moved
        if self.retiringCount == 0 { self.endRebuild() }
    }

    private func endRebuild() {
        Self.freeSlots(self.retiring!, self.retiringCapacity)
        self.retiring = nil
        self.retiringCapacity = 0
        self.retiringCount = 0
        self.retiringIndex = 0
    }
}
