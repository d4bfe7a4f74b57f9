// Pub/sub's registry: which clients listen on which channels and patterns, and the fan-out of one
// message to all of them. A PUBLISH (or a keyspace notification) builds each frame once per
// encoding and appends it to every subscriber's output in the same loop iteration; the
// connection writes it when the iteration's dispatch ends (one write per subscriber however many
// messages the batch published). The frames are Redis's: `message`/`pmessage` arrays in RESP2,
// push frames (`>`) in RESP3. Loop thread only, like everything it is reached from.

import Store

/// Where frames for a subscriber go: its connection, outside its own replies. Server's
/// KVConnection overrides it (queues the bytes, enforces the pubsub output limit, and has them
/// written once the loop's dispatch ends). A class rather than a protocol so that the fan-out can
/// call it through an unretained reference (Unmanaged takes no existential): a retain and a
/// release of every subscriber's connection per message otherwise.
open class PubSubOutput {
    public init() {}

    /// Queues a copy of `frame` after everything queued on the connection so far, and enforces
    /// `limit` (the pubsub class of `client-output-buffer-limit`) on what is pending then.
    /// - Returns: false when the connection was closed for passing the limit.
    open func deliver(_ frame: UnsafeRawBufferPointer, limit: OutputBufferLimit) -> Bool { true }
}

/// One client's subscriptions. Held by its ClientState while it has any, and by the registry's
/// lists.
final class Subscriber {
    let id: Int
    /// Nil for sessions without a connection (ServicesTests): their frames are dropped. Not
    /// retained (a retain and a release per delivery otherwise): the connection outlives its
    /// subscriptions, which its close drops (``PubSubRegistry/removeAll(_:)``, which sets
    /// ``detached``) before it goes.
    let output: Unmanaged<PubSubOutput>?
    /// Set once the registry dropped this subscriber wholesale (its connection closed, or RESET):
    /// a fan-out already under way, which holds its own copy of the list, skips it.
    @exclusivity(unchecked) var detached = false
    /// How frames for this client are encoded (RESP2 arrays or RESP3 pushes).
    @exclusivity(unchecked) var encoding: ReplyEncoding
    /// Channels in subscription order, and the same as a set for membership.
    @exclusivity(unchecked) private(set) var channels: [[UInt8]] = []
    @exclusivity(unchecked) private var channelSet: Set<[UInt8]> = []
    /// Patterns in subscription order (Redis keeps a client's patterns in a list).
    @exclusivity(unchecked) private(set) var patterns: [[UInt8]] = []

    init(id: Int, output: PubSubOutput?, encoding: ReplyEncoding) {
        self.id = id
        self.output = output.map { Unmanaged.passUnretained($0) }
        self.encoding = encoding
    }

    /// The count every subscribe-family reply carries: channels plus patterns.
    var count: Int { self.channels.count + self.patterns.count }

    func addChannel(_ channel: [UInt8]) -> Bool {
        guard self.channelSet.insert(channel).inserted else { return false }
        self.channels.append(channel)
        return true
    }

    func removeChannel(_ channel: [UInt8]) -> Bool {
        guard self.channelSet.remove(channel) != nil else { return false }
        self.channels.remove(at: self.channels.firstIndex(of: channel)!)
        return true
    }

    func addPattern(_ pattern: [UInt8]) -> Bool {
        guard !self.patterns.contains(pattern) else { return false }
        self.patterns.append(pattern)
        return true
    }

    func removePattern(_ pattern: [UInt8]) -> Bool {
        guard let index = self.patterns.firstIndex(of: pattern) else { return false }
        self.patterns.remove(at: index)
        return true
    }
}

/// A subscriber in the registry's lists, unretained: its ClientState owns it for as long as it is
/// in any list (a retain and a release per subscriber per message otherwise). One dropped while a
/// fan-out walks its copy of a list is kept alive by ``PubSubRegistry/retired`` until then.
struct SubscriberRef {
    let unmanaged: Unmanaged<Subscriber>
    init(_ subscriber: Subscriber) { self.unmanaged = Unmanaged.passUnretained(subscriber) }
    var subscriber: Subscriber { self.unmanaged.takeUnretainedValue() }
}

/// Every subscription of every client, by channel and by pattern. Owned by ServerState.
public final class PubSubRegistry {
    /// Subscribers of each channel, in subscription order (the order messages go out).
    @exclusivity(unchecked) private var channels: [[UInt8]: [SubscriberRef]] = [:]
    /// Subscribers of each pattern, in subscription order; patterns in the order first subscribed.
    @exclusivity(unchecked) private var patterns: [(pattern: [UInt8], subscribers: [SubscriberRef])] = []
    /// Subscribers dropped wholesale (a close, RESET) since the last publication began: a
    /// close in the middle of a fan-out must not free one its copy of a list still names.
    @exclusivity(unchecked) private var retired: [Subscriber] = []
    /// Whether anyone subscribes to anything: a PUBLISH to nobody, and a keyspace notification
    /// nobody hears, stop at this check.
    public var isEmpty: Bool { self.channels.isEmpty && self.patterns.isEmpty }
    /// `client-output-buffer-limit` (CONFIG SET, the config file); the pubsub class is enforced
    /// by the connections frames are delivered to.
    public var outputLimits = OutputBufferLimits()
    /// Subscribers closed for passing their output limit (INFO
    /// `client_output_buffer_limit_disconnections`).
    public var outputLimitDisconnections = 0
    /// `notify-keyspace-events`.
    public var keyspaceEvents: KeyspaceEvents = [] {
        didSet { self.notifying = self.keyspaceEvents.publishes }
    }
    /// Whether keyspace events are ever published (read once per batch of commands).
    @exclusivity(unchecked) private(set) var notifying = false
    /// The client whose batch of commands is running, if any: the server's own events (a key
    /// that expired under its command) cannot be written to its output meanwhile, and wait in
    /// ``heldForRunningClient`` until the batch ends.
    @exclusivity(unchecked) var runningClient: Int? {
        didSet { if let id = self.runningClient, !self.tracking.busy.contains(id) { self.tracking.busy.append(id) } }
    }
    @exclusivity(unchecked) var heldForRunningClient: [UInt8] = []
    /// Client-side caching's registry (CLIENT TRACKING; Tracking.swift).
    public let tracking = TrackingRegistry()

    public init() {}

    /// The clients subscribed to `channel`, in subscription order.
    func subscribers(of channel: [UInt8]) -> [Subscriber] { (self.channels[channel] ?? []).map(\.subscriber) }

    /// Channels with at least one subscriber.
    var activeChannels: Dictionary<[UInt8], [SubscriberRef]>.Keys { self.channels.keys }

    /// Whether client `id` subscribes to any channel or pattern (a scan: for tracking's rare
    /// RESP2 redirect to a client not on the invalidation channel).
    func hasSubscriptions(_ id: Int) -> Bool {
        self.channels.values.contains { $0.contains { $0.subscriber.id == id } }
            || self.patterns.contains { $0.subscribers.contains { $0.subscriber.id == id } }
    }

    /// How many clients subscribe to `channel` (patterns not counted, as PUBSUB NUMSUB counts).
    func subscriberCount(_ channel: [UInt8]) -> Int { self.channels[channel]?.count ?? 0 }

    /// How many channels have subscribers.
    var channelCount: Int { self.channels.count }

    /// How many distinct patterns some client subscribes to (PUBSUB NUMPAT).
    var patternCount: Int { self.patterns.count }

    // MARK: Subscribing

    /// - Returns: whether `subscriber` was not subscribed to `channel` before.
    func subscribe(_ subscriber: Subscriber, channel: [UInt8]) -> Bool {
        guard subscriber.addChannel(channel) else { return false }
        self.channels[channel, default: []].append(SubscriberRef(subscriber))
        return true
    }

    func unsubscribe(_ subscriber: Subscriber, channel: [UInt8]) -> Bool {
        guard subscriber.removeChannel(channel) else { return false }
        if var list = self.channels.removeValue(forKey: channel) {
            list.removeAll { $0.subscriber === subscriber }
            if !list.isEmpty { self.channels[channel] = list }
        }
        return true
    }

    func subscribe(_ subscriber: Subscriber, pattern: [UInt8]) -> Bool {
        guard subscriber.addPattern(pattern) else { return false }
        if let index = self.patterns.firstIndex(where: { $0.pattern == pattern }) {
            self.patterns[index].subscribers.append(SubscriberRef(subscriber))
        } else {
            self.patterns.append((pattern, [SubscriberRef(subscriber)]))
        }
        return true
    }

    func unsubscribe(_ subscriber: Subscriber, pattern: [UInt8]) -> Bool {
        guard subscriber.removePattern(pattern) else { return false }
        if let index = self.patterns.firstIndex(where: { $0.pattern == pattern }) {
            self.patterns[index].subscribers.removeAll { $0.subscriber === subscriber }
            if self.patterns[index].subscribers.isEmpty { self.patterns.remove(at: index) }
        }
        return true
    }

    /// Drops every subscription of `subscriber` (its connection closed, or RESET), replying nothing.
    func removeAll(_ subscriber: Subscriber) {
        subscriber.detached = true
        self.retired.append(subscriber)
        for channel in subscriber.channels { _ = self.unsubscribe(subscriber, channel: channel) }
        for pattern in subscriber.patterns { _ = self.unsubscribe(subscriber, pattern: pattern) }
    }

    // MARK: Publishing

    /// Sends `message` to every subscriber of `channel` and of every pattern matching it: channel
    /// subscribers first, then pattern subscribers (one `pmessage` per matching pattern).
    /// - Parameters:
    ///   - publisher: the publishing client's id, or nil (the server itself: expiry, eviction).
    ///   - own: the publisher's output, where its own frames go ahead of its reply (a RESP3
    ///     client may hear what it publishes); another client's frames go to their connection.
    /// - Returns: how many deliveries were made (PUBLISH's reply).
    @discardableResult
    func publish<C: Collection, M: Collection>(
        channel: C, message: M, publisher: Int?, own: inout [UInt8]
    ) -> Int where C.Element == UInt8, M.Element == UInt8 {
        guard !self.isEmpty else { return 0 }
        if !self.retired.isEmpty { self.retired.removeAll() }
        var receivers = 0
        let channelKey = Array(channel)
        let limit = self.outputLimits.pubsub
        if let subscribers = self.channels[channelKey] {
            var frames = FramePair()
            for entry in subscribers {
                receivers += 1
                // Borrowed, not copied: a strong copy costs a retain and a release per subscriber.
                entry.unmanaged._withUnsafeGuaranteedRef { subscriber in
                    frames.prepare(subscriber.encoding) { output in
                        output.append("$7\r\nmessage\r\n")
                        output.appendBulk(channelKey)
                        output.appendBulk(message)
                    }
                    self.send(frames, to: subscriber, publisher: publisher, limit: limit, own: &own)
                }
            }
        }
        if !self.patterns.isEmpty {
            let patterns = self.patterns
            for entry in patterns {
                let matched = entry.pattern.withUnsafeBytes { pattern in
                    channelKey.withUnsafeBytes { Glob.matches(pattern: pattern, $0) }
                }
                guard matched else { continue }
                var frames = FramePair(count: 4)
                for ref in entry.subscribers {
                    receivers += 1
                    ref.unmanaged._withUnsafeGuaranteedRef { subscriber in
                        frames.prepare(subscriber.encoding) { output in
                            output.append("$8\r\npmessage\r\n")
                            output.appendBulk(entry.pattern)
                            output.appendBulk(channelKey)
                            output.appendBulk(message)
                        }
                        self.send(frames, to: subscriber, publisher: publisher, limit: limit, own: &own)
                    }
                }
            }
        }
        return receivers
    }

    /// Appends the frame in `subscriber`'s encoding (``FramePair/prepare(_:_:)`` built it) to its
    /// connection's output, or ahead of the publisher's own reply; counts a subscriber the limit
    /// closed.
    @inline(__always)
    private func send(
        _ frames: borrowing FramePair, to subscriber: Subscriber, publisher: Int?, limit: OutputBufferLimit,
        own: inout [UInt8]
    ) {
        let resp3 = subscriber.encoding == .resp3
        if subscriber.id == publisher {
            own.append(contentsOf: resp3 ? frames.resp3 : frames.resp2)
            return
        }
        guard !subscriber.detached, let output = subscriber.output else { return }
        // Borrowed in place: binding the frame to a local would retain and release it per subscriber.
        let open = output._withUnsafeGuaranteedRef { output in
            resp3
                ? frames.resp3.withUnsafeBytes { output.deliver($0, limit: limit) }
                : frames.resp2.withUnsafeBytes { output.deliver($0, limit: limit) }
        }
        if !open { self.outputLimitDisconnections += 1 }
    }
}

/// One message's frame in each encoding, built the first time a subscriber needs it: the RESP2
/// and RESP3 forms differ only in the aggregate's type byte. Every subscriber of one encoding is
/// sent the same bytes.
private struct FramePair {
    var count = 3
    var resp2: [UInt8] = []
    var resp3: [UInt8] = []

    init(count: Int = 3) { self.count = count }

    /// Builds the frame for `encoding` unless it is built already.
    @inline(__always)
    mutating func prepare(_ encoding: ReplyEncoding, _ body: (inout [UInt8]) -> Void) {
        if encoding == .resp3 {
            if self.resp3.isEmpty { self.resp3 = Self.build(">", self.count, body) }
        } else if self.resp2.isEmpty {
            self.resp2 = Self.build("*", self.count, body)
        }
    }

    private static func build(_ type: Unicode.Scalar, _ count: Int, _ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var frame: [UInt8] = [UInt8(ascii: type)]
        frame.appendDecimal(count)
        frame.append("\r\n")
        body(&frame)
        return frame
    }
}

extension Array where Element == UInt8 {
    /// Appends `$<n>\r\n<bytes>\r\n`.
    mutating func appendBulk<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self.append(UInt8(ascii: "$"))
        self.appendDecimal(bytes.count)
        self.append("\r\n")
        self.append(contentsOf: bytes)
        self.append("\r\n")
    }
}
