// Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN …; any blocking command of any type): a registry of
// waiters per key in arrival order, the keys made ready since they were last served, and the hooks
// each connection gives so that the registry can serve or end its blocked command.
//
// How a wait goes: a blocking command that finds nothing calls ``CommandCall/block(on:timeout:serving:)``
// with how it is to be served (``BlockedServing``); the client is parked on its keys and its session
// stops answering (its further input stays buffered, so its pipeline waits). A write that adds to a
// key somebody waits on marks the key ready (``CommandCall/apply(_:to:type:)``). After each command,
// and so after EXEC as a whole, the ready keys are served: each waiter of a key in turn, first
// blocked first served, is handed what it waits for from that key (the connection's
// ``KVSession/serveBlocked(key:context:output:)``: the pop, its log record, its keyspace events, the
// reply in the waiter's protocol) until the key is gone, as Redis 7.0's serveClientsBlockedOnListKey
// serves a waiter without running its command again. The wait then ends; a connection with input
// waiting behind it answers that input once every ready key has been served (Redis's
// processUnblockedClients), so a served client's next blocking request queues behind the other
// waiters instead of taking the key's remaining elements first. Timeouts run on one loop timer (Sources/Server/BlockedTimeouts.swift); CLIENT
// UNBLOCK and the close end a wait through the same hooks. A waiter costs a queue entry per key and
// nothing while it waits.

import Store

/// Why a wait ended without being served.
public enum UnblockReason: Sendable {
    /// The timeout passed, or CLIENT UNBLOCK … TIMEOUT: the command's null reply.
    case timeout
    /// CLIENT UNBLOCK … ERROR: `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    case error
}

/// What happened when a waiter was offered the key that became ready.
public enum BlockedServeResult: Equatable, Sendable {
    /// Its reply is written and its wait is over; `keyRemains`: the key still holds elements (the
    /// next waiter may be served from it).
    case served(keyRemains: Bool)
    /// The key holds another type than this waiter pops (it keeps waiting, as in Redis), or the
    /// connection is closing.
    case notServed
    /// The key is gone: no later waiter can be served from it either.
    case keyMissing
}

/// How a woken waiter is served from the key that became ready: what its command would have done
/// with that key, decided when it blocked (the arguments are not kept, nor parsed again).
enum BlockedServing {
    /// BLPOP, BRPOP (`count` nil: `[key, item]`) and BLMPOP (`[key, [items]]`).
    case listPop(fromHead: Bool, count: Int?)
    /// BLMOVE, BRPOPLPUSH: the item, moved to `destination`.
    case listMove(destination: [UInt8], fromHead: Bool, toHead: Bool)
    /// BZPOPMIN, BZPOPMAX (`count` nil: `[key, member, score]`) and BZMPOP (`[key, [[member, score] …]]`).
    case sortedSetPop(max: Bool, count: Int?)
}

/// What a blocked connection waits in: its keys, its timeout, and how to serve it.
final class BlockedCommand {
    let keys: [[UInt8]]
    /// Milliseconds to wait; 0: for ever.
    let timeoutMilliseconds: Int64
    let serving: BlockedServing

    init(keys: [[UInt8]], timeoutMilliseconds: Int64, serving: BlockedServing) {
        self.keys = keys
        self.timeoutMilliseconds = timeoutMilliseconds
        self.serving = serving
    }
}

/// The waiters of every key, shared by a server's connections (``ServerState/blocking``). Loop
/// thread only.
public final class BlockingRegistry {
    /// What the registry may do to a connection that waits (given once, at its open).
    struct Hooks {
        /// Serves the blocked command from the key that became ready.
        let serve: (_ key: [UInt8]) -> BlockedServeResult
        /// Answers the input that waited behind a served wait (``BlockingRegistry/resumeAfterServing(clientID:)``).
        let resume: () -> Void
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

    /// One attached connection: its hooks and the keys it waits on now. The queues hold these, not
    /// client IDs, so serving a key looks nothing up by ID.
    final class Waiter: Equatable {
        let id: Int
        let hooks: Hooks
        // Loop thread only, never accessed re-entrantly: no dynamic exclusivity checks (a runtime
        // call per access, several per job of a queue), here and in the queues.
        /// The keys waited on; empty: not waiting.
        @exclusivity(unchecked) var keys: [WaitKey] = []
        /// The last pass of ``BlockingRegistry/serveReady()`` that offered this waiter a key.
        @exclusivity(unchecked) var pass: UInt64 = 0
        /// False once its connection has closed (a resumption still listed is skipped).
        @exclusivity(unchecked) var isAttached = true

        init(id: Int, hooks: Hooks) {
            self.id = id
            self.hooks = hooks
        }

        static func == (a: Waiter, b: Waiter) -> Bool { a === b }
    }

    /// The clients waiting on one key, in the order they blocked. The one served is nearly always
    /// the first: it is taken by moving `head` on, not by shifting every later waiter down (a
    /// thousand workers on one queue would otherwise move a thousand entries per job). A class, so
    /// that a pass serving a key looks the key up once and removals change it in place.
    final class WaiterQueue<Element: Equatable> {
        @exclusivity(unchecked) private var ids: [Element] = []
        /// `ids[..<head]` are gone.
        @exclusivity(unchecked) private var head = 0
        /// The key was signalled and waits in the registry's ready list (so it is listed once).
        @exclusivity(unchecked) var isReady = false

        init() {}

        var isEmpty: Bool { self.head == self.ids.count }
        /// Entries held, the gone ones included (tests: bounded by the waiters).
        var storedCount: Int { self.ids.count }

        func append(_ id: Element) { self.ids.append(id) }

        /// The first waiter, in order, for which `skip` is false.
        func first(skipping skip: (Element) -> Bool) -> Element? {
            var index = self.head
            while index < self.ids.count {
                if !skip(self.ids[index]) { return self.ids[index] }
                index += 1
            }
            return nil
        }

        func remove(_ id: Element) {
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

    // The state below is the loop thread's alone and no access to it spans a call out (a serve or
    // cancel hook runs between accesses, never inside one): no dynamic exclusivity checks, which
    // cost a runtime call per access several times per job of a queue.

    /// The clients waiting on each key, in the order they blocked.
    @exclusivity(unchecked) private var queues: [WaitKey: WaiterQueue<Waiter>] = [:]
    /// Every attached connection's waiter, by client ID.
    @exclusivity(unchecked) private var waiters: [Int: Waiter] = [:]
    /// The keys signalled since the last pass, in order, with their queues.
    @exclusivity(unchecked) private var readyKeys: [(key: WaitKey, queue: WaiterQueue<Waiter>)] = []
    @exclusivity(unchecked) private var serving = false
    /// Served waiters whose connections have input to answer, in the order served.
    @exclusivity(unchecked) private var unblocked: [Waiter] = []
    @exclusivity(unchecked) private var resuming = false
    /// Counts the keys served (``Waiter/pass``): a waiter is offered a key once per pass.
    @exclusivity(unchecked) private var pass: UInt64 = 0
    /// The waiter being served, the key and its queue: its own end of the wait finds them here, not
    /// by its ID and the key's hash.
    @exclusivity(unchecked) private var current: (waiter: Waiter, key: WaitKey, queue: WaiterQueue<Waiter>)?
    /// Clients waiting now (INFO `blocked_clients`).
    @exclusivity(unchecked) public private(set) var blockedCount = 0
    /// Some client waits (checked by every write to a collection).
    @exclusivity(unchecked) public private(set) var hasWaiters = false
    /// Some key was made ready and not yet served (checked after every command).
    @exclusivity(unchecked) public private(set) var hasReadyKeys = false

    public init() {}

    /// Whether client `id` waits (CLIENT LIST `flags=b`).
    public func isBlocked(_ id: Int) -> Bool { self.waiters[id].map { !$0.keys.isEmpty } ?? false }

    /// The connection of client `id` opened: how to serve and end its waits.
    public func attach(
        clientID id: Int, serve: @escaping ([UInt8]) -> BlockedServeResult, resume: @escaping () -> Void,
        cancel: @escaping (UnblockReason) -> Void
    ) {
        self.waiters[id] = Waiter(id: id, hooks: Hooks(serve: serve, resume: resume, cancel: cancel))
    }

    /// Client `id` was just served and has input waiting: it is answered (its `resume` hook) once
    /// the keys made ready are all served.
    public func resumeAfterServing(clientID id: Int) {
        guard let waiter = self.waiters[id] else { return }
        self.unblocked.append(waiter)
    }

    /// The connection of client `id` closed: its place in every queue goes.
    public func detach(clientID id: Int) {
        guard let waiter = self.waiters.removeValue(forKey: id) else { return }
        waiter.isAttached = false
        self.remove(waiter)
    }

    /// Parks client `id` on `keys`, after everyone already waiting on them.
    func park(_ id: Int, on keys: [[UInt8]], database: Int) {
        guard let waiter = self.waiters[id], waiter.keys.isEmpty, !keys.isEmpty else { return }
        for key in keys {
            let key = WaitKey(database: database, key: key)
            guard !waiter.keys.contains(key) else { continue }
            waiter.keys.append(key)
            if let queue = self.queues[key] {
                queue.append(waiter)
            } else {
                let queue = WaiterQueue<Waiter>()
                queue.append(waiter)
                self.queues[key] = queue
            }
        }
        self.blockedCount += 1
        self.hasWaiters = true
    }

    /// Takes client `id` out of every queue (served, timed out, unblocked, closed).
    func remove(_ id: Int) {
        if let current = self.current, current.waiter.id == id {
            // The waiter just served, right after its serve (the shortcut is taken once).
            self.current = nil
            return self.remove(current.waiter, servedFrom: (current.key, current.queue))
        }
        if let waiter = self.waiters[id] { self.remove(waiter) }
    }

    private func remove(_ waiter: Waiter, servedFrom served: (key: WaitKey, queue: WaiterQueue<Waiter>)? = nil) {
        guard !waiter.keys.isEmpty else { return }
        for key in waiter.keys {
            let queue: WaiterQueue<Waiter>
            if let served, served.key == key {
                queue = served.queue
            } else if let found = self.queues[key] {
                queue = found
            } else {
                continue
            }
            queue.remove(waiter)
            if queue.isEmpty { self.queues[key] = nil }
        }
        waiter.keys.removeAll(keepingCapacity: true)
        self.blockedCount -= 1
        self.hasWaiters = self.blockedCount > 0
    }

    /// `key` of `database` gained elements: its waiters are served after the current command.
    public func signal(_ key: [UInt8], database: Int) {
        let key = WaitKey(database: database, key: key)
        guard let queue = self.queues[key], !queue.isReady else { return }
        queue.isReady = true
        self.readyKeys.append((key, queue))
        self.hasReadyKeys = true
    }

    /// SWAPDB: every key waited on in one of `databases` that `exists` there now is ready (Redis's
    /// swapdb scans the blocked keys of both databases the same way).
    public func signalExisting(in databases: [Int], _ exists: (_ database: Int, _ key: [UInt8]) -> Bool) {
        for key in Array(self.queues.keys) where databases.contains(key.database) && exists(key.database, key.key) {
            self.signal(key.key, database: key.database)
        }
    }

    /// Serves the waiters of every ready key, first blocked first served, while the key holds
    /// elements (a served pop may empty it; the next waiter then stays). Keys made ready meanwhile
    /// (an LMOVE served into a key others wait on) are served in the same pass. Then the served
    /// connections with input waiting answer it, in the order served; keys their commands make ready
    /// are served after each command (this runs again), and the connections served then join the
    /// list being answered.
    @inline(never)  // out of the request loop it is called from
    public func serveReady() {
        guard !self.serving else { return }  // a serve's own writes: the pass running picks them up
        self.serving = true
        self.serveReadyKeys()
        self.serving = false
        guard !self.unblocked.isEmpty && !self.resuming else { return }
        self.resuming = true
        var next = 0
        while next < self.unblocked.count {
            let waiter = self.unblocked[next]
            next += 1
            if waiter.isAttached { waiter.hooks.resume() }
        }
        self.unblocked.removeAll(keepingCapacity: true)
        self.resuming = false
    }

    private func serveReadyKeys() {
        defer { self.current = nil }
        var next = 0
        while next < self.readyKeys.count {
            let key = self.readyKeys[next].key
            var queue = self.readyKeys[next].queue
            next += 1
            queue.isReady = false
            if queue.isEmpty {
                // Emptied since the signal and dropped: a client may have parked on the key since.
                guard let parked = self.queues[key] else { continue }
                queue = parked
            }
            self.pass &+= 1
            let pass = self.pass
            keyLoop: while let waiter = queue.first(skipping: { $0.pass == pass }) {
                waiter.pass = pass
                // The hook's own end of the wait takes the waiter out of the queues (before the
                // connection answers the input that waited, which may block it again).
                self.current = (waiter, key, queue)
                let result = waiter.hooks.serve(key.key)
                self.current = nil
                switch result {
                case .served(let keyRemains): if !keyRemains { break keyLoop }
                case .notServed: continue
                case .keyMissing: break keyLoop
                }
            }
        }
        self.readyKeys.removeAll(keepingCapacity: true)
        self.hasReadyKeys = false
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait. - Returns: whether it was waiting.
    public func unblock(_ id: Int, reason: UnblockReason) -> Bool {
        guard let waiter = self.waiters[id], !waiter.keys.isEmpty else { return false }
        waiter.hooks.cancel(reason)
        return true
    }
}

extension CommandCall {
    /// Whether a blocking command may wait now: not inside EXEC (there it answers as if timed out,
    /// as Redis does).
    var mayBlock: Bool { !self.client.denyBlocking }

    /// Parks this client on `keys` for `timeout` milliseconds (0: for ever), to be served as `serving`
    /// says when one of them gains elements. Nothing is answered now; the session stops reading the
    /// client's further requests until the wait ends.
    mutating func block(on keys: [[UInt8]], timeout: Int64, serving: BlockedServing) {
        guard self.client.blocked == nil else { return }
        self.client.blocked = BlockedCommand(keys: keys, timeoutMilliseconds: timeout, serving: serving)
        self.state.blocking.park(self.client.id, on: keys, database: self.client.database)
    }

    /// Parses a blocking command's timeout (seconds, a decimal) as Redis 7.0 does. - Returns: the
    /// milliseconds (0: for ever), or nil once the error has been answered.
    mutating func blockingTimeout(_ bytes: ArraySlice<UInt8>) -> Int64? {
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

    /// Serves the blocked command from `key`, which gained elements: the pop it waits for, written
    /// to the store and its log like the command's own, and its reply in `output`. Once served, the
    /// wait is over (the client leaves every queue).
    public mutating func serveBlocked(key: [UInt8], context: CommandContext, output: inout [UInt8]) -> BlockedServeResult {
        guard let blocked = self.client.blocked else { return .notServed }
        let result = self.withCall(context: context, output: &output) { call -> BlockedServeResult in
            switch blocked.serving {
            case .listPop(let fromHead, let count):
                Commands.serveBlockedListPop(key, fromHead: fromHead, count: count, &call)
            case .listMove(let destination, let fromHead, let toHead):
                Commands.serveBlockedListMove(key, to: destination, fromHead: fromHead, toHead: toHead, &call)
            case .sortedSetPop(let max, let count):
                Commands.serveBlockedSortedSetPop(key, max: max, count: count, &call)
            }
        }
        if case .served = result {
            self.client.blocked = nil
            context.state.blocking.remove(self.client.id)
        }
        return result
    }

    /// Ends the wait unserved: the null reply (timeout) or the UNBLOCKED error, in `output`.
    public mutating func cancelBlocked(_ reason: UnblockReason, context: CommandContext, output: inout [UInt8]) {
        guard self.client.blocked != nil else { return }
        self.client.blocked = nil
        context.state.blocking.remove(self.client.id)
        self.withCall(context: context, output: &output) { call in
            switch reason {
            case .timeout: call.reply.nullArray()  // BLMOVE's too, as Redis 7.0's replyToBlockedClientTimedOut
            case .error: call.reply.error(.redis(code: "UNBLOCKED", "client unblocked via CLIENT UNBLOCK"))
            }
        }
    }
}
