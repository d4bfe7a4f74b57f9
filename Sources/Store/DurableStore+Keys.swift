// Active expiry, eviction, random sampling, SCAN and KEYS over the store's keyspace: the operations that
// visit many keys. Every removal is logged as a delete through the journal, like any mutation, and none
// runs while the journal refuses writes. Loop thread only.

extension DurableStore {
    /// One step of active expiry: examines up to `budget` keys that carry a deadline, resuming where the
    /// previous call stopped (a rotating cursor over the dense deadline array, so repeated calls cover
    /// every such key), and removes those past `now`, each logged as a delete. Also moves a few buckets
    /// of a running resize. Work is O(budget) whatever the keyspace holds; the server calls it from a
    /// timer on the loop and again in the same tick while ``ExpireCycleResult/worthRepeating`` and its
    /// time slice last (Redis spends at most ~25% of a tick).
    /// Every database is visited: database 0 first, then each other one holding deadlines, with the
    /// budget left.
    public func expireCycle(now: Int64, budget: Int) -> ExpireCycleResult {
        precondition(!self.isClosed, "DurableStore used after close()")
        var result = self.expireCycleInSelected(now: now, budget: budget)
        guard !self.root.otherDatabases.isEmpty else { return result }
        for database in self.occupiedOtherDatabases where result.examined < budget {
            let more = self.withDatabase(database) {
                self.expireCycleInSelected(now: now, budget: budget - result.examined)
            }
            result.examined += more.examined
            result.expired += more.expired
        }
        return result
    }

    private func expireCycleInSelected(now: Int64, budget: Int) -> ExpireCycleResult {
        var result = ExpireCycleResult(examined: 0, expired: 0)
        if self.keyspace.isResizing {
            self.keyspace.rehash(steps: max(1, budget / 4))
        }
        guard self.journal.acceptsMutations else { return result }
        // At most one pass over the keys with deadlines per call, however large the budget.
        let limit = min(budget, self.keyspace.countWithDeadline)
        while result.examined < limit {
            let withDeadline = self.keyspace.countWithDeadline
            if withDeadline == 0 { break }
            if self.expireCursor >= withDeadline { self.expireCursor = 0 }
            let index = self.keyspace.entryWithDeadline(atPosition: self.expireCursor)
            result.examined += 1
            if let deadline = self.keyspace.deadline(at: index), now > deadline {
                self.expireEntry(index)
                result.expired += 1
                // The last deadline moved into this position: examine it next without advancing.
            } else {
                self.expireCursor += 1
            }
        }
        return result
    }

    /// Evicts keys chosen by `policy` (sampling `samples` keys per choice, Redis's `maxmemory-samples`)
    /// until the byte account has gone down by `bytesToFree` or `maxKeys` keys are gone, each logged as a
    /// delete like any removal, so a restart never brings an evicted key back. Bounded: at most `maxKeys`
    /// evictions and a few sampling rounds each. Does nothing while the log refuses writes.
    /// `evicting`, if given, sees each key just before it goes (WATCH: an evicted key is a change).
    public func evict(
        _ policy: KeyEviction, bytesToFree: Int, maxKeys: Int, samples: Int = 5, now: Int64,
        evicting: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) -> EvictionResult {
        precondition(!self.isClosed, "DurableStore used after close()")
        var result = self.evictInSelected(policy, bytesToFree: bytesToFree, maxKeys: maxKeys, samples: samples, now: now,
                                          evicting: evicting)
        // Then the other databases in turn (Redis samples across them; here database 0 goes first).
        for database in self.occupiedOtherDatabases where result.exhausted && result.evicted < maxKeys
            && result.bytesFreed < bytesToFree
        {
            let more = self.withDatabase(database) {
                self.evictInSelected(policy, bytesToFree: bytesToFree - result.bytesFreed, maxKeys: maxKeys - result.evicted,
                                     samples: samples, now: now, evicting: evicting)
            }
            result.evicted += more.evicted
            result.bytesFreed += more.bytesFreed
            result.exhausted = more.exhausted
        }
        return result
    }

    private func evictInSelected(
        _ policy: KeyEviction, bytesToFree: Int, maxKeys: Int, samples: Int, now: Int64,
        evicting: ((UnsafeRawBufferPointer) -> Void)?
    ) -> EvictionResult {
        var result = EvictionResult()
        guard self.journal.acceptsMutations, bytesToFree > 0 else { return result }
        let start = self.keyspace.usedBytes
        while result.evicted < maxKeys && start - self.keyspace.usedBytes < bytesToFree {
            guard let index = self.keyspace.chooseVictim(policy, samples: samples, now: now, pool: &self.evictionPool)
            else {
                result.exhausted = true
                break
            }
            evicting?(self.keyspace.key(at: index))
            _ = self.logRemoval(index)
            result.evicted += 1
        }
        self.evictedKeys += result.evicted
        result.bytesFreed = start - self.keyspace.usedBytes
        return result
    }

    /// A random key (RANDOMKEY, eviction), in O(1) expected: a uniform sample of the dense entry array.
    /// Sampled keys past `now` are expired on the way and another is drawn.
    public func randomKey(now: Int64) -> [UInt8]? {
        var attempts = 0
        while let index = self.keyspace.randomEntry() {
            if let deadline = self.keyspace.deadline(at: index), now > deadline {
                attempts += 1
                self.expireEntry(index)
                if !self.journal.acceptsMutations && attempts > 100 { return nil }
                continue
            }
            return [UInt8](self.keyspace.key(at: index))
        }
        return nil
    }

    /// A random key that carries a deadline, with it (volatile eviction policies, tests); O(1).
    public func randomKeyWithDeadline() -> (key: [UInt8], deadline: Int64)? {
        guard let position = self.keyspace.randomDeadlinePosition() else { return nil }
        let index = self.keyspace.entryWithDeadline(atPosition: position)
        return ([UInt8](self.keyspace.key(at: index)), self.keyspace.deadline(at: index)!)
    }

    /// One SCAN call: visits buckets from `cursor` until about `count` keys were seen (or the scan ends)
    /// and returns the live keys among them matching `pattern` (nil: all), with the next cursor (0: done).
    /// Every key present for the whole scan is returned at least once, across growth and shrinking.
    /// `type`: only keys holding that type (SCAN … TYPE).
    public func scan(
        cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType? = nil, now: Int64
    ) -> (cursor: UInt64, keys: [[UInt8]]) {
        var keys: [[UInt8]] = []
        var visited = 0
        var next = cursor
        var buckets = 0
        let keyspace = self.keyspace
        repeat {
            next = keyspace.scan(cursor: next) { index in
                visited += 1
                if let deadline = keyspace.deadline(at: index), now > deadline { return }
                if let type, keyspace.type(at: index) != type { return }
                let key = keyspace.key(at: index)
                if let pattern, !pattern.withUnsafeBytes({ Glob.matches(pattern: $0, key) }) { return }
                keys.append([UInt8](key))
            }
            buckets += 1
        } while next != 0 && visited < count && buckets < count * 10
        return (next, keys)
    }

    /// KEYS: every live key matching `pattern`. O(keys): the caller owns that cost, as with Redis.
    public func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        pattern.withUnsafeBytes { pattern in
            for index in 0..<self.keyspace.count {
                if let deadline = self.keyspace.deadline(at: index), now > deadline { continue }
                let key = self.keyspace.key(at: index)
                if Glob.matches(pattern: pattern, key) { keys.append([UInt8](key)) }
            }
        }
        return keys
    }
}

extension DurableStore {
    /// Removes an entry whose deadline passed, logged as a delete. When the log cannot take writes the key
    /// stays (reads still treat it as gone): removing it unlogged could let a restart bring it back if the
    /// clock went backwards, and it costs nothing to retry later.
    func expireEntry(_ index: Int) {
        guard self.journal.acceptsMutations else { return }
        self.onExpire?(self.keyspace.key(at: index))
        _ = self.logRemoval(index)
        self.expiredKeys += 1
    }
}
