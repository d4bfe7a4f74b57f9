// A list node's items, packed in one malloc'd block and readable from either end: each entry is a
// LEB128 length, its bytes, then its own size (length field and bytes) written backwards, 7 bits a
// byte from the block's end towards its start (the idea of Redis's listpack back-length, written for
// this store). A list pops and pushes at its tail as often as at its head: with the back-length an
// access near a node's end starts from that end instead of walking the node from its first entry.
// PackedEntries.swift is the same block without back-lengths, for the types that only scan forward.
// The block is kept at exactly its used size, so the list's byte account is exact.

import Glibc

struct ListEntries: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    /// Bytes used (and allocated).
    private(set) var byteCount = 0
    /// Entries held.
    private(set) var count = 0

    init() {}

    deinit {
        Glibc.free(self.storage)
    }

    /// The bytes an item of `length` bytes takes in a block.
    @inline(__always)
    static func entryBytes(_ length: Int) -> Int {
        let sized = Self.varintBytes(length) + length
        return sized + Self.varintBytes(sized)
    }

    /// A copy with nothing shared (COPY).
    func duplicate() -> ListEntries {
        var copy = ListEntries()
        copy.resize(to: self.byteCount)
        if let storage = self.storage, self.byteCount > 0 {
            copy.storage!.copyMemory(from: storage, byteCount: self.byteCount)
        }
        copy.count = self.count
        return copy
    }

    /// The entry starting at byte `offset` and the offset of the next one (``byteCount`` after the last).
    @inline(__always)
    func entry(atOffset offset: Int) -> (bytes: UnsafeRawBufferPointer, next: Int) {
        precondition(offset >= 0 && offset < self.byteCount, "offset past the entries")
        let base = self.storage!
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
        let base = self.storage!
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

    /// Appends `bytes` as the last entry.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        self.insert(bytes, atOffset: self.byteCount)
    }

    /// Inserts `bytes` as a new entry at byte `offset` (an entry's start, or ``byteCount``).
    mutating func insert(_ bytes: UnsafeRawBufferPointer, atOffset offset: Int) {
        precondition(offset >= 0 && offset <= self.byteCount, "offset past the entries")
        let header = Self.varintBytes(bytes.count)
        let total = Self.entryBytes(bytes.count)
        let old = self.byteCount
        self.resize(to: old + total)
        let base = self.storage!
        if offset < old { (base + offset + total).copyMemory(from: base + offset, byteCount: old - offset) }
        Self.writeLength(bytes.count, at: base + offset)
        if let source = bytes.baseAddress, bytes.count > 0 {
            (base + offset + header).copyMemory(from: source, byteCount: bytes.count)
        }
        Self.writeBackLength(header + bytes.count, endingAt: base + offset + total)
        self.count += 1
    }

    /// Removes the entries from byte `offset` (an entry's start) to byte `end` (an entry's end),
    /// `entries` of them.
    mutating func remove(from offset: Int, to end: Int, entries: Int) {
        let base = self.storage!
        if end < self.byteCount { (base + offset).copyMemory(from: base + end, byteCount: self.byteCount - end) }
        self.count -= entries
        self.resize(to: self.byteCount - (end - offset))
    }

    /// Removes `entries` entries from byte `offset` (an entry's start).
    mutating func remove(atOffset offset: Int, entries: Int = 1) {
        var end = offset
        for _ in 0..<entries { end = self.entry(atOffset: end).next }
        self.remove(from: offset, to: end, entries: entries)
    }

    private mutating func resize(to bytes: Int) {
        if bytes == 0 {
            Glibc.free(self.storage)
            self.storage = nil
        } else {
            guard let grown = realloc(self.storage, bytes) else { fatalError("realloc of \(bytes) bytes failed: out of memory") }
            self.storage = grown
        }
        self.byteCount = bytes
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
