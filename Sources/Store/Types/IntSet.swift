// A set of 64-bit integers as one sorted array of the narrowest width that holds them all (16, 32 or
// 64 bits), found by binary search: the idea of Redis's intset, written for this store. Small sets of
// integers (ids, counters) are the commonest sets; this form costs two, four or eight bytes a member
// and no object at all. The width only grows (a wider value widens every entry, as Redis's does), and
// the block is kept at exactly its used size, so its byte account is exact. SetValue.swift decides
// when a set leaves this form.

import Glibc

/// Sorted, distinct integers in one malloc'd block of `count × width` bytes.
struct IntSet: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    // In 32 bits (an intset is bounded by set-max-intset-entries): 16 bytes in all, which keeps the
    // set object that holds one in a smaller allocation.
    private var storedCount: UInt32 = 0
    private var storedWidth: UInt32 = 2

    /// Members held.
    private(set) var count: Int {
        @inline(__always) get { Int(self.storedCount) }
        set { self.storedCount = UInt32(newValue) }
    }

    /// Bytes per member: 2, 4 or 8.
    private(set) var width: Int {
        @inline(__always) get { Int(self.storedWidth) }
        set { self.storedWidth = UInt32(newValue) }
    }

    init() {}

    deinit {
        Glibc.free(self.storage)
    }

    /// Bytes of the block.
    var byteCount: Int { self.count * self.width }

    /// A copy with nothing shared (COPY).
    func duplicate() -> IntSet {
        var copy = IntSet()
        copy.width = self.width
        copy.count = self.count
        if self.count > 0 {
            copy.storage = Self.allocate(self.byteCount)
            copy.storage!.copyMemory(from: self.storage!, byteCount: self.byteCount)
        }
        return copy
    }

    /// The member at `index` (0 the smallest).
    @inline(__always)
    func value(at index: Int) -> Int64 {
        let base = self.storage!
        switch self.width {
        case 2: return Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
        case 4: return Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
        default: return Int64(littleEndian: base.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))
        }
    }

    /// Where `value` is, or where it would go to keep the order.
    func search(_ value: Int64) -> (found: Bool, index: Int) {
        guard self.count > 0 else { return (false, 0) }
        // Outside the width's range, or past either end: no probe needed.
        if value > self.value(at: self.count - 1) { return (false, self.count) }
        if value < self.value(at: 0) { return (false, 0) }
        var low = 0
        var high = self.count - 1
        while low <= high {
            let middle = (low + high) >> 1
            let found = self.value(at: middle)
            if found == value { return (true, middle) }
            if found < value { low = middle + 1 } else { high = middle - 1 }
        }
        return (false, low)
    }

    func contains(_ value: Int64) -> Bool { self.search(value).found }

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
        let base = self.storage!
        let width = self.width
        (base + index * width).copyMemory(from: base + (index + 1) * width, byteCount: (self.count - index - 1) * width)
        self.count -= 1
        self.resize(to: self.byteCount)
    }

    private mutating func insert(_ value: Int64, at index: Int) {
        self.resize(to: (self.count + 1) * self.width)
        let base = self.storage!
        let width = self.width
        (base + (index + 1) * width).copyMemory(from: base + index * width, byteCount: (self.count - index) * width)
        self.count += 1
        self.store(value, at: index)
    }

    private mutating func widen(to width: Int) {
        let old = self.width
        self.width = width
        self.resize(to: self.count * width)
        // Back to front, so that no entry is overwritten before it is read.
        var index = self.count - 1
        while index >= 0 {
            let base = self.storage!
            let value: Int64 = switch old {
            case 2: Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
            default: Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: index * 4, as: Int32.self)))
            }
            self.store(value, at: index)
            index -= 1
        }
    }

    @inline(__always)
    private func store(_ value: Int64, at index: Int) {
        let base = self.storage!
        switch self.width {
        case 2: base.storeBytes(of: Int16(truncatingIfNeeded: value).littleEndian, toByteOffset: index * 2, as: Int16.self)
        case 4: base.storeBytes(of: Int32(truncatingIfNeeded: value).littleEndian, toByteOffset: index * 4, as: Int32.self)
        default: base.storeBytes(of: value.littleEndian, toByteOffset: index * 8, as: Int64.self)
        }
    }

    private mutating func resize(to bytes: Int) {
        if bytes == 0 {
            Glibc.free(self.storage)
            self.storage = nil
        } else {
            guard let grown = realloc(self.storage, bytes) else { fatalError("realloc of \(bytes) bytes failed: out of memory") }
            self.storage = grown
        }
    }

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let block = malloc(bytes) else { fatalError("malloc of \(bytes) bytes failed: out of memory") }
        return block
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
