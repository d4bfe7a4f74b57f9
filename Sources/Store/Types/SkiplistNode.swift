// One element of a large sorted set (SortedSetSkiplist.swift): a single block holding its score, its
// skiplist levels, its member's hash and its member's bytes, addressed by pointer.

import CPrefetch
import Glibc

/// One element's block, by address. Layout: score (8), member length (4), height (4), then `height`
/// levels of forward (8) and span (8), then backward (8), the member's hash (8) and the member's bytes.
/// What a descent reads of a node it passes (its score, then its links at the level it is on) comes
/// first, so that for the lower levels it is one cache line, not two.
struct SkiplistNode: Equatable {
    let raw: UnsafeMutableRawPointer

    private static let lengthOffset = 8
    private static let heightOffset = 12
    private static let levelsOffset = 16
    /// backward, then hash, then the member, after the levels.
    private static let tailBytes = 16
    static let levelBytes = 16

    /// The bytes a node of `height` levels with a `length`-byte member takes from malloc.
    @inline(__always)
    static func size(height: Int, length: Int) -> Int {
        Self.levelsOffset + height * Self.levelBytes + Self.tailBytes + length
    }

    /// Where backward is (hash follows it, then the member).
    private var backwardOffset: Int {
        @inline(__always) get { Self.levelsOffset + self.height * Self.levelBytes }
    }

    /// Set in the height word of a node whose block is from the set's ``SkiplistArena`` (not malloc).
    private static let arenaFlag: UInt32 = 1 << 16

    /// A node in a block of its own from malloc.
    static func allocate(_ member: UnsafeRawBufferPointer, score: Double, height: Int, hash: UInt64) -> SkiplistNode {
        let size = Self.size(height: height, length: member.count)
        guard let raw = malloc(size) else { fatalError("malloc of \(size) bytes failed: out of memory") }
        return Self.initialize(raw, member, score: score, height: height, hash: hash, inArena: false)
    }

    /// A node in `raw` (at least ``size(height:length:)`` bytes).
    static func initialize(_ raw: UnsafeMutableRawPointer, _ member: UnsafeRawBufferPointer, score: Double, height: Int,
                           hash: UInt64, inArena: Bool) -> SkiplistNode {
        // The table keeps a tag in the address's top 16 bits: user-space addresses leave them clear.
        precondition(UInt(bitPattern: raw) >> 48 == 0 && UInt(bitPattern: raw) & 0xF == 0,
                     "sorted set: a node's address uses its top 16 or its low 4 bits")
        let node = SkiplistNode(raw: raw)
        let backwardOffset = Self.levelsOffset + height * Self.levelBytes
        raw.storeBytes(of: score, as: Double.self)
        raw.storeBytes(of: UInt32(member.count), toByteOffset: Self.lengthOffset, as: UInt32.self)
        raw.storeBytes(of: UInt32(height) | (inArena ? Self.arenaFlag : 0), toByteOffset: Self.heightOffset, as: UInt32.self)
        (raw + Self.levelsOffset).initializeMemory(as: UInt8.self, repeating: 0, count: height * Self.levelBytes)
        raw.storeBytes(of: 0, toByteOffset: backwardOffset, as: UInt.self)
        raw.storeBytes(of: hash, toByteOffset: backwardOffset + 8, as: UInt64.self)
        if member.count > 0 {
            (raw + backwardOffset + Self.tailBytes).copyMemory(from: member.baseAddress!, byteCount: member.count)
        }
        return node
    }

    var score: Double {
        @inline(__always) get { self.raw.load(as: Double.self) }
        @inline(__always) nonmutating set { self.raw.storeBytes(of: newValue, as: Double.self) }
    }

    var backward: SkiplistNode? {
        @inline(__always) get {
            self.raw.load(fromByteOffset: self.backwardOffset, as: UnsafeMutableRawPointer?.self).map(SkiplistNode.init)
        }
        @inline(__always) nonmutating set {
            self.raw.storeBytes(of: newValue?.raw, toByteOffset: self.backwardOffset, as: UnsafeMutableRawPointer?.self)
        }
    }

    var height: Int {
        @inline(__always) get { Int(self.raw.load(fromByteOffset: Self.heightOffset, as: UInt32.self) & 0xFFFF) }
    }

    /// Whether the block is from the set's arena rather than malloc.
    var inArena: Bool {
        self.raw.load(fromByteOffset: Self.heightOffset, as: UInt32.self) & Self.arenaFlag != 0
    }

    var hash: UInt64 {
        @inline(__always) get { self.raw.load(fromByteOffset: self.backwardOffset + 8, as: UInt64.self) }
    }

    /// The member's bytes, valid while the node is.
    var member: UnsafeRawBufferPointer {
        @inline(__always) get {
            let length = Int(self.raw.load(fromByteOffset: Self.lengthOffset, as: UInt32.self))
            return UnsafeRawBufferPointer(start: self.raw + self.backwardOffset + Self.tailBytes, count: length)
        }
    }

    /// The malloc'd bytes of this node.
    var size: Int { Self.size(height: self.height, length: self.member.count) }

    @inline(__always)
    func forward(_ level: Int) -> SkiplistNode? {
        self.raw.load(fromByteOffset: Self.levelsOffset + level * Self.levelBytes, as: UnsafeMutableRawPointer?.self)
            .map(SkiplistNode.init)
    }

    @inline(__always)
    func setForward(_ level: Int, _ node: SkiplistNode?) {
        self.raw.storeBytes(of: node?.raw, toByteOffset: Self.levelsOffset + level * Self.levelBytes,
                            as: UnsafeMutableRawPointer?.self)
    }

    /// Asks the cache for the node `forward(level)` links to, without waiting for it (a hint: nothing is
    /// read). A descent that reaches a node at level `i` next reads `forward(i)` and, when that one is
    /// past its target, `forward(i - 1)`: prefetching the second while the first is fetched overlaps
    /// two cache misses of a large set that would otherwise follow each other.
    @inline(__always)
    func prefetchForward(_ level: Int) {
        reactord_prefetch(self.raw.load(fromByteOffset: Self.levelsOffset + level * Self.levelBytes, as: UnsafeRawPointer?.self))
    }

    /// Elements between this node and `forward(level)`, that one counted.
    @inline(__always)
    func span(_ level: Int) -> Int {
        self.raw.load(fromByteOffset: Self.levelsOffset + level * Self.levelBytes + 8, as: Int.self)
    }

    @inline(__always)
    func setSpan(_ level: Int, _ span: Int) {
        self.raw.storeBytes(of: span, toByteOffset: Self.levelsOffset + level * Self.levelBytes + 8, as: Int.self)
    }
}
