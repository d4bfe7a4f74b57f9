// The compact encoding's building block: byte strings packed one after another in one malloc'd block,
// each a LEB128 length then its bytes, no object and no pointer per entry (the idea of Redis's listpack,
// written for this store). A small hash is its fields and values alternating, a small list its items, a
// small set its members, a small sorted set its members and scores alternating; each type keeps its own
// order rules and thresholds and turns into a real structure past them. Entries are found by a linear
// scan, which is what keeps small values small: the types bound their length (Redis: 128 entries, 64
// bytes each). The block is kept at exactly its used size, so its byte account is exact.

import Glibc

public struct PackedEntries: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    // Both in 32 bits: the struct is 16 bytes, which keeps the objects that hold one (a small hash, a
    // small sorted set) in a smaller allocation. The types bound a block far below 4 GiB.
    private var storedByteCount: UInt32 = 0
    private var storedCount: UInt32 = 0

    /// Bytes used (and allocated).
    public private(set) var byteCount: Int {
        @inline(__always) get { Int(self.storedByteCount) }
        set { self.storedByteCount = UInt32(newValue) }
    }

    /// Entries held.
    public private(set) var count: Int {
        @inline(__always) get { Int(self.storedCount) }
        set { self.storedCount = UInt32(newValue) }
    }

    public init() {}

    deinit {
        Glibc.free(self.storage)
    }

    /// Entries of `byteCount` bytes in `block` (malloc'd, exactly that size; ``takeStorage()``'s), taken over.
    init(adopting block: UnsafeMutableRawPointer, byteCount: Int, count: Int) {
        self.storage = block
        self.storedByteCount = UInt32(byteCount)
        self.storedCount = UInt32(count)
    }

    /// Hands the block over (the keyspace's compact form, KeyTable+Compact.swift), leaving this empty.
    mutating func takeStorage() -> (block: UnsafeMutableRawPointer, byteCount: Int, count: Int) {
        precondition(self.byteCount > 0, "takeStorage of empty entries")
        let taken = (self.storage!, self.byteCount, self.count)
        self.storage = nil
        self.byteCount = 0
        self.count = 0
        return taken
    }

    /// A copy with nothing shared (COPY).
    public func duplicate() -> PackedEntries {
        var copy = PackedEntries()
        copy.resize(to: self.byteCount)
        if let storage = self.storage, self.byteCount > 0 {
            copy.storage!.copyMemory(from: storage, byteCount: self.byteCount)
        }
        copy.count = self.count
        return copy
    }

    /// The entry at byte `offset` and the offset of the next one (``byteCount`` after the last).
    public func entry(atOffset offset: Int) -> (bytes: UnsafeRawBufferPointer, next: Int) {
        precondition(offset >= 0 && offset < self.byteCount, "offset past the entries")
        var length = 0
        var shift = 0
        var position = offset
        while true {
            let byte = self.storage!.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            length |= Int(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
        }
        return (UnsafeRawBufferPointer(start: self.storage! + position, count: length), position + length)
    }

    /// Calls `body` with each entry in order, with its offset, until it returns false.
    public func forEach(_ body: (_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Bool) {
        var offset = 0
        while offset < self.byteCount {
            let (bytes, next) = self.entry(atOffset: offset)
            guard body(bytes, offset) else { return }
            offset = next
        }
    }

    /// The offset of the first entry equal to `bytes` among every `stride`-th entry from the first (2:
    /// the fields of alternating field/value pairs), or nil.
    public func firstOffset(of bytes: UnsafeRawBufferPointer, stride: Int = 1) -> Int? {
        var found: Int?
        var index = 0
        self.forEach { entry, offset in
            defer { index += 1 }
            if index % stride == 0 && entry.count == bytes.count
                && (bytes.count == 0 || memcmp(entry.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
            {
                found = offset
                return false
            }
            return true
        }
        return found
    }

    /// Appends `bytes` as the last entry.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        self.insert(bytes, atOffset: self.byteCount)
    }

    /// Inserts `bytes` as a new entry at byte `offset` (an entry's start, or ``byteCount``).
    public mutating func insert(_ bytes: UnsafeRawBufferPointer, atOffset offset: Int) {
        precondition(offset >= 0 && offset <= self.byteCount, "offset past the entries")
        let header = Self.headerBytes(bytes.count)
        let old = self.byteCount
        self.resize(to: old + header + bytes.count)
        let base = self.storage!
        (base + offset + header + bytes.count).copyMemory(from: base + offset, byteCount: old - offset)
        Self.writeHeader(bytes.count, at: base + offset)
        if let source = bytes.baseAddress { (base + offset + header).copyMemory(from: source, byteCount: bytes.count) }
        self.count += 1
    }

    /// Removes `entries` entries from byte `offset` (an entry's start).
    public mutating func remove(atOffset offset: Int, entries: Int = 1) {
        var end = offset
        for _ in 0..<entries { end = self.entry(atOffset: end).next }
        let base = self.storage!
        (base + offset).copyMemory(from: base + end, byteCount: self.byteCount - end)
        self.count -= entries
        self.resize(to: self.byteCount - (end - offset))
    }

    /// Replaces the entry at byte `offset` with `bytes`.
    public mutating func replace(atOffset offset: Int, with bytes: UnsafeRawBufferPointer) {
        self.remove(atOffset: offset)
        self.insert(bytes, atOffset: offset)
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

    private static func headerBytes(_ length: Int) -> Int {
        var bytes = 1
        var rest = length >> 7
        while rest > 0 {
            bytes += 1
            rest >>= 7
        }
        return bytes
    }

    private static func writeHeader(_ length: Int, at pointer: UnsafeMutableRawPointer) {
        var rest = length
        var position = 0
        while rest >= 0x80 {
            pointer.storeBytes(of: UInt8(rest & 0x7F) | 0x80, toByteOffset: position, as: UInt8.self)
            rest >>= 7
            position += 1
        }
        pointer.storeBytes(of: UInt8(rest), toByteOffset: position, as: UInt8.self)
    }
}
