// The subcommands of the container commands this server has, as Redis 7.0 declares them (its
// src/commands/*.json: a `container` and an arity per subcommand). INFO commandstats and
// latencystats count `config|get` apart from `config|set`, as Redis does, and a known subcommand
// with the wrong number of arguments is refused before it runs (`rejected_calls`, and inside MULTI
// the transaction is flagged), in the subcommand's name.

enum Subcommands {
    /// Each container and its subcommands (`container|sub`, arity), in Redis's spelling.
    static let table: [(container: StaticString, subcommands: [(name: StaticString, arity: Int)])] = [
        ("client", [
            ("client|caching", 3), ("client|getname", 2), ("client|getredir", 2), ("client|help", 2), ("client|id", 2),
            ("client|info", 2), ("client|kill", -3), ("client|list", -2), ("client|no-evict", 3), ("client|pause", -3),
            ("client|reply", 3), ("client|setname", 3), ("client|tracking", -3), ("client|trackinginfo", 2),
            ("client|unblock", -3), ("client|unpause", 2),
        ]),
        ("command", [
            ("command|count", 2), ("command|docs", -2), ("command|getkeys", -4), ("command|getkeysandflags", -4),
            ("command|help", 2), ("command|info", -2), ("command|list", -2),
        ]),
        ("config", [("config|get", -3), ("config|help", 2), ("config|resetstat", 2), ("config|rewrite", 2), ("config|set", -4)]),
        ("function", [
            ("function|delete", 3), ("function|dump", 2), ("function|flush", -2), ("function|help", 2), ("function|kill", 2),
            ("function|list", -2), ("function|load", -3), ("function|restore", -3), ("function|stats", 2),
        ]),
        ("memory", [
            ("memory|doctor", 2), ("memory|help", 2), ("memory|malloc-stats", 2), ("memory|purge", 2), ("memory|stats", 2),
            ("memory|usage", -3),
        ]),
        ("object", [("object|encoding", 3), ("object|freq", 3), ("object|help", 2), ("object|idletime", 3), ("object|refcount", 3)]),
        ("pubsub", [
            ("pubsub|channels", -2), ("pubsub|help", 2), ("pubsub|numpat", 2), ("pubsub|numsub", -2),
            ("pubsub|shardchannels", -2), ("pubsub|shardnumsub", -2),
        ]),
        ("script", [
            ("script|debug", 3), ("script|exists", -3), ("script|flush", -2), ("script|help", 2), ("script|kill", 2),
            ("script|load", 3),
        ]),
        ("slowlog", [("slowlog|get", -2), ("slowlog|help", 2), ("slowlog|len", 2), ("slowlog|reset", 2)]),
    ]

    /// Every subcommand's statistics name (`config|get`), in table order: INFO's slots after the
    /// commands' (``CommandTable/statisticsNames``).
    static let names: [String] = Self.table.flatMap { $0.subcommands.map { $0.name.description } }

    /// Per command statistics slot: the container's subcommands (offset into ``names``, the rows), or
    /// nil for a command without subcommands.
    private static let bySlot: [(first: Int, rows: [(name: StaticString, arity: Int)])?] = {
        var result = [(first: Int, rows: [(name: StaticString, arity: Int)])?](repeating: nil, count: CommandTable.statisticsNames.count)
        var first = 0
        for (container, rows) in Self.table {
            if let slot = CommandTable.statisticsNames.firstIndex(of: container.description) { result[slot] = (first, rows) }
            first += rows.count
        }
        return result
    }()

    /// What the subcommand `argument` of the command in statistics slot `slot` is.
    enum Lookup {
        /// The command has no subcommands.
        case none
        /// A known subcommand: its index in ``names``, its name and arity.
        case known(index: Int, name: StaticString, arity: Int)
        /// The command has subcommands and this is none of them (Redis counts it nowhere).
        case unknown
    }

    @inline(__always)
    static func lookup(slot: Int, _ argument: ArraySlice<UInt8>) -> Lookup {
        guard slot < Self.bySlot.count, let (first, rows) = Self.bySlot[slot] else { return .none }
        return Self.find(first: first, rows: rows, argument)
    }

    @inline(never)
    private static func find(first: Int, rows: [(name: StaticString, arity: Int)], _ argument: ArraySlice<UInt8>) -> Lookup {
        for (offset, row) in rows.enumerated() {
            let full = UnsafeBufferPointer(start: row.name.utf8Start, count: row.name.utf8CodeUnitCount)
            guard let bar = full.firstIndex(of: UInt8(ascii: "|")) else { continue }
            let sub = UnsafeBufferPointer(rebasing: full[(bar + 1)...])
            if sub.count == argument.count && zip(argument, sub).allSatisfy({ ASCII.lowercased($0) == $1 }) {
                return .known(index: first + offset, name: row.name, arity: row.arity)
            }
        }
        return .unknown
    }
}
