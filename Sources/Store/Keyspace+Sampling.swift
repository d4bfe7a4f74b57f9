// Sampling (random keys, keys with a deadline), SCAN and the LRU access clock of the keyspace.

extension Keyspace {
    // MARK: Sampling and scanning

    /// A uniformly random entry index in O(1), or nil when empty.
    public func randomEntry() -> Int? {
        let count = self.table.pointee.count
        guard count > 0 else { return nil }
        return Int(self.table.pointee.nextRandom() % UInt64(count))
    }

    /// The entry holding the deadline pair at `position` (0..<countWithDeadline): deadlines are dense, so
    /// a random position is an O(1) uniform sample of the keys that can expire.
    public func entryWithDeadline(atPosition position: Int) -> Int {
        precondition(position >= 0 && position < self.countWithDeadline, "deadline position out of range")
        return Int(self.table.pointee.deadlines.element(position).load(fromByteOffset: 8, as: UInt32.self))
    }

    /// A uniformly random position in the deadline array, or nil when no key has a deadline.
    public func randomDeadlinePosition() -> Int? {
        let count = self.table.pointee.deadlineCount
        guard count > 0 else { return nil }
        return Int(self.table.pointee.nextRandom() % UInt64(count))
    }

    /// One step of a SCAN: calls `body` with the entry index of every key in the bucket(s) `cursor` names,
    /// and returns the next cursor (0 when the scan is complete).
    ///
    /// The cursor counts with its bits reversed (Redis's dictScan): incrementing the high bits first means a
    /// bucket's expansions in a bigger table, and its folds into a smaller one, are all visited after
    /// buckets already done, so every key present for the whole scan is seen at least once even while the
    /// table grows or shrinks between calls (a key may be seen twice). While a resize runs both tables are
    /// visited: the smaller one's bucket, then every bucket of the larger one that folds onto it. `body`
    /// must not mutate the keyspace.
    public func scan(cursor: UInt64, _ body: (Int) -> Void) -> UInt64 {
        let table = self.table
        guard table.pointee.count > 0 else { return 0 }
        var v = cursor
        func visit(_ buckets: UnsafeMutablePointer<UInt32>, _ bucket: Int) {
            var link = buckets[bucket]
            while link != 0 {
                let index = Int(link) - 1
                link = table.pointee.slot(index).load(fromByteOffset: Slot.next, as: UInt32.self)
                body(index)
            }
        }
        guard let buckets1 = table.pointee.buckets1 else {
            let mask = UInt64(table.pointee.mask0)
            visit(table.pointee.buckets0, Int(v & mask))
            v |= ~mask
            return Self.reverse(Self.reverse(v) &+ 1)
        }
        var small = table.pointee.buckets0
        var smallMask = UInt64(table.pointee.mask0)
        var large = buckets1
        var largeMask = UInt64(table.pointee.mask1)
        if smallMask > largeMask {
            swap(&small, &large)
            swap(&smallMask, &largeMask)
        }
        visit(small, Int(v & smallMask))
        repeat {
            visit(large, Int(v & largeMask))
            v |= ~largeMask
            v = Self.reverse(Self.reverse(v) &+ 1)
        } while v & (smallMask ^ largeMask) != 0
        return v
    }

    @inline(__always)
    static func reverse(_ value: UInt64) -> UInt64 {
        var v = value
        v = ((v >> 1) & 0x5555_5555_5555_5555) | ((v & 0x5555_5555_5555_5555) << 1)
        v = ((v >> 2) & 0x3333_3333_3333_3333) | ((v & 0x3333_3333_3333_3333) << 2)
        v = ((v >> 4) & 0x0F0F_0F0F_0F0F_0F0F) | ((v & 0x0F0F_0F0F_0F0F_0F0F) << 4)
        v = ((v >> 8) & 0x00FF_00FF_00FF_00FF) | ((v & 0x00FF_00FF_00FF_00FF) << 8)
        v = ((v >> 16) & 0x0000_FFFF_0000_FFFF) | ((v & 0x0000_FFFF_0000_FFFF) << 16)
        return (v >> 32) | (v << 32)
    }

    // MARK: Access clock (LRU)

    /// The LRU clock new accesses are stamped with (the owner advances it; wrapping is fine: idle time is
    /// the wrapping difference, as with Redis's 24-bit clock).
    public var lruClock: UInt32 {
        get { self.table.pointee.lruClock }
        set { self.table.pointee.lruClock = newValue }
    }

    /// Marks entry `index` as accessed now (a read; writes stamp it themselves).
    @inline(__always)
    public func touch(at index: Int) {
        self.table.pointee.slot(index).storeBytes(of: self.table.pointee.lruClock, toByteOffset: Slot.lastAccess,
                                                  as: UInt32.self)
    }

    /// LRU clock ticks since entry `index` was last read or written.
    @inline(__always)
    public func idleTicks(at index: Int) -> UInt32 {
        self.table.pointee.lruClock &- self.table.pointee.slot(index).load(fromByteOffset: Slot.lastAccess, as: UInt32.self)
    }

}
