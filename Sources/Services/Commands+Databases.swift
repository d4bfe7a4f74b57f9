// Redis's numbered databases as the commands see them: SELECT (Commands+Connection.swift) makes
// `call.store` the selected database's store, so every data command works in it unchanged; the
// commands that reach across databases (MOVE, SWAPDB, COPY … DB, FLUSHALL) go through
// ``DatabaseSet``, implemented by the server over the durable store (Sources/Server/StoreDatabases.swift,
// Sources/Store/Databases.swift). The line protocol always uses database 0.

import Store

/// Every database of the server. Loop thread only.
public protocol DatabaseSet: AnyObject {
    /// How many databases there are (the `databases` setting, fixed at start).
    var count: Int { get }
    /// The store of database `index` (0 ≤ index < ``count``).
    func store(_ index: Int) -> any DataStore
    /// MOVE (`copying` false) or COPY … DB (true) of `key` between two different databases, as one
    /// atomic unit in the log. - Throws: ``StoreError``.
    func transfer(_ key: [UInt8], as destinationKey: [UInt8], from source: Int, to destination: Int, copying: Bool,
                  replacing: Bool, now: Int64) throws(StoreError) -> TransferOutcome
    /// SWAPDB. - Throws: ``StoreError``.
    func swap(_ first: Int, _ second: Int, now: Int64) throws(StoreError)
    /// FLUSHALL. - Throws: ``StoreError``.
    func removeAll() throws(StoreError)
    /// Keys and keys with a deadline of each database holding keys, ascending (INFO keyspace).
    func sizes() -> [(index: Int, keys: Int, withDeadline: Int)]
}

extension CommandCall {
    /// The number of databases (1 without a ``DatabaseSet``).
    var databaseCount: Int { self.state.databases?.count ?? 1 }

    /// Argument `index` as a database index, answered as Redis's SELECT and MOVE answer a bad one.
    mutating func databaseArgument(_ arguments: ArgumentVector, _ index: Int) -> Int? {
        guard let value = self.integerArgument(arguments, index) else { return nil }
        guard value >= Int64(Int32.min) && value <= Int64(Int32.max) else {
            self.reply.error(.intOutOfRange)
            return nil
        }
        guard value >= 0 && value < Int64(self.databaseCount) else {
            self.reply.error(.dbIndexOutOfRange)
            return nil
        }
        return Int(value)
    }

    /// Makes database `index` the client's: its commands from now on, this batch included.
    mutating func selectDatabase(_ index: Int) {
        guard index != self.client.database else { return }
        self.client.database = index
        self.store = self.state.databases?.store(index) ?? self.store
        self.state.clients.update(id: self.client.id) { $0.database = index }
    }

    /// MOVE / COPY … DB of `key` from the selected database to `database`: answers 1 or 0.
    mutating func transfer(_ key: [UInt8], as destinationKey: [UInt8]? = nil, to database: Int, copying: Bool, replacing: Bool) {
        let target = destinationKey ?? key
        guard let databases = self.state.databases else { return self.reply.error(.dbIndexOutOfRange) }
        do throws(StoreError) {
            let outcome = try databases.transfer(key, as: target, from: self.client.database, to: database, copying: copying,
                                                 replacing: replacing, now: self.nowMilliseconds)
            guard case .done = outcome else { return self.reply.integer(0) }
            if self.watchesActive {
                // Redis signals the key in both databases: the copy's target there, the moved key here.
                self.state.watches.touch(target, database: database)
                if !copying { self.touchKey(key) }
            }
            // A list moved or copied in may serve a client blocked on it there (Blocking.swift).
            if self.state.blocking.hasWaiters { self.state.blocking.signal(target, database: database) }
            self.reply.integer(1)
        } catch {
            self.reply.error(.storage(error.description))
        }
    }

    /// Touches the watched keys that hold a value in their database, as Redis's FLUSHALL touches the
    /// watched keys it removes.
    func touchWatchedInAnyDatabase() {
        guard let databases = self.state.databases else { return }
        let now = self.nowMilliseconds
        self.state.watches.touchAll(where: { key, database in
            database < databases.count && databases.store(database).contains(key, now: now)
        })
    }

    /// Touches the watched keys of databases `first` and `second` that either of them holds, as Redis's
    /// SWAPDB does (a key present in one of the two changes value, or appears, or goes).
    func touchWatchedSwapping(_ first: Int, _ second: Int) {
        guard let databases = self.state.databases else { return }
        let now = self.nowMilliseconds
        self.state.watches.touchAll(where: { key, database in
            (database == first || database == second)
                && (databases.store(first).contains(key, now: now) || databases.store(second).contains(key, now: now))
        })
    }

    /// FLUSHALL. - Returns: whether it was done; if not, the storage error has been answered.
    mutating func removeAllDatabases() -> Bool {
        guard let databases = self.state.databases else { return self.removeAll() }
        do throws(StoreError) {
            if self.watchesActive { self.touchWatchedInAnyDatabase() }
            try databases.removeAll()
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }
}

extension Commands {
    /// MOVE key db: 1 when moved; 0 when the key is missing or `db` holds it.
    static func move(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let database = call.databaseArgument(arguments, 2) else { return }
        if database == call.client.database { return call.reply.error(.sameObject) }
        call.transfer(arguments.copy(1), to: database, copying: false, replacing: false)
    }

    /// SWAPDB index1 index2: the two databases exchange their keys.
    static func swapdb(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        func index(_ position: Int, _ message: String) -> Int? {
            guard let value = ASCII.parseInteger(arguments[position]),
                  value >= Int64(Int32.min) && value <= Int64(Int32.max)
            else {
                call.reply.error(.redis(code: "ERR", message))
                return nil
            }
            return Int(value)
        }
        guard let first = index(1, "invalid first DB index"), let second = index(2, "invalid second DB index") else { return }
        let count = call.databaseCount
        guard first >= 0 && first < count && second >= 0 && second < count else {
            return call.reply.error(.dbIndexOutOfRange)
        }
        guard first != second, let databases = call.state.databases else { return call.reply.ok() }
        do throws(StoreError) {
            if call.watchesActive { call.touchWatchedSwapping(first, second) }
            let now = call.nowMilliseconds
            try databases.swap(first, second, now: now)
            if call.state.blocking.hasWaiters {
                // Clients blocked on a key that now exists in its database are served.
                call.state.blocking.signalExisting(in: [first, second]) { databases.store($0).contains($1, now: now) }
            }
            call.reply.ok()
        } catch {
            call.reply.error(.storage(error.description))
        }
    }
}
