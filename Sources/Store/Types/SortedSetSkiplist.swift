// A large sorted set's structure: a skiplist ordered by (score, member) whose links carry spans (how
// many elements each link skips), so that rank, the element at a rank and "how many elements come
// before a bound" are all O(log n), as in Redis's zskiplist; plus a member → node table (open
// addressing, linear probing, backward-shift deletion) for ZSCORE and for finding a member's node.
//
// Each element is ONE malloc'd block (``SkiplistNode``): score, backward link, member length, height,
// the member's hash, the levels (forward link and span) and then the member's bytes inline. No Swift
// object, array or dictionary entry per element: an element costs one allocation, and the table's slot
// is the node's address with a tag of the member's hash in its unused top bits, so a probe dereferences
// a node only when the tags agree, and the slot's distance from its home slot in the address's low bits
// (nodes are 16-byte aligned), so that a removal's backward shift and a shrinking rehash place the slots
// after it without dereferencing their nodes (each a cache miss in a large set). A score change finds
// the node through the table once and moves that same node (in place when its neighbours still bracket
// the new score, as Redis's zslUpdateScore): the table is not touched.

import CPrefetch
import Glibc

/// The ordered structure of a sorted set past its compact limits. Loop thread (or whichever thread
/// owns the keyspace), never accessed re-entrantly: the dynamic exclusivity checks are left out.
final class SortedSetSkiplist {
    static let maxHeight = 32
    /// What the object itself accounts for (its header, fields and head node).
    private static let objectBytes = 96 + SkiplistNode.size(height: SortedSetSkiplist.maxHeight, length: 0)
    private static let minimumCapacity = 8
    /// A slot's node address: bits 4 to 47.
    private static let pointerMask: UInt64 = ((1 << 48) - 1) & ~0xF
    /// A slot's distance from its home slot, in its low 4 bits: exact below this, at least this at it
    /// (then the node's hash tells the home).
    private static let farDistance: UInt64 = 0xF

    let head: SkiplistNode
    @exclusivity(unchecked) private(set) var tail: SkiplistNode?
    @exclusivity(unchecked) private var height = 1
    @exclusivity(unchecked) private(set) var count = 0
    /// Member → node: 0 empty, else the node's address with the member hash's top 16 bits above it and
    /// the slot's distance from its home (``farDistance``) below it.
    @exclusivity(unchecked) private var slots: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var capacity = SortedSetSkiplist.minimumCapacity
    /// malloc'd bytes of every element's node that is not in ``arena``.
    @exclusivity(unchecked) private var nodeBytes = 0
    /// Where new nodes come from once the set is large (nil until then, and again once it has none).
    @exclusivity(unchecked) private var arena: SkiplistArena?
    /// ``arena``'s bytes, kept beside it: ``usedBytes`` is read twice per change of the set.
    @exclusivity(unchecked) private var arenaBytes = 0
    /// Node heights need no secure randomness: a SplitMix64 sequence seeded once per list.
    @exclusivity(unchecked) private var randomState = UInt64.random(in: 1...UInt64.max)

    /// An empty list whose table is presized for `expected` members.
    init(expected: Int = 0) {
        self.head = SkiplistNode.allocate(UnsafeRawBufferPointer(start: nil, count: 0), score: 0, height: Self.maxHeight,
                                          hash: 0)
        while expected * 4 > self.capacity * 3 { self.capacity <<= 1 }
        self.slots = Self.allocateSlots(self.capacity)
    }

    deinit {
        var next = self.head.forward(0)
        while let node = next {
            next = node.forward(0)
            if !node.inArena { free(node.raw) }
        }
        self.arena?.release()
        free(self.head.raw)
        Self.freeSlots(self.slots, capacity: self.capacity)
    }

    var usedBytes: Int { Self.objectBytes + self.nodeBytes + self.arenaBytes + self.capacity * 8 }

    /// A zeroed member table: in huge-page memory once it is 2 MiB or more (a lookup in a large set
    /// touches one random slot; SkiplistArena.swift says why its pages matter).
    private static func allocateSlots(_ capacity: Int) -> UnsafeMutablePointer<UInt64> {
        let bytes = capacity * 8
        if bytes >= HugePageMemory.blockBytes {
            return HugePageMemory.allocate(bytes).bindMemory(to: UInt64.self, capacity: capacity)
        }
        let slots = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        return slots
    }

    private static func freeSlots(_ slots: UnsafeMutablePointer<UInt64>, capacity: Int) {
        let bytes = capacity * 8
        if bytes >= HugePageMemory.blockBytes {
            HugePageMemory.free(UnsafeMutableRawPointer(slots), byteCount: bytes)
        } else {
            slots.deallocate()
        }
    }

    /// The lowest element, or nil when empty.
    var first: SkiplistNode? { self.head.forward(0) }

    // MARK: - The member table

    @inline(__always)
    private static func hash(_ member: UnsafeRawBufferPointer) -> UInt64 {
        SipHash13.processKey.hash(member.baseAddress, count: member.count)
    }

    /// The slot of `node` at `distance` slots past its home.
    @inline(__always)
    private static func slot(_ node: SkiplistNode, distance: Int) -> UInt64 {
        UInt64(UInt(bitPattern: node.raw)) | (node.hash >> 48) << 48 | Swift.min(UInt64(distance), Self.farDistance)
    }

    /// `slot` (at `index`) moved to `destination`: its distance is less by the slots it moved back.
    @inline(__always)
    private static func slot(_ slot: UInt64, movedFrom index: Int, to destination: Int, mask: Int) -> UInt64 {
        let distance = slot & Self.farDistance
        guard distance < Self.farDistance else {
            let home = Int(truncatingIfNeeded: Self.node(inSlot: slot).hash) & mask
            return slot & ~Self.farDistance | Swift.min(UInt64((destination - home) & mask), Self.farDistance)
        }
        return slot - UInt64((index - destination) & mask)
    }

    /// The home slot of `slot`, found at `index` of a table of `mask + 1` slots.
    @inline(__always)
    private static func home(of slot: UInt64, at index: Int, mask: Int) -> Int {
        let distance = slot & Self.farDistance
        guard distance < Self.farDistance else { return Int(truncatingIfNeeded: Self.node(inSlot: slot).hash) & mask }
        return (index - Int(distance)) & mask
    }

    @inline(__always)
    private static func node(inSlot slot: UInt64) -> SkiplistNode {
        SkiplistNode(raw: UnsafeMutableRawPointer(bitPattern: UInt(slot & Self.pointerMask))!)
    }

    /// The slot index holding `member`, or nil.
    private func find(_ member: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let mask = self.capacity - 1
        let tag = hash >> 48
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = self.slots[index]
            if slot == 0 { return nil }
            if slot >> 48 == tag {
                let candidate = Self.node(inSlot: slot).member
                if candidate.count == member.count
                    && (member.count == 0 || memcmp(candidate.baseAddress!, member.baseAddress!, member.count) == 0)
                {
                    return index
                }
            }
            index = (index + 1) & mask
        }
    }

    /// The slot index holding `node` (in the table).
    @inline(__always)
    private func slotIndex(of node: SkiplistNode) -> Int {
        let mask = self.capacity - 1
        let address = UInt64(UInt(bitPattern: node.raw))
        var index = Int(truncatingIfNeeded: node.hash) & mask
        while self.slots[index] & Self.pointerMask != address { index = (index + 1) & mask }
        return index
    }

    private func tableInsert(_ node: SkiplistNode) {
        if (self.count + 1) * 4 > self.capacity * 3 { self.rehash(to: self.capacity * 2) }
        let mask = self.capacity - 1
        let home = Int(truncatingIfNeeded: node.hash) & mask
        var index = home
        while self.slots[index] != 0 { index = (index + 1) & mask }
        self.slots[index] = Self.slot(node, distance: (index - home) & mask)
    }

    /// Empties slot `index` and moves later nodes of its run back so that no probe stops short.
    private func tableRemove(at index: Int) {
        let mask = self.capacity - 1
        var hole = index
        var next = (index + 1) & mask
        while self.slots[next] != 0 {
            let slot = self.slots[next]
            let home = Self.home(of: slot, at: next, mask: mask)
            // The node may fill the hole if its home is not in (hole, next] (cyclically).
            if (next - home) & mask >= (next - hole) & mask {
                self.slots[hole] = Self.slot(slot, movedFrom: next, to: hole, mask: mask)
                hole = next
            }
            next = (next + 1) & mask
        }
        self.slots[hole] = 0
    }

    private func rehash(to capacity: Int) {
        let old = self.slots
        let oldCapacity = self.capacity
        self.slots = Self.allocateSlots(capacity)
        self.capacity = capacity
        let mask = capacity - 1
        let oldMask = oldCapacity - 1
        for i in 0..<oldCapacity where old[i] != 0 {
            let slot = old[i]
            // Shrinking, the new home is the old one's low bits; growing needs a bit more of the hash.
            let home = capacity < oldCapacity && slot & Self.farDistance < Self.farDistance
                ? Self.home(of: slot, at: i, mask: oldMask) & mask
                : Int(truncatingIfNeeded: Self.node(inSlot: slot).hash) & mask
            var index = home
            while self.slots[index] != 0 { index = (index + 1) & mask }
            self.slots[index] = slot & ~Self.farDistance | Swift.min(UInt64((index - home) & mask), Self.farDistance)
        }
        Self.freeSlots(old, capacity: oldCapacity)
    }

    /// Whether every slot's distance is its true distance from its home (``farDistance`` when that is
    /// farther), and how many slots are that far (for tests).
    func tableAudit() -> (consistent: Bool, farSlots: Int) {
        let mask = self.capacity - 1
        var consistent = true
        var far = 0
        for i in 0..<self.capacity where self.slots[i] != 0 {
            let slot = self.slots[i]
            let distance = (i - Int(truncatingIfNeeded: Self.node(inSlot: slot).hash) & mask) & mask
            if slot & Self.farDistance != Swift.min(UInt64(distance), Self.farDistance) { consistent = false }
            if distance >= Int(Self.farDistance) { far += 1 }
        }
        return (consistent, far)
    }

    // MARK: - Reads

    /// The member's node, or nil.
    func node(for member: UnsafeRawBufferPointer) -> SkiplistNode? {
        self.find(member, hash: Self.hash(member)).map { Self.node(inSlot: self.slots[$0]) }
    }

    /// Whether `node` orders before (`score`, `member`).
    @inline(__always)
    static func precedes(_ node: SkiplistNode, _ score: Double, _ member: UnsafeRawBufferPointer) -> Bool {
        let s = node.score
        if s != score { return s < score }
        return SortedSetValue.compare(node.member, member) < 0
    }

    /// How many elements come first in order while `before` holds (`before` must hold for a prefix
    /// of the order and not after it).
    func count(while before: (SkiplistNode) -> Bool) -> Int {
        var x = self.head
        var rank = 0
        for i in stride(from: self.height - 1, through: 0, by: -1) {
            while let next = x.forward(i), before(next) {
                rank += x.span(i)
                x = next
                if i > 0 { x.prefetchForward(i - 1) }
            }
        }
        return rank
    }

    /// The last node for which `before` holds, found in one descent, and its 1-based rank (the head and
    /// 0 when `before` holds for none; `before` must hold for a prefix of the order and not after it).
    @inline(__always)
    func last(while before: (SkiplistNode) -> Bool) -> (node: SkiplistNode, rank: Int) {
        var x = self.head
        var rank = 0
        var i = self.height - 1
        while i >= 0 {
            while let next = x.forward(i), before(next) {
                rank += x.span(i)
                x = next
                if i > 0 { x.prefetchForward(i - 1) }
            }
            i -= 1
        }
        return (x, rank)
    }

    /// The 0-based rank of `node` (in the list): one descent summing spans, as Redis's zslGetRank.
    func rank(of node: SkiplistNode) -> Int {
        let score = node.score
        let member = node.member
        var x = self.head
        var rank = 0
        var i = self.height - 1
        while i >= 0 {
            while let next = x.forward(i), next == node || Self.precedes(next, score, member) {
                rank += x.span(i)
                if next == node { return rank - 1 }
                x = next
                if i > 0 { x.prefetchForward(i - 1) }
            }
            i -= 1
        }
        return rank - 1
    }

    /// The element at 0-based `rank` (ascending), or nil past the end.
    func node(atRank rank: Int) -> SkiplistNode? {
        guard rank >= 0 && rank < self.count else { return nil }
        var x = self.head
        var traversed = 0
        for i in stride(from: self.height - 1, through: 0, by: -1) {
            while let next = x.forward(i), traversed + x.span(i) <= rank + 1 {
                traversed += x.span(i)
                x = next
            }
            if traversed == rank + 1 { return x }
        }
        return nil
    }

    // MARK: - Changes

    /// What ``set(_:score:)`` did.
    enum Change: Equatable {
        /// The member already had that score.
        case unchanged
        case added
        /// The member's score was `old`.
        case moved(old: Double)
    }

    /// Sets `member`'s score, adding it when absent.
    func set(_ member: UnsafeRawBufferPointer, score: Double) -> Change {
        let hash = Self.hash(member)
        if let index = self.find(member, hash: hash) {
            let node = Self.node(inSlot: self.slots[index])
            let old = node.score
            guard old != score else { return .unchanged }
            self.move(node, to: score)
            return .moved(old: old)
        }
        self.insert(member, score: score, hash: hash)
        return .added
    }

    /// Inserts a member known to be absent.
    func insert(_ member: UnsafeRawBufferPointer, score: Double) {
        self.insert(member, score: score, hash: Self.hash(member))
    }

    private func insert(_ member: UnsafeRawBufferPointer, score: Double, hash: UInt64) {
        let height = self.randomHeight()
        let node: SkiplistNode
        let size = SkiplistNode.size(height: height, length: member.count)
        if self.count >= SkiplistArena.threshold, let rounded = SkiplistArena.rounded(size) {
            if self.arena == nil { self.arena = SkiplistArena() }
            node = SkiplistNode.initialize(self.arena!.allocate(rounded), member, score: score, height: height, hash: hash,
                                           inArena: true)
            self.arenaBytes = self.arena!.bytes
        } else {
            node = SkiplistNode.allocate(member, score: score, height: height, hash: hash)
            self.nodeBytes += size
        }
        self.link(node)
        self.tableInsert(node)
    }

    /// Frees the block of `node` (no longer linked nor in the table).
    private func dispose(_ node: SkiplistNode) {
        if node.inArena {
            self.arena!.deallocate(node.raw, rounded: SkiplistArena.rounded(node.size)!)
        } else {
            self.nodeBytes -= node.size
            free(node.raw)
        }
        // The arena's blocks go back once no node uses them and the set is well below the threshold
        // (not at every crossing of it: a set that hovers there would map and unmap a block each time).
        if self.arena?.live == 0 && self.count < SkiplistArena.threshold / 2 {
            self.arena!.release()
            self.arena = nil
            self.arenaBytes = 0
        }
    }

    /// Removes `member`. - Returns: the score it had, or nil when it was absent.
    func remove(_ member: UnsafeRawBufferPointer) -> Double? {
        // A pop removes an end: its slot is found by the node's address, from the hash the node keeps
        // (no hashing of the member, no second comparison of it).
        let index: Int
        if let end = self.end(holding: member) {
            index = self.slotIndex(of: end)
        } else {
            guard let found = self.find(member, hash: Self.hash(member)) else { return nil }
            index = found
        }
        let node = Self.node(inSlot: self.slots[index])
        let old = node.score
        self.tableRemove(at: index)
        self.unlink(node)
        self.dispose(node)
        if self.capacity > Self.minimumCapacity && self.count * 8 < self.capacity {
            var capacity = Self.minimumCapacity
            while self.count * 2 > capacity { capacity <<= 1 }
            self.rehash(to: capacity)
        }
        return old
    }

    /// The first or the last node when it holds `member`, else nil.
    @inline(__always)
    private func end(holding member: UnsafeRawBufferPointer) -> SkiplistNode? {
        @inline(__always) func holds(_ node: SkiplistNode) -> Bool {
            let held = node.member
            return held.count == member.count
                && (held.count == 0 || memcmp(held.baseAddress!, member.baseAddress!, held.count) == 0)
        }
        guard let first = self.first else { return nil }
        if holds(first) { return first }
        if let last = self.tail, holds(last) { return last }
        return nil
    }

    /// Gives `node` the score `score`: in place when its neighbours still bracket it, else unlinked and
    /// linked again where it now belongs (the same block, so the table still points at it).
    private func move(_ node: SkiplistNode, to score: Double) {
        let previous = node.backward
        let next = node.forward(0)
        if (previous == nil || previous!.score < score) && (next == nil || next!.score > score) {
            node.score = score
            return
        }
        self.unlink(node)
        node.score = score
        self.link(node)
    }

    private func randomHeight() -> Int {
        self.randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = self.randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // Each further level with probability 1/4, as Redis's ZSKIPLIST_P: two random bits a level.
        var height = 1
        while height < Self.maxHeight && z & 3 == 0 {
            height += 1
            z >>= 2
        }
        return height
    }

    /// Links `node` (not in the list) where its score and member place it.
    private func link(_ node: SkiplistNode) {
        withUnsafeTemporaryAllocation(of: SkiplistNode.self, capacity: Self.maxHeight) { update in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: Self.maxHeight) { rank in
                self.link(node, update: update.baseAddress!, rank: rank.baseAddress!)
            }
        }
    }

    private func link(_ node: SkiplistNode, update: UnsafeMutablePointer<SkiplistNode>, rank: UnsafeMutablePointer<Int>) {
        let score = node.score
        let member = node.member
        let head = self.head
        let top = self.height
        var x = head
        // rank[i]: the elements passed before the descent leaves level i (kept in a register meanwhile).
        var passed = 0
        var i = top - 1
        while i >= 0 {
            while let next = x.forward(i), Self.precedes(next, score, member) {
                passed += x.span(i)
                x = next
                if i > 0 { x.prefetchForward(i - 1) }
            }
            rank[i] = passed
            (update + i).initialize(to: x)
            i -= 1
        }
        let level = node.height
        if level > top {
            for i in top..<level {
                rank[i] = 0
                (update + i).initialize(to: head)
                head.setSpan(i, self.count)
            }
            self.height = level
        }
        for i in 0..<level {
            let before = update[i]
            node.setForward(i, before.forward(i))
            before.setForward(i, node)
            node.setSpan(i, before.span(i) - (passed - rank[i]))
            before.setSpan(i, passed - rank[i] + 1)
        }
        var above = level
        while above < top {
            update[above].setSpan(above, update[above].span(above) + 1)
            above += 1
        }
        node.backward = x == head ? nil : x
        if let next = node.forward(0) { next.backward = node } else { self.tail = node }
        self.count += 1
    }

    /// Unlinks `node` (in the list) from every level; the table and the block are left alone, and so are
    /// the node's own links (what follows is ``link(_:)``, which sets them all, or its block's release).
    private func unlink(_ node: SkiplistNode) {
        if node.backward == nil { return self.unlinkFirst(node) }
        let score = node.score
        let member = node.member
        var x = self.head
        // The levels above the node's own only lose one from the span that crosses it.
        for i in stride(from: self.height - 1, through: 0, by: -1) {
            while let next = x.forward(i), next != node, Self.precedes(next, score, member) {
                x = next
                if i > 0 { x.prefetchForward(i - 1) }
            }
            if x.forward(i) == node {
                x.setSpan(i, x.span(i) + node.span(i) - 1)
                x.setForward(i, node.forward(i))
            } else {
                x.setSpan(i, x.span(i) - 1)
            }
        }
        if let next = node.forward(0) { next.backward = node.backward } else { self.tail = node.backward }
        while self.height > 1 && self.head.forward(self.height - 1) == nil { self.height -= 1 }
        self.count -= 1
    }

    /// ``unlink(_:)`` of the first node (ZPOPMIN's): the head precedes it on every level, so nothing is
    /// searched — the head's links on the node's levels skip it, its other spans lose one.
    private func unlinkFirst(_ node: SkiplistNode) {
        let head = self.head
        let levels = node.height
        var top = self.height
        var i = 0
        while i < levels {
            head.setSpan(i, head.span(i) + node.span(i) - 1)
            head.setForward(i, node.forward(i))
            i += 1
        }
        while i < top {
            head.setSpan(i, head.span(i) - 1)
            i += 1
        }
        if let next = node.forward(0) { next.backward = nil } else { self.tail = nil }
        while top > 1 && head.forward(top - 1) == nil { top -= 1 }
        self.height = top
        self.count -= 1
    }
}
