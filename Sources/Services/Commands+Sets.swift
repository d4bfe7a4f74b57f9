// The set commands (SADD … SSCAN), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift).

import Store

extension CommandTable {
    /// The set family's rows.
    static let sets: [CommandSpec] = []
}
