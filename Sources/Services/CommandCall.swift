// What a command implementation works with while it runs: the data store, the server state and
// control, the connection's client state, the reply writer and the clock passed in. Mutations go
// through here so a failed log write is answered the same way by every command.

import Store

/// What a running command works with: the data store, server state and control, the connection's
/// client state, the reply writer and the clock. One per
/// ``KVSession/process(context:output:outputLimit:)`` call.
struct CommandCall {
    /// The keyspace and its journal: every data operation.
    /// The client's selected database's (SELECT changes it mid-batch).
    var store: any DataStore
    /// What every connection shares (clients, slow log, watches, password, memory limit).
    let state: ServerState
    /// The server acting on itself (saves, shutdown, CONFIG, INFO, eviction).
    let control: any ServerControl
    /// The connection's own state.
    let client: ClientState
    /// Where the reply goes.
    var reply: ReplyWriter
    /// The wall clock (seconds and microseconds since the Unix epoch), read by the caller.
    let now: () -> (seconds: Int, microseconds: Int)
    /// The longest value a write may produce (`--max-value`, Redis's `proto-max-bulk-len`).
    let maxValueBytes: Int
    /// Some client runs MONITOR (read once per batch): every command is shown to it.
    var monitoring = false
    /// Whether dispatch must look at the auth gate, MULTI's queue or MONITOR: worked out once per
    /// batch, and set by MULTI and MONITOR mid-batch (a stale `true` only costs the slow path).
    var intercepting = true
    /// Some key is WATCHed by some client (read once per batch, set by WATCH): writes touch the
    /// registry only then.
    var watchesActive = false
    /// A memory limit is set (read once per batch; CONFIG SET maxmemory updates it): commands that
    /// may add memory make room first. Off while EXEC runs its queue (checked once, at EXEC).
    var memoryLimited = false
    /// Where per-command counts go (nil: metrics are off). Read once per batch.
    var statistics: CommandStatistics.Recorder?
    /// Keyspace events are published (read once per batch; CONFIG SET updates it).
    var notifying = false
    /// Requests answered in this call (INFO `total_commands_processed`).
    var commandCount = 0
    /// The last command run (CLIENT LIST `cmd=`).
    var lastCommand: StaticString?
    /// Set by a command after which the connection closes (QUIT, `bye`).
    var closeAfterReply = false
    /// CLIENT REPLY silences this connection or some client tracks keys: each command is followed by
    /// ``Commands/afterCommand(_:replyStart:)`` (set once per batch, and by CLIENT REPLY / TRACKING).
    var afterEachCommand = false
    /// The last request's statistics slot (-1: MULTI queued it), whether dispatch refused it
    /// before running it (INFO `rejected_calls`), and whether it answered an error.
    var lastSlot = -1
    /// The INFO slot of the running request's subcommand (``CommandTable/infoNames``), -1 when its
    /// command has none, -2 for an unknown one (counted nowhere).
    var subcommandSlot = -1
    var rejected = false
    var lastFailed = false

    init(
        context: CommandContext, client: ClientState, reply: ReplyWriter,
        now: @escaping () -> (seconds: Int, microseconds: Int), maxValueBytes: Int
    ) {
        self.store = client.database == 0 ? context.store : context.state.databases?.store(client.database) ?? context.store
        self.state = context.state
        self.control = context.control
        self.client = client
        self.reply = reply
        self.now = now
        self.maxValueBytes = maxValueBytes
    }

    /// Argument `index` as a canonical 64-bit integer. - Returns: nil once `value is not an
    /// integer or out of range` has been answered.
    mutating func integerArgument(_ arguments: ArgumentVector, _ index: Int) -> Int64? {
        guard let value = ASCII.parseInteger(arguments[index]) else {
            self.reply.error(.notInteger)
            return nil
        }
        return value
    }

    /// Stores `value` under `key`. - Returns: whether it was stored; if not, the storage
    /// error has been answered.
    mutating func set(_ value: [UInt8], forKey key: [UInt8]) -> Bool {
        do throws(StoreError) {
            try self.store.set(value, forKey: key)
            if self.watchesActive { self.touchKey(key) }
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }

    /// Removes `key`. - Returns: whether it was present, or nil once a storage error has been
    /// answered.
    mutating func removeValue(forKey key: [UInt8]) -> Bool? {
        do throws(StoreError) {
            let removed = try self.store.removeValue(forKey: key)
            if removed && self.watchesActive { self.touchKey(key) }
            return removed
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// Removes every key. - Returns: whether it succeeded; if not, the error has been answered.
    mutating func removeAll() -> Bool {
        do throws(StoreError) {
            if self.watchesActive {
                let now = self.nowMilliseconds
                let database = self.client.database
                self.state.watches.touchAll(where: { $1 == database && self.store.contains($0, now: now) })
            }
            try self.store.removeAll()
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }
}

/// What a string command found at its key (``CommandCall/readString(_:)``).
enum StringRead {
    case missing
    case found([UInt8])
    /// The key holds a collection: WRONGTYPE has been answered.
    case answeredWrongType
}

extension CommandCall {
    /// The string at `key` for a command that reads one: its bytes, or missing; a collection there
    /// answers WRONGTYPE (Redis's reply for every string command on a collection).
    mutating func readString(_ key: [UInt8]) -> StringRead {
        var value: [UInt8] = []
        switch self.store.withString(forKey: key[...], { value = [UInt8]($0) }) {
        case .found: return .found(value)
        case .missing: return .missing
        case .wrongType:
            self.reply.error(.wrongType)
            return .answeredWrongType
        }
    }

    /// Applies one element effect to the collection of `type` at `key` (``DataStore/apply(_:to:type:now:)``),
    /// touching WATCHes. - Returns: what happened, or nil once WRONGTYPE or a storage error has been
    /// answered.
    mutating func apply(_ effect: ElementEffect, to key: [UInt8], type: ValueType) -> ElementWrite? {
        do throws(StoreError) {
            let isNew = self.keyIsNew(key)  // the `new` keyspace event, looked up only while it is enabled
            let write = try self.store.apply(effect, to: key, type: type, now: self.nowMilliseconds)
            return self.noteElementWrite(write, effect.operation, to: key, isNew: isNew)
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// ``apply(_:to:type:)`` of a borrowed element at position 0 (``DataStore/apply(_:_:to:type:now:)``).
    mutating func apply(_ operation: ElementOperation, _ element: Element, to key: [UInt8], type: ValueType) -> ElementWrite? {
        do throws(StoreError) {
            let isNew = self.keyIsNew(key)  // the `new` keyspace event, looked up only while it is enabled
            let write = try self.store.apply(operation, element, to: key, type: type, now: self.nowMilliseconds)
            return self.noteElementWrite(write, operation, to: key, isNew: isNew)
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// ``apply(_:to:type:)`` of a borrowed element at `position` (a list's): the store's requirement
    /// itself, no owned effect built and taken apart on the way.
    mutating func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType
    ) -> ElementWrite? {
        do throws(StoreError) {
            let isNew = self.keyIsNew(key)  // the `new` keyspace event, looked up only while it is enabled
            let write = try self.store.apply(operation, position: position, element, to: key, type: type,
                                             now: self.nowMilliseconds)
            return self.noteElementWrite(write, operation, to: key, isNew: isNew)
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// What follows an element write: WRONGTYPE answered (nil), or WATCHes touched and blocked clients
    /// signalled for a change.
    private mutating func noteElementWrite(
        _ write: ElementWrite, _ operation: ElementOperation, to key: [UInt8], isNew: Bool
    ) -> ElementWrite? {
        switch write {
        case .wrongType:
            self.reply.error(.wrongType)
            return nil
        case .changed:
            self.notifyNew(key, if: isNew)
            if self.watchesActive { self.touchKey(key) }
            // A key that gained elements may serve a client blocked on it (Blocking.swift).
            if operation == .add && self.state.blocking.hasWaiters { self.state.blocking.signal(key, database: self.client.database) }
        case .unchanged: break
        }
        return write
    }

    /// Stores a whole collection at `key` (``DataStore/setCollection(_:forKey:deadline:now:)``; empty:
    /// removes the key), touching WATCHes. - Returns: whether it was stored; if not, the storage error
    /// has been answered.
    mutating func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64? = nil) -> Bool {
        do throws(StoreError) {
            let isNew = object.count > 0 && self.keyIsNew(key)
            try self.store.setCollection(object, forKey: key, deadline: deadline, now: self.nowMilliseconds)
            self.notifyNew(key, if: isNew)
            if self.watchesActive { self.touchKey(key) }
            if self.state.blocking.hasWaiters && object.count > 0 { self.state.blocking.signal(key, database: self.client.database) }
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }

    /// RENAME or COPY through the store (any type), touching WATCHes. - Returns: whether it was done;
    /// false once a storage error has been answered, or when `source` is absent (nothing answered).
    mutating func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool) -> Bool {
        do throws(StoreError) {
            guard try self.store.relocate(source, to: destination, copying: copying, now: self.nowMilliseconds) else {
                return false
            }
            if self.watchesActive {
                self.touchKey(destination)
                if !copying { self.touchKey(source) }
            }
            if self.state.blocking.hasWaiters { self.state.blocking.signal(destination, database: self.client.database) }
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }

    /// Drops every watch of this connection.
    mutating func unwatchAll() {
        guard !self.client.watched.isEmpty else { return }
        for entry in self.client.watched { self.state.watches.unwatch(entry.key, database: entry.database) }
        self.client.watched = []
    }
}

/// Per-connection state the commands read and change. A class so that a batch of requests
/// shares it with the session by reference (nothing is copied in and out per batch); loop
/// thread only, and never accessed re-entrantly, so the exclusivity checks are left out.
final class ClientState {
    /// The id `CLIENT ID` and `HELLO` report.
    let id: Int
    /// Set by `CLIENT SETNAME` / `HELLO … SETNAME`; nil when unnamed.
    @exclusivity(unchecked) var name: [UInt8]?
    /// CLIENT REPLY ON / OFF / SKIP (Commands+Tracking.swift).
    @exclusivity(unchecked) var replyMode = ReplyMode.on
    /// The queue between MULTI and EXEC; nil outside a transaction.
    @exclusivity(unchecked) var transaction: Transaction?
    /// Shared with the connection's parser.
    let authentication = AuthenticationState()
    /// Whether the connection may run every command: it gave the password, or none is set.
    /// A plain copy of ``authentication`` for the per-command check; set both through
    /// ``markAuthenticated()``.
    @exclusivity(unchecked) private(set) var authenticated = false

    /// The connection authenticated (or needs no password): lifts the gate and the parser's limits.
    func markAuthenticated() {
        self.authenticated = true
        self.authentication.isAuthenticated = true
    }
    /// The blocking command this client waits in (Blocking.swift); nil when not blocked.
    @exclusivity(unchecked) var blocked: BlockedCommand?
    /// Set while EXEC runs its queue: blocking commands answer at once instead of waiting.
    @exclusivity(unchecked) var denyBlocking = false
    /// The client's channels and patterns; nil while it has none (not in subscribed mode).
    @exclusivity(unchecked) var subscriber: Subscriber?
    /// Where other clients' publications reach this one (its connection); nil without one.
    @exclusivity(unchecked) var pubSubOutput: PubSubOutput?
    /// WATCHed keys and their versions when watched.
    @exclusivity(unchecked) var watched: [(key: [UInt8], database: Int, version: UInt64, deadline: Int64?)] = []
    /// The selected database (SELECT); the line protocol stays in database 0.
    @exclusivity(unchecked) var database = 0
    /// Reused for short keys and items a command copies out of its request or the store
    /// (CommandCall+Scratch.swift): a copy there costs no allocation.
    @exclusivity(unchecked) var scratchKey: [UInt8] = []
    @exclusivity(unchecked) var scratchItem: [UInt8] = []

    init(id: Int, name: [UInt8]?) {
        self.id = id
        self.name = name
    }
}
