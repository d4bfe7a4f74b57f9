// MULTI/EXEC/WATCH state: the commands a connection queued (copied out of the framer's buffer,
// since they run later), and the registry of watched keys every connection shares, whose
// versions change when a key is written, deleted or expires, as Redis's touchWatchedKey marks
// its watchers dirty. Both are plain state; Commands+Transactions runs them.

/// The commands queued between MULTI and EXEC, in one buffer.
struct Transaction {
    private var bytes: [UInt8] = []
    private var commands: [[Range<Int>]] = []
    /// A command was refused while queueing (unknown, wrong arity): EXEC answers EXECABORT.
    var failed = false

    /// The number of queued commands.
    var count: Int { self.commands.count }

    /// Copies `arguments` to the end of the queue.
    mutating func queue(_ arguments: ArgumentVector) {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(arguments.count)
        for i in 0..<arguments.count {
            let start = self.bytes.count
            self.bytes.append(contentsOf: arguments[i])
            ranges.append(start..<self.bytes.count)
        }
        self.commands.append(ranges)
    }

    /// Queued command `index`, as the framer would have handed it over.
    func arguments(_ index: Int) -> ArgumentVector {
        ArgumentVector(bytes: self.bytes[...], ranges: self.commands[index])
    }
}

/// The keys some connection watches, each in its database, with a version each that changes
/// whenever the key is written, deleted or expires. Shared by every connection of a context; loop
/// thread only. Keys nobody watches are not tracked, so a mutation costs one emptiness check.
public final class WatchRegistry {
    /// A watched key: its name in a database (Redis keeps watched keys per database, so a write to the
    /// same name in another database changes nothing watched).
    struct Watched: Hashable {
        let key: [UInt8]
        let database: Int
    }

    // Checked once per batch on the hot path; loop thread only, never re-entered (touchAll copies
    // the keys first), so no dynamic exclusivity check.
    @exclusivity(unchecked) private var entries: [Watched: (watchers: Int, version: UInt64)] = [:]
    private var nextVersion: UInt64 = 1

    public init() {}

    /// Whether no key is watched (the common case: mutations skip the registry).
    public var isEmpty: Bool { self.entries.isEmpty }

    /// Adds a watcher of `key` in `database`. - Returns: the version to compare at EXEC.
    func watch(_ key: [UInt8], database: Int) -> UInt64 {
        let watched = Watched(key: key, database: database)
        if let entry = self.entries[watched] {
            self.entries[watched] = (entry.watchers + 1, entry.version)
            return entry.version
        }
        self.entries[watched] = (1, 0)
        return 0
    }

    /// Removes one watcher of `key` in `database`; the key is forgotten with its last watcher.
    func unwatch(_ key: [UInt8], database: Int) {
        let watched = Watched(key: key, database: database)
        guard let entry = self.entries[watched] else { return }
        if entry.watchers <= 1 {
            self.entries.removeValue(forKey: watched)
        } else {
            self.entries[watched] = (entry.watchers - 1, entry.version)
        }
    }

    /// The current version of a watched key.
    func version(_ key: [UInt8], database: Int) -> UInt64 {
        self.entries[Watched(key: key, database: database)]?.version ?? UInt64.max
    }

    /// `key` in `database` was written, deleted or expired: every watcher's EXEC will abort.
    public func touch(_ key: [UInt8], database: Int) {
        let watched = Watched(key: key, database: database)
        guard let entry = self.entries[watched] else { return }
        self.entries[watched] = (entry.watchers, self.nextVersion)
        self.nextVersion += 1
    }

    /// Touches every watched key for which `changed(key, database)` holds (FLUSHDB, FLUSHALL and
    /// SWAPDB touch the keys they remove or replace).
    public func touchAll(where changed: ([UInt8], Int) -> Bool) {
        for watched in Array(self.entries.keys) where changed(watched.key, watched.database) {
            self.touch(watched.key, database: watched.database)
        }
    }
}
