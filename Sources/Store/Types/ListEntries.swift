// A list node's items, packed in one malloc'd block and readable from either end: each entry is a
// LEB128 length, its bytes, then its own size (length field and bytes) written backwards, 7 bits a
// byte from the block's end towards its start (the idea of Redis's listpack back-length, written for
// this store). A list pops and pushes at its tail as often as at its head: with the back-length an
// access near a node's end starts from that end instead of walking the node from its first entry.
// PackedEntries.swift is the same block without back-lengths, for the types that only scan forward.
//
// The entries sit inside the block with spare room before and after them: a push at a node's head
// takes room at the front, and one at its tail room at the back, so neither moves the node's bytes
// or reallocates it per item. A block grows by a bounded step (``spareStep``) towards the end that
// ran out, and ``trim()`` gives the spare back once a node is no longer at either end of its list;
// ``allocatedBytes`` is what the list's byte account counts.

import Glibc

struct ListEntries: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    /// Bytes allocated: spare room before the entries, the entries, spare room after them.
    private(set) var allocatedBytes = 0
    /// Spare bytes before the first entry.
    private var front = 0
    /// Bytes the entries use.
    private(set) var byteCount = 0
    /// Entries held.
    private(set) var count = 0

    /// The most spare room a block takes on when it grows: enough for a few small items, so that a
    /// run of pushes reallocates once per several items, and small beside a node's bound.
    static let spareStep = 256

    init() {}

    deinit {
        Glibc.free(self.storage)
    }

    /// The first entry's address.
    @inline(__always)
    private var base: UnsafeMutableRawPointer { self.storage! + self.front }

    /// The bytes an item of `length` bytes takes in a block.
    @inline(__always)
    static func entryBytes(_ length: Int) -> Int {
        let sized = Self.varintBytes(length) + length
        return sized + Self.varintBytes(sized)
    }

    /// A copy with nothing shared (COPY).
    func duplicate() -> ListEntries {
        var copy = ListEntries()
        if let storage = self.storage {
            // The same layout, spare room included: the copy's byte account equals the original's.
            copy.storage = malloc(self.allocatedBytes)
            copy.storage!.copyMemory(from: storage, byteCount: self.allocatedBytes)
            copy.allocatedBytes = self.allocatedBytes
            copy.front = self.front
            copy.byteCount = self.byteCount
        }
        copy.count = self.count
        return copy
    }

    /// The entry starting at byte `offset` and the offset of the next one (``byteCount`` after the last).
    @inline(__always)
    func entry(atOffset offset: Int) -> (bytes: UnsafeRawBufferPointer, next: Int) {
        precondition(offset >= 0 && offset < self.byteCount, "offset past the entries")
        let base = self.base
        var length = 0
        var shift = 0
        var position = offset
        while true {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            length |= Int(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        let end = position + length
        return (UnsafeRawBufferPointer(start: base + position, count: length), end + Self.varintBytes(end - offset))
    }

    /// The entry ending at byte `end` (the next entry's start, or ``byteCount``) and its start.
    @inline(__always)
    func entry(endingAt end: Int) -> (bytes: UnsafeRawBufferPointer, start: Int) {
        precondition(end > 0 && end <= self.byteCount, "offset past the entries")
        let base = self.base
        var sized = 0
        var shift = 0
        var position = end - 1
        while true {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            sized |= Int(byte & 0x7F) << shift
            if byte < 0x80 { break }
            position -= 1
            shift += 7
        }
        let start = position - sized
        return (self.entry(atOffset: start).bytes, start)
    }

    /// The offset of entry `index` (0 ≤ index ≤ count; count: ``byteCount``), walking from the nearer end.
    func offset(of index: Int) -> Int {
        // The last entry (a pop at the tail) found from its back-length alone.
        if index == self.count - 1 && index > 0 { return self.entry(endingAt: self.byteCount).start }
        if index <= self.count / 2 {
            var offset = 0
            for _ in 0..<index { offset = self.entry(atOffset: offset).next }
            return offset
        }
        var offset = self.byteCount
        for _ in 0..<(self.count - index) { offset = self.entry(endingAt: offset).start }
        return offset
    }

    /// Calls `body` with each entry in order, with its offset, until it returns false.
    func forEach(_ body: (_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Bool) {
        var offset = 0
        while offset < self.byteCount {
            let (bytes, next) = self.entry(atOffset: offset)
            guard body(bytes, offset) else { return }
            offset = next
        }
    }

    /// Appends `bytes` as the last entry (`bound`: as for ``insert(_:atOffset:bound:)``).
    mutating func append(_ bytes: UnsafeRawBufferPointer, bound: Int = .max) {
        self.insert(bytes, atOffset: self.byteCount, bound: bound)
    }

    /// Inserts `bytes` as a new entry at byte `offset` (an entry's start, or ``byteCount``). A block that
    /// grows takes no spare room past `bound` bytes (its node's bound: a full node then holds less than
    /// an item's spare, and giving that back splits no free fragment off the block).
    mutating func insert(_ bytes: UnsafeRawBufferPointer, atOffset offset: Int, bound: Int = .max) {
        precondition(offset >= 0 && offset <= self.byteCount, "offset past the entries")
        let header = Self.varintBytes(bytes.count)
        let total = Self.entryBytes(bytes.count)
        let old = self.byteCount
        if offset == 0 && self.front >= total {
            // Room at the front: the entries stay where they are.
            self.front -= total
        } else if self.allocatedBytes - self.front - old >= total {
            // Room at the back: only the entries after the insertion point move.
            let base = self.base
            if offset < old { (base + offset + total).copyMemory(from: base + offset, byteCount: old - offset) }
        } else {
            self.grow(by: total, at: offset, towardsFront: offset == 0 && old > 0, bound: bound)
        }
        self.byteCount = old + total
        let at = self.base + offset
        Self.writeLength(bytes.count, at: at)
        if let source = bytes.baseAddress, bytes.count > 0 {
            (at + header).copyMemory(from: source, byteCount: bytes.count)
        }
        Self.writeBackLength(header + bytes.count, endingAt: at + total)
        self.count += 1
    }

    /// Removes the entries from byte `offset` (an entry's start) to byte `end` (an entry's end),
    /// `entries` of them. The entries on the shorter side of the gap move to close it.
    mutating func remove(from offset: Int, to end: Int, entries: Int) {
        let base = self.base
        let removed = end - offset
        if offset < self.byteCount - end {
            if offset > 0 { (base + removed).copyMemory(from: base, byteCount: offset) }
            self.front += removed
        } else if end < self.byteCount {
            (base + offset).copyMemory(from: base + end, byteCount: self.byteCount - end)
        }
        self.count -= entries
        self.byteCount -= removed
        if self.byteCount == 0 {
            Glibc.free(self.storage)
            self.storage = nil
            self.allocatedBytes = 0
            self.front = 0
        } else if self.allocatedBytes - self.byteCount > 2 * Self.spareStep + self.byteCount / 4 {
            // Far more spare room than a push needs (a node emptied by pops): give it back.
            self.trim()
        }
    }

    /// Removes `entries` entries from byte `offset` (an entry's start).
    mutating func remove(atOffset offset: Int, entries: Int = 1) {
        var end = offset
        for _ in 0..<entries { end = self.entry(atOffset: end).next }
        self.remove(from: offset, to: end, entries: entries)
    }

    /// Gives back the spare room: the block becomes exactly the entries' bytes.
    mutating func trim() {
        guard self.allocatedBytes > self.byteCount, let storage = self.storage else { return }
        if self.front > 0 { storage.copyMemory(from: storage + self.front, byteCount: self.byteCount) }
        guard let trimmed = realloc(storage, self.byteCount) else { fatalError("realloc failed: out of memory") }
        self.storage = trimmed
        self.allocatedBytes = self.byteCount
        self.front = 0
    }

    /// Makes room for `total` more bytes at byte `offset`, the gap left open there, with spare room
    /// (up to ``spareStep``, or an eighth of the block, within `bound`) at the front when `towardsFront`,
    /// else at the back.
    private mutating func grow(by total: Int, at offset: Int, towardsFront: Bool, bound: Int) {
        let old = self.byteCount
        let spare = max(min(max(old / 8, 32), Self.spareStep, bound - old - total), 0)
        let size = old + total + spare
        if towardsFront {
            guard let grown = malloc(size) else { fatalError("malloc of \(size) bytes failed: out of memory") }
            if let storage = self.storage {
                (grown + spare + total).copyMemory(from: storage + self.front, byteCount: old)
                Glibc.free(storage)
            }
            self.storage = grown
            self.front = spare
        } else {
            if self.front > 0 && old > 0 {
                let storage = self.storage!
                storage.copyMemory(from: storage + self.front, byteCount: old)
            }
            self.front = 0
            guard let grown = realloc(self.storage, size) else { fatalError("realloc of \(size) bytes failed: out of memory") }
            self.storage = grown
            if offset < old { (grown + offset + total).copyMemory(from: grown + offset, byteCount: old - offset) }
        }
        self.allocatedBytes = size
    }

    @inline(__always)
    private static func varintBytes(_ value: Int) -> Int {
        value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x20_0000 ? 3 : value < 0x1000_0000 ? 4 : (Int.bitWidth - value.leadingZeroBitCount + 6) / 7
    }

    private static func writeLength(_ length: Int, at pointer: UnsafeMutableRawPointer) {
        var rest = length
        var position = 0
        while rest >= 0x80 {
            pointer.storeBytes(of: UInt8(rest & 0x7F) | 0x80, toByteOffset: position, as: UInt8.self)
            rest >>= 7
            position += 1
        }
        pointer.storeBytes(of: UInt8(rest), toByteOffset: position, as: UInt8.self)
    }

    /// Writes `value` so that it reads backwards from `end`: its low 7 bits in the last byte, each
    /// byte with more before it flagged by its high bit.
    private static func writeBackLength(_ value: Int, endingAt end: UnsafeMutableRawPointer) {
        var rest = value
        var position = -1
        while rest >= 0x80 {
            end.storeBytes(of: UInt8(rest & 0x7F) | 0x80, toByteOffset: position, as: UInt8.self)
            rest >>= 7
            position -= 1
        }
        end.storeBytes(of: UInt8(rest), toByteOffset: position, as: UInt8.self)
    }
}
