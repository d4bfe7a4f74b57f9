// A large set's structure: an open-addressing table (linear probing, backward-shift deletion, no
// tombstones) of 8-byte slots over one arena of members. No object and no Swift Array per member: a
// member is its LEB128 length and its bytes in the arena, and its slot holds the arena offset and a
// tag of its hash (SipHash.swift, keyed per process, since members come from the network), so that
// a probe compares bytes only when the tags agree. Removal leaves the member's bytes behind as
// garbage until the arena is rewritten (when garbage passes half of it).
//
// Two reads need the layout: a uniformly random member is a uniformly random slot, retried while
// empty (the table keeps at least one slot in eight full, so that takes a few tries), which is what
// SPOP and SRANDMEMBER need; SSCAN's cursor walks home buckets in Redis's reverse-binary order, and a
// bucket's members all lie in the probe run that starts at it, so a member present for the whole
// scan is returned at least once even if the table grows or shrinks between calls (as Redis's dict).

import Glibc

/// The members of a large set. Loop thread (or whichever thread owns the keyspace).
final class SetTable {
    /// Slot: 0 empty, else `tag << 40 | (offset + 1)`.
    // Unchecked exclusivity: see SetValue.swift.
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private var arena: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private var arenaCapacity = 0
    @exclusivity(unchecked) private var arenaUsed = 0
    /// Bytes of removed members still in the arena.
    @exclusivity(unchecked) private var garbage = 0
    @exclusivity(unchecked) private(set) var count = 0

    private static let offsetBits: UInt64 = 40
    private static let offsetMask: UInt64 = (1 << 40) - 1
    private static let minimumCapacity = 8
    /// What the object itself accounts for (its header and fields).
    private static let objectBytes = 64

    /// An empty table presized for `expected` members.
    init(expected: Int = 0) {
        var capacity = Self.minimumCapacity
        while expected * 4 > capacity * 3 { capacity <<= 1 }
        self.capacity = capacity
        self.slots = .allocate(capacity: capacity)
        self.slots.initialize(repeating: 0, count: capacity)
    }

    deinit {
        self.slots.deallocate()
        Glibc.free(self.arena)
    }

    /// The exact bytes held: the object, the slots and the arena as allocated.
    var usedBytes: Int { Self.objectBytes + self.capacity * 8 + self.arenaCapacity }

    /// A copy with nothing shared, its arena rewritten without garbage.
    func duplicate() -> SetTable {
        let copy = SetTable(expected: self.count)
        self.forEach { member in
            _ = copy.insert(member)
            return true
        }
        return copy
    }

    // MARK: - Reads

    func contains(_ member: UnsafeRawBufferPointer) -> Bool {
        self.find(member, hash: Self.hash(member)) != nil
    }

    /// Calls `body` with each member (slot order) until it returns false.
    func forEach(_ body: (UnsafeRawBufferPointer) -> Bool) {
        for index in 0..<self.capacity where self.slots[index] != 0 {
            guard body(self.member(self.slots[index])) else { return }
        }
    }

    /// A uniformly random member (the table must not be empty), borrowed until the next change.
    func randomMember<G: RandomNumberGenerator>(using generator: inout G) -> UnsafeRawBufferPointer {
        precondition(self.count > 0, "random member of an empty table")
        while true {
            let slot = self.slots[Int.random(in: 0..<self.capacity, using: &generator)]
            if slot != 0 { return self.member(slot) }
        }
    }

    /// One SSCAN step from `cursor`: visits home buckets in reverse-binary order until about `count`
    /// members were given to `body` or the walk wrapped. - Returns: the next cursor (0: done).
    func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> UInt64 {
        let mask = UInt64(self.capacity - 1)
        var cursor = cursor
        var given = 0
        var visits = 0
        repeat {
            let bucket = Int(cursor & mask)
            // The bucket's members: in the probe run from it, those whose home it is.
            var index = bucket
            while self.slots[index] != 0 {
                let slot = self.slots[index]
                let member = self.member(slot)
                if Int(Self.hash(member) & mask) == bucket {
                    body(member)
                    given += 1
                }
                index = (index + 1) & Int(mask)
            }
            // Reverse-binary increment over the masked bits (Redis's dictScan cursor).
            cursor |= ~mask
            cursor = Self.reversed(cursor)
            cursor &+= 1
            cursor = Self.reversed(cursor)
            visits += 1
        } while cursor != 0 && given < count && visits < count * 10
        return cursor
    }

    // MARK: - Changes

    /// Inserts `member`. - Returns: whether it was absent.
    func insert(_ member: UnsafeRawBufferPointer) -> Bool {
        let hash = Self.hash(member)
        guard self.find(member, hash: hash) == nil else { return false }
        if (self.count + 1) * 4 > self.capacity * 3 { self.rehash(to: self.capacity * 2) }
        let offset = self.append(member)
        var index = Int(truncatingIfNeeded: hash) & (self.capacity - 1)
        while self.slots[index] != 0 { index = (index + 1) & (self.capacity - 1) }
        self.slots[index] = Self.tag(hash) << Self.offsetBits | UInt64(offset + 1)
        self.count += 1
        return true
    }

    /// Removes `member`. - Returns: whether it was present.
    func remove(_ member: UnsafeRawBufferPointer) -> Bool {
        guard let index = self.find(member, hash: Self.hash(member)) else { return false }
        self.garbage += Self.headerBytes(member.count) + member.count
        self.removeSlot(at: index)
        self.count -= 1
        if self.capacity > Self.minimumCapacity && self.count * 8 < self.capacity {
            var capacity = Self.minimumCapacity
            while self.count * 2 > capacity { capacity <<= 1 }
            self.rehash(to: capacity)
        }
        if self.garbage > 4096 && self.garbage * 2 > self.arenaUsed { self.rewriteArena() }
        return true
    }

    // MARK: - Layout

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        SipHash13.processKey.hash(bytes.baseAddress, count: bytes.count)
    }

    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt64 { hash >> Self.offsetBits }

    @inline(__always)
    private func member(_ slot: UInt64) -> UnsafeRawBufferPointer {
        var position = Int(slot & Self.offsetMask) - 1
        var length = 0
        var shift = 0
        let base = self.arena!
        while true {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            length |= Int(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        return UnsafeRawBufferPointer(start: base + position, count: length)
    }

    private func find(_ member: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let mask = self.capacity - 1
        let tag = Self.tag(hash)
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = self.slots[index]
            if slot == 0 { return nil }
            if slot >> Self.offsetBits == tag {
                let candidate = self.member(slot)
                if candidate.count == member.count
                    && (member.count == 0 || memcmp(candidate.baseAddress!, member.baseAddress!, member.count) == 0)
                {
                    return index
                }
            }
            index = (index + 1) & mask
        }
    }

    /// Empties slot `index` and moves later members of its run back so that no probe stops short.
    private func removeSlot(at index: Int) {
        let mask = self.capacity - 1
        var hole = index
        var next = (index + 1) & mask
        while self.slots[next] != 0 {
            let home = Int(truncatingIfNeeded: Self.hash(self.member(self.slots[next]))) & mask
            // The member may fill the hole if its home is not in (hole, next] (cyclically).
            let distanceToNext = (next - home) & mask
            let distanceToHole = (next - hole) & mask
            if distanceToNext >= distanceToHole {
                self.slots[hole] = self.slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        self.slots[hole] = 0
    }

    private func rehash(to capacity: Int) {
        let old = self.slots
        let oldCapacity = self.capacity
        self.slots = .allocate(capacity: capacity)
        self.slots.initialize(repeating: 0, count: capacity)
        self.capacity = capacity
        let mask = capacity - 1
        for i in 0..<oldCapacity where old[i] != 0 {
            var index = Int(truncatingIfNeeded: Self.hash(self.member(old[i]))) & mask
            while self.slots[index] != 0 { index = (index + 1) & mask }
            self.slots[index] = old[i]
        }
        old.deallocate()
    }

    /// Appends `member` to the arena. - Returns: its offset.
    private func append(_ member: UnsafeRawBufferPointer) -> Int {
        let header = Self.headerBytes(member.count)
        let needed = self.arenaUsed + header + member.count
        if needed > self.arenaCapacity {
            var grown = max(64, self.arenaCapacity + self.arenaCapacity / 2)
            while grown < needed { grown += grown / 2 }
            guard let block = realloc(self.arena, grown) else { fatalError("realloc of \(grown) bytes failed: out of memory") }
            self.arena = block
            self.arenaCapacity = grown
        }
        let offset = self.arenaUsed
        var rest = member.count
        var position = offset
        while rest >= 0x80 {
            self.arena!.storeBytes(of: UInt8(rest & 0x7F) | 0x80, toByteOffset: position, as: UInt8.self)
            rest >>= 7
            position += 1
        }
        self.arena!.storeBytes(of: UInt8(rest), toByteOffset: position, as: UInt8.self)
        if member.count > 0 { (self.arena! + position + 1).copyMemory(from: member.baseAddress!, byteCount: member.count) }
        self.arenaUsed = needed
        return offset
    }

    /// Copies the live members into a new arena sized to them, and points the slots at the copies.
    private func rewriteArena() {
        let old = self.arena
        let live = self.arenaUsed - self.garbage
        let block = live > 0 ? malloc(live) : nil
        var used = 0
        for index in 0..<self.capacity where self.slots[index] != 0 {
            let slot = self.slots[index]
            let start = Int(slot & Self.offsetMask) - 1
            let member = self.member(slot)
            let end = member.baseAddress! + member.count - UnsafeRawPointer(old!)
            (block! + used).copyMemory(from: old! + start, byteCount: end - start)
            self.slots[index] = (slot & ~Self.offsetMask) | UInt64(used + 1)
            used += end - start
        }
        Glibc.free(old)
        self.arena = block
        self.arenaCapacity = live
        self.arenaUsed = used
        self.garbage = 0
    }

    private static func headerBytes(_ length: Int) -> Int {
        var bytes = 1
        var rest = length >> 7
        while rest > 0 {
            bytes += 1
            rest >>= 7
        }
        return bytes
    }

    private static func reversed(_ value: UInt64) -> UInt64 {
        var v = value
        var r: UInt64 = 0
        for _ in 0..<64 {
            r = (r << 1) | (v & 1)
            v >>= 1
        }
        return r
    }
}
