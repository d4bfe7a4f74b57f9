// Encoded log records waiting for the next write, in one malloc'd byte range reused across loop
// iterations. It replaced a `[UInt8]` that every record grew with `append(contentsOf: repeatElement(0,
// count:))` before writing the frame through a pointer: a zero-fill, a uniqueness check and a capacity
// check per record, on every SET. Loop thread only, owned by ``DurableStore``.

/// A growable byte buffer that hands out room for the next frame by pointer.
/// Invariant: `0 <= count <= capacity`; bytes `0..<count` are whole frames.
struct LogBuffer: ~Copyable {
    private var storage: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0

    private static let initialCapacity = 4096

    init() {
        self.storage = .allocate(byteCount: Self.initialCapacity, alignment: 8)
        self.capacity = Self.initialCapacity
    }

    deinit {
        self.storage.deallocate()
    }

    var isEmpty: Bool { self.count == 0 }

    /// The buffered frames, valid until the next mutation.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: self.storage, count: self.count) }

    /// Adds `byteCount` bytes at the end and returns where they start. They are uninitialised: the caller
    /// writes every one of them before anything reads the buffer.
    @inline(__always)
    mutating func extend(by byteCount: Int) -> UnsafeMutableRawPointer {
        precondition(byteCount >= 0)
        if self.count + byteCount > self.capacity {
            self.grow(toHold: self.count + byteCount)
        }
        let start = self.storage + self.count
        self.count += byteCount
        return start
    }

    /// Where byte `offset` of the buffer is, to rewrite bytes already appended (a group's header).
    func mutableBytes(from offset: Int) -> UnsafeMutableRawPointer {
        precondition(offset >= 0 && offset <= self.count)
        return self.storage + offset
    }

    /// Removes `range` (bytes already appended), moving what follows it down.
    mutating func remove(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= self.count)
        let tail = self.count - range.upperBound
        (self.storage + range.lowerBound).copyMemory(from: self.storage + range.upperBound, byteCount: tail)
        self.count -= range.count
    }

    /// Reallocates to at least `needed` bytes, doubling so that appends stay amortised O(1) per byte.
    private mutating func grow(toHold needed: Int) {
        let newCapacity = max(self.capacity * 2, needed)
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        bigger.copyMemory(from: self.storage, byteCount: self.count)
        self.storage.deallocate()
        self.storage = bigger
        self.capacity = newCapacity
        assert(self.count <= self.capacity)
    }

    /// Empties the buffer. Storage above `keptCapacity` bytes goes back to the allocator (a burst of
    /// large values must not pin its memory); smaller storage is kept for the next iteration.
    mutating func removeAll(keepingCapacityUpTo keptCapacity: Int) {
        self.count = 0
        if self.capacity > keptCapacity {
            self.storage.deallocate()
            self.storage = .allocate(byteCount: Self.initialCapacity, alignment: 8)
            self.capacity = Self.initialCapacity
        }
    }
}
