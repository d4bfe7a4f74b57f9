// The keyspace's hash table proper (see KeyspaceMemory.swift for the slot layout and the memory it lives in).

import Glibc


/// The table itself, as a plain struct reached through one pointer owned by ``Keyspace``: its methods are
/// `mutating` on memory the class owns, so the hot path pays neither ARC nor dynamic exclusivity checks.
///
/// Invariants (checked by ``Keyspace/checkInvariants()``):
/// - entries `0..<count` are live; each is on exactly one chain, the one ``head(_:)`` names for its hash
///   (table 0 bucket `h & mask0` when that is `>= rehashIndex` or no resize runs, else table 1 `h & mask1`);
/// - `deadlines[0..<deadlineCount]` holds (deadline, entry) pairs; an entry's `deadlineLink` is its pair's
///   index + 1, or 0 when it has no deadline;
/// - `externalBytes` is the sum of `keyLength + valueLength` over strings stored out of line, plus
///   `keyLength` over collections whose key is out of line (longer than ``Slot/collectionKeyCapacity``);
/// - `collectionBytes` is the sum of ``CollectionValue/usedBytes`` over collections, as last reported
///   (``Keyspace/mutateCollection(at:_:)`` reports every change), and `collectionCount` their number.
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
    var collectionBytes = 0
    var collectionCount = 0
    /// xorshift64* state for sampling (not security-relevant: what it picks is visible anyway).
    var random: UInt64
    /// The LRU clock stamped into an entry's `lastAccess` when it is read or written. The owner advances
    /// it (the server: every 100 ms); the table never reads a clock.
    var lruClock: UInt32 = 0
    /// While a compaction writes this table's snapshot: what of it is still to be written, told before
    /// each change of an entry (SnapshotCapture.swift). Unowned: the capture detaches it before it goes.
    unowned(unsafe) var capture: SnapshotCapture.Part? = nil

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
                                      count: Slot.valueLength(slot))
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
        // Both below 2 GiB: their sum fits a UInt32, and a string's length never sets the collection flag.
        precondition(key.count | value.count < Int(Slot.collectionFlag), "entry too large")
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
        if let part = self.capture { part.willChange(index) }
        let slot = self.slot(index)
        slot.storeBytes(of: self.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
        precondition(value.count < Int(Slot.collectionFlag), "entry too large")
        if Self.isInline(slot) && keyLength + value.count <= Slot.inlineCapacity {
            // Inline to inline: the key stays where it is.
            slot.storeBytes(of: UInt32(truncatingIfNeeded: value.count), toByteOffset: Slot.valueLength, as: UInt32.self)
            if let base = value.baseAddress {
                (slot + Slot.inlineOffset + keyLength).copySmall(from: base, byteCount: value.count)
            }
            return
        }
        if Slot.isCollection(slot) {
            // A collection replaced by a string: its key block is the old storage (a key kept in the slot
            // goes through a scratch copy, since the string's bytes may land on it).
            let keyBlock = self.dropObject(slot)
            if Slot.keepsKeyInSlot(keyLength) {
                withUnsafeTemporaryAllocation(byteCount: Slot.collectionKeyCapacity, alignment: 8) { scratch in
                    scratch.baseAddress!.copyMemory(from: keyBlock, byteCount: keyLength)
                    self.writeBytes(slot, key: UnsafeRawBufferPointer(start: scratch.baseAddress!, count: keyLength), value: value)
                }
                return
            }
            self.writeBytes(slot, key: UnsafeRawBufferPointer(start: keyBlock, count: keyLength), value: value)
            self.externalBytes -= keyLength
            Glibc.free(keyBlock)
            return
        }
        // Any move in or out of line: copy the key aside (at most one malloc'd block is the old storage).
        let wasInline = Self.isInline(slot)
        let old = Self.bytes(slot)
        let oldTotal = keyLength + Slot.valueLength(slot)
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

    /// Marks entry `index`, a string, as edited in place (``Slot/rawFlag``), moving an inline value out
    /// of line first. A collection, or a value of 1 GiB or more (the log refuses those), is left as it is.
    mutating func markRaw(_ index: Int) {
        let slot = self.slot(index)
        let length = slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)
        guard length & ~Slot.lengthMask == 0 else { return }
        if Self.isInline(slot) {
            let total = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)) + Int(length)
            guard let block = malloc(max(total, 1)) else { fatalError("malloc of \(total) bytes failed: out of memory") }
            block.copyMemory(from: slot + Slot.inlineOffset, byteCount: total)
            slot.storeBytes(of: block, toByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
            self.externalBytes += total
        }
        slot.storeBytes(of: length | Slot.rawFlag, toByteOffset: Slot.valueLength, as: UInt32.self)
    }

    /// Removes entry `index`; the last entry moves into its place (the array stays dense).
    mutating func remove(_ index: Int) {
        assert(index >= 0 && index < self.count)
        if let part = self.capture { part.willRemove(index, last: self.count - 1) }
        let slot = self.slot(index)
        let h = slot.load(fromByteOffset: Slot.hash, as: UInt32.self)
        let link = UInt32(truncatingIfNeeded: index + 1)
        self.relink(hash: h, from: link, to: slot.load(fromByteOffset: Slot.next, as: UInt32.self))
        if Slot.isCollection(slot) {
            let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
            let keyBlock = self.dropObject(slot)
            if !Slot.keepsKeyInSlot(keyLength) {
                self.externalBytes -= keyLength
                Glibc.free(keyBlock)
            }
        } else if !Self.isInline(slot) {
            self.externalBytes -= Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
                + Slot.valueLength(slot)
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
            Self.repointKeyInSlot(slot)
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
    /// `inPlace`: collections are released on this thread, big ones too (a keyspace the compaction
    /// built: off the loop already, and its memory must be free before the trim that follows it).
    mutating func freeAll(inPlace: Bool = false) {
        if self.externalBytes > 0 || self.collectionCount > 0 {
            for index in 0..<self.count {
                let slot = self.slot(index)
                if Slot.isCollection(slot) {
                    let keyBlock = self.dropObject(slot, inPlace: inPlace)
                    if !Slot.keepsKeyInSlot(Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))) {
                        Glibc.free(keyBlock)
                    }
                } else if !Self.isInline(slot) {
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

    // MARK: Collections

    /// The collection in a slot that holds one.
    @inline(__always)
    static func object(_ slot: UnsafeMutableRawPointer) -> any CollectionValue {
        assert(Slot.isCollection(slot))
        if Slot.isCompact(slot) { Self.expand(slot) }  // KeyTable+Compact.swift
        let opaque = slot.load(fromByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self)
        let object = Unmanaged<AnyObject>.fromOpaque(opaque).takeUnretainedValue()
        // The built-in types by their class first: `as! any CollectionValue` looks the conformance up
        // at run time (a search of the runtime's conformance cache), on every typed read and write.
        let type = ObjectIdentifier(Swift.type(of: object))
        if type == ObjectIdentifier(SortedSetValue.self) { return unsafeDowncast(object, to: SortedSetValue.self) }
        if type == ObjectIdentifier(HashValue.self) { return unsafeDowncast(object, to: HashValue.self) }
        if type == ObjectIdentifier(SetValue.self) { return unsafeDowncast(object, to: SetValue.self) }
        if type == ObjectIdentifier(ListValue.self) { return unsafeDowncast(object, to: ListValue.self) }
        return object as! any CollectionValue
    }

    /// The type of the value in a slot.
    @inline(__always)
    static func type(_ slot: UnsafeMutableRawPointer) -> ValueType {
        let length = slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)
        guard length & Slot.collectionFlag != 0 else { return .string }
        return ValueType(rawValue: UInt8(truncatingIfNeeded: length))!
    }

    /// Releases a collection slot's object and takes it out of the account. - Returns: its key's bytes:
    /// a block the caller frees or reuses, or, for a key kept in the slot (``Slot/keepsKeyInSlot(_:)``),
    /// the slot's own bytes (the slot's header still names the key's length).
    private mutating func dropObject(_ slot: UnsafeMutableRawPointer, inPlace: Bool = false) -> UnsafeMutableRawPointer {
        self.collectionBytes -= Self.collectionBytes(slot)
        self.collectionCount -= 1
        let object = slot.load(fromByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self)
        if Slot.isCompact(slot) {
            Self.freeCompact(slot)
        } else if inPlace {
            Unmanaged<AnyObject>.fromOpaque(object).release()
        } else {
            // A big value is freed off the loop (BackgroundFree.swift); no other reference is held
            // here, so the release can see whether the slot's is the last.
            BackgroundFree.release(object)
        }
        return slot.load(fromByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
    }

    /// Stores `object` (retained) in `slot` with `keyBlock` (a malloc'd copy of the key, already counted
    /// by the caller in `externalBytes`, or the slot's own key area for a short key).
    private mutating func storeObject(_ object: any CollectionValue, keyBlock: UnsafeMutableRawPointer,
                                      in slot: UnsafeMutableRawPointer) {
        slot.storeBytes(of: Slot.collectionFlag | UInt32(object.type.rawValue), toByteOffset: Slot.valueLength,
                        as: UInt32.self)
        slot.storeBytes(of: keyBlock, toByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
        slot.storeBytes(of: Unmanaged<AnyObject>.passRetained(object).toOpaque(), toByteOffset: Slot.objectOffset,
                        as: UnsafeMutableRawPointer.self)
        self.collectionBytes += object.usedBytes
        self.collectionCount += 1
    }

    /// After a slot's 64 bytes were copied into `slot` (a removal moves the last entry): a collection
    /// whose key is kept in the slot points at the new slot's copy of it.
    @inline(__always)
    static func repointKeyInSlot(_ slot: UnsafeMutableRawPointer) {
        if Slot.isCollection(slot)
            && Slot.keepsKeyInSlot(Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)))
        {
            slot.storeBytes(of: slot + Slot.collectionKeyOffset, toByteOffset: Slot.pointerOffset,
                            as: UnsafeMutableRawPointer.self)
        }
    }

    /// A malloc'd copy of `count` key bytes at `key`.
    private static func keyBlock(_ key: UnsafeRawPointer?, count: Int) -> UnsafeMutableRawPointer {
        guard let block = malloc(max(count, 1)) else { fatalError("malloc of \(count) bytes failed: out of memory") }
        if let key, count > 0 { block.copyMemory(from: key, byteCount: count) }
        return block
    }

    /// Appends a new entry holding `object` for an absent key. - Returns: its index.
    mutating func insertCollection(_ key: UnsafeRawBufferPointer, hash h: UInt32, _ object: any CollectionValue) -> Int {
        precondition(object.type != .string, "strings are stored as bytes")
        let index = self.insert(key, hash: h, value: UnsafeRawBufferPointer(start: nil, count: 0))
        self.setCollection(index, object)
        return index
    }

    /// Replaces the value of entry `index` (of any type) with `object`, keeping its key and deadline.
    mutating func setCollection(_ index: Int, _ object: any CollectionValue) {
        precondition(object.type != .string, "strings are stored as bytes")
        if let part = self.capture { part.willChange(index) }
        let slot = self.slot(index)
        slot.storeBytes(of: self.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        let keyLength = Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self))
        let block: UnsafeMutableRawPointer
        let inSlot = slot + Slot.collectionKeyOffset
        if Slot.isCollection(slot) {
            block = self.dropObject(slot)
        } else if Self.isInline(slot) {
            if Slot.keepsKeyInSlot(keyLength) {
                // The areas overlap (the string's key starts 16 bytes earlier): a move, not a copy.
                memmove(inSlot, slot + Slot.inlineOffset, keyLength)
                block = inSlot
            } else {
                block = Self.keyBlock(slot + Slot.inlineOffset, count: keyLength)
                self.externalBytes += keyLength
            }
        } else {
            let old = slot.load(fromByteOffset: Slot.pointerOffset, as: UnsafeMutableRawPointer.self)
            if Slot.keepsKeyInSlot(keyLength) {
                inSlot.copyMemory(from: old, byteCount: keyLength)
                block = inSlot
                self.externalBytes -= keyLength
            } else {
                block = Self.keyBlock(old, count: keyLength)
            }
            self.externalBytes -= Slot.valueLength(slot)
            Glibc.free(old)
        }
        self.storeObject(object, keyBlock: block, in: slot)
    }

    // MARK: Deadlines

    /// Sets (or with nil clears) the deadline of entry `index`.
    @inline(__always)
    mutating func setDeadline(_ index: Int, _ deadline: Int64?) {
        // The common case, a plain SET over a key without a deadline, changes nothing: decide it
        // inline instead of paying a call to find that out.
        if deadline == nil && self.slot(index).load(fromByteOffset: Slot.deadlineLink, as: UInt32.self) == 0 {
            return
        }
        self.changeDeadline(index, deadline)
    }

    private mutating func changeDeadline(_ index: Int, _ deadline: Int64?) {
        if let part = self.capture { part.willChange(index) }
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
