// Choosing keys to evict past the memory limit, as Redis chooses them (its evict.c, read, not copied):
// a few keys sampled per round, the best kept across rounds in a small pool ordered by score (idle time
// for LRU, nearness of the deadline for volatile-ttl); random policies take one sampled key. Evictions
// are logged deletes, through the store. No clock, no limit here: the caller says how many bytes to
// free and how much work one call may do.

/// Which keys may be evicted and how the victim is chosen (docs/protocol.md "Memory limit"), by
/// the names `--eviction` and CONFIG SET maxmemory-policy take (Redis's, but for the LFU ones).
public enum KeyEviction: String, CaseIterable, Sendable, Equatable {
    /// None: past the limit, commands that may add memory are refused.
    case noEviction = "noeviction"
    /// The least recently used among sampled keys.
    case allKeysLRU = "allkeys-lru"
    /// A random key.
    case allKeysRandom = "allkeys-random"
    /// The least recently used among sampled keys that carry a deadline.
    case volatileLRU = "volatile-lru"
    /// A random key that carries a deadline.
    case volatileRandom = "volatile-random"
    /// Among sampled keys with a deadline, the one whose deadline is nearest.
    case volatileTTL = "volatile-ttl"

    /// Whether only keys with a deadline may go.
    var volatileOnly: Bool { self == .volatileLRU || self == .volatileRandom || self == .volatileTTL }
}

/// What one call to ``DurableStore/evict(_:bytesToFree:maxKeys:)`` did.
public struct EvictionResult: Sendable, Equatable {
    /// Keys evicted.
    public var evicted = 0
    /// By how much the keyspace's byte account went down.
    public var bytesFreed = 0
    /// Whether no key could be chosen (the keyspace, or its keys with a deadline, ran out).
    public var exhausted = false
}

/// The best eviction candidates seen across sampling rounds (Redis's `EvictionPoolLRU`, 16 entries):
/// ascending by score, the best last. A candidate's key is copied, so entries survive mutations; one
/// that was deleted meanwhile is skipped when its turn comes.
struct EvictionPool {
    static let capacity = 16
    private(set) var scores: [UInt64] = []
    private(set) var keys: [[UInt8]] = []

    var isEmpty: Bool { self.scores.isEmpty }

    /// Offers a sampled key: kept if the pool has room or it beats the worst entry (which then drops).
    mutating func offer(score: UInt64, key: UnsafeRawBufferPointer) {
        if self.scores.count == Self.capacity && score <= self.scores[0] { return }
        for i in self.keys.indices where self.keys[i].elementsEqual(key) {
            // Sampled again: keep the fresher score in place of the old one.
            self.scores.remove(at: i)
            self.keys.remove(at: i)
            break
        }
        var position = self.scores.count
        while position > 0 && self.scores[position - 1] > score { position -= 1 }
        self.scores.insert(score, at: position)
        self.keys.insert([UInt8](key), at: position)
        if self.scores.count > Self.capacity {
            self.scores.removeFirst()
            self.keys.removeFirst()
        }
        assert(self.scores.count <= Self.capacity && zip(self.scores, self.scores.dropFirst()).allSatisfy { $0 <= $1 })
    }

    /// Removes and returns the best candidate.
    mutating func takeBest() -> [UInt8]? {
        guard !self.scores.isEmpty else { return nil }
        self.scores.removeLast()
        return self.keys.removeLast()
    }

    mutating func removeAll() {
        self.scores.removeAll(keepingCapacity: true)
        self.keys.removeAll(keepingCapacity: true)
    }
}

extension Keyspace {
    /// Fills `pool` with `samples` sampled keys scored for `policy` (LRU: idle ticks; volatile-ttl: how
    /// near the deadline is, nearest highest). Keys past their deadline at `now` score highest of all:
    /// evicting them frees memory and loses nothing.
    func sampleCandidates(_ policy: KeyEviction, samples: Int, now: Int64, into pool: inout EvictionPool) {
        for _ in 0..<samples {
            let index: Int
            if policy.volatileOnly {
                guard let position = self.randomDeadlinePosition() else { return }
                index = self.entryWithDeadline(atPosition: position)
            } else {
                guard let entry = self.randomEntry() else { return }
                index = entry
            }
            let deadline = self.deadline(at: index)
            let score: UInt64
            if let deadline, deadline < now {
                score = UInt64.max
            } else if policy == .volatileTTL {
                // Deadlines are Unix ms (non-negative in practice); the nearest scores highest.
                score = UInt64.max - 1 - UInt64(clamping: max(0, deadline ?? Int64.max))
            } else {
                score = UInt64(self.idleTicks(at: index))
            }
            pool.offer(score: score, key: self.key(at: index))
        }
    }

    /// The entry to evict next under `policy`, or nil when no key qualifies.
    func chooseVictim(_ policy: KeyEviction, samples: Int, now: Int64, pool: inout EvictionPool) -> Int? {
        switch policy {
        case .noEviction:
            return nil
        case .allKeysRandom:
            return self.randomEntry()
        case .volatileRandom:
            return self.randomDeadlinePosition().map { self.entryWithDeadline(atPosition: $0) }
        case .allKeysLRU, .volatileLRU, .volatileTTL:
            if policy.volatileOnly ? self.countWithDeadline == 0 : self.count == 0 { return nil }
            // A bounded number of rounds: a pool whose every candidate was deleted meanwhile is refilled,
            // but a keyspace that keeps handing out stale entries cannot hold the loop.
            for _ in 0..<8 {
                self.sampleCandidates(policy, samples: samples, now: now, into: &pool)
                while let key = pool.takeBest() {
                    guard let index = self.find(key) else { continue }
                    if policy.volatileOnly && self.deadline(at: index) == nil { continue }
                    return index
                }
            }
            return nil
        }
    }
}
