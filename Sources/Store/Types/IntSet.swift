// A set of 64-bit integers as one sorted array of the narrowest width that holds them all (16, 32 or
// 64 bits), found by binary search: the idea of Redis's intset, written for this store. Small sets of
// integers (ids, counters) are the commonest sets; this form costs two, four or eight bytes a member
// and no object at all. The width only grows (a wider value widens every entry, as Redis's does), and
// the block is kept at exactly its used size, so its byte account is exact. SetValue.swift decides
// when a set leaves this form.

import Glibc

/// Sorted, distinct integers: up to ``inlineBytes`` bytes of them inside the struct itself (so inside
/// the set object that holds it: one allocation for both), a malloc'd block of `count × width` bytes
/// past that. The struct is 24 bytes, `[header: UInt32][20 bytes: the members, or a pointer at 8]`;
/// the header holds the count, the width and whether the members are out of line, and an owner may
/// park a pointer of its own in place of the members (``init(holding:)``: the set does, once it is a
/// table, so that its object needs no second field).
struct IntSet: ~Copyable {
    private var words: (UInt32, UInt32, UInt64, UInt64) = (0, 0, 0, 0)

    /// Bytes of members kept in the struct itself.
    static let inlineBytes = 20
    /// The most members an intset holds (the header's count bits).
    static let maximumCount = (1 << 28) - 1
    private static let countMask: UInt32 = (1 << 28) - 1
    private static let widthShift: UInt32 = 28
    private static let outOfLine: UInt32 = 1 << 30
    private static let holding: UInt32 = 1 << 31

    /// Members held.
    var count: Int { Int(self.words.0 & Self.countMask) }

    /// Bytes per member: 2, 4 or 8.
    var width: Int { 2 << Int((self.words.0 >> Self.widthShift) & 3) }

    private var isOutOfLine: Bool { self.words.0 & Self.outOfLine != 0 }

    private mutating func setHeader(count: Int, width: Int, outOfLine: Bool) {
        precondition(count <= Self.maximumCount, "intset over its count bits")
        let code = UInt32(width.trailingZeroBitCount - 1)
        self.words.0 = UInt32(count) | code << Self.widthShift | (outOfLine ? Self.outOfLine : 0)
    }

    /// The block of an out-of-line intset, or the pointer an owner parked.
    private var pointer: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: UInt(self.words.2)) }

    init() {
        self.setHeader(count: 0, width: 2, outOfLine: false)
    }

    /// An intset that holds no members but `pointer`, the owner's (freed by nobody here).
    init(holding pointer: UnsafeMutableRawPointer) {
        self.words = (Self.holding, 0, UInt64(UInt(bitPattern: pointer)), 0)
    }

    /// The owner's pointer (``init(holding:)``), or nil when this holds members.
    var heldPointer: UnsafeMutableRawPointer? { self.words.0 & Self.holding != 0 ? self.pointer : nil }

    deinit {
        if self.isOutOfLine { Glibc.free(self.pointer) }
    }

    /// Hands the members over as a malloc'd block of exactly ``byteCount`` bytes (the keyspace's
    /// compact form, KeyTable+Compact.swift), leaving this empty. Not for an intset holding a pointer.
    mutating func takeBlock() -> (block: UnsafeMutableRawPointer, count: Int, width: Int) {
        precondition(self.heldPointer == nil && self.count > 0, "takeBlock of an empty or holding intset")
        let (count, width, bytes) = (self.count, self.width, self.byteCount)
        let block: UnsafeMutableRawPointer
        if self.isOutOfLine {
            block = self.pointer!
        } else {
            guard let copy = malloc(bytes) else { fatalError("malloc of \(bytes) bytes failed: out of memory") }
            self.withBase { copy.copyMemory(from: $0, byteCount: bytes) }
            block = copy
        }
        self.words = (0, 0, 0, 0)
        self.setHeader(count: 0, width: 2, outOfLine: false)
        return (block, count, width)
    }

    /// An intset of the `count` members of `width` bytes in `block` (``takeBlock()``'s), which it takes
    /// over: kept as its block, or copied into the struct and freed when the members fit there.
    init(adopting block: UnsafeMutableRawPointer, count: Int, width: Int) {
        let bytes = count * width
        if bytes <= Self.inlineBytes {
            self.setHeader(count: count, width: width, outOfLine: false)
            self.withMutableBase { $0.copyMemory(from: block, byteCount: bytes) }
            Glibc.free(block)
        } else {
            self.setHeader(count: count, width: width, outOfLine: true)
            self.words.2 = UInt64(UInt(bitPattern: block))
        }
    }

    /// Bytes of the members (in the struct or in the block).
    var byteCount: Int { self.count * self.width }

    /// Bytes allocated out of line (0 while the members fit in the struct).
    var allocatedBytes: Int { self.isOutOfLine ? self.byteCount : 0 }

    /// Calls `body` with the members' bytes (valid only for the call).
    @inline(__always)
    private func withBase<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        if self.isOutOfLine { return body(self.pointer!) }
        var words = self.words
        return withUnsafeBytes(of: &words) { body($0.baseAddress! + 4) }
    }

    /// Calls `body` with the members' bytes, writable (valid only for the call).
    @inline(__always)
    private mutating func withMutableBase<R>(_ body: (UnsafeMutableRawPointer) -> R) -> R {
        if self.isOutOfLine { return body(self.pointer!) }
        return withUnsafeMutableBytes(of: &self.words) { body($0.baseAddress! + 4) }
    }

    /// A copy with nothing shared (COPY).
    func duplicate() -> IntSet {
        var copy = IntSet()
        copy.resize(to: self.byteCount, keeping: 0, width: self.width)
        copy.setHeader(count: self.count, width: self.width, outOfLine: copy.isOutOfLine)
        let bytes = self.byteCount
        self.withBase { source in copy.withMutableBase { $0.copyMemory(from: source, byteCount: bytes) } }
        return copy
    }

    @inline(__always)
    private static func load(_ base: UnsafeRawPointer, _ index: Int, width: Int) -> Int64 {
        switch width {
        case 2: return Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
        case 4: return Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
        default: return Int64(littleEndian: base.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))
        }
    }

    @inline(__always)
    private static func store(_ value: Int64, _ base: UnsafeMutableRawPointer, _ index: Int, width: Int) {
        switch width {
        case 2: base.storeBytes(of: Int16(truncatingIfNeeded: value).littleEndian, toByteOffset: index * 2, as: Int16.self)
        case 4: base.storeBytes(of: Int32(truncatingIfNeeded: value).littleEndian, toByteOffset: index * 4, as: Int32.self)
        default: base.storeBytes(of: value.littleEndian, toByteOffset: index * 8, as: Int64.self)
        }
    }

    /// The member at `index` (0 the smallest).
    @inline(__always)
    func value(at index: Int) -> Int64 {
        let width = self.width
        return self.withBase { Self.load($0, index, width: width) }
    }

    /// Where `value` is, or where it would go to keep the order.
    func search(_ value: Int64) -> (found: Bool, index: Int) {
        let count = self.count
        guard count > 0 else { return (false, 0) }
        let width = self.width
        return self.withBase { base in
            // Past either end: no probe needed.
            if value > Self.load(base, count - 1, width: width) { return (false, count) }
            if value < Self.load(base, 0, width: width) { return (false, 0) }
            var low = 0
            var high = count - 1
            while low <= high {
                let middle = (low + high) >> 1
                let found = Self.load(base, middle, width: width)
                if found == value { return (true, middle) }
                if found < value { low = middle + 1 } else { high = middle - 1 }
            }
            return (false, low)
        }
    }

    func contains(_ value: Int64) -> Bool {
        guard Self.width(of: value) <= self.width else { return false }
        return self.search(value).found
    }

    /// Inserts `value`. - Returns: whether it was absent.
    mutating func insert(_ value: Int64) -> Bool {
        let needed = Self.width(of: value)
        if needed > self.width {
            // Wider than every member: it goes at one end, and every entry widens.
            self.widen(to: needed)
            self.insert(value, at: value < 0 ? 0 : self.count)
            return true
        }
        let (found, index) = self.search(value)
        guard !found else { return false }
        self.insert(value, at: index)
        return true
    }

    /// Removes `value`. - Returns: whether it was present.
    mutating func remove(_ value: Int64) -> Bool {
        guard Self.width(of: value) <= self.width else { return false }
        let (found, index) = self.search(value)
        guard found else { return false }
        self.remove(at: index)
        return true
    }

    /// Removes the member at `index`.
    mutating func remove(at index: Int) {
        let width = self.width
        let count = self.count
        self.withMutableBase { base in
            (base + index * width).copyMemory(from: base + (index + 1) * width, byteCount: (count - index - 1) * width)
        }
        self.resize(to: (count - 1) * width, keeping: (count - 1) * width, width: width)
        self.setHeader(count: count - 1, width: width, outOfLine: self.isOutOfLine)
    }

    private mutating func insert(_ value: Int64, at index: Int) {
        let width = self.width
        let count = self.count
        self.resize(to: (count + 1) * width, keeping: count * width, width: width)
        self.setHeader(count: count + 1, width: width, outOfLine: self.isOutOfLine)
        self.withMutableBase { base in
            (base + (index + 1) * width).copyMemory(from: base + index * width, byteCount: (count - index) * width)
            Self.store(value, base, index, width: width)
        }
    }

    private mutating func widen(to width: Int) {
        let old = self.width
        let count = self.count
        self.resize(to: count * width, keeping: count * old, width: old)
        self.setHeader(count: count, width: width, outOfLine: self.isOutOfLine)
        self.withMutableBase { base in
            // Back to front, so that no entry is overwritten before it is read.
            var index = count - 1
            while index >= 0 {
                Self.store(Self.load(base, index, width: old), base, index, width: width)
                index -= 1
            }
        }
    }

    /// Makes room for `bytes` bytes of members, keeping the first `keeping`: in the struct when they
    /// fit, else in a block of exactly that size (moved between the two as the size crosses the line).
    private mutating func resize(to bytes: Int, keeping: Int, width: Int) {
        let count = self.count
        if bytes <= Self.inlineBytes {
            guard self.isOutOfLine, let block = self.pointer else { return }
            self.words = (0, 0, 0, 0)
            self.setHeader(count: count, width: width, outOfLine: false)
            self.withMutableBase { $0.copyMemory(from: block, byteCount: min(keeping, bytes)) }
            Glibc.free(block)
            return
        }
        if self.isOutOfLine {
            guard let grown = realloc(self.pointer, bytes) else { fatalError("realloc of \(bytes) bytes failed: out of memory") }
            self.words.2 = UInt64(UInt(bitPattern: grown))
            return
        }
        guard let block = malloc(bytes) else { fatalError("malloc of \(bytes) bytes failed: out of memory") }
        self.withBase { block.copyMemory(from: $0, byteCount: min(keeping, bytes)) }
        self.setHeader(count: count, width: width, outOfLine: true)
        self.words.2 = UInt64(UInt(bitPattern: block))
    }

    /// The narrowest width that holds `value`.
    static func width(of value: Int64) -> Int {
        if value >= Int64(Int16.min) && value <= Int64(Int16.max) { return 2 }
        if value >= Int64(Int32.min) && value <= Int64(Int32.max) { return 4 }
        return 8
    }

    /// `bytes` as Redis's string2ll reads a canonical integer (no sign but a leading `-`, no leading
    /// zero, no space, within 64 bits), or nil: only such members may live in an intset, since the
    /// member must come back byte for byte.
    static func canonicalInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let count = bytes.count
        guard count > 0 && count <= 20 else { return nil }
        if count == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
        var i = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        guard i < count, bytes[i] >= UInt8(ascii: "1"), bytes[i] <= UInt8(ascii: "9") else { return nil }
        var magnitude: UInt64 = 0
        while i < count {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            magnitude = m2
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return Int64(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// Calls `body` with `value`'s decimal digits, borrowed (valid only for the call).
    static func withDecimal<R>(_ value: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 20, alignment: 1) { buffer in
            var magnitude = value.magnitude
            var position = 20
            repeat {
                position -= 1
                buffer[position] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                position -= 1
                buffer[position] = UInt8(ascii: "-")
            }
            return try body(UnsafeRawBufferPointer(rebasing: buffer[position...]))
        }
    }
}
