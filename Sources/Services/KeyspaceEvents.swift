// Keyspace notifications: `notify-keyspace-events` (Redis's flag letters, parsed and printed as
// Redis does) and the one call commands make after a change, `call.notify(.string, "set", key)`,
// which publishes `__keyspace@0__:<key>` → event and `__keyevent@0__:<event>` → key as Redis's
// notifyKeyspaceEvent does. With notifications off it costs one check of a flag read once per
// batch. Events the server raises by itself (expired, evicted) go through
// ``PubSubRegistry/notifyFromServer(_:_:key:)``.

/// The classes of `notify-keyspace-events`, with Redis's bit values.
public struct KeyspaceEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let keyspace = KeyspaceEvents(rawValue: 1 << 0)  // K
    public static let keyevent = KeyspaceEvents(rawValue: 1 << 1)  // E
    public static let generic = KeyspaceEvents(rawValue: 1 << 2)  // g
    public static let string = KeyspaceEvents(rawValue: 1 << 3)  // $
    public static let list = KeyspaceEvents(rawValue: 1 << 4)  // l
    public static let set = KeyspaceEvents(rawValue: 1 << 5)  // s
    public static let hash = KeyspaceEvents(rawValue: 1 << 6)  // h
    public static let zset = KeyspaceEvents(rawValue: 1 << 7)  // z
    public static let expired = KeyspaceEvents(rawValue: 1 << 8)  // x
    public static let evicted = KeyspaceEvents(rawValue: 1 << 9)  // e
    public static let stream = KeyspaceEvents(rawValue: 1 << 10)  // t
    public static let keyMiss = KeyspaceEvents(rawValue: 1 << 11)  // m (not part of A)
    public static let module = KeyspaceEvents(rawValue: 1 << 13)  // d
    public static let new = KeyspaceEvents(rawValue: 1 << 14)  // n (not part of A)
    /// `A`: every class but key misses and new keys.
    public static let all: KeyspaceEvents = [
        .generic, .string, .list, .set, .hash, .zset, .expired, .evicted, .stream, .module,
    ]

    private static let letters: [(UInt8, KeyspaceEvents)] = [
        (UInt8(ascii: "A"), .all), (UInt8(ascii: "g"), .generic), (UInt8(ascii: "$"), .string),
        (UInt8(ascii: "l"), .list), (UInt8(ascii: "s"), .set), (UInt8(ascii: "h"), .hash), (UInt8(ascii: "z"), .zset),
        (UInt8(ascii: "x"), .expired), (UInt8(ascii: "e"), .evicted), (UInt8(ascii: "K"), .keyspace),
        (UInt8(ascii: "E"), .keyevent), (UInt8(ascii: "t"), .stream), (UInt8(ascii: "m"), .keyMiss),
        (UInt8(ascii: "d"), .module), (UInt8(ascii: "n"), .new),
    ]

    /// Parses Redis's letters (`KEA`, `Ex`, `""`); nil at any other character.
    public init?<C: Collection>(letters: C) where C.Element == UInt8 {
        var events: KeyspaceEvents = []
        for byte in letters {
            guard let (_, flag) = Self.letters.first(where: { $0.0 == byte }) else { return nil }
            events.formUnion(flag)
        }
        self = events
    }

    /// As CONFIG GET prints it: `A` for all the classes (dropping `n`, as Redis does), otherwise
    /// each class letter, then `K`, `E` and `m`.
    public var letters: String {
        var text = ""
        if self.isSuperset(of: .all) {
            text = "A"
        } else {
            let order: [(Character, KeyspaceEvents)] = [
                ("g", .generic), ("$", .string), ("l", .list), ("s", .set), ("h", .hash), ("z", .zset), ("x", .expired),
                ("e", .evicted), ("t", .stream), ("d", .module), ("n", .new),
            ]
            for (letter, flag) in order where self.contains(flag) { text.append(letter) }
        }
        if self.contains(.keyspace) { text.append("K") }
        if self.contains(.keyevent) { text.append("E") }
        if self.contains(.keyMiss) { text.append("m") }
        return text
    }

    /// Whether any notification is ever published: a class and a channel kind are both set.
    var publishes: Bool {
        !self.isDisjoint(with: [.keyspace, .keyevent]) && !self.subtracting([.keyspace, .keyevent]).isEmpty
    }
}

extension PubSubRegistry {
    /// Publishes one keyspace event (Redis's notifyKeyspaceEvent) if its class is enabled.
    func notify<K: Collection>(
        _ type: KeyspaceEvents, _ event: StaticString, key: K, publisher: Int?, own: inout [UInt8], database: Int = 0
    ) where K.Element == UInt8 {
        let events = self.keyspaceEvents
        guard !events.isDisjoint(with: type), !self.isEmpty else { return }
        let eventName = UnsafeBufferPointer(start: event.utf8Start, count: event.utf8CodeUnitCount)
        if events.contains(.keyspace) {
            var channel: [UInt8] = []
            channel.append("__keyspace@")
            channel.appendDecimal(database)  // the database the command ran in (SELECT)
            channel.append("__:")
            channel.append(contentsOf: key)
            self.publish(channel: channel, message: eventName, publisher: publisher, own: &own)
        }
        if events.contains(.keyevent) {
            var channel: [UInt8] = []
            channel.append("__keyevent@")
            channel.appendDecimal(database)
            channel.append("__:")
            channel.append(contentsOf: eventName)
            self.publish(channel: channel, message: key, publisher: publisher, own: &own)
        }
    }

    /// An event the server raises by itself (a key expired or evicted). Frames for a client whose
    /// batch of commands is running wait in ``heldForRunningClient`` until the batch ends (its
    /// output is being written by the batch); everyone else's go out at once.
    public func notifyFromServer(_ type: KeyspaceEvents, _ event: StaticString, key: UnsafeRawBufferPointer, database: Int = 0) {
        guard self.keyspaceEvents.contains(type) else { return }
        var held: [UInt8] = []
        swap(&held, &self.heldForRunningClient)
        self.notify(type, event, key: key, publisher: self.runningClient, own: &held, database: database)
        swap(&held, &self.heldForRunningClient)
    }
}

extension CommandCall {
    /// Publishes keyspace event `event` of class `type` about `key`, where Redis's command does.
    /// Frames for this very client (RESP3) go ahead of its reply, as in Redis.
    @inline(__always)
    mutating func notify<K: Collection>(_ type: KeyspaceEvents, _ event: StaticString, _ key: K)
    where K.Element == UInt8 {
        guard self.notifying else { return }
        self.state.pubsub.notify(type, event, key: key, publisher: self.client.id, own: &self.reply.output,
                                 database: self.client.database)
    }

    /// Whether `key` is absent now, when `n` (new key) events are enabled; false otherwise (no
    /// lookup). Asked before a write that may create the key; ``notifyNew(_:if:)`` after it.
    @inline(__always)
    func keyIsNew<K: Collection>(_ key: K) -> Bool where K.Element == UInt8 {
        guard self.notifying && self.state.pubsub.keyspaceEvents.contains(.new) else { return false }
        return !self.store.contains(Array(key), now: self.nowMilliseconds)
    }

    /// The `new` event, if `isNew` (``keyIsNew(_:)``) and the write succeeded.
    @inline(__always)
    mutating func notifyNew<K: Collection>(_ key: K, if isNew: Bool) where K.Element == UInt8 {
        if isNew { self.notify(.new, "new", key) }
    }
}

extension PubSubRegistry {
    /// A batch of commands ended: the server's events held for its client follow its replies.
    @inline(__always)
    func endBatch(restoring outerClient: Int?, output: inout [UInt8]) {
        if let id = self.runningClient, id != outerClient {
            let tracking = self.tracking
            if let index = tracking.busy.lastIndex(of: id) { tracking.busy.remove(at: index) }
            if !tracking.pending.isEmpty, let frames = tracking.pending.removeValue(forKey: id) {
                output.append(contentsOf: frames)
            }
        }
        self.runningClient = outerClient
        if !self.heldForRunningClient.isEmpty {
            output.append(contentsOf: self.heldForRunningClient)
            self.heldForRunningClient.removeAll()
        }
    }
}

extension CommandCall {
    /// `event` about `key` if `changed` (Redis publishes a collection command's event only when it
    /// changed something), then `del` when that change emptied the collection and the key went
    /// (asked of the store only while notifying), as Redis's t_hash.c … t_zset.c do.
    @inline(__always)
    mutating func notify<K: Collection>(_ type: KeyspaceEvents, _ event: StaticString, _ key: K, ifChanged changed: Bool)
    where K.Element == UInt8 {
        guard self.notifying && changed else { return }
        self.notify(type, event, key)
        if !self.store.contains(Array(key), now: self.nowMilliseconds) { self.notify(.generic, "del", key) }
    }

    /// Whether `key` exists, asked only while notifying (false otherwise): a *STORE command asks it
    /// before writing, so that an empty result that removed a key can announce `del`.
    @inline(__always)
    func existsForNotification(_ key: [UInt8]) -> Bool {
        self.notifying && self.store.contains(key, now: self.nowMilliseconds)
    }

    /// After a *STORE command wrote `count` members at `destination`: `event` for a stored result,
    /// or `del` when the empty result removed a key that `existed` (Redis's setKey / dbDelete).
    @inline(__always)
    mutating func notifyStored(_ type: KeyspaceEvents, _ event: StaticString, _ destination: [UInt8], count: Int, existed: Bool) {
        guard self.notifying else { return }
        if count > 0 { self.notify(type, event, destination) } else if existed { self.notify(.generic, "del", destination) }
    }
}
