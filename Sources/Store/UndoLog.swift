// The previous state of every mutation not yet durable, so a failed log write or fsync can roll it back.
// Entries are packed into one reused byte buffer (no heap object per mutation: the old undo log allocated
// one enum payload and two arrays per SET), appended at the end, rolled back from the end, and discarded
// from the front as mutations become durable. Loop thread only; never touches the log itself.

/// What an undo entry restores.
enum UndoKind: UInt8 {
    /// The key was absent: remove it.
    case absent = 0
    /// The key held `value` (and `deadline`): put them back.
    case present = 1
    /// A ``DurableStore/removeAll()``: put back the keyspace it replaced (kept by the store).
    case clear = 2
    /// The key held a collection: `value` is its retained reference (released when the entry goes),
    /// put back with `deadline` (DurableStore+Values.swift).
    case collection = 3
    /// One element of the collection at `key` changed: `value` is the inverse effect (a kind-9 record's
    /// rest, Record.swift), applied on rollback; `deadline` the key's before, restored if the key went.
    case element = 4
    /// EXPIRE/PERSIST: the key is present (later entries rolled back first put it back): restore only its
    /// `deadline`. Never holds the value, so never a reference to a collection still in the keyspace.
    case deadline = 5
    /// RENAME of `key` (the source) to `value` (the destination): move what sits at the destination back
    /// to the source, deadline and all. The destination's previous state is the entry pushed just before.
    case moved = 6
    /// The store switched databases here (Databases.swift): the entries before this one belong to
    /// database `deadline`; rolling back past it switches back to it.
    case database = 7
    /// A function library (FunctionLibraries.swift) named `key` held code `value` at position `deadline`
    /// of the load order, or (no deadline) did not exist: put it back, or remove it.
    case function = 8
    /// SWAPDB of databases `deadline` and `value` (an Int64): swap them back.
    case swapped = 9
}

/// One entry, viewed in place (valid until the log changes).
struct UndoEntry {
    let sequence: UInt64
    let kind: UndoKind
    let key: UnsafeRawBufferPointer
    let value: UnsafeRawBufferPointer
    let deadline: Int64?
}

/// Invariant: a ``UndoKind/collection`` entry only ever holds an object that has left the keyspace
/// (replaced or removed by its mutation). An entry holding an object still in the keyspace would be put
/// back as it is at rollback time, after later effects in the same unsynced batch emptied it, instead of as
/// it was: so EXPIRE/PERSIST push ``UndoKind/deadline`` and RENAME ``UndoKind/moved``, never a reference.
///
/// Packed entries: `length:u32 sequence:u64 kind:u8 hasDeadline:u8 keyLength:u32 valueLength:u32
/// deadline:i64 key value length:u32`. The length is written at both ends so the log can be walked from
/// either. Invariant: `0 <= start <= count <= capacity`; `start` and `count` are entry boundaries.
struct UndoLog: ~Copyable {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var count = 0
    /// ``UndoKind/clear`` entries held.
    private(set) var clearCount = 0
    /// ``UndoKind/collection`` entries held (each owns a retain of its collection).
    private var collectionCount = 0

    private static let headerBytes = 30
    private static let trailerBytes = 4
    private static let initialCapacity = 4096
    /// Capacity kept once emptied (a burst of large values may grow it further, then it is released).
    private static let capacityKept = 4 << 20

    init() {
        self.storage = .allocate(byteCount: Self.initialCapacity, alignment: 8)
        self.capacity = Self.initialCapacity
    }

    deinit {
        // Release the collections still held (their entries never became durable nor rolled back).
        var offset = self.start
        var held = self.collectionCount
        while held > 0 && offset < self.count {
            let entry = self.storage + offset
            if entry.loadUnaligned(fromByteOffset: 12, as: UInt8.self) == UndoKind.collection.rawValue {
                let keyLength = Int(entry.loadUnaligned(fromByteOffset: 14, as: UInt32.self))
                BackgroundFree.release((entry + Self.headerBytes + keyLength).loadUnaligned(as: UnsafeMutableRawPointer.self))
                held -= 1
            }
            offset += Int(entry.loadUnaligned(as: UInt32.self))
        }
        self.storage.deallocate()
    }

    var isEmpty: Bool { self.start == self.count }

    /// Records the state of `key` before mutation `sequence`: entry `index` of `table` (a keyspace's), or
    /// absent.
    @inline(__always)
    mutating func push(
        sequence: UInt64, key: UnsafeRawBufferPointer, previousAt index: Int?, in table: UnsafeMutablePointer<KeyTable>
    ) {
        if let index {
            assert(index >= 0 && index < table.pointee.count, "entry index out of range")
            let slot = table.pointee.slot(index)
            if Slot.isCollection(slot) {
                return self.pushCollection(sequence: sequence, key: key, at: index, in: table)
            }
            self.append(sequence: sequence, kind: .present, key: key, value: KeyTable.value(slot),
                        deadline: table.pointee.deadline(ofEntry: index))
        } else {
            self.append(sequence: sequence, kind: .absent, key: key, value: UnsafeRawBufferPointer(start: nil, count: 0),
                        deadline: nil)
        }
    }

    /// ``push(sequence:key:previousAt:in:)`` for a collection: kept out of the string path's code.
    @inline(never)
    private mutating func pushCollection(
        sequence: UInt64, key: UnsafeRawBufferPointer, at index: Int, in table: UnsafeMutablePointer<KeyTable>
    ) {
        self.pushCollection(sequence: sequence, key: key, KeyTable.object(table.pointee.slot(index)),
                            deadline: table.pointee.deadline(ofEntry: index))
    }

    /// Records that `key` held `object` (retained here until the entry goes) with `deadline`.
    mutating func pushCollection(sequence: UInt64, key: UnsafeRawBufferPointer, _ object: any CollectionValue,
                                 deadline: Int64?) {
        let opaque = Unmanaged<AnyObject>.passRetained(object).toOpaque()
        withUnsafeBytes(of: opaque) { reference in
            self.append(sequence: sequence, kind: .collection, key: key, value: reference, deadline: deadline)
        }
        self.collectionCount += 1
    }

    /// Records that `key`'s deadline was `deadline` (EXPIRE, PERSIST: the value stays).
    mutating func pushDeadline(sequence: UInt64, key: UnsafeRawBufferPointer, deadline: Int64?) {
        self.append(sequence: sequence, kind: .deadline, key: key, value: UnsafeRawBufferPointer(start: nil, count: 0),
                    deadline: deadline)
    }

    /// Records that `source`'s value moved to `destination` (RENAME).
    mutating func pushMoved(sequence: UInt64, source: UnsafeRawBufferPointer, destination: UnsafeRawBufferPointer) {
        self.append(sequence: sequence, kind: .moved, key: source, value: destination, deadline: nil)
    }

    /// Records the inverse of an element effect on `key` (`inverse`: a kind-9 record's rest).
    mutating func pushElement(sequence: UInt64, key: UnsafeRawBufferPointer, inverse: UnsafeRawBufferPointer,
                              deadline: Int64?) {
        self.append(sequence: sequence, kind: .element, key: key, value: inverse, deadline: deadline)
    }

    /// The collection a ``UndoKind/collection`` entry holds (still retained by the entry).
    static func object(of entry: UndoEntry) -> any CollectionValue {
        let opaque = entry.value.loadUnaligned(as: UnsafeMutableRawPointer.self)
        return Unmanaged<AnyObject>.fromOpaque(opaque).takeUnretainedValue() as! any CollectionValue
    }

    /// Releases the reference of the entry at `entry` if it holds one.
    private mutating func releaseReference(_ entry: UnsafeMutableRawPointer) {
        guard entry.loadUnaligned(fromByteOffset: 12, as: UInt8.self) == UndoKind.collection.rawValue else { return }
        let keyLength = Int(entry.loadUnaligned(fromByteOffset: 14, as: UInt32.self))
        let opaque = (entry + Self.headerBytes + keyLength).loadUnaligned(as: UnsafeMutableRawPointer.self)
        BackgroundFree.release(opaque)
        self.collectionCount -= 1
    }

    /// Records a clear (the store keeps the replaced keyspace).
    mutating func pushClear(sequence: UInt64) {
        self.append(sequence: sequence, kind: .clear, key: UnsafeRawBufferPointer(start: nil, count: 0),
                    value: UnsafeRawBufferPointer(start: nil, count: 0), deadline: nil)
        self.clearCount += 1
    }

    /// Records that function library `name` held `code` at `position` of the load order (nil: absent).
    mutating func pushFunction(sequence: UInt64, name: UnsafeRawBufferPointer, code: UnsafeRawBufferPointer, position: Int?) {
        self.append(sequence: sequence, kind: .function, key: name, value: code, deadline: position.map(Int64.init))
    }

    /// Records that databases `first` and `second` exchanged their keys (SWAPDB).
    mutating func pushSwap(sequence: UInt64, _ first: Int, _ second: Int) {
        withUnsafeBytes(of: Int64(second)) { second in
            self.append(sequence: sequence, kind: .swapped, key: UnsafeRawBufferPointer(start: nil, count: 0), value: second,
                        deadline: Int64(first))
        }
    }

    /// Records that the store switched to another database after the entries so far, which belong
    /// to database `previous`.
    mutating func pushDatabase(sequence: UInt64, previous: Int) {
        self.append(sequence: sequence, kind: .database, key: UnsafeRawBufferPointer(start: nil, count: 0),
                    value: UnsafeRawBufferPointer(start: nil, count: 0), deadline: Int64(previous))
    }

    private mutating func append(
        sequence: UInt64, kind: UndoKind, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, deadline: Int64?
    ) {
        let length = Self.headerBytes + key.count + value.count + Self.trailerBytes
        precondition(length <= Int(UInt32.max), "undo entry too large")
        self.reserve(length)
        let entry = self.storage + self.count
        entry.storeBytes(of: UInt32(length), as: UInt32.self)
        entry.storeBytes(of: sequence, toByteOffset: 4, as: UInt64.self)
        entry.storeBytes(of: kind.rawValue, toByteOffset: 12, as: UInt8.self)
        entry.storeBytes(of: deadline == nil ? 0 : 1, toByteOffset: 13, as: UInt8.self)
        entry.storeBytes(of: UInt32(key.count), toByteOffset: 14, as: UInt32.self)
        entry.storeBytes(of: UInt32(value.count), toByteOffset: 18, as: UInt32.self)
        entry.storeBytes(of: deadline ?? 0, toByteOffset: 22, as: Int64.self)
        if let base = key.baseAddress {
            (entry + Self.headerBytes).copyMemory(from: base, byteCount: key.count)
        }
        if let base = value.baseAddress {
            (entry + Self.headerBytes + key.count).copyMemory(from: base, byteCount: value.count)
        }
        (entry + length - Self.trailerBytes).storeBytes(of: UInt32(length), as: UInt32.self)
        self.count += length
    }

    /// Makes room for `bytes` more, first reclaiming discarded space at the front, then doubling.
    private mutating func reserve(_ bytes: Int) {
        guard self.count + bytes > self.capacity else { return }
        if self.start > 0 {
            (self.storage).copyMemory(from: self.storage + self.start, byteCount: self.count - self.start)
            self.count -= self.start
            self.start = 0
            if self.count + bytes <= self.capacity { return }
        }
        let newCapacity = max(self.capacity * 2, self.count + bytes)
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        bigger.copyMemory(from: self.storage, byteCount: self.count)
        self.storage.deallocate()
        self.storage = bigger
        self.capacity = newCapacity
    }

    private func entry(at offset: Int) -> UndoEntry {
        let entry = self.storage + offset
        let keyLength = Int(entry.loadUnaligned(fromByteOffset: 14, as: UInt32.self))
        let valueLength = Int(entry.loadUnaligned(fromByteOffset: 18, as: UInt32.self))
        return UndoEntry(
            sequence: entry.loadUnaligned(fromByteOffset: 4, as: UInt64.self),
            kind: UndoKind(rawValue: entry.loadUnaligned(fromByteOffset: 12, as: UInt8.self))!,
            key: UnsafeRawBufferPointer(start: entry + Self.headerBytes, count: keyLength),
            value: UnsafeRawBufferPointer(start: entry + Self.headerBytes + keyLength, count: valueLength),
            deadline: entry.loadUnaligned(fromByteOffset: 13, as: UInt8.self) == 0
                ? nil : entry.loadUnaligned(fromByteOffset: 22, as: Int64.self))
    }

    /// The newest entry (valid until the next change), or nil.
    var last: UndoEntry? {
        guard !self.isEmpty else { return nil }
        let length = Int((self.storage + self.count - Self.trailerBytes).loadUnaligned(as: UInt32.self))
        return self.entry(at: self.count - length)
    }

    /// The oldest entry, or nil.
    var first: UndoEntry? {
        guard !self.isEmpty else { return nil }
        return self.entry(at: self.start)
    }

    mutating func removeLast() {
        precondition(!self.isEmpty)
        let length = Int((self.storage + self.count - Self.trailerBytes).loadUnaligned(as: UInt32.self))
        if (self.storage + self.count - length).loadUnaligned(fromByteOffset: 12, as: UInt8.self) == UndoKind.clear.rawValue {
            self.clearCount -= 1
        }
        if self.collectionCount > 0 { self.releaseReference(self.storage + self.count - length) }
        self.count -= length
        self.resetIfEmpty()
    }

    mutating func removeFirst() {
        precondition(!self.isEmpty)
        let entry = self.storage + self.start
        if entry.loadUnaligned(fromByteOffset: 12, as: UInt8.self) == UndoKind.clear.rawValue {
            self.clearCount -= 1
        }
        if self.collectionCount > 0 { self.releaseReference(entry) }
        self.start += Int(entry.loadUnaligned(as: UInt32.self))
        self.resetIfEmpty()
    }

    /// Drops everything (the mutations are durable).
    mutating func removeAll() {
        var offset = self.start
        while self.collectionCount > 0 && offset < self.count {
            self.releaseReference(self.storage + offset)
            offset += Int((self.storage + offset).loadUnaligned(as: UInt32.self))
        }
        self.start = 0
        self.count = 0
        self.clearCount = 0
        self.resetIfEmpty()
    }

    private mutating func resetIfEmpty() {
        assert(self.start <= self.count && self.count <= self.capacity)
        guard self.start == self.count else { return }
        self.start = 0
        self.count = 0
        if self.capacity > Self.capacityKept {
            self.storage.deallocate()
            self.storage = .allocate(byteCount: Self.initialCapacity, alignment: 8)
            self.capacity = Self.initialCapacity
        }
    }
}

/// Whether a key exists and when it expires.
public enum KeyExpiry: Sendable, Equatable {
    /// No such key (or its deadline passed).
    case missing
    /// The key has no deadline.
    case never
    /// The key's absolute deadline, Unix milliseconds.
    case at(milliseconds: Int64)
}

/// What one ``DurableStore/expireCycle(now:budget:)`` did.
public struct ExpireCycleResult: Sendable, Equatable {
    /// Keys with a deadline looked at.
    public var examined: Int
    /// Of those, removed because their deadline had passed.
    public var expired: Int

    public init(examined: Int, expired: Int) {
        self.examined = examined
        self.expired = expired
    }

    /// More than 10% of what was examined had expired: another step in the same tick is likely to find
    /// more (Redis's acceptable-stale threshold).
    public var worthRepeating: Bool { self.examined > 0 && self.expired * 10 > self.examined }
}
