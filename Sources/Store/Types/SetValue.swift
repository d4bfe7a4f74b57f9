// The set type (SADD … SSCAN): Redis 7.0's two encodings. `intset` (IntSet.swift) while every member
// is a canonical 64-bit integer and there are at most `set-max-intset-entries` of them; `hashtable`
// (SetTable.swift) from the first other member, or past that count, and never back (as Redis). A set
// begins as an intset when its first member is an integer, as Redis's `setTypeCreate` does, so that
// OBJECT ENCODING answers what Redis answers after the same commands. Changed only through element
// effects (Value.swift): `.add` and `.remove` of one member.

import Synchronization

/// A set of byte strings.
public final class SetValue: CollectionValue {
    // Unchecked exclusivity: touched only by this class's own non-reentrant methods on one thread, and a
    // dynamic check per access cost a write more than its table work.
    // The object's one field: the intset, whose members sit in it while they fit (the object and a
    // small set's members are one allocation), or, once the set is a table, the table's retained
    // reference parked in it (IntSet's `init(holding:)`), so that no second field makes every set's
    // object a malloc size class bigger.
    @exclusivity(unchecked) private var ints = IntSet()

    /// What the object itself accounts for (its header and the intset's 24 bytes).
    private static let objectBytes = 40

    public init() {}

    deinit {
        if let held = self.ints.heldPointer { Unmanaged<SetTable>.fromOpaque(held).release() }
    }

    /// The table, once the set is one.
    @inline(__always)
    private var table: SetTable? {
        guard let held = self.ints.heldPointer else { return nil }
        return Unmanaged<SetTable>.fromOpaque(held).takeUnretainedValue()
    }

    /// Makes `table` the set's encoding (the intset's members must have been moved into it).
    private func adopt(_ table: SetTable) {
        self.ints = IntSet(holding: Unmanaged.passRetained(table).toOpaque())
    }

    public var type: ValueType { .set }
    public var encoding: String { self.table == nil ? "intset" : "hashtable" }
    public var count: Int { self.table?.count ?? self.ints.count }
    public var usedBytes: Int { Self.objectBytes + (self.table?.usedBytes ?? self.ints.allocatedBytes) }

    public func copy() -> any CollectionValue {
        let copy = SetValue()
        if let table = self.table {
            copy.adopt(table.duplicate())
        } else {
            copy.ints = self.ints.duplicate()
        }
        return copy
    }

    public func forEachElement(_ body: (Element) -> Bool) {
        self.forEachMember { body(Element($0)) }
    }

    @discardableResult
    public func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse
    ) -> Bool {
        let changed: Bool
        switch operation {
        case .add: changed = self.insert(element.first)
        case .remove: changed = self.remove(element.first)
        }
        if changed { inverse.record(operation == .add ? .remove : .add, element.first) }
        return changed
    }

    // MARK: - The keyspace's compact form (KeyTable+Compact.swift)

    /// What ``usedBytes`` reports for an intset of `count` members of `width` bytes (the keyspace keeps
    /// the same account for the members' block alone, so that a value's account is the same in both forms).
    static func compactBytes(count: Int, width: Int) -> Int {
        Self.objectBytes + (count * width > IntSet.inlineBytes ? count * width : 0)
    }

    /// The intset's count and width, or nil when the set is a table or empty (no compact form).
    var compactShape: (count: Int, width: Int)? {
        guard self.ints.heldPointer == nil, self.ints.count > 0 else { return nil }
        return (self.ints.count, self.ints.width)
    }

    /// Hands the intset's members over as a block (``compactShape`` must not be nil); the object is left
    /// empty, for its last reference to go.
    func detachCompact() -> (block: UnsafeMutableRawPointer, count: Int, width: Int) {
        self.ints.takeBlock()
    }

    /// A set of the members ``detachCompact()`` handed over, taking `block` over.
    convenience init(adopting block: UnsafeMutableRawPointer, count: Int, width: Int) {
        self.init()
        self.ints = IntSet(adopting: block, count: count, width: width)
    }

    // MARK: - Reads

    /// Whether `member` is in the set (SISMEMBER).
    public func contains(_ member: UnsafeRawBufferPointer) -> Bool {
        if let table { return table.contains(member) }
        guard let value = IntSet.canonicalInteger(member) else { return false }
        return self.ints.contains(value)
    }

    /// Calls `body` with each member, borrowed, until it returns false: an intset in ascending order,
    /// a table in its slot order (Redis's orders are the same kind: sorted, then hash order).
    public func forEachMember(_ body: (UnsafeRawBufferPointer) -> Bool) {
        if let table {
            table.forEach(body)
            return
        }
        for index in 0..<self.ints.count {
            guard IntSet.withDecimal(self.ints.value(at: index), body) else { return }
        }
    }

    /// The members, copied.
    public var members: [[UInt8]] {
        var members: [[UInt8]] = []
        members.reserveCapacity(self.count)
        self.forEachMember {
            members.append([UInt8]($0))
            return true
        }
        return members
    }

    /// A uniformly random member, copied (the set must not be empty).
    public func randomMember() -> [UInt8] {
        var generator = SetRandom()
        if let table { return [UInt8](table.randomMember(using: &generator)) }
        precondition(self.ints.count > 0, "random member of an empty set")
        let value = self.ints.value(at: Int.random(in: 0..<self.ints.count, using: &generator))
        return IntSet.withDecimal(value) { [UInt8]($0) }
    }

    /// One SSCAN step: an intset answers whole with cursor 0 (as Redis); a table walks from `cursor`.
    /// - Returns: the next cursor (0: done).
    public func scan(cursor: UInt64, count: Int, _ body: (UnsafeRawBufferPointer) -> Void) -> UInt64 {
        guard let table else {
            self.forEachMember {
                body($0)
                return true
            }
            return 0
        }
        return table.scan(cursor: cursor, count: count, body)
    }

    // MARK: - Changes

    private func insert(_ member: UnsafeRawBufferPointer) -> Bool {
        if let table { return table.insert(member) }
        if self.ints.count == 0 && IntSet.canonicalInteger(member) == nil {
            // A set whose first member is not an integer is a table from the start (setTypeCreate).
            let table = SetTable()
            self.adopt(table)
            return table.insert(member)
        }
        guard let value = IntSet.canonicalInteger(member) else {
            return self.convert(adding: 1).insert(member)
        }
        guard self.ints.insert(value) else { return false }
        if self.ints.count > min(EncodingLimits.shared.setMaxIntsetEntries.current, IntSet.maximumCount - 1) {
            self.convert(adding: 0)
        }
        return true
    }

    private func remove(_ member: UnsafeRawBufferPointer) -> Bool {
        if let table { return table.remove(member) }
        guard let value = IntSet.canonicalInteger(member) else { return false }
        return self.ints.remove(value)
    }

    /// Moves the intset's members into a table presized for `extra` more.
    @discardableResult
    private func convert(adding extra: Int) -> SetTable {
        let table = SetTable(expected: self.ints.count + extra)
        for index in 0..<self.ints.count {
            IntSet.withDecimal(self.ints.value(at: index)) { _ = table.insert($0) }
        }
        self.adopt(table)
        return table
    }
}

/// A fast generator for member sampling (wyrand over one process-wide atomic counter): SPOP and
/// SRANDMEMBER draw once per member, too often for a system call each. Not for secrets.
struct SetRandom: RandomNumberGenerator {
    private static let state: Atomic<UInt64> = {
        var system = SystemRandomNumberGenerator()
        return Atomic(system.next())
    }()

    mutating func next() -> UInt64 {
        let seed = Self.state.wrappingAdd(0xA076_1D64_78BD_642F, ordering: .relaxed).newValue
        let product = seed.multipliedFullWidth(by: seed ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }
}
