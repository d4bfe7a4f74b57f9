// Typed values in the keyspace: TYPE, OBJECT ENCODING, collections held by reference in their slots
// (layout in KeyspaceMemory.swift), element effects, and RENAME/COPY for values of any type. Expiry,
// eviction, sampling, SCAN and the byte account need nothing of their own: a collection is an entry like
// any other, whose bytes are its object's ``CollectionValue/usedBytes``.

extension Keyspace {
    /// The type of entry `index`'s value.
    @inline(__always)
    public func type(at index: Int) -> ValueType {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        return KeyTable.type(self.table.pointee.slot(index))
    }

    /// The collection entry `index` holds, or nil for a string.
    public func collection(at index: Int) -> (any CollectionValue)? {
        precondition(index >= 0 && index < self.count, "entry index out of range")
        let slot = self.table.pointee.slot(index)
        return Slot.isCollection(slot) ? KeyTable.object(slot) : nil
    }

    /// OBJECT ENCODING for entry `index`: the collection's own, or what Redis would hold for the string
    /// (edited in place by APPEND, SETRANGE or SETBIT: `raw`; else a 64-bit integer within 20 bytes:
    /// `int`; up to 44 bytes: `embstr`; else `raw`).
    public func encoding(at index: Int) -> String {
        if let object = self.collection(at: index) { return object.encoding }
        if Slot.isRaw(self.table.pointee.slot(index)) { return "raw" }
        let value = self.value(at: index)
        if value.count <= 20, Self.isCanonicalInteger(value) { return "int" }
        return value.count <= 44 ? "embstr" : "raw"
    }

    /// Redis's test for a string it stores as an integer: optional `-`, digits, no leading zero (other
    /// than `0` itself), within Int64.
    static func isCanonicalInteger(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var digits = bytes[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard let first = digits.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return false }
        if first == UInt8(ascii: "0") { return digits.count == 1 && !negative }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return false }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            guard !o1, !o2 else { return false }
            value = next
        }
        return true
    }

    /// Inserts or overwrites `key` with `object` (retained, not copied) and `deadline`.
    /// - Returns: the entry index.
    @discardableResult
    public func set(_ key: UnsafeRawBufferPointer, collection object: any CollectionValue, deadline: Int64?) -> Int {
        let table = self.table
        let (found, hash) = table.pointee.lookup(key, rehashSteps: KeyTable.bucketsMovedPerOperation)
        let index: Int
        if found >= 0 {
            index = found
            table.pointee.setCollection(index, object)
        } else {
            index = table.pointee.insertCollection(key, hash: hash, object)
        }
        table.pointee.setDeadline(index, deadline)
        return index
    }

    /// Runs `body` on the collection of entry `index` (which may change it) and reports the change of its
    /// ``CollectionValue/usedBytes`` to the keyspace's account: the one way to change a held collection
    /// other than ``applyElement(_:type:_:position:_:)``. A collection left empty stays (the caller
    /// removes the key, as Redis deletes a key whose last element goes).
    public func mutateCollection<R>(at index: Int, _ body: (any CollectionValue) throws -> R) rethrows -> R {
        let slot = self.table.pointee.slot(index)
        precondition(Slot.isCollection(slot), "mutateCollection(at:) of a string")
        if let part = self.table.pointee.capture { part.willChange(index) }  // SnapshotCapture.swift
        slot.storeBytes(of: self.table.pointee.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        let object = KeyTable.object(slot)
        let before = object.usedBytes
        defer { self.table.pointee.collectionBytes += object.usedBytes - before }
        return try body(object)
    }

    /// What ``applyElement(_:type:_:position:_:)`` did.
    public enum ElementOutcome: Equatable, Sendable {
        /// The key holds another type: nothing changed.
        case wrongType(ValueType)
        /// The effect changed nothing (a removal from an absent key, an add of what was there).
        case unchanged
        /// The element changed; `keyRemoved` when that left the collection empty and the key went.
        case changed(keyRemoved: Bool)
    }

    /// Applies one element effect to the collection at `key` (replay, load, rollback; commands through
    /// the store): an add to an absent key first creates an empty value of `type` (registered with
    /// ``CollectionTypes``), and a removal that leaves the collection empty removes the key.
    @discardableResult
    public func applyElement(
        _ key: UnsafeRawBufferPointer, type: ValueType, _ operation: ElementOperation, position: Int64, _ element: Element
    ) -> ElementOutcome {
        var ignored = ElementInverse.ignoring
        return self.applyElement(key, type: type, operation, position: position, element, inverse: &ignored)
    }

    /// ``applyElement(_:type:_:position:_:)``, recording into `inverse` the effect that undoes it
    /// (``CollectionValue/apply(_:position:_:inverse:)``).
    public func applyElement(
        _ key: UnsafeRawBufferPointer, type: ValueType, _ operation: ElementOperation, position: Int64, _ element: Element,
        inverse: inout ElementInverse
    ) -> ElementOutcome {
        self.applyElement(key, at: self.find(key), type: type, operation, position: position, element, inverse: &inverse)
    }

    /// ``applyElement(_:type:_:position:_:inverse:)`` for a caller that has just looked `key` up:
    /// `found` is its entry index, nil when absent (one hash lookup fewer per element write).
    func applyElement(
        _ key: UnsafeRawBufferPointer, at found: Int?, type: ValueType, _ operation: ElementOperation, position: Int64,
        _ element: Element, inverse: inout ElementInverse
    ) -> ElementOutcome {
        var index = found ?? -1
        if index >= 0 {
            let held = self.type(at: index)
            guard held == type else { return .wrongType(held) }
        } else {
            guard operation == .add else { return .unchanged }
            index = self.insertEmpty(key, type: type)
        }
        let (changed, emptied) = self.mutateCollection(at: index) { object in
            (object.apply(operation, position: position, element, inverse: &inverse), object.count == 0)
        }
        if emptied {
            // Emptied, or created above for an add that changed nothing (an insert past the end): no key.
            self.remove(at: index)
            return changed ? .changed(keyRemoved: true) : .unchanged
        }
        self.compactCollection(at: index)
        return changed ? .changed(keyRemoved: false) : .unchanged
    }

    /// Stores an empty collection of `type` at the absent `key`. - Returns: its entry index. (A function
    /// of its own so that no reference to the new object outlives it: see ``compactCollection(at:)``.)
    private func insertEmpty(_ key: UnsafeRawBufferPointer, type: ValueType) -> Int {
        guard let empty = CollectionTypes.makeEmpty(type) else {
            preconditionFailure("no collection type registered for \(type)")
        }
        return self.set(key, collection: empty, deadline: nil)
    }

    /// Keeps a small set or sorted set at entry `index` in its slot's compact form (no object) when
    /// nothing but the keyspace holds it (KeyTable+Compact.swift); any other value stays as it is.
    public func compactCollection(at index: Int) {
        KeyTable.compactIfUnshared(self.table.pointee.slot(index))
    }

    /// RENAME: moves the value and deadline of `source` to `destination` (replacing whatever that held;
    /// a collection moves by reference, nothing is copied). - Returns: false when `source` is absent.
    @discardableResult
    public func rename(_ source: UnsafeRawBufferPointer, to destination: UnsafeRawBufferPointer) -> Bool {
        guard let index = self.find(source) else { return false }
        if source.elementsEqual(destination) { return true }
        let deadline = self.deadline(at: index)
        if let object = self.collection(at: index) {
            self.remove(at: index)
            self.set(destination, collection: object, deadline: deadline)
        } else {
            // Redis moves the object itself: a string edited in place stays `raw`.
            let (value, raw) = ([UInt8](self.value(at: index)), Slot.isRaw(self.table.pointee.slot(index)))
            self.remove(at: index)
            let moved = value.withUnsafeBytes { self.set(destination, $0, deadline: deadline) }
            if raw { self.table.pointee.markRaw(moved) }
        }
        return true
    }

    /// COPY: `destination` gets a deep copy of the value and the deadline of `source`, replacing whatever
    /// it held. - Returns: false when `source` is absent.
    @discardableResult
    public func copy(_ source: UnsafeRawBufferPointer, to destination: UnsafeRawBufferPointer) -> Bool {
        guard let index = self.find(source) else { return false }
        if source.elementsEqual(destination) { return true }
        let deadline = self.deadline(at: index)
        if let object = self.collection(at: index) {
            self.set(destination, collection: object.copy(), deadline: deadline)
        } else {
            // Redis's copy of a `raw` string is `raw` too.
            let (value, raw) = ([UInt8](self.value(at: index)), Slot.isRaw(self.table.pointee.slot(index)))
            let copied = value.withUnsafeBytes { self.set(destination, $0, deadline: deadline) }
            if raw { self.table.pointee.markRaw(copied) }
        }
        return true
    }

    /// Collections held (INFO, tests).
    public var collectionCount: Int { self.table.pointee.collectionCount }
}
