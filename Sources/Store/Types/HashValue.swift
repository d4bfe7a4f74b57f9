// A hash (HSET … HSCAN): field → value, both byte strings. Two encodings, chosen as Redis 7.0 chooses
// them so that OBJECT ENCODING answers alike: `listpack` — fields and values alternating in one
// ``PackedEntries`` block, in insertion order (a field set again keeps its place) — while the hash has
// at most `hash-max-listpack-entries` fields and no field or value longer than
// `hash-max-listpack-value` bytes; past either, `hashtable` (HashTable.swift), for good: as in Redis a
// hash never converts back while it lives (a reload from `database.txt` rebuilds it compact if it fits).
// The conversion is one pass over at most the entries limit of small entries.

/// A hash value. Changed only through ``apply(_:position:_:)`` (element effects: add sets a field's
/// value, remove deletes a field); the reads below serve the commands.
public final class HashValue: CollectionValue {
    /// The large encoding, boxed: a compact hash (most hashes) carries one word for it, not the table's six.
    private final class Large {
        @exclusivity(unchecked) var table: FieldTable
        init(_ table: consuming FieldTable) { self.table = table }
    }

    // Unchecked exclusivity: touched only by this class's own non-reentrant methods on one thread, and a
    // dynamic check per access cost a write more than its table work.
    @exclusivity(unchecked) private var packed = PackedEntries()
    @exclusivity(unchecked) private var large: Large?

    /// The object's own bytes (header and stored properties), counted once per hash.
    static let objectBytes = 40
    /// The box of the large encoding.
    static let largeBytes = 64

    public init() {}

    public var type: ValueType { .hash }
    public var encoding: String { self.large == nil ? "listpack" : "hashtable" }
    public var count: Int { self.large?.table.count ?? self.packed.count / 2 }
    public var usedBytes: Int {
        guard let large else { return Self.objectBytes + self.packed.byteCount }
        return Self.objectBytes + Self.largeBytes + large.table.usedBytes
    }

    public func copy() -> any CollectionValue {
        let copy = HashValue()
        if let large = self.large {
            copy.large = Large(large.table.duplicate())
        } else {
            copy.packed = self.packed.duplicate()
        }
        return copy
    }

    /// Streams field/value pairs: insertion order while compact, table order once large.
    public func forEachElement(_ body: (Element) -> Bool) {
        if let large = self.large {
            large.table.forEach { field, value in body(Element(field, value)) }
            return
        }
        var field: UnsafeRawBufferPointer?
        self.packed.forEach { bytes, _ in
            guard let pending = field else {
                field = bytes
                return true
            }
            field = nil
            return body(Element(pending, bytes))
        }
    }

    @discardableResult
    public func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse
    ) -> Bool {
        switch operation {
        case .add: return self.set(element.first, element.second, inverse: &inverse)
        case .remove: return self.remove(element.first, inverse: &inverse)
        }
    }

    private func set(_ field: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        if let large = self.large { return large.table.set(field, value, inverse: &inverse) }
        let limits = EncodingLimits.shared
        let longest = limits.hashMaxListpackValue.current
        if field.count > longest || value.count > longest {
            // Redis converts before storing an entry too long for a listpack.
            self.convert()
            return self.large!.table.set(field, value, inverse: &inverse)
        }
        if let offset = self.packed.firstOffset(of: field, stride: 2) {
            let valueOffset = self.packed.entry(atOffset: offset).next
            let old = self.packed.entry(atOffset: valueOffset).bytes
            if old.elementsEqual(value) { return false }
            inverse.record(.add, field, old)
            self.packed.replace(atOffset: valueOffset, with: value)
            return true
        }
        inverse.record(.remove, field)
        self.packed.append(field)
        self.packed.append(value)
        if self.packed.count / 2 > limits.hashMaxListpackEntries.current { self.convert() }
        return true
    }

    private func remove(_ field: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        if let large = self.large { return large.table.remove(field, inverse: &inverse) }
        guard let offset = self.packed.firstOffset(of: field, stride: 2) else { return false }
        if inverse.isRecording {
            inverse.record(.add, field, self.packed.entry(atOffset: self.packed.entry(atOffset: offset).next).bytes)
        }
        self.packed.remove(atOffset: offset, entries: 2)
        return true
    }

    /// Turns the compact block into the table, for good.
    private func convert() {
        var table = FieldTable(reservingCapacityFor: self.count + 1)
        self.forEachElement { element in
            _ = table.set(element.first, element.second)
            return true
        }
        self.large = Large(table)
        self.packed = PackedEntries()
    }

    // MARK: - Reads

    /// Calls `body` with `field`'s value (borrowed for the call), or nil when the hash has no such field.
    public func withValue<R>(of field: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        if let large = self.large {
            guard let entry = large.table.entry(for: field) else { return try body(nil) }
            return try body(FieldTable.value(of: entry))
        }
        guard let offset = self.packed.firstOffset(of: field, stride: 2) else { return try body(nil) }
        return try body(self.packed.entry(atOffset: self.packed.entry(atOffset: offset).next).bytes)
    }

    /// A copy of `field`'s value, or nil.
    public func value(of field: ArraySlice<UInt8>) -> [UInt8]? {
        field.withUnsafeBytes { raw in self.withValue(of: raw) { $0.map { [UInt8]($0) } } }
    }

    /// Whether the hash has `field`.
    public func contains(_ field: ArraySlice<UInt8>) -> Bool {
        field.withUnsafeBytes { raw in self.withValue(of: raw) { $0 != nil } }
    }

    /// HRANDFIELD's draws: `count` pairs, independent draws (repeats possible) or, with `distinct`,
    /// that many different fields in no particular order (every field, in the hash's order, when the
    /// hash has no more than `count`).
    public func randomElements<G: RandomNumberGenerator>(
        _ count: Int, distinct: Bool, using generator: inout G, _ body: (Element) -> Void
    ) {
        let size = self.count
        guard size > 0, count > 0 else { return }
        if distinct && count >= size {
            // The whole hash, in its order (as Redis answers a count at least the size).
            self.forEachElement { body($0); return true }
            return
        }
        if let large = self.large {
            if !distinct {
                for _ in 0..<count { self.emitSlot(large.table.randomSlot(using: &generator), body) }
            } else if count * 3 > size {
                var slots = large.table.occupiedSlots()
                for i in 0..<count {
                    slots.swapAt(i, Int.random(in: i..<slots.count, using: &generator))
                    self.emitSlot(slots[i], body)
                }
            } else {
                var chosen = Set<Int>()
                while chosen.count < count {
                    let slot = large.table.randomSlot(using: &generator)
                    if chosen.insert(slot).inserted { self.emitSlot(slot, body) }
                }
            }
            return
        }
        // Compact: the field offsets once, then draws by index.
        var offsets: [Int] = []
        offsets.reserveCapacity(size)
        var index = 0
        self.packed.forEach { _, offset in
            if index & 1 == 0 { offsets.append(offset) }
            index += 1
            return true
        }
        if !distinct {
            for _ in 0..<count { self.emitOffset(offsets[Int.random(in: 0..<size, using: &generator)], body) }
        } else {
            let chosen = min(count, size)
            for i in 0..<chosen {
                offsets.swapAt(i, Int.random(in: i..<size, using: &generator))
                self.emitOffset(offsets[i], body)
            }
        }
    }

    private func emitSlot(_ slot: Int, _ body: (Element) -> Void) {
        let entry = self.large!.table.entry(atSlot: slot)!
        body(Element(FieldTable.field(of: entry), FieldTable.value(of: entry)))
    }

    private func emitOffset(_ offset: Int, _ body: (Element) -> Void) {
        let (field, next) = self.packed.entry(atOffset: offset)
        body(Element(field, self.packed.entry(atOffset: next).bytes))
    }

    /// One HSCAN step: compact, every pair at once and cursor 0 (as Redis answers a listpack hash);
    /// large, about `count` pairs from `cursor`. - Returns: the next cursor (0: done).
    public func scan(cursor: UInt64, count: Int, _ body: (Element) -> Void) -> UInt64 {
        guard let large = self.large else {
            self.forEachElement { body($0); return true }
            return 0
        }
        return large.table.scan(cursor: cursor, count: count) { field, value in body(Element(field, value)) }
    }
}
