// The in-memory keyspace: a chained hash table built for this server. Entries live in a dense array of
// 64-byte slots (key and small value inline), buckets are 32-bit indices, growth and shrinking are
// incremental (two tables, a couple of buckets moved per operation, as Redis's dict.c does), deadlines
// sit in a dense side array so sampling them is O(1). It must not log, read the clock or allocate per
// lookup: ``DurableStore`` wraps it with the write-ahead log, undo and expiry policy.
//
// Memory layout, by our own account, for a 16-byte key with a 16-byte value and no deadline:
//   64 B slot (24 B header, 40 B inline bytes) + 4 B × buckets/keys (1 to 2 at load factor 0.5-1, 4 more
//   while a resize runs) ≈ 68-72 B per key. Slots and deadlines live in 256 KiB mmap'd pages, freed as
//   the table empties, so mass expiry gives memory back to the kernel. A key plus value over 40 bytes goes
//   in one malloc'd block (key then value) whose pointer sits in the slot.

import Glibc

/// Fixed geometry of a slot (byte offsets into its 64 bytes).
///
///     0 next:UInt32  4 hash:UInt32  8 keyLength:UInt32  12 valueLength:UInt32  16 deadlineLink:UInt32
///     20 lastAccess:UInt32  24 inline bytes: key then value   (or, when they do not fit, 24 pointer)
///
/// Links are index + 1 so that 0 means none (and zero-filled bucket arrays start out empty).
/// `lastAccess` is the table's LRU clock when the entry was last read or written (the memory limit's
/// LRU policies sample it, as Redis's 24-bit `lru` field in each object). It cost the inline area 4 bytes
/// (44 to 40): entries whose key and value total 41 to 44 bytes now go out of line.
enum Slot {
    static let bytes = 64
    static let shift = 6
    static let next = 0
    static let hash = 4
    static let keyLength = 8
    static let valueLength = 12
    static let deadlineLink = 16
    static let lastAccess = 20
    static let inlineOffset = 24
    static let inlineCapacity = 40
    static let pointerOffset = 24
}

/// Raw memory for the table: big blocks come straight from mmap(2) so that freeing them returns them to the
/// kernel at once (glibc keeps freed heap memory below its top), small ones from calloc.
enum RawMemory {
    static let mmapThreshold = 128 << 10

    static func allocateZeroed(_ byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= Self.mmapThreshold {
            let pointer = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
                fatalError("mmap of \(byteCount) bytes failed: out of memory")
            }
            return pointer
        }
        guard let pointer = calloc(1, byteCount) else {
            fatalError("calloc of \(byteCount) bytes failed: out of memory")
        }
        return pointer
    }

    static func free(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= Self.mmapThreshold {
            munmap(pointer, byteCount)
        } else {
            Glibc.free(pointer)
        }
    }
}

/// A growable array of fixed-size elements in 256 KiB pages: growing never copies elements (no pause), and
/// pages past the end are returned to the kernel. Only the small page table is ever reallocated.
struct PagedArray {
    static let pageBytes = 256 << 10
    let elementShift: Int
    let pageShift: Int
    let pageMask: Int
    private(set) var pages: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private(set) var pageCount = 0
    private var pageCapacity = 4

    init(elementBytes: Int) {
        self.elementShift = elementBytes.trailingZeroBitCount
        let perPage = Self.pageBytes >> self.elementShift
        self.pageShift = perPage.trailingZeroBitCount
        self.pageMask = perPage - 1
        self.pages = .allocate(capacity: 4)
    }

    var elementsPerPage: Int { self.pageMask + 1 }
    var allocatedBytes: Int { self.pageCount * Self.pageBytes + self.pageCapacity * 8 }

    @inline(__always)
    func element(_ index: Int) -> UnsafeMutableRawPointer {
        self.pages[index >> self.pageShift] + ((index & self.pageMask) << self.elementShift)
    }

    /// Makes `index` addressable.
    @inline(__always)
    mutating func ensure(_ index: Int) {
        if index >> self.pageShift >= self.pageCount {
            self.addPage()
        }
    }

    private mutating func addPage() {
        if self.pageCount == self.pageCapacity {
            let bigger = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: self.pageCapacity * 2)
            bigger.moveInitialize(from: self.pages, count: self.pageCount)
            self.pages.deallocate()
            self.pages = bigger
            self.pageCapacity *= 2
        }
        (self.pages + self.pageCount).initialize(to: RawMemory.allocateZeroed(Self.pageBytes))
        self.pageCount += 1
    }

    /// Frees pages no longer needed for `count` elements, keeping one spare page so that a key added and
    /// removed at a page boundary does not map and unmap a page each time.
    @inline(__always)
    mutating func trim(count: Int) {
        let needed = (count + self.pageMask) >> self.pageShift
        while self.pageCount > needed + 1 {
            self.pageCount -= 1
            RawMemory.free(self.pages[self.pageCount], byteCount: Self.pageBytes)
        }
    }

    mutating func freeAll() {
        for index in 0..<self.pageCount {
            RawMemory.free(self.pages[index], byteCount: Self.pageBytes)
        }
        self.pageCount = 0
        self.pages.deallocate()
    }
}

/// The table itself, as a plain struct reached through one pointer owned by ``Keyspace``: its methods are
/// `mutating` on memory the class owns, so the hot path pays neither ARC nor dynamic exclusivity checks.
///
/// Invariants (checked by ``Keyspace/checkInvariants()``):
/// - entries `0..<count` are live; each is on exactly one chain, the one ``head(_:)`` names for its hash
///   (table 0 bucket `h & mask0` when that is `>= rehashIndex` or no resize runs, else table 1 `h & mask1`);
/// - `deadlines[0..<deadlineCount]` holds (deadline, entry) pairs; an entry's `deadlineLink` is its pair's
///   index + 1, or 0 when it has no deadline;
/// - `externalBytes` is the sum of `keyLength + valueLength` over entries stored out of line.
struct KeyTable {
    let hasher: SipHash13
    var buckets0: UnsafeMutablePointer<UInt32>
    var mask0: Int
    var buckets1: UnsafeMutablePointer<UInt32>?
    var mask1 = 0
    /// Buckets of table 0 below this index have been moved to table 1 (meaningful while `buckets1 != nil`).
    var rehashIndex = 0
    var entries = PagedArray(elementBytes: Slot.bytes)
    var count = 0
    /// (deadline: Int64, entry: UInt32, unused: UInt32) pairs.
    var deadlines = PagedArray(elementBytes: 16)
    var deadlineCount = 0
    var externalBytes = 0
    /// xorshift64* state for sampling (not security-relevant: what it picks is visible anyway).
    var random: UInt64
    /// The LRU clock stamped into an entry's `lastAccess` when it is read or written. The owner advances
    /// it (the server: every 100 ms); the table never reads a clock.
    var lruClock: UInt32 = 0

    static let minimumBuckets = 16
    static let bucketsMovedPerOperation = 2

    init(hasher: SipHash13, buckets: Int) {
        self.hasher = hasher
        self.buckets0 = RawMemory.allocateZeroed(buckets * 4).bindMemory(to: UInt32.self, capacity: buckets)
        self.mask0 = buckets - 1
        self.random = hasher.k0 | 1
    }

    // MARK: Slots

    @inline(__always)
    func slot(_ index: Int) -> UnsafeMutableRawPointer {
        self.entries.element(index)
    }

    @inline(__always)
    static func isInline(_ slot: UnsafeMutableRawPointer) -> Bool {
        Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
            + Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)) <= Slot.inlineCapacity
    }

    /// Where the entry's key (then its value) starts.
    @inline(__always)
    static func bytes(_ slot: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        if Self.isInline(slot) {
            return slot + Slot.inlineOffset
        }
        return slot.load(fromByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
    }

    @inline(__always)
    static func key(_ slot: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: Self.bytes(slot), count: Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)))
    }

    @inline(__always)
    static func value(_ slot: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
        return UnsafeRawBufferPointer(start: Self.bytes(slot) + keyLength,
                                      count: Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)))
    }

    @inline(__always)
    func deadline(ofEntry index: Int) -> Int64? {
        let link = self.slot(index).load(fromByteOffset: Slot.deadlineLink, as: UInt32.self)
        guard link != 0 else { return nil }
        return self.deadlines.element(Int(link) - 1).load(as: Int64.self)
    }

    // MARK: Buckets

    @inline(__always)
    func hash(_ key: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(truncatingIfNeeded: self.hasher.hash(key.baseAddress, count: key.count))
    }

    /// The bucket that holds (or would hold) an entry with hash `h`.
    @inline(__always)
    func head(_ h: UInt32) -> UnsafeMutablePointer<UInt32> {
        let b0 = Int(h) & self.mask0
        if let buckets1 = self.buckets1, b0 < self.rehashIndex {
            return buckets1 + (Int(h) & self.mask1)
        }
        return self.buckets0 + b0
    }

    /// The entry holding `key`, or -1.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hash h: UInt32) -> Int {
        var link = self.head(h).pointee
        let length = UInt32(truncatingIfNeeded: key.count)
        while link != 0 {
            let index = Int(link) &- 1
            let slot = self.slot(index)
            if slot.load(fromByteOffset: Slot.hash, as: UInt32.self) == h
                && slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self) == length
                && (length == 0 || memcmp(Self.bytes(slot), key.baseAddress!, key.count) == 0)
            {
                return index
            }
            link = slot.load(fromByteOffset: Slot.next, as: UInt32.self)
        }
        return -1
    }

    /// Rewrites the link to `old` (on the chain for `h`) into `new`.
    @inline(__always)
    func relink(hash h: UInt32, from old: UInt32, to new: UInt32) {
        let head = self.head(h)
        if head.pointee == old {
            head.pointee = new
            return
        }
        var link = head.pointee
        while link != 0 {
            let slot = self.slot(Int(link) - 1)
            let next = slot.load(fromByteOffset: Slot.next, as: UInt32.self)
            if next == old {
                slot.storeBytes(of: new, toByteOffset: Slot.next, as: UInt32.self)
                return
            }
            link = next
        }
        preconditionFailure("keyspace: entry not on its chain")
    }

    /// Moves `rehashSteps` buckets of a running resize, then looks `key` up.
    /// - Returns: the entry index or -1, and the hash to pass to ``insertNew(_:hash:value:deadline:)``.
    @inline(__always)
    mutating func lookup(_ key: UnsafeRawBufferPointer, rehashSteps: Int) -> (index: Int, hash: UInt32) {
        if self.isResizing { self.rehash(steps: rehashSteps) }
        let h = self.hash(key)
        return (self.find(key, hash: h), h)
    }

    // MARK: Resizing

    var isResizing: Bool { self.buckets1 != nil }
    var bucketBytes: Int { (self.mask0 + 1) * 4 + (self.buckets1 == nil ? 0 : (self.mask1 + 1) * 4) }

    mutating func startResize(buckets: Int) {
        assert(self.buckets1 == nil && buckets.nonzeroBitCount == 1)
        self.buckets1 = RawMemory.allocateZeroed(buckets * 4).bindMemory(to: UInt32.self, capacity: buckets)
        self.mask1 = buckets - 1
        self.rehashIndex = 0
    }

    /// Moves up to `steps` non-empty buckets of table 0 to table 1 (visiting at most 10 empty ones per
    /// step, as Redis does, so one call is bounded), and switches tables once all are moved.
    mutating func rehash(steps: Int) {
        guard let buckets1 = self.buckets1 else { return }
        var steps = steps
        var emptyVisits = steps * 10
        while steps > 0 && self.rehashIndex <= self.mask0 {
            var link = self.buckets0[self.rehashIndex]
            if link == 0 {
                self.rehashIndex += 1
                emptyVisits -= 1
                if emptyVisits == 0 { break }
                continue
            }
            while link != 0 {
                let slot = self.slot(Int(link) - 1)
                let next = slot.load(fromByteOffset: Slot.next, as: UInt32.self)
                let target = buckets1 + (Int(slot.load(fromByteOffset: Slot.hash, as: UInt32.self)) & self.mask1)
                slot.storeBytes(of: target.pointee, toByteOffset: Slot.next, as: UInt32.self)
                target.pointee = link
                link = next
            }
            self.buckets0[self.rehashIndex] = 0
            self.rehashIndex += 1
            steps -= 1
        }
        if self.rehashIndex > self.mask0 {
            RawMemory.free(UnsafeMutableRawPointer(self.buckets0), byteCount: (self.mask0 + 1) * 4)
            self.buckets0 = buckets1
            self.mask0 = self.mask1
            self.buckets1 = nil
            self.rehashIndex = 0
            // The count may have moved past a threshold while this resize ran: start the next one.
            self.growIfNeeded()
            self.shrinkIfNeeded()
        }
    }

    @inline(__always)
    mutating func growIfNeeded() {
        if self.buckets1 == nil && self.count > self.mask0 {
            self.startResize(buckets: (self.mask0 + 1) * 2)
        }
    }

    @inline(__always)
    mutating func shrinkIfNeeded() {
        if self.buckets1 == nil && self.mask0 + 1 > Self.minimumBuckets && self.count * 8 < self.mask0 + 1 {
            var target = Self.minimumBuckets
            while target < self.count * 2 { target *= 2 }
            self.startResize(buckets: target)
        }
    }

    // MARK: Mutations

    /// Stores `key` and `value` into a fresh (or reused) slot header; the slot's old external block, if
    /// any, must already be accounted for by the caller.
    @inline(__always)
    mutating func writeBytes(_ slot: UnsafeMutableRawPointer, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        slot.storeBytes(of: UInt32(truncatingIfNeeded: key.count), toByteOffset: Slot.keyLength, as: UInt32.self)
        slot.storeBytes(of: UInt32(truncatingIfNeeded: value.count), toByteOffset: Slot.valueLength, as: UInt32.self)
        let total = key.count + value.count
        let destination: UnsafeMutableRawPointer
        if total <= Slot.inlineCapacity {
            destination = slot + Slot.inlineOffset
        } else {
            guard let block = malloc(total) else { fatalError("malloc of \(total) bytes failed: out of memory") }
            slot.storeBytes(of: block, toByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
            self.externalBytes += total
            destination = block
        }
        if let base = key.baseAddress { destination.copySmall(from: base, byteCount: key.count) }
        if let base = value.baseAddress { (destination + key.count).copySmall(from: base, byteCount: value.count) }
    }

    /// Appends a new entry for an absent key. - Returns: its index.
    mutating func insert(_ key: UnsafeRawBufferPointer, hash h: UInt32, value: UnsafeRawBufferPointer) -> Int {
        precondition(key.count <= Int(UInt32.max) && value.count <= Int(UInt32.max) - key.count, "entry too large")
        precondition(self.count < Int(UInt32.max) - 1, "keyspace full")
        self.growIfNeeded()
        let index = self.count
        self.entries.ensure(index)
        let slot = self.slot(index)
        slot.storeBytes(of: h, toByteOffset: Slot.hash, as: UInt32.self)
        slot.storeBytes(of: 0, toByteOffset: Slot.deadlineLink, as: UInt32.self)
        slot.storeBytes(of: self.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        self.writeBytes(slot, key: key, value: value)
        let head = self.head(h)
        slot.storeBytes(of: head.pointee, toByteOffset: Slot.next, as: UInt32.self)
        head.pointee = UInt32(truncatingIfNeeded: index + 1)
        self.count += 1
        return index
    }

    /// Inserts an absent key whose hash ``lookup(_:rehashSteps:)`` returned, with no mutation in between.
    @inline(__always)
    mutating func insertNew(_ key: UnsafeRawBufferPointer, hash h: UInt32, value: UnsafeRawBufferPointer, deadline: Int64?) {
        let index = self.insert(key, hash: h, value: value)
        if deadline != nil { self.setDeadline(index, deadline) }
    }

    /// Replaces the value and deadline of entry `index`.
    @inline(__always)
    mutating func replace(at index: Int, value: UnsafeRawBufferPointer, deadline: Int64?) {
        self.replaceValue(index, with: value)
        self.setDeadline(index, deadline)
    }

    /// Replaces the value of entry `index`, keeping its key (and deadline).
    mutating func replaceValue(_ index: Int, with value: UnsafeRawBufferPointer) {
        let slot = self.slot(index)
        slot.storeBytes(of: self.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
        precondition(value.count <= Int(UInt32.max) - keyLength, "entry too large")
        if Self.isInline(slot) && keyLength + value.count <= Slot.inlineCapacity {
            // Inline to inline: the key stays where it is.
            slot.storeBytes(of: UInt32(truncatingIfNeeded: value.count), toByteOffset: Slot.valueLength, as: UInt32.self)
            if let base = value.baseAddress {
                (slot + Slot.inlineOffset + keyLength).copySmall(from: base, byteCount: value.count)
            }
            return
        }
        // Any move in or out of line: copy the key aside (at most one malloc'd block is the old storage).
        let wasInline = Self.isInline(slot)
        let old = Self.bytes(slot)
        let oldTotal = keyLength + Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self))
        if wasInline {
            // The key is inside the slot and would be overwritten by the pointer: move it to a scratch copy.
            withUnsafeTemporaryAllocation(byteCount: Slot.inlineCapacity, alignment: 8) { scratch in
                scratch.baseAddress!.copyMemory(from: old, byteCount: keyLength)
                self.writeBytes(slot, key: UnsafeRawBufferPointer(start: scratch.baseAddress!, count: keyLength), value: value)
            }
        } else {
            self.writeBytes(slot, key: UnsafeRawBufferPointer(start: old, count: keyLength), value: value)
            self.externalBytes -= oldTotal
            Glibc.free(old)
        }
    }

    /// Removes entry `index`; the last entry moves into its place (the array stays dense).
    mutating func remove(_ index: Int) {
        assert(index >= 0 && index < self.count)
        let slot = self.slot(index)
        let h = slot.load(fromByteOffset: Slot.hash, as: UInt32.self)
        let link = UInt32(truncatingIfNeeded: index + 1)
        self.relink(hash: h, from: link, to: slot.load(fromByteOffset: Slot.next, as: UInt32.self))
        if !Self.isInline(slot) {
            self.externalBytes -= Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                + Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self))
            Glibc.free(slot.load(fromByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self))
        }
        let deadlineLink = slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self)
        if deadlineLink != 0 {
            self.removeDeadline(at: Int(deadlineLink) - 1)
        }
        let last = self.count - 1
        if index != last {
            let moved = self.slot(last)
            slot.copyMemory(from: moved, byteCount: Slot.bytes)
            self.relink(hash: moved.load(fromByteOffset: Slot.hash, as: UInt32.self),
                        from: UInt32(truncatingIfNeeded: last + 1), to: link)
            let movedDeadline = slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self)
            if movedDeadline != 0 {
                self.deadlines.element(Int(movedDeadline) - 1).storeBytes(
                    of: UInt32(truncatingIfNeeded: index), toByteOffset: 8, as: UInt32.self)
            }
        }
        self.count = last
        self.entries.trim(count: self.count)
        self.shrinkIfNeeded()
    }

    /// Frees every external block (the pages and buckets are freed by ``freeAll()``).
    mutating func freeAll() {
        if self.externalBytes > 0 {
            for index in 0..<self.count {
                let slot = self.slot(index)
                if !Self.isInline(slot) {
                    Glibc.free(slot.load(fromByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self))
                }
            }
        }
        self.entries.freeAll()
        self.deadlines.freeAll()
        RawMemory.free(UnsafeMutableRawPointer(self.buckets0), byteCount: (self.mask0 + 1) * 4)
        if let buckets1 = self.buckets1 {
            RawMemory.free(UnsafeMutableRawPointer(buckets1), byteCount: (self.mask1 + 1) * 4)
        }
    }

    // MARK: Deadlines

    /// Sets (or with nil clears) the deadline of entry `index`.
    @inline(__always)
    mutating func setDeadline(_ index: Int, _ deadline: Int64?) {
        // The common case, a plain SET over a key without a deadline, changes nothing: decide it
        // inline instead of paying a call (~45 instructions) to find that out.
        if deadline == nil && self.slot(index).load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) == 0 {
            return
        }
        self.changeDeadline(index, deadline)
    }

    private mutating func changeDeadline(_ index: Int, _ deadline: Int64?) {
        let slot = self.slot(index)
        let link = slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self)
        switch (link, deadline) {
        case (0, nil):
            return
        case (0, let deadline?):
            let position = self.deadlineCount
            self.deadlines.ensure(position)
            let pair = self.deadlines.element(position)
            pair.storeBytes(of: deadline, as: Int64.self)
            pair.storeBytes(of: UInt32(truncatingIfNeeded: index), toByteOffset: 8, as: UInt32.self)
            slot.storeBytes(of: UInt32(truncatingIfNeeded: position + 1), toByteOffset: Slot.deadlineLink, as: UInt32.self)
            self.deadlineCount += 1
        case (_, let deadline?):
            self.deadlines.element(Int(link) - 1).storeBytes(of: deadline, as: Int64.self)
        case (_, nil):
            slot.storeBytes(of: 0, toByteOffset: Slot.deadlineLink, as: UInt32.self)
            self.removeDeadline(at: Int(link) - 1)
        }
    }

    /// Removes pair `position` (its entry's link must already be cleared or about to go); the last pair
    /// moves into its place.
    private mutating func removeDeadline(at position: Int) {
        let last = self.deadlineCount - 1
        if position != last {
            let target = self.deadlines.element(position)
            let source = self.deadlines.element(last)
            target.copyMemory(from: source, byteCount: 16)
            let entry = Int(target.load(fromByteOffset: 8, as: UInt32.self))
            self.slot(entry).storeBytes(of: UInt32(truncatingIfNeeded: position + 1), toByteOffset: Slot.deadlineLink,
                                        as: UInt32.self)
        }
        self.deadlineCount = last
        self.deadlines.trim(count: last)
    }

    @inline(__always)
    mutating func nextRandom() -> UInt64 {
        self.random ^= self.random >> 12
        self.random ^= self.random << 25
        self.random ^= self.random >> 27
        return self.random &* 0x2545_F491_4F6C_DD1D
    }
}

/// The keyspace: a hash table from byte-string keys to byte-string values with optional absolute
/// deadlines (Unix milliseconds). Knows nothing of the log or the clock: expiry *policy* (when a key with a
/// deadline counts as gone) belongs to the caller, which passes `now`. Not thread-safe: one owner at a time
/// (the loop thread, or a compaction thread for a keyspace it built itself).
public final class Keyspace {
    let table: UnsafeMutablePointer<KeyTable>

    /// An empty keyspace hashing with the process key (or `hashKey`, for tests that need a fixed layout).
    public init(hashKey: (UInt64, UInt64)? = nil) {
        let hasher = hashKey.map { SipHash13(k0: $0.0, k1: $0.1) } ?? SipHash13.processKey
        self.table = .allocate(capacity: 1)
        self.table.initialize(to: KeyTable(hasher: hasher, buckets: KeyTable.minimumBuckets))
    }

    deinit {
        self.table.pointee.freeAll()
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

    /// The value of entry `index` (valid until the next mutation).
    @inline(__always)
    public func value(at index: Int) -> UnsafeRawBufferPointer {
        precondition(index >= 0 && index < self.count, "entry index out of range")
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

    // MARK: Sampling and scanning

    /// A uniformly random entry index in O(1), or nil when empty.
    public func randomEntry() -> Int? {
        let count = self.table.pointee.count
        guard count > 0 else { return nil }
        return Int(self.table.pointee.nextRandom() % UInt64(count))
    }

    /// The entry holding the deadline pair at `position` (0..<countWithDeadline): deadlines are dense, so
    /// a random position is an O(1) uniform sample of the keys that can expire.
    public func entryWithDeadline(atPosition position: Int) -> Int {
        precondition(position >= 0 && position < self.countWithDeadline, "deadline position out of range")
        return Int(self.table.pointee.deadlines.element(position).load(fromByteOffset: 8, as: UInt32.self))
    }

    /// A uniformly random position in the deadline array, or nil when no key has a deadline.
    public func randomDeadlinePosition() -> Int? {
        let count = self.table.pointee.deadlineCount
        guard count > 0 else { return nil }
        return Int(self.table.pointee.nextRandom() % UInt64(count))
    }

    /// One step of a SCAN: calls `body` with the entry index of every key in the bucket(s) `cursor` names,
    /// and returns the next cursor (0 when the scan is complete).
    ///
    /// The cursor counts with its bits reversed (Redis's dictScan): incrementing the high bits first means a
    /// bucket's expansions in a bigger table, and its folds into a smaller one, are all visited after
    /// buckets already done, so every key present for the whole scan is seen at least once even while the
    /// table grows or shrinks between calls (a key may be seen twice). While a resize runs both tables are
    /// visited: the smaller one's bucket, then every bucket of the larger one that folds onto it. `body`
    /// must not mutate the keyspace.
    public func scan(cursor: UInt64, _ body: (Int) -> Void) -> UInt64 {
        let table = self.table
        guard table.pointee.count > 0 else { return 0 }
        var v = cursor
        func visit(_ buckets: UnsafeMutablePointer<UInt32>, _ bucket: Int) {
            var link = buckets[bucket]
            while link != 0 {
                let index = Int(link) - 1
                link = table.pointee.slot(index).load(fromByteOffset: Slot.next, as: UInt32.self)
                body(index)
            }
        }
        guard let buckets1 = table.pointee.buckets1 else {
            let mask = UInt64(table.pointee.mask0)
            visit(table.pointee.buckets0, Int(v & mask))
            v |= ~mask
            return Self.reverse(Self.reverse(v) &+ 1)
        }
        var small = table.pointee.buckets0
        var smallMask = UInt64(table.pointee.mask0)
        var large = buckets1
        var largeMask = UInt64(table.pointee.mask1)
        if smallMask > largeMask {
            swap(&small, &large)
            swap(&smallMask, &largeMask)
        }
        visit(small, Int(v & smallMask))
        repeat {
            visit(large, Int(v & largeMask))
            v |= ~largeMask
            v = Self.reverse(Self.reverse(v) &+ 1)
        } while v & (smallMask ^ largeMask) != 0
        return v
    }

    @inline(__always)
    static func reverse(_ value: UInt64) -> UInt64 {
        var v = value
        v = ((v >> 1) & 0x5555_5555_5555_5555) | ((v & 0x5555_5555_5555_5555) << 1)
        v = ((v >> 2) & 0x3333_3333_3333_3333) | ((v & 0x3333_3333_3333_3333) << 2)
        v = ((v >> 4) & 0x0F0F_0F0F_0F0F_0F0F) | ((v & 0x0F0F_0F0F_0F0F_0F0F) << 4)
        v = ((v >> 8) & 0x00FF_00FF_00FF_00FF) | ((v & 0x00FF_00FF_00FF_00FF) << 8)
        v = ((v >> 16) & 0x0000_FFFF_0000_FFFF) | ((v & 0x0000_FFFF_0000_FFFF) << 16)
        return (v >> 32) | (v << 32)
    }

    // MARK: Access clock (LRU)

    /// The LRU clock new accesses are stamped with (the owner advances it; wrapping is fine: idle time is
    /// the wrapping difference, as with Redis's 24-bit clock).
    public var lruClock: UInt32 {
        get { self.table.pointee.lruClock }
        set { self.table.pointee.lruClock = newValue }
    }

    /// Marks entry `index` as accessed now (a read; writes stamp it themselves).
    @inline(__always)
    public func touch(at index: Int) {
        self.table.pointee.slot(index).storeBytes(of: self.table.pointee.lruClock, toByteOffset: Slot.lastAccess,
                                                  as: UInt32.self)
    }

    /// LRU clock ticks since entry `index` was last read or written.
    @inline(__always)
    public func idleTicks(at index: Int) -> UInt32 {
        self.table.pointee.lruClock &- self.table.pointee.slot(index).load(fromByteOffset: Slot.lastAccess, as: UInt32.self)
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
            + table.bucketBytes
    }

    /// What the keyspace has actually mapped: whole pages, both bucket arrays, out-of-line blocks.
    public var allocatedBytes: Int {
        let table = self.table.pointee
        return table.entries.allocatedBytes + table.deadlines.allocatedBytes + table.bucketBytes + table.externalBytes
    }

    /// The bytes one entry accounts for (MEMORY USAGE): its slot, its out-of-line bytes, its deadline, and
    /// one bucket's share.
    public func usedBytes(at index: Int) -> Int {
        let slot = self.table.pointee.slot(index)
        var bytes = Slot.bytes + 4
        if !KeyTable.isInline(slot) {
            bytes += Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                + Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self))
        }
        if slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) != 0 { bytes += Self.deadlineBytes }
        return bytes
    }

    /// What ``usedBytes`` should be for entries of these sizes, computed independently (tests).
    static func expectedBytes(keyLength: Int, valueLength: Int, hasDeadline: Bool) -> Int {
        Slot.bytes + (keyLength + valueLength > Slot.inlineCapacity ? keyLength + valueLength : 0)
            + (hasDeadline ? Self.deadlineBytes : 0)
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
        for index in 0..<table.count {
            let slot = table.slot(index)
            if !KeyTable.isInline(slot) {
                external += Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                    + Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self))
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
        var accounted = table.bucketBytes
        for index in 0..<table.count {
            let slot = table.slot(index)
            accounted += Self.expectedBytes(
                keyLength: Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)),
                valueLength: Int(slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)),
                hasDeadline: slot.load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) != 0)
        }
        precondition(accounted == self.usedBytes, "byte account \(self.usedBytes), recomputed \(accounted)")
        precondition(external == table.externalBytes, "external byte account \(table.externalBytes), actual \(external)")
        precondition(table.entries.pageCount * table.entries.elementsPerPage >= table.count, "entries past the pages")
        precondition(table.count <= table.entries.pageCount * table.entries.elementsPerPage, "pages")
    }
}
