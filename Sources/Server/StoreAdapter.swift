// The data store the kv commands see (Sources/Services/DataStore.swift), over the durable store:
// each operation is the store's, and each mutation's log sequence is noted so that the connection
// can hold the replies that acknowledge it (Persistence.swift). Nothing else: no limits, no
// statistics, no timers.

import Services
import Store

/// ``DataStore`` over a ``DurableStore``. Loop thread only.
final class StoreAdapter: DataStore {
    let store: DurableStore
    /// The newest mutation made through this adapter (a kv connection compares it before and after
    /// a batch). Touched at every mutation, loop thread only and never re-entered: no dynamic
    /// exclusivity check (a runtime call per access).
    @exclusivity(unchecked) private(set) var lastMutationSequence: UInt64 = 0

    init(store: DurableStore) { self.store = store }

    var count: Int { self.store.count }

    func withString(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void> {
        key.withUnsafeBytes { k in self.store.withString(forKey: k, body) }
    }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64)
        throws(StoreError)
    {
        // The closures only hold the pointers: a typed error cannot leave `withUnsafeBytes` (it
        // rethrows untyped), so the store's outcome comes out as a value, caught where it is made.
        let outcome = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v -> Result<UInt64, StoreError> in
                do throws(StoreError) {
                    return .success(try self.store.set(v, forKey: k, deadline: deadline, now: now))
                } catch {
                    return .failure(error)
                }
            }
        }
        switch outcome {
        // A deadline already past removes the key, or changes nothing: the store answers with the
        // durable sequence then, which must not move this one back.
        case .success(let sequence): self.noteMutation(sequence)
        case .failure(let error): throw error
        }
    }

    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool {
        guard let sequence = try self.store.removeValue(forKey: key) else { return false }
        self.noteMutation(sequence)
        return true
    }

    func removeAll() throws(StoreError) { self.noteMutation(try self.store.removeAll()) }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry { self.store.expiry(forKey: key, now: now) }

    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool {
        let sequence =
            if let deadline {
                try self.store.expire(key, at: deadline, now: now)
            } else {
                try self.store.persist(key, now: now)
            }
        guard let sequence else { return false }
        self.noteMutation(sequence)
        return true
    }

    func randomKey(now: Int64) -> [UInt8]? { self.store.randomKey(now: now) }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        self.store.scan(cursor: cursor, count: count, pattern: pattern, type: type, now: now)
    }

    func inspect(_ key: [UInt8], now: Int64) -> KeyFacts? {
        guard let type = self.store.type(ofKey: key, now: now), let encoding = self.store.encoding(ofKey: key, now: now) else {
            return nil
        }
        self.store.lruClock = Housekeeping.currentLRUClock()  // to the moment of asking, not the last timer tick
        let ticks = self.store.idleTicks(forKey: key, now: now) ?? 0
        return KeyFacts(
            type: type, encoding: encoding,
            idleSeconds: Int(UInt64(ticks) * Housekeeping.lruClockTickNanoseconds / 1_000_000_000),
            usedBytes: self.store.usedBytes(forKey: key, now: now) ?? 0)
    }

    func collection(forKey key: [UInt8], type: ValueType, now: Int64) -> TypedLookup<any CollectionValue> {
        key.withUnsafeBytes { k in self.store.collection(forKey: k, type: type, now: now) }
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType,
               now: Int64) throws(StoreError) -> ElementWrite {
        let result = key.withUnsafeBytes { k in
            Result { () throws(StoreError) in
                try self.store.apply(operation, position: position, element, to: k, type: type, now: now)
            }
        }
        let write = try result.get()
        if case .changed(let sequence, _, _) = write { self.noteMutation(sequence) }
        return write
    }

    func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64)
        throws(StoreError)
    {
        self.noteMutation(try self.store.setCollection(object, forKey: key, deadline: deadline, now: now))
    }

    func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool, now: Int64) throws(StoreError) -> Bool {
        let sequence =
            if copying {
                try self.store.copy(source, to: destination, now: now)
            } else {
                try self.store.rename(source, to: destination, now: now)
            }
        guard let sequence else { return false }
        self.noteMutation(sequence)
        return true
    }

    func atomically(_ body: () -> Void) {
        if self.store.inAtomicGroup { return body() }  // joins the open unit (a multi-field HSET inside EXEC)
        self.store.beginAtomicGroup()
        body()
        self.store.endAtomicGroup()
    }

    @inline(__always)
    func noteMutation(_ sequence: UInt64) {
        self.lastMutationSequence = max(self.lastMutationSequence, sequence)
    }
}
