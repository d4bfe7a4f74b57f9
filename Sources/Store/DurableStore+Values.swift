// The store's typed operations: what the command layer calls for TYPE, OBJECT ENCODING, WRONGTYPE,
// collections' element effects, whole values, RENAME and COPY of any type; and their replay (log kinds
// 8-11, Record.swift) and rollback (UndoLog.swift kinds `collection` and `element`). Loop thread, as
// the rest of ``DurableStore``; replay runs on whichever thread owns the keyspace it is given.

import Glibc

/// What a typed read found.
public enum TypedLookup<Found> {
    /// No such key (or its deadline passed).
    case missing
    /// The key holds another type: the command answers ``WrongTypeError/message``.
    case wrongType(ValueType)
    case found(Found)
}

/// What ``DurableStore/apply(_:position:_:to:type:now:)`` did.
public enum ElementWrite: Equatable, Sendable {
    /// The key holds another type: nothing changed, nothing logged.
    case wrongType(ValueType)
    /// The effect changed nothing: nothing logged.
    case unchanged
    /// Applied and logged: acknowledge once ``DurableStore/durableSequence`` reaches `sequence`.
    /// `keyRemoved`: the collection became empty and the key went. `replaced`: an add replaced what
    /// the element held (a hash field's value, a member's score) rather than adding an element.
    case changed(sequence: UInt64, keyRemoved: Bool, replaced: Bool)
}

extension DurableStore {
    // MARK: - Typed reads

    /// TYPE: the type of `key`'s value at `now`, or nil when absent. Not an access.
    public func type(ofKey key: [UInt8], now: Int64) -> ValueType? {
        key.withUnsafeBytes { raw in self.liveIndex(raw, now: now, touching: false).map { self.keyspace.type(at: $0) } }
    }

    /// OBJECT ENCODING: what Redis would report for `key`'s value, or nil when absent. Not an access.
    public func encoding(ofKey key: [UInt8], now: Int64) -> String? {
        key.withUnsafeBytes { raw in self.liveIndex(raw, now: now, touching: false).map { self.keyspace.encoding(at: $0) } }
    }

    /// The typed read for strings: `body` sees the value's bytes without a copy (it must not call back
    /// into the store: the bytes move on the next mutation), or WRONGTYPE for a collection.
    public func withString<R>(
        forKey key: UnsafeRawBufferPointer, now: Int64, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> TypedLookup<R> {
        guard let index = self.liveIndex(key, now: now) else { return .missing }
        let slot = self.keyspace.table.pointee.slot(index)
        guard !Slot.isCollection(slot) else { return .wrongType(KeyTable.type(slot)) }
        return .found(try body(KeyTable.value(slot)))
    }

    /// ``withString(forKey:now:_:)`` for GET's hot path: one lookup tells a hit, a miss and a
    /// collection apart, the clock is read only if the key has a deadline, and the result's type is
    /// concrete (a generic one is looked up in the runtime's metadata cache at every call).
    public func withString(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void> {
        guard let index = self.liveIndex(key, now: nil) else { return .missing }
        let slot = self.keyspace.table.pointee.slot(index)
        guard !Slot.isCollection(slot) else { return .wrongType(KeyTable.type(slot)) }
        body(KeyTable.value(slot))
        return .found(())
    }

    /// The typed read for collections: `body` sees the collection of `type` held at `key` (it must not
    /// change it or call back into the store), or WRONGTYPE when the key holds another type. The one
    /// place a command learns that a key has the wrong type.
    public func withCollection<R>(
        forKey key: UnsafeRawBufferPointer, type: ValueType, now: Int64, _ body: (any CollectionValue) throws -> R
    ) rethrows -> TypedLookup<R> {
        guard let index = self.liveIndex(key, now: now) else { return .missing }
        let held = self.keyspace.type(at: index)
        guard held == type, let object = self.keyspace.collection(at: index) else { return .wrongType(held) }
        self.collectionHint = index
        return .found(try body(object))
    }

    /// ``withCollection(forKey:type:now:_:)`` returning the collection itself: not generic, so that a
    /// caller in another module pays no run-time instantiation of `TypedLookup<R>`'s metadata.
    /// Tries the entry the last collection read found first (``hintedLiveIndex(_:now:)``): a queue's
    /// commands read one key over and over, and LPUSH reads its list's length right after writing it.
    public func collection(forKey key: UnsafeRawBufferPointer, type: ValueType, now: Int64) -> TypedLookup<any CollectionValue> {
        guard let index = self.hintedLiveIndex(key, now: now) else { return .missing }
        let held = self.keyspace.type(at: index)
        guard held == type, let object = self.keyspace.collection(at: index) else { return .wrongType(held) }
        self.collectionHint = index
        return .found(object)
    }

    // MARK: - Typed mutations

    /// Applies one element effect to the collection of `type` at `key` (an add to an absent key creates
    /// it; a removal that empties it removes the key) and logs it (Record.swift kind 9). The collection
    /// records the effect that undoes it while it makes the change (``ElementInverse``): the store keeps
    /// that to roll the change back if the log fails. One lookup of the key, one of the element.
    /// - Throws: ``StoreError`` when the log cannot take writes or the record is too large.
    public func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, to key: UnsafeRawBufferPointer,
        type: ValueType, now: Int64
    ) throws(StoreError) -> ElementWrite {
        try self.checkWritable(recordBytes: key.count + Record.elementHeaderBytes + element.first.count + element.second.count)
        return self.applyWritable(operation, position: position, element, to: key, type: type, now: now)
    }

    /// ``apply(_:position:_:to:type:now:)`` of an owned effect.
    public func apply(_ effect: ElementEffect, to key: [UInt8], type: ValueType, now: Int64) throws(StoreError) -> ElementWrite {
        try self.checkWritable(recordBytes: key.count + Record.elementHeaderBytes + effect.first.count + effect.second.count)
        return key.withUnsafeBytes { raw in
            effect.withElement { element in
                self.applyWritable(effect.operation, position: effect.position, element, to: raw, type: type, now: now)
            }
        }
    }

    private func applyWritable(
        _ operation: ElementOperation, position: Int64, _ element: Element, to key: UnsafeRawBufferPointer,
        type: ValueType, now: Int64
    ) -> ElementWrite {
        let index = self.hintedLiveIndex(key, now: now)
        if let index, self.keyspace.type(at: index) != type { return .wrongType(self.keyspace.type(at: index)) }
        let deadline = index.flatMap { self.keyspace.deadline(at: $0) }
        self.inverse.reset()
        let outcome = self.keyspace.applyElement(key, at: index, type: type, operation, position: position, element,
                                                 inverse: &self.inverse)
        guard case .changed(let keyRemoved) = outcome else { return .unchanged }
        precondition(self.inverse.isRecorded, "a \(type) changed without recording its inverse")
        let sequence = self.journal.nextSequence()
        self.inverse.withRest(type: type) { rest in
            self.undo.pointee.pushElement(sequence: sequence, key: key, inverse: rest, deadline: deadline)
        }
        Record.appendElement(key: key, type: type, operation, position: position, element,
                             to: &self.journal.pending.pointee.buffer)
        self.journal.pending.pointee.bufferedRecords += 1
        let replaced = operation == .add && self.inverse.operation == .add
        return .changed(sequence: sequence, keyRemoved: keyRemoved, replaced: replaced)
    }

    /// ``liveIndex(_:now:touching:)`` that first tries the entry the last collection read found: a
    /// command reads its collection, then writes to it (RPOP, LPUSH to a list it checked, HSET after
    /// HGET in a script), and the second hashing of the same key is then skipped. The hint is only a
    /// guess, checked by comparing the entry's key: keys are unique, so an entry holding `key` is
    /// its entry, whatever moved since (entries `0..<count` are all live, KeyTable.swift).
    @inline(__always)
    private func hintedLiveIndex(_ key: UnsafeRawBufferPointer, now: Int64) -> Int? {
        let table = self.keyspace.table
        let hint = self.collectionHint
        guard hint >= 0 && hint < table.pointee.count else { return self.liveIndex(key, now: now) }
        let slot = table.pointee.slot(hint)
        guard Int(slot.load(fromByteOffset: Slot.keyLength, as: UInt32.self)) == key.count,
            key.count == 0 || memcmp(KeyTable.bytes(slot), key.baseAddress!, key.count) == 0
        else { return self.liveIndex(key, now: now) }
        if let deadline = table.pointee.deadline(ofEntry: hint), now > deadline {
            self.expireEntry(hint)
            return nil
        }
        slot.storeBytes(of: table.pointee.lruClock, toByteOffset: Slot.lastAccess, as: UInt32.self)
        return hint
    }

    /// Stores a whole collection at `key` (replacing any value; RESTORE, SORT … STORE, tests), logged as
    /// one group: its kind-8 record with `deadline`, then a kind-9 add per element. `object` is held,
    /// not copied: the caller hands it over. An empty `object` removes the key instead.
    /// - Returns: the sequence number (``durableSequence`` when nothing changed).
    /// - Throws: ``StoreError`` when the log cannot take writes, or the value's records would not fit in one
    ///   frame (1 GiB, ``Record/maximumPayloadBytes``): logged record by record it would not be atomic, and a
    ///   crash could replay part of it, so it is refused whole.
    public func setCollection(
        _ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64
    ) throws(StoreError) -> UInt64 {
        try self.checkWritable(recordBytes: Self.wholeValueBytes(object, keyCount: key.count))
        if object.count == 0 || deadline.map({ $0 <= now }) == true {
            return key.withUnsafeBytes { raw in self.liveIndex(raw, now: now).map { self.logRemoval($0) } }
                ?? self.durableSequence
        }
        return key.withUnsafeBytes { raw in
            let sequence = self.journal.nextSequence()
            let previous = self.liveIndex(raw, now: now)
            self.undo.pointee.push(sequence: sequence, key: raw, previousAt: previous, in: self.keyspace.table)
            self.keyspace.set(raw, collection: object, deadline: deadline)
            let grouped = self.beginGroupUnlessOpen()
            Self.appendWholeValue(object, key: raw, deadline: deadline, to: &self.journal.pending.pointee.buffer)
            self.journal.pending.pointee.bufferedRecords += 1 + object.count
            if grouped { self.endAtomicGroup() }
            return sequence
        }
    }

    /// RENAME: moves `source`'s value (of any type; a collection by reference) and deadline to
    /// `destination`, replacing what it held. Logged as one kind-10 record.
    /// - Returns: the sequence number, or nil when `source` is absent.
    public func rename(_ source: [UInt8], to destination: [UInt8], now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: source.count + destination.count)
        return self.moveOrCopy(source, to: destination, kind: Record.kindRename, now: now)
    }

    /// COPY: a deep copy of `source`'s value (of any type) and deadline at `destination`, replacing what
    /// it held (the caller checks REPLACE). Logged as one kind-11 record.
    /// - Returns: the sequence number, or nil when `source` is absent.
    public func copy(_ source: [UInt8], to destination: [UInt8], now: Int64) throws(StoreError) -> UInt64? {
        try self.checkWritable(recordBytes: source.count + destination.count)
        return self.moveOrCopy(source, to: destination, kind: Record.kindCopy, now: now)
    }

    private func moveOrCopy(_ source: [UInt8], to destination: [UInt8], kind: UInt8, now: Int64) -> UInt64? {
        source.withUnsafeBytes { from in
            destination.withUnsafeBytes { to in
                // The destination first: one past its deadline is removed (logged), and a removal moves the
                // last entry into its slot, so no index looked up before it may be used after it.
                if source != destination { _ = self.liveIndex(to, now: now) }
                guard self.liveIndex(from, now: now) != nil else { return nil }
                if source == destination { return self.durableSequence }
                let sequence = self.journal.nextSequence()
                // Rolled back newest first: (rename) the value moves back to the source, then the destination's
                // old state returns. The source's value is never held by reference (UndoLog.swift's invariant).
                let previous = self.keyspace.find(to)
                self.undo.pointee.push(sequence: sequence, key: to, previousAt: previous, in: self.keyspace.table)
                if kind == Record.kindRename { self.undo.pointee.pushMoved(sequence: sequence, source: from, destination: to) }
                if kind == Record.kindRename { self.keyspace.rename(from, to: to) } else { self.keyspace.copy(from, to: to) }
                Record.append(kind: kind, key: from, value: to, to: &self.journal.pending.pointee.buffer)
                self.journal.pending.pointee.bufferedRecords += 1
                return sequence
            }
        }
    }

    /// Opens an atomic group unless one is open. - Returns: whether it opened one (to close).
    private func beginGroupUnlessOpen() -> Bool {
        guard self.atomicGroupStart == nil else { return false }
        self.beginAtomicGroup()
        return true
    }

    /// The bytes of a whole value's records (its kind-8 frame and a kind-9 frame per element), as the
    /// members of the group frame that holds them; counting stops once past the frame limit.
    static func wholeValueBytes(_ object: any CollectionValue, keyCount: Int) -> Int {
        let perRecord = Record.frameHeaderBytes + Record.payloadHeaderBytes + keyCount
        var total = perRecord + 9
        object.forEachElement { element in
            total += perRecord + Record.elementHeaderBytes + element.first.count + element.second.count
            return total <= Record.maximumPayloadBytes
        }
        return total
    }

    /// Appends the records of a whole value: kind 8, then a kind-9 add per element (in the order
    /// ``CollectionValue/forEachElement(_:)`` gives, appended at the tail).
    static func appendWholeValue(
        _ object: any CollectionValue, key: UnsafeRawBufferPointer, deadline: Int64?, to buffer: inout LogBuffer
    ) {
        Record.valueRest(type: object.type, deadline: deadline).withUnsafeBytes { rest in
            Record.append(kind: Record.kindValue, key: key, value: rest, to: &buffer)
        }
        object.forEachElement { element in
            Record.appendElement(key: key, type: object.type, .add, position: -1, element, to: &buffer)
            return true
        }
    }

    // MARK: - Rollback and replay

    /// Undoes one typed undo entry (``rollBack(after:)`` calls it newest first).
    func rollBackTyped(_ entry: UndoEntry) {
        switch entry.kind {
        case .collection:
            self.keyspace.set(entry.key, collection: UndoLog.object(of: entry), deadline: entry.deadline)
        case .moved:
            _ = self.keyspace.rename(entry.value, to: entry.key)
        case .element:
            let keyExisted = self.keyspace.find(entry.key) != nil
            let rest = entry.value
            let type = ValueType(rawValue: rest[0])!
            let operation = ElementOperation(rawValue: rest[1])!
            let position = Int64(littleEndian: rest.loadUnaligned(fromByteOffset: 2, as: Int64.self))
            let firstLength = Int(rest.loadUnaligned(fromByteOffset: 10, as: UInt32.self).littleEndian)
            let first = UnsafeRawBufferPointer(rebasing: rest[Record.elementHeaderBytes..<(Record.elementHeaderBytes + firstLength)])
            let second = UnsafeRawBufferPointer(rebasing: rest[(Record.elementHeaderBytes + firstLength)...])
            self.keyspace.applyElement(entry.key, type: type, operation, position: position, Element(first, second))
            if !keyExisted, let index = self.keyspace.find(entry.key) {
                self.keyspace.setDeadline(at: index, entry.deadline)  // the effect had removed the key
            }
        default:
            preconditionFailure("not a typed undo entry")
        }
    }

    /// Applies a replayed record of kinds 8-11 (``apply(_:to:diskValues:)`` calls it for those). With
    /// `diskValues` (compaction), a value left on disk is forgotten when a typed value replaces it, and
    /// follows its key through a rename or a copy.
    static func applyTyped(_ record: Record.View, to keyspace: Keyspace, diskValues: DiskValues?) {
        switch record.kind {
        case Record.kindValue:
            diskValues?.forget(record.key)
            let (type, deadline) = Record.valueFields(record)
            guard let empty = CollectionTypes.makeEmpty(type) else {
                preconditionFailure("log holds a \(type) and no collection type is registered for it")
            }
            keyspace.set(record.key, collection: empty, deadline: deadline)
        case Record.kindElement:
            // No place to forget: an element record applies to a collection (or creates one where no
            // key is), never to a string a place could stand for.
            let fields = Record.elementFields(record)
            keyspace.applyElement(record.key, type: fields.type, fields.operation, position: fields.position,
                                  Element(fields.first, fields.second))
        case Record.kindRename, Record.kindCopy:
            let place = diskValues?.place(of: record.key)
            if record.kind == Record.kindRename {
                keyspace.rename(record.key, to: record.value)
                diskValues?.forget(record.key)
            } else {
                keyspace.copy(record.key, to: record.value)
            }
            diskValues?.forget(record.value)
            if let diskValues, let place, let index = keyspace.find(record.value) {
                DiskValues.File(values: diskValues, source: place.source).place(
                    record.value, offset: place.offset, length: place.length, deadline: keyspace.deadline(at: index),
                    in: keyspace)
            }
        default:
            preconditionFailure("record kind \(record.kind) is not typed")
        }
    }
}
