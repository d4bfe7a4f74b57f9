// The message-flow workloads (`--workload queue`, `scheduler` and `pubsub`): producers and
// consumers on one loop, each message stamped with its sequence number and the moment it was sent
// (a scheduled job: the moment it falls due), so that what is measured is the whole trip — push to
// pop, due to taken, publish to delivery — and nothing the server loses or duplicates goes
// unnoticed. Producers keep `-P` messages in flight (closed loop) or send on a schedule (`--rate`);
// a queue's consumers each keep one BRPOP waiting; a scheduler's pollers take due jobs with
// ZRANGEBYSCORE and ZREM (a job is taken by whoever's ZREM removes it); subscribers are subscribed
// (to `--channels` channels, or patterns) before the first message, on reader loops of their own
// (`--threads`, SubscriberReaders.swift), and `--slow-subscribers` stop reading, to see what the
// server does with them. Loop thread only.

import Histogram
import Reactor

/// What one flow run found.
struct FlowTally {
    var produced = 0
    /// Messages received (a pub/sub message counts once per subscriber that got it).
    var delivered = 0
    /// Expected deliveries that never came.
    var lost = 0
    /// Deliveries of a message more often than it was sent to the receiver.
    var duplicated = 0
    /// Slow subscribers (`--slow-subscribers`) the server closed.
    var slowClosed = 0
}

final class FlowRunner {
    enum Phase { case connecting, auth, subscribing, running, draining, checkingSlow, done }

    let configuration: BenchConfiguration
    private let loop: EventLoop
    private let address: SocketAddress
    private var producers: [FlowClient] = []
    private var consumers: [FlowClient] = []
    private var phase = Phase.connecting
    private var connected = 0
    private var pendingSetup = 0
    private var failure: BenchFailure?

    // Issuing.
    private let messageLimit: Int
    private var sent = 0
    private var nextRateSlot = 0
    private var deadline: UInt64 = .max
    private var start: UInt64 = 0
    private var lastProgress: UInt64 = 0
    private var timers: [TimerID] = []

    // Accounting: deliveries per sequence number (a queue or a schedule expects one, a channel one per
    // subscriber of the channel it went to).
    private var deliveries: [UInt16] = []
    /// Subscribers per channel (pubsub); one entry of 1 otherwise.
    private var receivers: [Int] = [1]
    private var expectedDeliveries = 0
    private var result = BenchResult()
    private var tally = FlowTally()

    private let key: [UInt8]
    /// Pub/sub: the channels messages go to, round robin.
    private var channels: [[UInt8]] = []
    /// Slow subscribers the server closed.
    private var slowClosed = 0
    private var slowSubscribers: [FlowClient] = []
    private var slowPending = 0
    /// Pub/sub: the subscribers' reader loops, and how many said they are subscribed.
    private var readers: SubscriberReaders?
    private var readersReady = 0

    init(configuration: BenchConfiguration) throws(BenchFailure) {
        self.configuration = configuration
        (self.loop, self.address, self.messageLimit) = try BenchRunner.prepare(configuration)
        let name =
            switch configuration.workload {
            case .queue: "queue"
            case .scheduler: "schedule"
            default: "channel"
            }
        self.key = Array((configuration.keyPrefix + name).utf8)
        if configuration.workload == .pubsub {
            self.channels = (0..<configuration.channels).map { Array("\(configuration.keyPrefix)ch:\($0):x".utf8) }
            self.receivers = (0..<configuration.channels).map { channel in
                (0..<configuration.consumers).count { $0 % configuration.channels == channel }
            }
        }
    }

    /// Runs the flow to the end on the calling thread.
    /// - Throws: ``BenchFailure`` when a connection is refused or lost, or nothing arrives for a while.
    func run() throws(BenchFailure) -> (BenchResult, FlowTally) {
        let pubsub = self.configuration.workload == .pubsub
        let slow = pubsub ? self.configuration.slowSubscribers : 0
        guard self.configuration.connections + self.configuration.consumers + slow + 16 <= EventLoop.raiseDescriptorLimit() else {
            throw BenchFailure(description: "\(self.configuration.connections + self.configuration.consumers + slow) connections need more descriptors than the limit")
        }
        // Subscribers live on the reader loops; this loop keeps the publishers (and the slow ones).
        let consumerCount = pubsub ? 0 : self.configuration.consumers
        let total = self.configuration.connections + consumerCount + slow
        if pubsub {
            let verb = self.configuration.patterns ? "PSUBSCRIBE" : "SUBSCRIBE"
            let events = self.loop.makeInbox { [unowned self] (event: ReaderEvent) in self.readerEvent(event) }
            let readers = SubscriberReaders(
                configuration: self.configuration, address: self.address, threads: self.configuration.readerThreads,
                subscribeRequests: self.channels.indices.map { RESPFrame.command(verb, self.subscription($0)) }, events: events)
            self.readers = readers
            readers.start()
        }
        for index in 0..<total {
            let role: FlowClient.Role =
                index < self.configuration.connections ? .producer
                : index < self.configuration.connections + consumerCount ? .consumer : .slow
            let client = FlowClient(runner: self, role: role, index: index - self.configuration.connections)
            switch role {
            case .producer: self.producers.append(client)
            case .consumer: self.consumers.append(client)
            case .slow: self.slowSubscribers.append(client)
            }
            do {
                let connection = try Connection.connect(loop: self.loop, to: self.address, delegate: client)
                connection.idleTimeoutEnabled = false
                client.connection = connection
            } catch {
                self.closeAll()
                throw BenchFailure.network("cannot connect to \(self.address): \(BenchRunner.describe(error))")
            }
        }
        self.lastProgress = SystemClock.monotonicNanoseconds()
        self.timers.append(self.loop.scheduleTimer(after: .milliseconds(250), repeating: .milliseconds(250)) { [unowned self] in
            self.watchdog()
        })
        do {
            try self.loop.run()
        } catch {
            self.failure = BenchFailure(description: "event loop failed: \(error)")
        }
        for timer in self.timers { self.loop.cancelTimer(timer) }
        self.closeAll()
        _ = self.readers?.stopAndCollect()
        if let failure = self.failure { throw failure }
        self.tally.slowClosed = self.slowClosed
        self.result.lastError = (self.producers + self.consumers).lazy.compactMap { $0.lastError }.first ?? self.result.lastError
        return (self.result, self.tally)
    }

    private func closeAll() {
        for client in self.producers + self.consumers + self.slowSubscribers { client.connection?.close() }
    }

    // MARK: Called by clients

    func clientDidConnect() {
        guard self.phase == .connecting else { return }
        self.connected += 1
        let everyone = self.producers + self.consumers + self.slowSubscribers
        guard self.connected == everyone.count else { return }
        if let password = self.configuration.password {
            self.phase = .auth
            let request = RequestEncoder.authRequest(password: password, wireProtocol: .resp)!
            self.pendingSetup = everyone.count
            for client in everyone { client.send(request) }
        } else {
            self.subscribe()
        }
    }

    /// Setup replies (AUTH, SUBSCRIBE confirmations).
    func setupReplied(_ frame: RESPFrame, client: FlowClient) {
        if case .error(let text) = frame {
            self.fail(self.phase == .auth ? "authentication with \(self.address) failed: \(text)" : "\(text)")
            return
        }
        self.pendingSetup -= 1
        if self.pendingSetup == 0 {
            if self.phase == .auth { self.subscribe() } else { self.startWhenSubscribed() }
        }
    }

    /// The flow starts once this loop's subscriptions are confirmed and every reader loop's too.
    private func startWhenSubscribed() {
        guard self.phase == .subscribing, self.pendingSetup == 0, self.readersReady == (self.readers?.count ?? 0) else { return }
        self.startRunning()
    }

    private func readerEvent(_ event: ReaderEvent) {
        switch event {
        case .ready:
            self.readersReady += 1
            self.lastProgress = SystemClock.monotonicNanoseconds()
            self.startWhenSubscribed()
        case .failed(let failure):
            guard self.phase != .done, self.failure == nil else { return }
            self.failure = failure
            self.phase = .done
            self.loop.stop()
        }
    }

    private func subscribe() {
        guard self.configuration.workload == .pubsub else { return self.startRunning() }
        self.phase = .subscribing
        let verb = self.configuration.patterns ? "PSUBSCRIBE" : "SUBSCRIBE"
        for client in self.consumers {
            client.send(RESPFrame.command(verb, self.subscription(client.index % self.channels.count)))
        }
        // A slow subscriber listens to every channel, then stops reading.
        for client in self.slowSubscribers {
            for channel in self.channels.indices { client.send(RESPFrame.command(verb, self.subscription(channel))) }
        }
        self.pendingSetup = self.consumers.count + self.slowSubscribers.count * self.channels.count
        self.startWhenSubscribed()
    }

    /// What a subscriber of `channel` subscribes to: the channel, or (`--patterns`) a pattern that
    /// matches it and no other.
    private func subscription(_ channel: Int) -> [UInt8] {
        self.configuration.patterns ? Array("\(self.configuration.keyPrefix)ch:\(channel):*".utf8) : self.channels[channel]
    }

    private func startRunning() {
        self.phase = .running
        let now = SystemClock.monotonicNanoseconds()
        self.start = now
        self.lastProgress = now
        if case .duration(let seconds) = self.configuration.limit {
            self.deadline = now + UInt64(seconds * 1e9)
        }
        for client in self.slowSubscribers { client.connection?.pauseReading() }
        switch self.configuration.workload {
        case .queue:
            for client in self.consumers { client.waitForMessage(key: self.key) }
        case .scheduler:
            for client in self.consumers { client.poll(key: self.key, nowMilliseconds: self.elapsedMilliseconds) }
            // Pollers that found nothing due look again on the next tick.
            self.timers.append(self.loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(1), leeway: .microseconds(200)) {
                [unowned self] in
                guard self.consuming else { return }
                let now = self.elapsedMilliseconds
                for client in self.consumers where client.isIdle { client.poll(key: self.key, nowMilliseconds: now) }
            })
        default:
            break
        }
        if let readers = self.readers {
            // The readers' deliveries, seen from here: progress for the watchdog, and the end of
            // the drain once every expected delivery has arrived.
            self.timers.append(self.loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(1), leeway: .microseconds(200)) {
                [unowned self] in
                self.lastProgress = max(self.lastProgress, readers.progress.lastDelivery.load(ordering: .relaxed))
                if self.phase == .draining { self.checkDone() }
            })
        }
        if let rate = self.configuration.rate {
            // The schedule's clock: every millisecond, the messages that fell due leave.
            self.timers.append(self.loop.scheduleTimer(after: .milliseconds(1), repeating: .milliseconds(1), leeway: .microseconds(200)) {
                [unowned self] in self.sendDue(rate: rate)
            })
        } else {
            for client in self.producers { self.topUp(client) }
        }
    }

    /// Milliseconds since the flow started (the scheduler's scores).
    var elapsedMilliseconds: UInt64 { (SystemClock.monotonicNanoseconds() - self.start) / 1_000_000 }

    /// The request that sends message `sequence`, stamped `now` (a job: due `--delay-ms` later).
    private func messageRequest(_ sequence: Int, now: UInt64) -> [UInt8] {
        let value = RequestEncoder.value(size: self.configuration.valueSize)
        switch self.configuration.workload {
        case .scheduler:
            let due = now + UInt64(self.configuration.delayMilliseconds) * 1_000_000
            let score = (due - self.start) / 1_000_000
            return RESPFrame.command([Array("ZADD".utf8), self.key, Array("\(score)".utf8), Array("\(sequence):\(due):".utf8) + value])
        case .pubsub:
            let channel = self.channels[sequence % self.channels.count]
            return RESPFrame.command([Array("PUBLISH".utf8), channel, Array("\(sequence):\(now):".utf8) + value])
        default:
            return RESPFrame.command([Array("LPUSH".utf8), self.key, Array("\(sequence):\(now):".utf8) + value])
        }
    }

    private var mayIssue: Bool {
        self.phase == .running && self.sent < self.messageLimit && SystemClock.monotonicNanoseconds() < self.deadline
    }

    /// Closed loop: keeps the producer's pipeline full.
    func topUp(_ client: FlowClient) {
        if let rate = self.configuration.rate { return self.sendDue(rate: rate) }
        var batch: [UInt8] = []
        let now = SystemClock.monotonicNanoseconds()
        while client.inFlight < self.configuration.pipeline && self.mayIssue {
            batch += self.messageRequest(self.sent, now: now)
            client.sequences.append(self.sent)
            self.sent += 1
            client.inFlight += 1
        }
        if !batch.isEmpty { client.send(batch, counted: false) }
        self.checkDone()
    }

    private func sendDue(rate: Double) {
        guard self.phase == .running else { return }
        let now = SystemClock.monotonicNanoseconds()
        let due = min(self.messageLimit, Int(Double(now - self.start) / 1e9 * rate) + 1)
        while self.nextRateSlot < due && self.mayIssue {
            let client = self.producers[self.nextRateSlot % self.producers.count]
            // At its -P cap the producer's message waits (and so do those after it): it leaves as
            // soon as a reply makes room, stamped with its due time, so the wait counts.
            guard client.inFlight < self.configuration.pipeline else { break }
            let dueAt = self.start + UInt64(Double(self.nextRateSlot) / rate * 1e9)
            self.result.sendLag.record(min(now > dueAt ? (now - dueAt) / 1000 : 0, self.result.sendLag.highestTrackableValue))
            client.send(self.messageRequest(self.sent, now: dueAt), counted: false)
            client.sequences.append(self.sent)
            client.inFlight += 1
            self.sent += 1
            self.nextRateSlot += 1
        }
        self.checkDone()
    }

    /// A producer's reply to message `sequence` (LPUSH's length, ZADD's count, PUBLISH's receivers).
    func producerReplied(_ frame: RESPFrame, sequence: Int) {
        self.lastProgress = SystemClock.monotonicNanoseconds()
        if case .error = frame {
            self.result.errors += 1
            return
        }
        self.tally.produced += 1
        self.expectedDeliveries += self.receivers[sequence % self.receivers.count]
    }

    /// A consumer got `payload` (a popped element, a published message).
    func delivered(_ payload: [UInt8]) {
        let now = SystemClock.monotonicNanoseconds()
        self.lastProgress = now
        guard let (sequence, stamp) = Self.parseStamp(payload) else {
            self.result.errors += 1
            return
        }
        while self.deliveries.count <= sequence { self.deliveries.append(0) }
        if Int(self.deliveries[sequence]) >= self.receivers[sequence % self.receivers.count] {
            self.tally.duplicated += 1
        } else {
            self.deliveries[sequence] += 1
        }
        self.tally.delivered += 1
        // A job may be taken up to a millisecond before it is due (scores are whole milliseconds): 0.
        let latency = now >= stamp ? (now - stamp + 500) / 1000 : 0
        self.result.histogram.record(min(latency, self.result.histogram.highestTrackableValue))
        self.checkDone()
    }

    /// `<sequence>:<nanoseconds>:…`.
    static func parseStamp(_ payload: [UInt8]) -> (Int, UInt64)? {
        var numbers: [UInt64] = [0, 0]
        var index = 0
        var digits = 0
        for byte in payload {
            if byte == UInt8(ascii: ":") {
                guard digits > 0 else { return nil }
                index += 1
                digits = 0
                if index == 2 { return (Int(numbers[0]), numbers[1]) }
                continue
            }
            guard byte >= 48 && byte <= 57 else { return nil }
            numbers[index] = numbers[index] &* 10 &+ UInt64(byte - 48)
            digits += 1
        }
        return nil
    }

    func consumerFailed(_ text: String) {
        self.result.errors += 1
        self.result.lastError = text
    }

    /// Whether a queue consumer should wait for another message, a poller poll again.
    var consuming: Bool { self.phase == .running || self.phase == .draining }

    var isScheduler: Bool { self.configuration.workload == .scheduler }

    /// Every message sent was answered and every delivery expected arrived: the run ends.
    private func checkDone() {
        guard self.phase == .running || self.phase == .draining else { return }
        let producing = self.mayIssue
        let answered = self.tally.produced + self.result.errors >= self.sent
        if self.phase == .running && !producing && answered {
            self.phase = .draining
            self.result.elapsedSeconds = Double(SystemClock.monotonicNanoseconds() - self.start) / 1e9
            // What is still on its way gets a moment to arrive (a job its due time too); then what has
            // not is lost.
            let grace = Duration.seconds(2) + .milliseconds(self.configuration.workload == .scheduler ? self.configuration.delayMilliseconds : 0)
            self.timers.append(self.loop.scheduleTimer(after: grace) { [unowned self] in self.finish() })
        }
        let arrived = self.readers.map { $0.progress.counted.load(ordering: .relaxed) } ?? self.tally.delivered - self.tally.duplicated
        if self.phase == .draining && arrived >= self.expectedDeliveries {
            self.finish()
        }
    }

    private func finish() {
        guard self.phase != .done && self.phase != .checkingSlow else { return }
        self.phase = .done
        if let rate = self.configuration.rate {
            self.result.intendedRate = rate
            if case .duration(let seconds) = self.configuration.limit {
                self.result.unsentRequests = max(0, min(self.messageLimit, Int(seconds * rate)) - self.sent)
            }
        }
        if let readers = self.readers {
            let counted = readers.stopAndCollect()
            self.tally.delivered += counted.delivered
            self.tally.duplicated += counted.duplicated
            self.result.errors += counted.errors
            self.result.lastError = self.result.lastError ?? counted.lastError
            self.result.histogram.add(counted.histogram)
        }
        self.tally.lost = max(0, self.expectedDeliveries - (self.tally.delivered - self.tally.duplicated))
        self.result.requests = self.tally.produced
        self.result.replies = self.tally.delivered
        guard !self.slowSubscribers.isEmpty else { return self.loop.stop() }
        // A subscriber that stopped reading cannot see the server's close either (the close waits
        // behind the bytes it did not read): it reads again, discarding, and an end of stream within
        // a second says the server closed it.
        self.phase = .checkingSlow
        self.slowPending = self.slowSubscribers.count
        for client in self.slowSubscribers { client.connection?.resumeReading() }
        self.timers.append(self.loop.scheduleTimer(after: .seconds(1)) { [unowned self] in
            self.phase = .done
            self.loop.stop()
        })
    }

    private func watchdog() {
        guard self.phase != .done else { return }
        let now = SystemClock.monotonicNanoseconds()
        if self.phase == .running && now >= self.deadline { self.checkDone() }
        if now - self.lastProgress > UInt64(self.configuration.stallTimeoutSeconds * 1e9) && self.phase != .draining {
            self.fail("nothing from \(self.address) for \(BenchRunner.format(self.configuration.stallTimeoutSeconds, 0)) s; giving up")
        }
    }

    func fail(_ reason: String) {
        guard self.phase != .done, self.failure == nil else { return }
        self.failure = self.phase == .connecting ? .network("cannot connect to \(self.address): \(reason)")
            : (reason.hasPrefix("authentication") ? BenchFailure(description: reason) : .network(reason))
        self.phase = .done
        self.loop.stop()
    }

    var currentPhase: Phase { self.phase }

    /// A slow subscriber's connection ended: the server closed it (its output limit), as it should.
    func slowSubscriberClosed() {
        guard self.phase != .done else { return }  // kvbench closing it at the end
        self.slowClosed += 1
        self.slowPending -= 1
        if self.phase == .checkingSlow && self.slowPending == 0 {
            self.phase = .done
            self.loop.stop()
        }
    }
}
