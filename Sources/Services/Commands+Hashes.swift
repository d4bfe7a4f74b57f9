// The hash commands (HSET … HSCAN), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift).

import Store

extension CommandTable {
    /// The hash family's rows.
    static let hashes: [CommandSpec] = []
}
