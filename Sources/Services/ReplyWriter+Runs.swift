// A whole collection's bulk strings in one pass (HGETALL, HKEYS, HVALS, SMEMBERS, SINTER, …). Written
// one `bulk` call at a time, each string cost several appends to the output array (a capacity and
// uniqueness check apiece, literals copied a byte at a time) and a generic decimal conversion for its
// length; for a reply of a thousand strings those per-call costs were most of the command. Here each
// `$<n>\r\n<bytes>\r\n` is encoded by pointer into one scratch block (one capacity check per string,
// the block doubled when full), which the output then takes in one copy. The line protocol keeps the
// per-string path (each string is checked for what that protocol can show).

import Glibc

extension ReplyWriter {
    /// Writes the bulk strings that `produce` hands to its argument, in order, as consecutive replies
    /// (the caller writes the aggregate header). `expected`: how many strings, to size the block.
    mutating func bulkRun(expected: Int, _ produce: ((UnsafeRawBufferPointer) -> Void) -> Void) {
        guard self.encoding != .line else {
            produce { self.bulk($0) }
            return
        }
        var run = BulkRun(capacity: max(256, min(expected, 1 << 20) * 32))
        produce { run.append($0) }
        self.output.append(contentsOf: UnsafeBufferPointer(start: run.base, count: run.used))
        run.free()
    }
}

/// The scratch block of ``ReplyWriter/bulkRun(expected:_:)`` (and of the sorted sets' range replies,
/// ReplyWriter+SortedSetRuns.swift): malloc'd, grown by realloc.
struct BulkRun {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var used = 0
    private var capacity: Int

    init(capacity: Int) {
        guard let block = malloc(capacity) else { fatalError("malloc of \(capacity) bytes failed: out of memory") }
        self.base = block.assumingMemoryBound(to: UInt8.self)
        self.capacity = capacity
    }

    func free() {
        Glibc.free(self.base)
    }

    /// Encodes `$<n>\r\n<bytes>\r\n` at the end of the block.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let length = bytes.count
        // `$`, at most 20 digits, two CRLFs.
        let bound = length + 25
        if self.capacity - self.used < bound { self.grow(to: self.used + bound) }
        var cursor = self.base + self.used
        cursor.pointee = UInt8(ascii: "$")
        var digits = 1
        var rest = length
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        rest = length
        var index = digits
        repeat {
            cursor[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            index -= 1
        } while index > 0
        cursor += 1 + digits
        cursor[0] = UInt8(ascii: "\r")
        cursor[1] = UInt8(ascii: "\n")
        cursor += 2
        if length > 0 {
            UnsafeMutableRawPointer(cursor).copyMemory(from: bytes.baseAddress!, byteCount: length)
            cursor += length
        }
        cursor[0] = UInt8(ascii: "\r")
        cursor[1] = UInt8(ascii: "\n")
        self.used = cursor + 2 - self.base
    }

    /// Lets `body` write at most `bound` bytes at the end of the block; it returns how many it wrote.
    @inline(__always)
    mutating func write(upTo bound: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) {
        if self.capacity - self.used < bound { self.grow(to: self.used + bound) }
        self.used += body(self.base + self.used)
    }

    private mutating func grow(to needed: Int) {
        var capacity = self.capacity * 2
        while capacity < needed { capacity *= 2 }
        guard let block = realloc(self.base, capacity) else { fatalError("realloc of \(capacity) bytes failed: out of memory") }
        self.base = block.assumingMemoryBound(to: UInt8.self)
        self.capacity = capacity
    }
}
