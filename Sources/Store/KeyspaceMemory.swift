// The in-memory keyspace: a chained hash table built for this server. Entries live in a dense array of
// 64-byte slots (key and small value inline), buckets are 32-bit indices, growth and shrinking are
// incremental (two tables, a couple of buckets moved per operation, as Redis's dict.c does), deadlines
// sit in a dense side array so sampling them is O(1). It must not log, read the clock or allocate per
// lookup: ``DurableStore`` wraps it with the write-ahead log, undo and expiry policy.
//
// Memory layout, by our own account, for a 16-byte key with a 16-byte value and no deadline:
//   64 B slot (24 B header, 40 B inline bytes) + 4 B × buckets/keys (1 to 2 at load factor 0.5-1, 4 more
//   while a resize runs) ≈ 68-72 B per key. Slots and deadlines live in 256 KiB mmap'd pages, freed as
//   the table empties, so mass expiry gives memory back to the kernel. A key plus value over 40 bytes goes
//   in one malloc'd block (key then value) whose pointer sits in the slot. A collection (Value.swift) is an
//   object the slot holds a reference to, its key in the slot's spare bytes up to 24 bytes, else in a block
//   of its own (see ``Slot``).
//
// Files: this one (slot geometry, raw memory, pages), KeyTable.swift (the table), Keyspace.swift (the class),
// Keyspace+Sampling.swift (random entries, SCAN, LRU clock), Keyspace+Values.swift (types, collections,
// RENAME/COPY).

import Glibc

/// Fixed geometry of a slot (byte offsets into its 64 bytes).
///
///     0 next:UInt32  4 hash:UInt32  8 keyLength:UInt32  12 valueLength:UInt32  16 deadlineLink:UInt32
///     20 lastAccess:UInt32  24 inline bytes: key then value   (or, when they do not fit, 24 pointer)
///
/// Links are index + 1 so that 0 means none (and zero-filled bucket arrays start out empty).
/// `lastAccess` is the table's LRU clock when the entry was last read or written (the memory limit's
/// LRU policies sample it, as Redis's 24-bit `lru` field in each object). It cost the inline area 4 bytes
/// (44 to 40): entries whose key and value total 41 to 44 bytes now go out of line.
///
/// A collection (hash, list, set, sorted set) sets the top bit of `valueLength` (``collectionFlag``) and
/// keeps its type tag (``ValueType``) in the low byte. The value object's retained reference sits at 32;
/// the pointer at 24 names the key's bytes: a key of up to 24 bytes (``collectionKeyCapacity``) sits in
/// the slot's last 24 bytes and the pointer names them (rewritten whenever the slot moves: see
/// ``KeyTable/repointKeyInSlot(_:)``), a longer one is a malloc'd block of its own (counted in the
/// out-of-line bytes). Small collections are the commonest: keeping their keys in the slot spares each
/// one an allocation.
///
///     24 key pointer   32 Unmanaged<AnyObject> (a CollectionValue)   40-63 the key, when it fits
///
/// A small set or sorted set nothing else holds is kept without its object: 32 names the members' block
/// and `valueLength` says what the object knew (KeyTable+Compact.swift).
///
/// `keyLength + valueLength` then exceeds the inline capacity, so every test that tells inline from out of
/// line (the string hot path) needs no change: only code that reads a value or frees a slot asks
/// ``isCollection``. A string's value is below 2 GiB (the log caps records at 1 GiB), so the bit is free.
///
/// A string edited in place (APPEND, SETRANGE, SETBIT) sets the next bit, ``rawFlag``: Redis then holds
/// it as a `raw` string, in an allocation of its own whatever its length, and OBJECT ENCODING says so.
/// Such a string is always out of line (``KeyTable/markRaw(_:)`` moves it there), so the flag, too, makes
/// `keyLength + valueLength` exceed the inline capacity and the inline test stays as it is; whatever
/// reads a string's length masks it with ``lengthMask``. Any other write of the string clears it.
enum Slot {
    static let bytes = 64
    static let shift = 6
    static let next = 0
    static let hash = 4
    static let keyLength = 8
    static let valueLength = 12
    static let deadlineLink = 16
    static let lastAccess = 20
    static let inlineOffset = 24
    static let inlineCapacity = 40
    static let pointerOffset = 24
    static let objectOffset = 32
    static let collectionFlag: UInt32 = 0x8000_0000
    static let rawFlag: UInt32 = 0x4000_0000
    static let lengthMask: UInt32 = 0x3FFF_FFFF
    static let collectionKeyOffset = 40
    static let collectionKeyCapacity = 24

    /// Whether a collection's key of `length` bytes is kept in its slot (else in a block of its own).
    @inline(__always)
    static func keepsKeyInSlot(_ length: Int) -> Bool { length <= Self.collectionKeyCapacity }

    /// Whether the slot holds a collection (its value is an object, not bytes).
    @inline(__always)
    static func isCollection(_ slot: UnsafeMutableRawPointer) -> Bool {
        slot.load(fromByteOffset: Self.valueLength, as: UInt32.self) & Self.collectionFlag != 0
    }

    /// Whether the slot holds a string edited in place (``rawFlag``; never set on a collection).
    @inline(__always)
    static func isRaw(_ slot: UnsafeMutableRawPointer) -> Bool {
        slot.load(fromByteOffset: Self.valueLength, as: UInt32.self) & Self.rawFlag != 0
    }

    /// The length of a string slot's value (``rawFlag`` masked off).
    @inline(__always)
    static func valueLength(_ slot: UnsafeMutableRawPointer) -> Int {
        Int(slot.load(fromByteOffset: Self.valueLength, as: UInt32.self) & Self.lengthMask)
    }
}

/// Raw memory for the table: big blocks come straight from mmap(2) so that freeing them returns them to the
/// kernel at once (glibc keeps freed heap memory below its top), small ones from calloc.
enum RawMemory {
    static let mmapThreshold = 128 << 10

    static func allocateZeroed(_ byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= Self.mmapThreshold {
            let pointer = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
                fatalError("mmap of \(byteCount) bytes failed: out of memory")
            }
            return pointer
        }
        guard let pointer = calloc(1, byteCount) else {
            fatalError("calloc of \(byteCount) bytes failed: out of memory")
        }
        return pointer
    }

    static func free(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= Self.mmapThreshold {
            munmap(pointer, byteCount)
        } else {
            Glibc.free(pointer)
        }
    }
}

/// A growable array of fixed-size elements in 256 KiB pages: growing never copies elements (no pause), and
/// pages past the end are returned to the kernel. Only the small page table is ever reallocated.
struct PagedArray {
    static let pageBytes = 256 << 10
    let elementShift: Int
    let pageShift: Int
    let pageMask: Int
    private(set) var pages: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private(set) var pageCount = 0
    private var pageCapacity = 4

    init(elementBytes: Int) {
        self.elementShift = elementBytes.trailingZeroBitCount
        let perPage = Self.pageBytes >> self.elementShift
        self.pageShift = perPage.trailingZeroBitCount
        self.pageMask = perPage - 1
        self.pages = .allocate(capacity: 4)
    }

    var elementsPerPage: Int { self.pageMask + 1 }
    var allocatedBytes: Int { self.pageCount * Self.pageBytes + self.pageCapacity * 8 }

    @inline(__always)
    func element(_ index: Int) -> UnsafeMutableRawPointer {
        self.pages[index >> self.pageShift] + ((index & self.pageMask) << self.elementShift)
    }

    /// Makes `index` addressable.
    @inline(__always)
    mutating func ensure(_ index: Int) {
        if index >> self.pageShift >= self.pageCount {
            self.addPage()
        }
    }

    private mutating func addPage() {
        if self.pageCount == self.pageCapacity {
            let bigger = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: self.pageCapacity * 2)
            bigger.moveInitialize(from: self.pages, count: self.pageCount)
            self.pages.deallocate()
            self.pages = bigger
            self.pageCapacity *= 2
        }
        (self.pages + self.pageCount).initialize(to: RawMemory.allocateZeroed(Self.pageBytes))
        self.pageCount += 1
    }

    /// Frees pages no longer needed for `count` elements, keeping one spare page so that a key added and
    /// removed at a page boundary does not map and unmap a page each time.
    @inline(__always)
    mutating func trim(count: Int) {
        let needed = (count + self.pageMask) >> self.pageShift
        while self.pageCount > needed + 1 {
            self.pageCount -= 1
            RawMemory.free(self.pages[self.pageCount], byteCount: Self.pageBytes)
        }
    }

    mutating func freeAll() {
        for index in 0..<self.pageCount {
            RawMemory.free(self.pages[index], byteCount: Self.pageBytes)
        }
        self.pageCount = 0
        self.pages.deallocate()
    }
}
