// Pub/sub's registry: which clients listen on which channels and patterns, and the fan-out of one
// message to all of them. A PUBLISH (or a keyspace notification) builds each frame once per
// encoding and appends it to every subscriber's output in the same loop iteration; the
// connection writes it when the iteration's dispatch ends (one write per subscriber however many
// messages the batch published). The frames are Redis's: `message`/`pmessage` arrays in RESP2,
// push frames (`>`) in RESP3. Loop thread only, like everything it is reached from.

import Store

/// Where frames for a subscriber go: its connection, outside its own replies. Server's
/// KVConnection implements it (queues the bytes, enforces the pubsub output limit, and has them
/// written once the loop's dispatch ends).
public protocol PubSubOutput: AnyObject {
    /// Queues `frame` after everything queued on the connection so far.
    func deliver(_ frame: [UInt8])
}

/// One client's subscriptions. Held by its ClientState while it has any, and by the registry's
/// lists.
final class Subscriber {
    let id: Int
    /// Nil for sessions without a connection (ServicesTests): their frames are dropped.
    let output: PubSubOutput?
    /// How frames for this client are encoded (RESP2 arrays or RESP3 pushes).
    @exclusivity(unchecked) var encoding: ReplyEncoding
    /// Channels in subscription order, and the same as a set for membership.
    @exclusivity(unchecked) private(set) var channels: [[UInt8]] = []
    @exclusivity(unchecked) private var channelSet: Set<[UInt8]> = []
    /// Patterns in subscription order (Redis keeps a client's patterns in a list).
    @exclusivity(unchecked) private(set) var patterns: [[UInt8]] = []

    init(id: Int, output: PubSubOutput?, encoding: ReplyEncoding) {
        self.id = id
        self.output = output
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

/// Every subscription of every client, by channel and by pattern. Owned by ServerState.
public final class PubSubRegistry {
    /// Subscribers of each channel, in subscription order (the order messages go out).
    @exclusivity(unchecked) private var channels: [[UInt8]: [Subscriber]] = [:]
    /// Subscribers of each pattern, in subscription order; patterns in the order first subscribed.
    @exclusivity(unchecked) private var patterns: [(pattern: [UInt8], subscribers: [Subscriber])] = []
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
        didSet { if let id = self.runningClient { self.tracking.busy.insert(id) } }
    }
    @exclusivity(unchecked) var heldForRunningClient: [UInt8] = []
    /// Client-side caching's registry (CLIENT TRACKING; Tracking.swift).
    public let tracking = TrackingRegistry()

    public init() {}

    /// The clients subscribed to `channel`, in subscription order.
    func subscribers(of channel: [UInt8]) -> [Subscriber] { self.channels[channel] ?? [] }

    /// Channels with at least one subscriber.
    var activeChannels: Dictionary<[UInt8], [Subscriber]>.Keys { self.channels.keys }

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
        self.channels[channel, default: []].append(subscriber)
        return true
    }

    func unsubscribe(_ subscriber: Subscriber, channel: [UInt8]) -> Bool {
        guard subscriber.removeChannel(channel) else { return false }
        if var list = self.channels.removeValue(forKey: channel) {
            list.removeAll { $0 === subscriber }
            if !list.isEmpty { self.channels[channel] = list }
        }
        return true
    }

    func subscribe(_ subscriber: Subscriber, pattern: [UInt8]) -> Bool {
        guard subscriber.addPattern(pattern) else { return false }
        if let index = self.patterns.firstIndex(where: { $0.pattern == pattern }) {
            self.patterns[index].subscribers.append(subscriber)
        } else {
            self.patterns.append((pattern, [subscriber]))
        }
        return true
    }

    func unsubscribe(_ subscriber: Subscriber, pattern: [UInt8]) -> Bool {
        guard subscriber.removePattern(pattern) else { return false }
        if let index = self.patterns.firstIndex(where: { $0.pattern == pattern }) {
            self.patterns[index].subscribers.removeAll { $0 === subscriber }
            if self.patterns[index].subscribers.isEmpty { self.patterns.remove(at: index) }
        }
        return true
    }

    /// Drops every subscription of `subscriber` (its connection closed, or RESET), replying nothing.
    func removeAll(_ subscriber: Subscriber) {
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
        var receivers = 0
        let channelKey = Array(channel)
        if let subscribers = self.channels[channelKey] {
            var frames = FramePair()
            for subscriber in subscribers {
                let frame = frames.frame(subscriber.encoding) { output in
                    output.append("$7\r\nmessage\r\n")
                    output.appendBulk(channelKey)
                    output.appendBulk(message)
                }
                Self.send(frame, to: subscriber, publisher: publisher, own: &own)
                receivers += 1
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
                for subscriber in entry.subscribers {
                    let frame = frames.frame(subscriber.encoding) { output in
                        output.append("$8\r\npmessage\r\n")
                        output.appendBulk(entry.pattern)
                        output.appendBulk(channelKey)
                        output.appendBulk(message)
                    }
                    Self.send(frame, to: subscriber, publisher: publisher, own: &own)
                    receivers += 1
                }
            }
        }
        return receivers
    }

    @inline(__always)
    private static func send(_ frame: [UInt8], to subscriber: Subscriber, publisher: Int?, own: inout [UInt8]) {
        if subscriber.id == publisher {
            own.append(contentsOf: frame)
        } else {
            subscriber.output?.deliver(frame)
        }
    }
}

/// One message's frame in each encoding, built the first time a subscriber needs it: the RESP2
/// and RESP3 forms differ only in the aggregate's type byte.
private struct FramePair {
    var count = 3
    var resp2: [UInt8]?
    var resp3: [UInt8]?

    init(count: Int = 3) { self.count = count }

    mutating func frame(_ encoding: ReplyEncoding, _ body: (inout [UInt8]) -> Void) -> [UInt8] {
        if encoding == .resp3 {
            if let resp3 { return resp3 }
            var frame: [UInt8] = [UInt8(ascii: ">")]
            frame.appendDecimal(self.count)
            frame.append("\r\n")
            body(&frame)
            self.resp3 = frame
            return frame
        }
        if let resp2 { return resp2 }
        var frame: [UInt8] = [UInt8(ascii: "*")]
        frame.appendDecimal(self.count)
        frame.append("\r\n")
        body(&frame)
        self.resp2 = frame
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
