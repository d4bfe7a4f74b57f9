// A large set's structure (OBJECT ENCODING `hashtable`): an open-addressing table with linear probing
// of 8-byte slots. Each member is one malloc'd entry, `[length: UInt32][bytes]`; a slot holds the
// entry's address with the top 16 bits of the member's hash (SipHash.swift, keyed per process, since
// members come from the network) in its unused high bits, so most mismatches are rejected without
// touching the entry. No Swift object and no array per member.
//
// Nothing here is done for the whole set in one step, so that a set of millions never holds the loop:
// members are never copied (an entry keeps its address for life), removal leaves a tombstone, and a
// rebuild (growth, shrinking, clearing tombstones) is incremental. Probing, tombstones and the
// rebuild are ProbingSlots.swift's, shared with the large hash (HashTable.swift); this file holds the
// members' entries and SSCAN.
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

/// A set entry's layout for ``ProbingSlots``: the member after its length.
enum MemberEntryLayout: ProbedEntryLayout {
    @inline(__always) static var keyOffset: Int { 4 }
}

/// The members of a large set. Loop thread (or whichever thread owns the keyspace).
final class SetTable {
    private typealias Slots = ProbingSlots<MemberEntryLayout>
    // Unchecked exclusivity: see SetValue.swift.
    @exclusivity(unchecked) private var core: Slots

    private static let entryHeader = 4
    /// One migration step: slots of the retiring array read, and entries moved, at most.
    static var migrationSlots: Int { Slots.migrationSlots }
    static var migrationEntries: Int { Slots.migrationEntries }
    /// What the object itself accounts for (its header and the core's fields).
    private static let objectBytes = 96

    /// An empty table presized for `expected` members.
    init(expected: Int = 0) {
        self.core = Slots(expected: expected)
    }

    /// Slots of the current array: a power of two.
    var capacity: Int { self.core.capacity }
    /// Members held (in both arrays).
    var count: Int { self.core.count }
    /// The retiring array's size and the members still in it (0: no rebuild under way).
    var retiringCapacity: Int { self.core.retiringCapacity }
    var retiringCount: Int { self.core.retiringCount }
    /// The bytes of the entries' allocations (headers included).
    var entryBytes: Int { self.core.entryBytes }

    /// The exact bytes held: the object, both slot arrays and the entries.
    var usedBytes: Int { Self.objectBytes + self.core.usedBytes }

    /// Whether a rebuild is in progress (entries remain in the retiring array).
    var isMigrating: Bool { self.core.isMigrating }

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
    private static func member(_ slot: UInt) -> UnsafeRawBufferPointer {
        Slots.key(of: Slots.entry(slot))
    }

    private static func makeEntry(_ member: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer {
        precondition(member.count <= Int(UInt32.max), "set member over 4 GiB")
        let entry = Slots.allocateEntry(Self.entryHeader + member.count)
        entry.storeBytes(of: UInt32(member.count), as: UInt32.self)
        if let base = member.baseAddress { (entry + Self.entryHeader).copyMemory(from: base, byteCount: member.count) }
        return entry
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { Slots.hash(bytes) }

    // MARK: - Reads

    func contains(_ member: UnsafeRawBufferPointer) -> Bool {
        // The hash first, and two reads of the table: its fields are read after the hash and the
        // retiring array's after the current one missed, not all at once and held across both.
        let hash = Slots.hash(member)
        if self.core.currentIndex(of: member, hash: hash) != nil { return true }
        return self.core.retiringIndex(of: member, hash: hash) != nil
    }

    /// Calls `body` with each member (the retiring array's, then the current one's, in slot order)
    /// until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer) -> Bool) {
        self.core.forEachEntry { body(Slots.key(of: $0)) }
    }

    /// A uniformly random member (the table must not be empty), borrowed until the next change.
    func randomMember<G: RandomNumberGenerator>(using generator: inout G) -> UnsafeRawBufferPointer {
        Self.member(self.core.slot(atPosition: self.core.randomPosition(using: &generator)))
    }

    /// One SSCAN step from `cursor`: visits home buckets in reverse-binary order until about `count`
    /// members were given to `body` or the walk wrapped. - Returns: the next cursor (0: done).
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> UInt64 {
        var cursor = cursor
        var given = 0
        var visits = 0
        let visitLimit = count.multipliedReportingOverflow(by: 10).overflow ? Int.max : count * 10
        guard let retiring = self.core.retiring else {
            let mask = UInt64(self.core.capacity - 1)
            repeat {
                given += Self.visitBucket(self.core.slots, self.core.capacity, Int(cursor & mask), body)
                cursor = Self.increment(cursor, mask: mask)
                visits += 1
            } while cursor != 0 && given < count && visits < visitLimit
            return cursor
        }
        // Two arrays: a bucket of the smaller, then every bucket of the larger with the same low bits.
        let retiringIsSmaller = self.core.retiringCapacity <= self.core.capacity
        let (small, smallCapacity) = retiringIsSmaller ? (retiring, self.core.retiringCapacity) : (self.core.slots, self.core.capacity)
        let (large, largeCapacity) = retiringIsSmaller ? (self.core.slots, self.core.capacity) : (retiring, self.core.retiringCapacity)
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
        while slots[index] != Slots.empty {
            let slot = slots[index]
            if Slots.isEntry(slot) {
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
        self.core.prepareWrite()
        let hash = Slots.hash(member)
        guard self.core.find(member, hash: hash) == nil else { return false }
        self.core.add(Self.makeEntry(member), hash: hash, bytes: Self.entryHeader + member.count)
        return true
    }

    /// Removes `member`. - Returns: whether it was present.
    func remove(_ member: UnsafeRawBufferPointer) -> Bool {
        self.core.prepareWrite()
        let hash = Slots.hash(member)
        guard let (slots, index) = self.core.find(member, hash: hash) else { return false }
        self.core.remove(in: slots, at: index, bytes: Self.entryHeader + member.count)
        return true
    }
}
