// Clients blocked on keys (BLPOP, BLMOVE, BLMPOP …; any blocking command of any type): a registry of
// waiters per key in arrival order, the keys made ready since they were last served, and the hooks
// each connection gives so that the registry can retry or end its blocked command.
//
// How a wait goes: a blocking command that finds nothing calls ``CommandCall/block(on:timeout:)``;
// the client is parked on its keys and its session stops answering (its further input stays
// buffered, so its pipeline waits). A write that adds to a key somebody waits on marks the key
// ready (``CommandCall/apply(_:to:type:)``). After each command, and so after EXEC as a
// whole, the ready keys are served: each waiter of a key in turn, first blocked first served, has
// its command run again (the connection's ``KVSession/retryBlocked(context:output:)``) until the
// key is gone. A retry that serves writes the reply and ends the wait; the connection then answers
// its buffered input. Timeouts run on one loop timer (Sources/Server/BlockedTimeouts.swift); CLIENT UNBLOCK and the close end a
// wait through the same hooks. A waiter costs a dictionary entry per key and nothing while it waits.

import Store

/// Why a wait ended without being served.
public enum UnblockReason: Sendable {
    /// The timeout passed, or CLIENT UNBLOCK … TIMEOUT: the command's null reply.
    case timeout
    /// CLIENT UNBLOCK … ERROR: `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    case error
}

/// What a blocked connection waits in: its command (to run again), its keys, its timeout.
final class BlockedCommand {
    /// The request, copied out of the framer's buffer.
    let bytes: [UInt8]
    let ranges: [Range<Int>]
    let keys: [[UInt8]]
    /// Milliseconds to wait; 0: for ever.
    let timeoutMilliseconds: Int64
    /// While a retry runs: the key that became ready. The command serves from it alone, as Redis
    /// serves a waiter from the key that was signalled, not from the first of its keys.
    var readyKey: [UInt8]?

    init(_ arguments: ArgumentVector, keys: [[UInt8]], timeoutMilliseconds: Int64) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for i in 0..<arguments.count {
            let start = bytes.count
            bytes.append(contentsOf: arguments[i])
            ranges.append(start..<bytes.count)
        }
        self.bytes = bytes
        self.ranges = ranges
        self.keys = keys
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    var arguments: ArgumentVector { ArgumentVector(bytes: self.bytes[...], ranges: self.ranges) }
}

/// The waiters of every key, shared by a server's connections (``ServerState/blocking``). Loop
/// thread only.
public final class BlockingRegistry {
    /// What the registry may do to a connection that waits (given once, at its open).
    struct Hooks {
        /// Runs the blocked command again for the ready key. - Returns: whether it was served (the
        /// wait is over).
        let retry: (_ key: [UInt8]) -> Bool
        /// Ends the wait with the reply for `reason`, then lets the connection go on.
        let cancel: (UnblockReason) -> Void
    }

    /// A key in its database (SELECT: Commands+Databases.swift).
    struct WaitKey: Hashable {
        let database: Int
        let key: [UInt8]

        /// The key's bytes in one call: an array's own hashing feeds the hasher a byte at a time,
        /// and every push, pop and wait of a job queue hashes its key several times.
        func hash(into hasher: inout Hasher) {
            hasher.combine(self.database)
            self.key.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    /// The clients waiting on one key, in the order they blocked. The one served is nearly always
    /// the first: it is taken by moving `head` on, not by shifting every later waiter down (a
    /// thousand workers on one queue would otherwise move a thousand entries per job).
    struct WaiterQueue {
        private var ids: [Int] = []
        /// `ids[..<head]` are gone.
        private var head = 0

        var isEmpty: Bool { self.head == self.ids.count }
        /// Entries held, the gone ones included (tests: bounded by the waiters).
        var storedCount: Int { self.ids.count }

        mutating func append(_ id: Int) { self.ids.append(id) }

        /// The first waiter, in order, for which `skip` is false.
        func first(skipping skip: (Int) -> Bool) -> Int? {
            var index = self.head
            while index < self.ids.count {
                if !skip(self.ids[index]) { return self.ids[index] }
                index += 1
            }
            return nil
        }

        mutating func remove(_ id: Int) {
            guard self.head < self.ids.count else { return }
            if self.ids[self.head] == id {
                self.head += 1
            } else if let index = self.ids[(self.head + 1)...].firstIndex(of: id) {
                self.ids.remove(at: index)
            } else {
                return
            }
            if self.head == self.ids.count {
                self.ids.removeAll(keepingCapacity: true)
                self.head = 0
            } else if self.head >= 64 && self.head * 2 >= self.ids.count {
                // Dead entries are most of the array: drop them, so it stays bounded by the waiters.
                self.ids.removeFirst(self.head)
                self.head = 0
            }
        }
    }

    // The state below is the loop thread's alone and no access to it spans a call out (a retry or
    // cancel hook runs between accesses, never inside one): no dynamic exclusivity checks, which
    // cost a runtime call per access several times per job of a queue.

    /// The clients waiting on each key, in the order they blocked.
    @exclusivity(unchecked) private var queues: [WaitKey: WaiterQueue] = [:]
    /// The keys each waiting client waits on.
    @exclusivity(unchecked) private var waiting: [Int: [WaitKey]] = [:]
    @exclusivity(unchecked) private var hooks: [Int: Hooks] = [:]
    @exclusivity(unchecked) private var readyKeys: [WaitKey] = []
    @exclusivity(unchecked) private var readySet: Set<WaitKey> = []
    @exclusivity(unchecked) private var serving = false
    /// The clients a pass of ``serveReady(store:now:)`` has run for the key it serves (kept between
    /// passes for its storage: one pass per job of a queue).
    @exclusivity(unchecked) private var tried: Set<Int> = []
    /// Some client waits (checked by every write to a collection).
    @exclusivity(unchecked) public private(set) var hasWaiters = false
    /// Some key was made ready and not yet served (checked after every command).
    @exclusivity(unchecked) public private(set) var hasReadyKeys = false

    public init() {}

    /// Clients waiting now (INFO `blocked_clients`).
    public var blockedCount: Int { self.waiting.count }

    /// Whether client `id` waits (CLIENT LIST `flags=b`).
    public func isBlocked(_ id: Int) -> Bool { self.waiting[id] != nil }

    /// The connection of client `id` opened: how to retry and end its waits.
    public func attach(clientID id: Int, retry: @escaping ([UInt8]) -> Bool, cancel: @escaping (UnblockReason) -> Void) {
        self.hooks[id] = Hooks(retry: retry, cancel: cancel)
    }

    /// The connection of client `id` closed: its place in every queue goes.
    public func detach(clientID id: Int) {
        self.remove(id)
        self.hooks.removeValue(forKey: id)
    }

    /// Parks client `id` on `keys`, after everyone already waiting on them.
    func park(_ id: Int, on keys: [[UInt8]], database: Int) {
        var distinct: [WaitKey] = []
        for key in keys.map({ WaitKey(database: database, key: $0) }) where !distinct.contains(key) {
            distinct.append(key)
            self.queues[key, default: WaiterQueue()].append(id)
        }
        self.waiting[id] = distinct
        self.hasWaiters = true
    }

    /// Takes client `id` out of every queue (served, timed out, unblocked, closed).
    func remove(_ id: Int) {
        guard let keys = self.waiting.removeValue(forKey: id) else { return }
        for key in keys {
            // In place (the dictionary's modify accessor): a copy out and back would duplicate the
            // queue's storage on every serve.
            self.queues[key]?.remove(id)
            if self.queues[key]?.isEmpty == true { self.queues[key] = nil }
        }
        self.hasWaiters = !self.waiting.isEmpty
    }

    /// `key` of `database` gained elements: its waiters are served after the current command.
    public func signal(_ key: [UInt8], database: Int) {
        let key = WaitKey(database: database, key: key)
        guard self.queues[key] != nil, self.readySet.insert(key).inserted else { return }
        self.readyKeys.append(key)
        self.hasReadyKeys = true
    }

    /// SWAPDB: every key waited on in one of `databases` that `exists` there now is ready (Redis's
    /// swapdb scans the blocked keys of both databases the same way).
    public func signalExisting(in databases: [Int], _ exists: (_ database: Int, _ key: [UInt8]) -> Bool) {
        for key in Array(self.queues.keys) where databases.contains(key.database) && exists(key.database, key.key) {
            self.signal(key.key, database: key.database)
        }
    }

    /// Serves the waiters of every ready key, first blocked first served, while the key exists
    /// (a served pop may empty it; the next waiter then stays). Keys made ready meanwhile (an
    /// LMOVE served into a key others wait on) are served in the same pass.
    /// `store` gives each database's store.
    public func serveReady(store: (Int) -> any DataStore, now: () -> Int64) {
        guard !self.serving else { return }  // a retry's own writes: the pass running picks them up
        self.serving = true
        defer { self.serving = false }
        while !self.readyKeys.isEmpty {
            let key = self.readyKeys.removeFirst()
            self.readySet.remove(key)
            self.tried.removeAll(keepingCapacity: true)
            let database = store(key.database)
            while database.contains(key.key, now: now()),
                let id = self.queues[key]?.first(skipping: { self.tried.contains($0) })
            {
                self.tried.insert(id)
                guard let hooks = self.hooks[id] else {
                    self.remove(id)
                    continue
                }
                if hooks.retry(key.key) { self.remove(id) }
            }
        }
        self.hasReadyKeys = false
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait. - Returns: whether it was waiting.
    public func unblock(_ id: Int, reason: UnblockReason) -> Bool {
        guard self.waiting[id] != nil, let hooks = self.hooks[id] else { return false }
        hooks.cancel(reason)
        return true
    }
}

extension CommandCall {
    /// Whether a blocking command may wait now: not inside EXEC (there it answers as if timed out,
    /// as Redis does) and not while its retry runs (it stays parked instead).
    var mayBlock: Bool { !self.client.denyBlocking }

    /// Parks this client on `keys` for `timeout` milliseconds (0: for ever), to run `arguments` again
    /// when one of them gains elements. Nothing is answered now; the session stops reading the
    /// client's further requests until the wait ends. A retry that still finds nothing leaves the
    /// client where it was in the queues.
    mutating func block(_ arguments: ArgumentVector, on keys: [[UInt8]], timeout: Int64) {
        guard self.client.blocked == nil else { return }
        self.client.blocked = BlockedCommand(arguments, keys: keys, timeoutMilliseconds: timeout)
        self.state.blocking.park(self.client.id, on: keys, database: self.client.database)
    }

    /// The keys of a blocking command whose keys are `arguments[range]`: copied out at its first
    /// run, those it blocked with during a retry.
    func blockingKeys(_ arguments: ArgumentVector, _ range: Range<Int>) -> [[UInt8]] {
        if let blocked = self.client.blocked { return blocked.keys }
        return range.map { arguments.copy($0) }
    }

    /// The keys a blocking command tries now: all of `keys` in order, or during a retry the one that
    /// became ready, if it holds `type` (another type there leaves the client waiting, as in Redis).
    func blockingCandidates(_ keys: [[UInt8]], type: ValueType) -> [[UInt8]] {
        guard let ready = self.client.blocked?.readyKey, keys.contains(ready) else { return keys }
        guard case .found = self.store.withCollection(forKey: ready, type: type, now: self.nowMilliseconds, { _ in () }) else {
            return []
        }
        return [ready]
    }

    /// Parses a blocking command's timeout (seconds, a decimal) as Redis 7.0 does. - Returns: the
    /// milliseconds (0: for ever), or nil once the error has been answered. During a retry (the
    /// client is blocked: nothing else runs for it then) the timeout it blocked with, parsed and
    /// checked at its first run: not parsed again for every job a waiting worker is handed.
    mutating func blockingTimeout(_ bytes: ArraySlice<UInt8>) -> Int64? {
        if let blocked = self.client.blocked { return blocked.timeoutMilliseconds }
        guard let seconds = LongDouble.parse(bytes) else {
            self.reply.error(.redis(code: "ERR", "timeout is not a float or out of range"))
            return nil
        }
        // Milliseconds rounded up, as Redis 7.0 answers: a positive timeout however small waits a
        // little (0.001 × 1000 is just under 1 in this precision), one above -1 ms waits for ever.
        // Past the 64-bit range the conversion gives the lowest value, which Redis calls negative.
        let milliseconds = (seconds * 1000).rounded(.up)
        guard milliseconds >= 0 && milliseconds < 9_223_372_036_854_775_807 else {
            self.reply.error(.timeoutNegative)
            return nil
        }
        let whole = Int64(milliseconds)
        guard whole <= Int64.max - self.nowMilliseconds else {
            self.reply.error(.redis(code: "ERR", "timeout is out of range"))
            return nil
        }
        return whole
    }
}

extension KVSession {
    /// The wait of this connection's blocked command, in milliseconds (0: for ever), or nil when it
    /// is not blocked. The connection starts its timer when this becomes non-nil.
    public var blockedTimeoutMilliseconds: Int64? { self.client.blocked?.timeoutMilliseconds }

    /// Runs the blocked command again (a key it waits on gained elements). - Returns: whether it
    /// was served: its reply is in `output` and the wait is over.
    public mutating func retryBlocked(key: [UInt8], context: CommandContext, output: inout [UInt8]) -> Bool {
        guard let blocked = self.client.blocked, let command = CommandTable.respNames.find(blocked.arguments[0]) else {
            return false
        }
        let written = output.count
        blocked.readyKey = key
        defer { blocked.readyKey = nil }
        self.withCall(context: context, output: &output) { call in
            call.client.denyBlocking = false
            command.run(blocked.arguments, &call)
        }
        guard output.count > written else { return false }
        self.client.blocked = nil
        return true
    }

    /// Ends the wait unserved: the null reply (timeout) or the UNBLOCKED error, in `output`.
    public mutating func cancelBlocked(_ reason: UnblockReason, context: CommandContext, output: inout [UInt8]) {
        guard self.client.blocked != nil else { return }
        self.client.blocked = nil
        context.state.blocking.remove(self.client.id)
        self.withCall(context: context, output: &output) { call in
            switch reason {
            case .timeout: call.reply.nullArray()
            case .error: call.reply.error(.redis(code: "UNBLOCKED", "client unblocked via CLIENT UNBLOCK"))
            }
        }
    }
}
