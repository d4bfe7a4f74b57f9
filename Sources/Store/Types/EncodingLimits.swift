// Where each collection type turns from its compact encoding into its real structure: Redis's
// `*-max-listpack-*` and `set-max-intset-entries` parameters, with Redis 7.0's built-in defaults
// (the server's own, not redis.conf's sample file). Read by the types on every insert (the loop
// thread, replay and the compaction thread's load); changed by CONFIG SET and the config file.
// Relaxed atomics: a change applies to the next insert, as in Redis; no value depends on another.

import Synchronization

/// The conversion thresholds every collection type reads. One per process, as Redis's config.
public final class EncodingLimits: Sendable {
    /// The process's limits.
    public static let shared = EncodingLimits()

    /// A hash stays a listpack up to this many fields (`hash-max-listpack-entries`, alias
    /// `hash-max-ziplist-entries`).
    public let hashMaxListpackEntries = Limit(512)
    /// … and while every field and value is at most this many bytes (`hash-max-listpack-value`).
    public let hashMaxListpackValue = Limit(64)
    /// A set of integers stays an intset up to this many members (`set-max-intset-entries`).
    public let setMaxIntsetEntries = Limit(512)
    /// A sorted set stays a listpack up to this many members (`zset-max-listpack-entries`).
    public let zsetMaxListpackEntries = Limit(128)
    /// … and while every member is at most this many bytes (`zset-max-listpack-value`).
    public let zsetMaxListpackValue = Limit(64)
    /// A list node's limit (`list-max-listpack-size`): positive, entries per node; -1 … -5, node
    /// bytes of 4, 8, 16, 32 or 64 KiB.
    public let listMaxListpackSize = Limit(-2)
    /// Nodes at each end of a list left uncompressed (`list-compress-depth`; 0: none compressed).
    public let listCompressDepth = Limit(0)

    /// One threshold, read on every insert.
    public final class Limit: Sendable {
        private let storage: Atomic<Int>

        init(_ initial: Int) { self.storage = Atomic(initial) }

        /// The value now.
        public var current: Int { self.storage.load(ordering: .relaxed) }

        /// Sets the value (CONFIG SET checked it against its parameter's range).
        public func set(_ value: Int) { self.storage.store(value, ordering: .relaxed) }
    }

    /// One parameter as CONFIG names it: its names (the first is CONFIG GET's), its bounds, and the
    /// threshold it sets.
    public struct Parameter: Sendable {
        public let names: [String]
        public let range: ClosedRange<Int>
        public let limit: Limit
        /// Whether values are byte counts written as redis.conf writes them (`1kb`), as Redis's
        /// `*-value` parameters are.
        public var isMemory = false
    }

    /// Every parameter, in the order CONFIG GET lists them; each old `*-ziplist-*` name is an alias
    /// of its `*-listpack-*` parameter, as in Redis 7.0.
    public static let parameters: [Parameter] = {
        let shared = EncodingLimits.shared
        let sizes = 0...Int(Int64.max)
        return [
            Parameter(names: ["hash-max-listpack-entries", "hash-max-ziplist-entries"], range: sizes,
                      limit: shared.hashMaxListpackEntries),
            Parameter(names: ["hash-max-listpack-value", "hash-max-ziplist-value"], range: sizes,
                      limit: shared.hashMaxListpackValue, isMemory: true),
            Parameter(names: ["set-max-intset-entries"], range: sizes, limit: shared.setMaxIntsetEntries),
            Parameter(names: ["zset-max-listpack-entries", "zset-max-ziplist-entries"], range: sizes,
                      limit: shared.zsetMaxListpackEntries),
            Parameter(names: ["zset-max-listpack-value", "zset-max-ziplist-value"], range: sizes,
                      limit: shared.zsetMaxListpackValue, isMemory: true),
            Parameter(names: ["list-max-listpack-size", "list-max-ziplist-size"], range: Int(Int32.min)...Int(Int32.max),
                      limit: shared.listMaxListpackSize),
            Parameter(names: ["list-compress-depth"], range: 0...Int(Int32.max), limit: shared.listCompressDepth),
        ]
    }()

    /// The parameter named `name` (any of its names, any case), or nil.
    public static func parameter(named name: String) -> Parameter? {
        let lowered = name.lowercased()
        return Self.parameters.first { $0.names.contains(lowered) }
    }

    init() {}
}
