// Memory for a large sorted set's nodes and member table, in 2 MiB blocks the kernel may back with
// transparent huge pages (madvise MADV_HUGEPAGE; the system's setting decides, and nothing changes but
// speed when it says never).
//
// Why: a rank, a score lookup or a score change on a set of a million members touches a dozen nodes
// scattered over tens of megabytes, and each touch is a TLB miss as well as a cache miss when those
// megabytes are in 4 KiB pages (a 4 KiB-page TLB covers a few megabytes); in 2 MiB pages the
// translations of the whole set stay cached. Nodes from malloc cannot be placed in such pages (the
// heap is shared with everything else), so a set past ``SkiplistArena/threshold`` members takes its
// new nodes from its own arena: 2 MiB blocks cut into nodes, freed nodes kept on a free list per size
// (a multiple of 16 bytes, so a node costs no malloc header either). Nodes made before the set
// reached the threshold stay malloc'd (``SkiplistNode/inArena`` tells them apart). Every block is
// returned when the set's last arena node goes; until then the blocks are the set's accounted bytes.

import Glibc

/// 2 MiB-aligned anonymous mappings, advised for transparent huge pages. Zero-filled by the kernel.
enum HugePageMemory {
    static let blockBytes = 2 << 20
    /// Linux's MADV_HUGEPAGE (asm-generic/mman-common.h).
    private static let adviceHugePage: Int32 = 14

    /// `byteCount` bytes (a multiple of ``blockBytes``) at a 2 MiB boundary, so that every 2 MiB of it
    /// can be one huge page.
    static func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        precondition(byteCount > 0 && byteCount % Self.blockBytes == 0, "huge-page memory is whole 2 MiB blocks")
        let mapped = byteCount + Self.blockBytes
        let pointer = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
            fatalError("mmap of \(mapped) bytes failed: out of memory")
        }
        let start = UInt(bitPattern: pointer)
        let aligned = (start + UInt(Self.blockBytes - 1)) & ~UInt(Self.blockBytes - 1)
        let head = Int(aligned - start)
        if head > 0 { munmap(pointer, head) }
        let tail = mapped - head - byteCount
        if tail > 0 { munmap(pointer + head + byteCount, tail) }
        let block = pointer + head
        // Advice only: a kernel without transparent huge pages refuses it and the memory is ordinary.
        _ = madvise(block, byteCount, Self.adviceHugePage)
        return block
    }

    static func free(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        munmap(pointer, byteCount)
    }
}

/// One large sorted set's node memory (``SortedSetSkiplist``): bump allocation in 2 MiB blocks, a free
/// list per 16-byte size class. Nodes larger than ``largestNode`` still come from malloc.
struct SkiplistArena {
    /// Members a set holds before its new nodes come from an arena: below it a set's nodes take a few
    /// megabytes at most and a partly used 2 MiB block would be a large share of its memory.
    static let threshold = 1 << 15
    static let largestNode = 512
    private static let classes = SkiplistArena.largestNode / 16

    private var blocks: [UnsafeMutableRawPointer] = []
    /// The unused rest of the newest block.
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    /// Per size class (bytes / 16 − 1): the first free node, each free node's first word the next.
    private let free: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Arena nodes in use.
    private(set) var live = 0

    init() {
        self.free = .allocate(capacity: Self.classes)
        self.free.initialize(repeating: nil, count: Self.classes)
    }

    /// Returns every block (the nodes in them must no longer be used) and the free lists' table.
    func release() {
        for block in self.blocks { HugePageMemory.free(block, byteCount: HugePageMemory.blockBytes) }
        self.free.deallocate()
    }

    /// Bytes taken from the kernel.
    var bytes: Int { self.blocks.count * HugePageMemory.blockBytes + Self.classes * 8 }

    /// The size an arena node of `size` bytes takes (nil: too large for the arena).
    @inline(__always)
    static func rounded(_ size: Int) -> Int? { size <= Self.largestNode ? (size + 15) & ~15 : nil }

    /// A block of `rounded` bytes (a ``rounded(_:)`` size), not zeroed.
    mutating func allocate(_ rounded: Int) -> UnsafeMutableRawPointer {
        self.live += 1
        let sizeClass = rounded / 16 - 1
        if let node = self.free[sizeClass] {
            self.free[sizeClass] = node.load(as: UnsafeMutableRawPointer?.self)
            return node
        }
        if self.remaining < rounded {
            // The tail of the full block is left unused (smaller than the largest node).
            let block = HugePageMemory.allocate(HugePageMemory.blockBytes)
            self.blocks.append(block)
            self.cursor = block
            self.remaining = HugePageMemory.blockBytes
        }
        let node = self.cursor!
        self.cursor = node + rounded
        self.remaining -= rounded
        return node
    }

    /// Gives back a node of `rounded` bytes from ``allocate(_:)``.
    mutating func deallocate(_ node: UnsafeMutableRawPointer, rounded: Int) {
        self.live -= 1
        let sizeClass = rounded / 16 - 1
        node.storeBytes(of: self.free[sizeClass], as: UnsafeMutableRawPointer?.self)
        self.free[sizeClass] = node
    }
}
