// Copies of a few bytes without a call into libc. Keys and values are mostly short (redis-benchmark's
// 16-byte keys and values; typical cache keys are tens of bytes), and storing an entry copies its key
// and value, each a memcpy call that costs more in call overhead and size dispatch than the copy itself.
// Used by the table's out-of-line insert and replace only: in code the compiler inlines into
// DurableStore.set it made the caller big enough to stop inlining the record and undo appends (a net
// loss per SET in scripts/callgrind-hotpath.sh when tried).

extension UnsafeMutableRawPointer {
    /// Copies `byteCount` bytes from `source`, which must not overlap the destination. 4 to 16 bytes are
    /// moved as two possibly overlapping words (the same bytes written twice is harmless when the regions
    /// are disjoint); other sizes go to memcpy.
    @inline(__always)
    func copySmall(from source: UnsafeRawPointer, byteCount: Int) {
        assert(byteCount >= 0)
        assert(self + byteCount <= UnsafeMutableRawPointer(mutating: source)
                   || UnsafeMutableRawPointer(mutating: source) + byteCount <= self, "overlapping copy")
        if byteCount >= 8 && byteCount <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: byteCount - 8, as: UInt64.self)
            self.storeBytes(of: head, as: UInt64.self)
            self.storeBytes(of: tail, toByteOffset: byteCount - 8, as: UInt64.self)
        } else if byteCount >= 4 && byteCount < 8 {
            let head = source.loadUnaligned(as: UInt32.self)
            let tail = source.loadUnaligned(fromByteOffset: byteCount - 4, as: UInt32.self)
            self.storeBytes(of: head, as: UInt32.self)
            self.storeBytes(of: tail, toByteOffset: byteCount - 4, as: UInt32.self)
        } else {
            self.copyMemory(from: source, byteCount: byteCount)
        }
    }
}
