// The message-flow workloads (`--workload queue` and `pubsub`): producers and consumers on one
// loop, each message stamped with its sequence number and the moment it was sent, so that what
// is measured is the whole trip — push to pop, publish to delivery — and nothing the server loses
// or duplicates goes unnoticed. Producers keep `-P` messages in flight (closed loop) or send on a
// schedule (`--rate`); a queue's consumers each keep one BRPOP waiting, a channel's subscribers
// are subscribed before the first message. Loop thread only.

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
}

final class FlowRunner {
    enum Phase { case connecting, auth, subscribing, running, draining, done }

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

    // Accounting: deliveries per sequence number (a queue expects one, a channel one per subscriber).
    private var deliveries: [UInt8] = []
    private var expectedPerMessage = 1
    private var result = BenchResult()
    private var tally = FlowTally()

    private let key: [UInt8]

    init(configuration: BenchConfiguration) throws(BenchFailure) {
        self.configuration = configuration
        do {
            self.loop = try EventLoop()
        } catch {
            throw BenchFailure(description: "cannot create the event loop: \(error)")
        }
        do {
            self.address = try SocketAddress(host: configuration.host, port: configuration.port)
        } catch {
            throw BenchFailure(description: error.description)
        }
        switch (configuration.limit, configuration.rate) {
        case (.requests(let n), _): self.messageLimit = n
        case (.duration(let seconds), let rate?): self.messageLimit = max(1, Int((seconds * rate).rounded(.up)))
        case (.duration, nil): self.messageLimit = .max
        }
        self.key = Array((configuration.keyPrefix + (configuration.workload == .queue ? "queue" : "channel")).utf8)
    }

    /// Runs the flow to the end on the calling thread.
    /// - Throws: ``BenchFailure`` when a connection is refused or lost, or nothing arrives for a while.
    func run() throws(BenchFailure) -> (BenchResult, FlowTally) {
        let consumerCount = self.configuration.consumers
        let total = self.configuration.connections + consumerCount
        guard total + 16 <= EventLoop.raiseDescriptorLimit() else {
            throw BenchFailure(description: "\(total) connections need more descriptors than the limit")
        }
        self.expectedPerMessage = self.configuration.workload == .pubsub ? consumerCount : 1
        for index in 0..<total {
            let client = FlowClient(runner: self, isProducer: index < self.configuration.connections)
            if client.isProducer { self.producers.append(client) } else { self.consumers.append(client) }
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
        if let failure = self.failure { throw failure }
        self.result.lastError = (self.producers + self.consumers).lazy.compactMap { $0.lastError }.first
        return (self.result, self.tally)
    }

    private func closeAll() {
        for client in self.producers + self.consumers { client.connection?.close() }
    }

    // MARK: Called by clients

    func clientDidConnect() {
        guard self.phase == .connecting else { return }
        self.connected += 1
        guard self.connected == self.producers.count + self.consumers.count else { return }
        if let password = self.configuration.password {
            self.phase = .auth
            let request = RequestEncoder.authRequest(password: password, wireProtocol: .resp)!
            self.pendingSetup = self.producers.count + self.consumers.count
            for client in self.producers + self.consumers { client.send(request) }
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
            if self.phase == .auth { self.subscribe() } else { self.startRunning() }
        }
    }

    private func subscribe() {
        guard self.configuration.workload == .pubsub else { return self.startRunning() }
        self.phase = .subscribing
        self.pendingSetup = self.consumers.count
        for client in self.consumers { client.send(RESPFrame.command("SUBSCRIBE", self.key)) }
    }

    private func startRunning() {
        self.phase = .running
        let now = SystemClock.monotonicNanoseconds()
        self.start = now
        self.lastProgress = now
        if case .duration(let seconds) = self.configuration.limit {
            self.deadline = now + UInt64(seconds * 1e9)
        }
        if self.configuration.workload == .queue {
            for client in self.consumers { client.waitForMessage(key: self.key) }
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

    /// The request that sends message `sequence`, stamped `now`.
    private func messageRequest(_ sequence: Int, now: UInt64) -> [UInt8] {
        let payload = Array("\(sequence):\(now):".utf8) + RequestEncoder.value(size: self.configuration.valueSize)
        let verb = self.configuration.workload == .queue ? "LPUSH" : "PUBLISH"
        return RESPFrame.command([Array(verb.utf8), self.key, payload])
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
            client.send(self.messageRequest(self.sent, now: dueAt), counted: false)
            client.inFlight += 1
            self.sent += 1
            self.nextRateSlot += 1
        }
        self.checkDone()
    }

    /// A producer's reply (LPUSH's length, PUBLISH's receiver count).
    func producerReplied(_ frame: RESPFrame) {
        self.lastProgress = SystemClock.monotonicNanoseconds()
        if case .error = frame { self.result.errors += 1 } else { self.tally.produced += 1 }
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
        if Int(self.deliveries[sequence]) >= self.expectedPerMessage {
            self.tally.duplicated += 1
        } else {
            self.deliveries[sequence] += 1
        }
        self.tally.delivered += 1
        if now >= stamp {
            self.result.histogram.record(min((now - stamp + 500) / 1000, self.result.histogram.highestTrackableValue))
        }
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

    /// Whether a queue consumer should wait for another message.
    var consuming: Bool { self.phase == .running || self.phase == .draining }

    /// Every message sent was answered and every delivery expected arrived: the run ends.
    private func checkDone() {
        guard self.phase == .running || self.phase == .draining else { return }
        let producing = self.mayIssue
        let answered = self.tally.produced + self.result.errors >= self.sent
        if self.phase == .running && !producing && answered {
            self.phase = .draining
            self.result.elapsedSeconds = Double(SystemClock.monotonicNanoseconds() - self.start) / 1e9
            // What is still on its way gets a moment to arrive; then what has not is lost.
            self.timers.append(self.loop.scheduleTimer(after: .seconds(2)) { [unowned self] in self.finish() })
        }
        if self.phase == .draining && self.tally.delivered - self.tally.duplicated >= self.tally.produced * self.expectedPerMessage {
            self.finish()
        }
    }

    private func finish() {
        guard self.phase != .done else { return }
        self.phase = .done
        if let rate = self.configuration.rate {
            self.result.intendedRate = rate
            if case .duration(let seconds) = self.configuration.limit {
                self.result.unsentRequests = max(0, min(self.messageLimit, Int(seconds * rate)) - self.sent)
            }
        }
        let expected = self.tally.produced * self.expectedPerMessage
        self.tally.lost = max(0, expected - (self.tally.delivered - self.tally.duplicated))
        self.result.requests = self.tally.produced
        self.result.replies = self.tally.delivered
        self.loop.stop()
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
}

/// One producer or consumer connection of a flow.
final class FlowClient: ConnectionDelegate {
    unowned let runner: FlowRunner
    let isProducer: Bool
    var connection: Connection?
    var inFlight = 0
    /// Setup requests (AUTH, SUBSCRIBE) waiting for their replies.
    private var setupInFlight = 0
    private var buffer: [UInt8] = []
    private(set) var lastError: String?
    private var waitKey: [UInt8] = []

    init(runner: FlowRunner, isProducer: Bool) {
        self.runner = runner
        self.isProducer = isProducer
    }

    /// Sends `bytes`; a setup request (`counted`) expects one reply before the flow starts.
    func send(_ bytes: [UInt8], counted: Bool = true) {
        if counted { self.setupInFlight += 1 }
        self.connection?.write(bytes)
        self.connection?.flush()
    }

    /// A queue consumer: one BRPOP waits for the next message (a one-second timeout, so that a
    /// consumer notices the end of the run).
    func waitForMessage(key: [UInt8]) {
        self.waitKey = key
        self.connection?.write(RESPFrame.command([Array("BRPOP".utf8), key, Array("1".utf8)]))
        self.connection?.flush()
    }

    func connectionDidOpen(_ connection: Connection) { self.runner.clientDidConnect() }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.buffer.append(contentsOf: bytes)
        var offset = 0
        while let (frame, next) = RESPFrame.parse(self.buffer, from: offset) {
            offset = next
            self.handle(frame)
        }
        if offset > 0 { self.buffer.removeFirst(offset) }
        if self.buffer.count > 64 << 20 { self.runner.fail("a reply past 64 MiB: is this a Redis server?") }
    }

    private func handle(_ frame: RESPFrame) {
        if case .error(let text) = frame { self.lastError = text }
        if self.setupInFlight > 0 {
            self.setupInFlight -= 1
            self.runner.setupReplied(frame, client: self)
            return
        }
        if self.isProducer {
            self.inFlight -= 1
            self.runner.producerReplied(frame)
            self.runner.topUp(self)
            return
        }
        switch frame {
        case .array(let items?) where items.count == 3 && items[0] == .bulk(Array("message".utf8)):
            if case .bulk(let payload?) = items[2] { self.runner.delivered(payload) }
        case .array(let items?) where items.count == 2:  // BRPOP: [key, element]
            if case .bulk(let payload?) = items[1] { self.runner.delivered(payload) }
            if self.runner.consuming { self.waitForMessage(key: self.waitKey) }
        case .array(nil), .bulk(nil):  // BRPOP timed out
            if self.runner.consuming { self.waitForMessage(key: self.waitKey) }
        case .error(let text):
            self.runner.consumerFailed(text)
        default:
            break
        }
    }

    func connectionDidReadEOF(_ connection: Connection) { self.runner.fail("the server closed the connection") }

    func connectionDidClose(_ connection: Connection) {
        self.runner.fail(connection.closeError.map { BenchRunner.describe($0) } ?? "the connection closed")
    }
}

/// A RESP2 reply, whole (the flow workloads read what consumers receive).
indirect enum RESPFrame: Equatable {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RESPFrame]?)

    /// A command as a multibulk request.
    static func command(_ arguments: [[UInt8]]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments { bytes += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
        return bytes
    }

    static func command(_ verb: String, _ key: [UInt8]) -> [UInt8] { Self.command([Array(verb.utf8), key]) }

    /// The frame starting at `offset` and the offset after it, or nil when it is not complete yet.
    static func parse(_ bytes: [UInt8], from offset: Int) -> (RESPFrame, Int)? {
        guard offset < bytes.count, let lineEnd = Self.lineEnd(bytes, from: offset + 1) else { return nil }
        let line = bytes[(offset + 1)..<lineEnd]
        let after = lineEnd + 2
        switch bytes[offset] {
        case UInt8(ascii: "+"): return (.simple(String(decoding: line, as: UTF8.self)), after)
        case UInt8(ascii: "-"): return (.error(String(decoding: line, as: UTF8.self)), after)
        case UInt8(ascii: ":"): return (.integer(Int64(String(decoding: line, as: UTF8.self)) ?? 0), after)
        case UInt8(ascii: "$"):
            guard let length = Int(String(decoding: line, as: UTF8.self)) else { return nil }
            if length < 0 { return (.bulk(nil), after) }
            guard bytes.count >= after + length + 2 else { return nil }
            return (.bulk(Array(bytes[after..<(after + length)])), after + length + 2)
        case UInt8(ascii: "*"):
            guard let count = Int(String(decoding: line, as: UTF8.self)) else { return nil }
            if count < 0 { return (.array(nil), after) }
            var items: [RESPFrame] = []
            var position = after
            for _ in 0..<count {
                guard let (item, next) = Self.parse(bytes, from: position) else { return nil }
                items.append(item)
                position = next
            }
            return (.array(items), position)
        default:
            return (.error("unexpected reply byte \(bytes[offset])"), after)
        }
    }

    private static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }
}
