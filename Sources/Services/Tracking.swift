// Client-side caching (CLIENT TRACKING), as Redis 7.0's tracking.c behaves. In the default mode the
// keys a tracking client reads are remembered (key → the ids that read it); the first change to such
// a key, by any client, expiry or eviction, sends each of them one `invalidate` message and forgets
// the key. In BCAST mode a client names prefixes and hears about every changed key under them, one
// message per prefix with every key changed since the last one, sent once per loop iteration
// before the loop sleeps (``TrackingRegistry/endOfIteration(state:)``), as Redis's beforeSleep
// sends them: a pipeline of writes gets one message after all its replies. FLUSHDB and FLUSHALL
// send every tracking client a null invalidation. Messages go to the client itself as RESP3 pushes
// (`>2 invalidate [keys]`), or to the client it redirects to: a RESP3 push there too, or over RESP2
// a `message` on `__redis__:invalidate` when that client is in subscribed mode (subscribed to
// anything: Redis tests its CLIENT_PUBSUB flag, not the channel). A tracking client's own message
// about its own running command waits until its reply is written (``TrackingRegistry/pending``), as
// Redis's tracking_pending_keys; a redirect target hears at once, ahead of the reply of a command
// of its own that is running (Redis postpones only for the tracking client itself), and so does a
// client about a key evicted to make room for its command.
//
// Writes find this registry through the same hook as WATCH (CommandCall's mutations,
// ``CommandCall/touchKey(_:)``); reads through the dispatch gate, for tracking clients only.

/// One tracking client's options (CLIENT TRACKING ON …).
final class TrackingClient {
    let id: Int
    /// CLIENT TRACKING … REDIRECT id (0: none).
    var redirect = 0
    var broadcast = false
    var optIn = false
    var optOut = false
    var noLoop = false
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) for the next command.
    var caching = false
    /// The redirect target was gone when a message was due (TRACKINGINFO `broken_redirect`).
    var brokenRedirect = false
    /// BCAST prefixes, kept sorted as Redis's radix tree lists them.
    var prefixes: [[UInt8]] = []

    init(id: Int) { self.id = id }
}

/// The tracking table and the BCAST prefixes, shared by every connection. Loop thread only.
public final class TrackingRegistry {
    /// Some client tracks keys (read once per batch).
    @exclusivity(unchecked) public private(set) var isActive = false
    @exclusivity(unchecked) var clients: [Int: TrackingClient] = [:]
    /// The default mode's table: each remembered key and the ids of the clients that read it.
    @exclusivity(unchecked) private var table: [[UInt8]: Set<Int>] = [:]
    /// BCAST: each prefix, its clients and the keys under it changed since the last message (each
    /// with the id of the client that changed it, -1 for the server: NOLOOP leaves out one's own).
    @exclusivity(unchecked) private var prefixes: [[UInt8]: (clients: Set<Int>, keys: [[UInt8]: Int])] = [:]
    @exclusivity(unchecked) private var broadcastsPending = false
    /// The keys the running script declared (Commands+Tracking.swift).
    @exclusivity(unchecked) var scriptKeys: [[UInt8]] = []
    /// Clients whose batch of commands is running (the one on top, and one that served a blocked
    /// client from its batch): their output is lent out, so their messages wait here until their
    /// command (or batch) ends. An array, not a Set: every batch of every client enters and
    /// leaves it (one or two ids at most), and hashing an id each way was a visible part of every
    /// batch's cost at pipeline 1 (scripts/callgrind-hotpath.sh with a `-P 1` load).
    @exclusivity(unchecked) var busy: [Int] = []
    @exclusivity(unchecked) var pending: [Int: [UInt8]] = [:]
    /// Messages about keys evicted before the running client's command ran: ahead of its reply.
    @exclusivity(unchecked) var pendingBefore: [Int: [UInt8]] = [:]
    @exclusivity(unchecked) private var aheadOfReply = false
    /// `tracking-table-max-keys` (0: no limit): past it, remembered keys are invalidated.
    @exclusivity(unchecked) public var maxKeys = 1_000_000

    public init() {}

    /// Keys remembered now (INFO `tracking_total_keys`).
    public var keyCount: Int { self.table.count }
    /// (key, client) pairs remembered (INFO `tracking_total_items`).
    var itemCount: Int { self.table.values.reduce(0) { $0 + $1.count } }
    /// BCAST prefixes in use (INFO `tracking_total_prefixes`).
    var prefixCount: Int { self.prefixes.count }

    static let channel: [UInt8] = Array("__redis__:invalidate".utf8)

    // MARK: - Clients

    func enable(_ id: Int, redirect: Int, broadcast: Bool, optIn: Bool, optOut: Bool, noLoop: Bool, prefixes: [[UInt8]]) {
        let client = self.clients[id] ?? TrackingClient(id: id)
        client.redirect = redirect
        client.broadcast = broadcast
        client.optIn = optIn
        client.optOut = optOut
        client.noLoop = noLoop
        client.brokenRedirect = false
        if broadcast {
            for prefix in prefixes.isEmpty ? [[]] : prefixes where !client.prefixes.contains(prefix) {
                client.prefixes.append(prefix)
                self.prefixes[prefix, default: ([], [:])].clients.insert(id)
            }
            client.prefixes.sort { $0.lexicographicallyPrecedes($1) }
        }
        self.clients[id] = client
        self.isActive = true
    }

    /// CLIENT TRACKING OFF, RESET, or the connection closed. Keys it read stay in the table until
    /// they change (then nobody hears), as in Redis.
    func disable(_ id: Int) {
        guard let client = self.clients.removeValue(forKey: id) else { return }
        for prefix in client.prefixes {
            self.prefixes[prefix]?.clients.remove(id)
            if self.prefixes[prefix]?.clients.isEmpty == true { self.prefixes.removeValue(forKey: prefix) }
        }
        if self.clients.isEmpty {
            self.isActive = false
            self.table.removeAll()
            self.prefixes.removeAll()
        }
    }

    /// The first prefix of `prefixes` that overlaps (one starts the other) one the client has, or
    /// another of `prefixes`: Redis's checkPrefixCollisionsOrReply.
    func prefixCollision(_ id: Int, _ prefixes: [[UInt8]]) -> (new: [UInt8], existing: [UInt8], existingIsOwn: Bool)? {
        func overlap(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.count <= b.count ? b.starts(with: a) : a.starts(with: b) }
        for (i, prefix) in prefixes.enumerated() {
            if let own = self.clients[id]?.prefixes.first(where: { overlap($0, prefix) }) { return (prefix, own, true) }
            if let other = prefixes[(i + 1)...].first(where: { overlap($0, prefix) }) { return (prefix, other, false) }
        }
        return nil
    }

    // MARK: - Reads and writes

    /// A read-only command of client `client` read `keys` (Redis's trackingRememberKeys).
    func remember<S: Sequence>(_ keys: S, by client: TrackingClient, state: ServerState) where S.Element == [UInt8] {
        if (client.optIn && !client.caching) || (client.optOut && client.caching) { return }
        for key in keys { self.table[key, default: []].insert(client.id) }
        self.enforceLimit(state: state)
    }

    /// Over `tracking-table-max-keys`: keys are forgotten (each invalidated to its readers) until
    /// the table is back under it (Redis's trackingLimitUsedSlots, which samples at random).
    func enforceLimit(state: ServerState) {
        guard self.maxKeys > 0 else { return }
        while self.table.count > self.maxKeys, let victim = self.table.first?.key {
            self.invalidate(victim, by: nil, state: state)
        }
    }

    /// `key` changed (by client `writer`, or by the server: nil). Its readers hear now, each once;
    /// BCAST prefixes over it note it for their next message.
    func invalidate(_ key: [UInt8], by writer: Int?, state: ServerState) {
        if !self.prefixes.isEmpty {
            for (prefix, entry) in self.prefixes where key.starts(with: prefix) {
                _ = entry
                self.prefixes[prefix]!.keys[key] = writer ?? -1
                self.broadcastsPending = true
            }
        }
        if let readers = self.table.removeValue(forKey: key) {
            for id in readers.sorted() {
                guard let target = self.clients[id], !target.broadcast else { continue }
                if target.noLoop && id == writer { continue }
                var payload: [UInt8] = []
                Self.appendKeys([key], to: &payload)
                self.send(payload, for: target, state: state)
            }
        }
    }

    /// A key the server changed by itself (expired or evicted). `aheadOfReply`: evicted to make room
    /// for the running client's command, so its message goes before that command's reply.
    public func serverChanged(_ key: UnsafeRawBufferPointer, aheadOfReply: Bool = false, state: ServerState) {
        self.aheadOfReply = aheadOfReply
        self.invalidate([UInt8](key), by: state.pubsub.runningClient, state: state)
        self.aheadOfReply = false
    }

    /// FLUSHDB / FLUSHALL: every tracking client gets a null invalidation; the table empties.
    func invalidateAll(state: ServerState) {
        for id in self.clients.keys.sorted() {
            guard let target = self.clients[id] else { continue }
            let resp3 = state.clients.record(id: id)?.protocolVersion == 3
            self.send(Array((resp3 ? "_\r\n" : "$-1\r\n").utf8), for: target, state: state)
        }
        self.table.removeAll()
    }

    /// Sends each BCAST prefix's message about the keys changed under it (Redis's
    /// trackingBroadcastInvalidationMessages), keys in Redis's (sorted) order.
    func flushBroadcasts(state: ServerState) {
        guard self.broadcastsPending else { return }
        self.broadcastsPending = false
        for prefix in self.prefixes.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let entry = self.prefixes[prefix], !entry.keys.isEmpty else { continue }
            self.prefixes[prefix]!.keys = [:]
            let keys = entry.keys.keys.sorted { $0.lexicographicallyPrecedes($1) }
            for id in entry.clients.sorted() {
                guard let target = self.clients[id] else { continue }
                let sent = target.noLoop ? keys.filter { entry.keys[$0] != id } : keys
                if sent.isEmpty { continue }
                var payload: [UInt8] = []
                Self.appendKeys(sent, to: &payload)
                self.send(payload, for: target, state: state)
            }
        }
    }

    /// Before the loop sleeps: the BCAST messages of every key changed this iteration.
    public func endOfIteration(state: ServerState) {
        if self.broadcastsPending { self.flushBroadcasts(state: state) }
    }

    /// After a command of client `id`: what goes ahead of its reply, and what waited for it.
    func afterCommand(_ id: Int, replyStart: Int, state: ServerState, output: inout [UInt8]) {
        if !self.pendingBefore.isEmpty, let frames = self.pendingBefore.removeValue(forKey: id) {
            output.insert(contentsOf: frames, at: min(replyStart, output.count))
        }
        if !self.pending.isEmpty, let frames = self.pending.removeValue(forKey: id) { output.append(contentsOf: frames) }
    }

    // MARK: - Messages

    static func appendKeys(_ keys: [[UInt8]], to payload: inout [UInt8]) {
        payload.append(UInt8(ascii: "*"))
        payload.appendDecimal(keys.count)
        payload.append("\r\n")
        for key in keys {
            payload.append(UInt8(ascii: "$"))
            payload.appendDecimal(key.count)
            payload.append("\r\n")
            payload.append(contentsOf: key)
            payload.append("\r\n")
        }
    }

    /// Redis's sendTrackingMessage: `payload` (the keys, or a null) to `target`, or to the client it
    /// redirects to; a broken redirect is flagged (and told, to a RESP3 client).
    private func send(_ payload: [UInt8], for target: TrackingClient, state: ServerState) {
        var destination = target.id
        var redirected = false
        if target.redirect != 0 {
            guard state.clients.record(id: target.redirect) != nil else {
                target.brokenRedirect = true
                if state.clients.record(id: target.id)?.protocolVersion == 3 {
                    var frame: [UInt8] = []
                    frame.append(">2\r\n$21\r\ntracking-redir-broken\r\n:")
                    frame.appendDecimal(target.redirect)
                    frame.append("\r\n")
                    self.deliver(frame, to: target.id, for: target.id, state: state)
                }
                return
            }
            destination = target.redirect
            redirected = true
        }
        var frame: [UInt8] = []
        if state.clients.record(id: destination)?.protocolVersion == 3 {
            frame.append(">2\r\n$10\r\ninvalidate\r\n")
        } else if redirected && state.pubsub.isSubscribedMode(destination) {
            frame.append("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n")
        } else {
            return
        }
        frame.append(contentsOf: payload)
        self.deliver(frame, to: destination, for: target.id, state: state)
    }

    /// `frame` (about tracking client `tracker`'s keys) to client `id`: written now when `id` is
    /// not running a command; ahead of the running command's reply when `id` only receives
    /// `tracker`'s redirected messages (or the key was evicted for the command); after it when
    /// `id` is the tracker itself (Redis's trackingInvalidateKey: `target == server.current_client`).
    private func deliver(_ frame: [UInt8], to id: Int, for tracker: Int, state: ServerState) {
        if self.busy.contains(id) {
            if id == state.pubsub.runningClient && (self.aheadOfReply || tracker != id) {
                self.pendingBefore[id, default: []].append(contentsOf: frame)
            } else {
                self.pending[id, default: []].append(contentsOf: frame)
            }
        } else {
            state.clients.send(frame, to: id)
        }
    }
}

extension CommandCall {
    /// `key` changed: WATCHes see it, and tracking clients that read it are told. Called where
    /// CommandCall's mutations touch WATCHes, under the same per-batch flag.
    @inline(__always)
    mutating func touchKey(_ key: [UInt8]) {
        self.state.watches.touch(key, database: self.client.database)
        let tracking = self.state.pubsub.tracking
        if tracking.isActive { tracking.invalidate(key, by: self.client.id, state: self.state) }
    }
}

extension ServerState {
    /// Whether writes must report the keys they change (WATCH or tracking): read once per batch.
    var observesKeys: Bool { !self.watches.isEmpty || self.pubsub.tracking.isActive }
}

extension PubSubRegistry {
    /// Whether client `id` subscribes to `channel`.
    func subscribes(_ id: Int, to channel: [UInt8]) -> Bool {
        self.subscribers(of: channel).contains { $0.id == id }
    }

    /// Whether client `id` subscribes to anything (Redis's CLIENT_PUBSUB): the invalidation
    /// channel first (where a redirect target usually listens), then every subscription.
    func isSubscribedMode(_ id: Int) -> Bool {
        self.subscribes(id, to: TrackingRegistry.channel) || self.hasSubscriptions(id)
    }
}

extension ClientRegistry {
    /// Queues `bytes` on client `id`'s connection outside its replies, if it is connected.
    func send(_ bytes: [UInt8], to id: Int) {
        self.sender(id)?(bytes)
    }
}
