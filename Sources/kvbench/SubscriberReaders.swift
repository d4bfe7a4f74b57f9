// --workload pubsub's subscribers, on reader loops of their own (`--threads`): each loop runs on
// its own thread, owns a share of the subscriber connections, subscribes them and counts what
// they receive, while the publishers' loop (FlowRunner.swift) keeps its schedule whatever the
// readers are doing. On one loop, a publisher whose pipeline is full waits for its reply behind
// every subscriber socket that became readable with it: ten thousand subscribers made the
// publishers' clock as slow as the readers. Readers scan the push frames in place (no frame
// values, no copies of whole messages), so a delivery costs a read and a scan.

import Foundation
import Histogram
import Reactor
import Synchronization

/// What the publishers' loop hears from a reader loop (through an inbox).
enum ReaderEvent: Sendable {
    /// Every subscriber of the reader is subscribed (and authenticated).
    case ready
    /// A subscriber could not connect, was refused, or was closed by the server.
    case failed(BenchFailure)
}

/// What the reader loops counted, merged when they stop.
struct ReaderTally: Sendable {
    var delivered = 0
    var duplicated = 0
    var errors = 0
    var lastError: String?
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

    mutating func add(_ other: ReaderTally) {
        self.delivered += other.delivered
        self.duplicated += other.duplicated
        self.errors += other.errors
        self.lastError = self.lastError ?? other.lastError
        self.histogram.add(other.histogram)
    }
}

/// What every reader publishes as it goes, read by the publishers' loop while the run drains.
final class ReaderProgress: Sendable {
    /// Deliveries counted once (duplicates left out), over every reader.
    let counted = Atomic<Int>(0)
    /// When a reader last received a delivery (CLOCK_MONOTONIC nanoseconds).
    let lastDelivery = Atomic<UInt64>(0)
}

/// The reader loops of one run. Used on the publishers' loop thread.
final class SubscriberReaders {
    let progress = ReaderProgress()
    private let readers: [SubscriberReader]
    private var collected: ReaderTally?

    /// Spreads `subscribers` over `threads` loops in contiguous shares; subscriber `i` listens to
    /// channel `i % channels` through `subscribeRequests[channel]`.
    init(configuration: BenchConfiguration, address: SocketAddress, threads: Int, subscribeRequests: [[UInt8]],
         events: Inbox<ReaderEvent>) {
        let subscribers = configuration.consumers
        let loops = max(1, min(threads, subscribers))
        let progress = self.progress
        self.readers = (0..<loops).map { index in
            let share = (subscribers * index / loops)..<(subscribers * (index + 1) / loops)
            return SubscriberReader(
                configuration: configuration, address: address, channelsOfSubscribers: share.map { $0 % subscribeRequests.count },
                subscribeRequests: subscribeRequests, events: events, progress: progress)
        }
    }

    var count: Int { self.readers.count }

    func start() {
        for reader in self.readers { reader.start() }
    }

    /// Stops every reader loop, waits for their threads and merges what they counted (once).
    func stopAndCollect() -> ReaderTally {
        if let collected = self.collected { return collected }
        for reader in self.readers { reader.stop() }
        var total = ReaderTally()
        for reader in self.readers { total.add(reader.waitForTally()) }
        self.collected = total
        return total
    }
}

/// One reader loop and its subscribers. Its loop state is touched only on its own thread; the
/// publishers' thread reaches it only through `control` (a mutex) and reads `tally` after the
/// thread has signalled `finished`: hence unchecked.
final class SubscriberReader: @unchecked Sendable {
    private struct Control {
        var handle: LoopHandle?
        var stopRequested = false
    }

    private let configuration: BenchConfiguration
    private let address: SocketAddress
    private let channelsOfSubscribers: [Int]
    private let subscribeRequests: [[UInt8]]
    private let events: Inbox<ReaderEvent>
    private let progress: ReaderProgress
    /// This reader's subscribers per channel: how many times each message should reach it.
    private let receivers: [Int]
    private let control = Mutex(Control())
    private let finished = DispatchSemaphore(value: 0)

    // The reader's thread only.
    private var loop: EventLoop?
    private var clients: [SubscriberClient] = []
    private var connected = 0
    private var settingUp = 0
    private var failedAlready = false
    /// Set once the loop has stopped: the closes that follow are kvbench's own, not failures.
    private var closing = false
    private var deliveries: [UInt16] = []
    private var uncounted = 0
    private var tally = ReaderTally()

    init(configuration: BenchConfiguration, address: SocketAddress, channelsOfSubscribers: [Int],
         subscribeRequests: [[UInt8]], events: Inbox<ReaderEvent>, progress: ReaderProgress) {
        self.configuration = configuration
        self.address = address
        self.channelsOfSubscribers = channelsOfSubscribers
        self.subscribeRequests = subscribeRequests
        self.events = events
        self.progress = progress
        var receivers = [Int](repeating: 0, count: subscribeRequests.count)
        for channel in channelsOfSubscribers { receivers[channel] += 1 }
        self.receivers = receivers
    }

    func start() {
        let thread = Thread { [self] in
            self.main()
            self.finished.signal()
        }
        thread.name = "kvbench-reader"
        thread.start()
    }

    /// Asks the loop to stop (before it runs, it does not start). Any thread.
    func stop() {
        self.control.withLock { control in
            control.stopRequested = true
            control.handle?.stop()
        }
    }

    /// What the reader counted, once its thread is done. Call after ``stop()``.
    func waitForTally() -> ReaderTally {
        self.finished.wait()
        return self.tally
    }

    private func main() {
        let loop: EventLoop
        do {
            loop = try EventLoop()
        } catch {
            return self.fail(BenchFailure(description: "cannot create a reader loop: \(error)"))
        }
        let stopped = self.control.withLock { control in
            control.handle = loop.handle
            return control.stopRequested
        }
        guard !stopped else { return }
        self.loop = loop
        for channel in self.channelsOfSubscribers {
            let client = SubscriberClient(reader: self, channel: channel)
            self.clients.append(client)
            do {
                let connection = try Connection.connect(loop: loop, to: self.address, delegate: client)
                connection.idleTimeoutEnabled = false
                client.connection = connection
            } catch {
                self.fail(.network("cannot connect to \(self.address): \(BenchRunner.describe(error))"))
                break
            }
        }
        if !self.failedAlready {
            do { try loop.run() } catch { self.fail(BenchFailure(description: "reader loop failed: \(error)")) }
        }
        self.control.withLock { $0.handle = nil }
        self.closing = true
        for client in self.clients { client.connection?.close() }
        self.clients.removeAll()
        self.loop = nil
    }

    // MARK: Called by its subscribers (its thread)

    func clientDidConnect() {
        self.connected += 1
        guard self.connected == self.clients.count else { return }
        // AUTH (when asked) and SUBSCRIBE go together: the server answers them in order.
        let auth = self.configuration.password.flatMap { RequestEncoder.authRequest(password: $0, wireProtocol: .resp) }
        self.settingUp = self.clients.count
        for client in self.clients {
            client.setUp(auth: auth, subscribe: self.subscribeRequests[client.channel])
        }
    }

    func clientSubscribed() {
        self.settingUp -= 1
        if self.settingUp == 0 { self.events.post(.ready) }
    }

    func setupRefused(_ text: String, authenticating: Bool) {
        self.fail(authenticating ? BenchFailure(description: "authentication with \(self.address) failed: \(text)")
            : .network("\(text)"))
    }

    /// A message whose payload is `bytes[payload]`, received at `now`.
    func delivered(_ bytes: UnsafeRawBufferPointer, _ payload: Range<Int>, now: UInt64) {
        guard let (sequence, stamp) = Self.parseStamp(bytes, payload) else {
            self.tally.errors += 1
            return
        }
        if sequence >= self.deliveries.count {
            self.deliveries.append(contentsOf: repeatElement(0, count: max(sequence + 1 - self.deliveries.count, self.deliveries.count)))
        }
        if Int(self.deliveries[sequence]) >= self.receivers[sequence % self.receivers.count] {
            self.tally.duplicated += 1
        } else {
            self.deliveries[sequence] += 1
            self.uncounted += 1
        }
        self.tally.delivered += 1
        let latency = now >= stamp ? (now - stamp + 500) / 1000 : 0
        self.tally.histogram.record(min(latency, self.tally.histogram.highestTrackableValue))
    }

    /// After each read: what it delivered becomes visible to the publishers' loop.
    func publishProgress(now: UInt64) {
        guard self.uncounted > 0 else { return }
        self.progress.counted.add(self.uncounted, ordering: .relaxed)
        self.progress.lastDelivery.store(now, ordering: .relaxed)
        self.uncounted = 0
    }

    func subscriberFailed(_ text: String) {
        self.tally.errors += 1
        self.tally.lastError = text
    }

    func fail(_ failure: BenchFailure) {
        guard !self.failedAlready && !self.closing else { return }
        self.failedAlready = true
        self.events.post(.failed(failure))
        self.loop?.stop()
    }

    /// `<sequence>:<nanoseconds>:…` at the start of the payload.
    static func parseStamp(_ bytes: UnsafeRawBufferPointer, _ payload: Range<Int>) -> (Int, UInt64)? {
        var numbers: (UInt64, UInt64) = (0, 0)
        var field = 0
        var digits = 0
        for index in payload {
            let byte = bytes[index]
            if byte == UInt8(ascii: ":") {
                guard digits > 0 else { return nil }
                if field == 1 { return (Int(truncatingIfNeeded: numbers.0), numbers.1) }
                field = 1
                digits = 0
                continue
            }
            guard byte >= 48 && byte <= 57 else { return nil }
            if field == 0 { numbers.0 = numbers.0 &* 10 &+ UInt64(byte - 48) } else { numbers.1 = numbers.1 &* 10 &+ UInt64(byte - 48) }
            digits += 1
        }
        return nil
    }
}

/// One subscriber connection of a reader loop.
final class SubscriberClient: ConnectionDelegate {
    unowned let reader: SubscriberReader
    let channel: Int
    var connection: Connection?
    /// Replies to AUTH and SUBSCRIBE still awaited; the AUTH's, when sent, comes first.
    private var setupInFlight = 0
    private var authenticating = false
    /// The start of a frame the last read cut short.
    private var pending: [UInt8] = []

    init(reader: SubscriberReader, channel: Int) {
        self.reader = reader
        self.channel = channel
    }

    func setUp(auth: [UInt8]?, subscribe: [UInt8]) {
        self.authenticating = auth != nil
        self.setupInFlight = auth == nil ? 1 : 2
        self.connection?.write((auth ?? []) + subscribe)
        self.connection?.flush()
    }

    func connectionDidOpen(_ connection: Connection) { self.reader.clientDidConnect() }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let now = SystemClock.monotonicNanoseconds()
        if self.pending.isEmpty {
            let used = self.scan(bytes, now: now)
            if used < bytes.count { self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...])) }
        } else {
            self.pending.append(contentsOf: bytes)
            let used = self.pending.withUnsafeBytes { self.scan($0, now: now) }
            self.pending.removeFirst(used)
        }
        self.reader.publishProgress(now: now)
        if self.pending.count > 64 << 20 { self.reader.fail(.network("a reply past 64 MiB: is this a Redis server?")) }
    }

    /// Handles the whole frames in `bytes`; returns how many bytes they took.
    private func scan(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> Int {
        var offset = 0
        while let (frame, next) = PushFrame.scan(bytes, from: offset) {
            offset = next
            switch frame {
            case .message(let payload):
                self.reader.delivered(bytes, payload, now: now)
            case .error(let text) where self.setupInFlight > 0:
                self.reader.setupRefused(text, authenticating: self.authenticating && self.setupInFlight == 2)
                return offset
            case .error(let text):
                self.reader.subscriberFailed(text)
            case .status, .other:
                guard self.setupInFlight > 0 else { break }
                self.setupInFlight -= 1
                if self.setupInFlight == 0 { self.reader.clientSubscribed() }
            }
        }
        return offset
    }

    func connectionDidReadEOF(_ connection: Connection) {
        self.reader.fail(.network(
            "the server closed a subscriber that was reading (behind by more than its client-output-buffer-limit?)"))
    }

    func connectionDidClose(_ connection: Connection) {
        self.reader.fail(.network(connection.closeError.map { BenchRunner.describe($0) } ?? "a subscriber's connection closed"))
    }
}

/// A RESP2 frame as a subscriber sees it, scanned in place: a message (or pmessage) and where its
/// payload lies, or what else it is.
enum PushFrame: Equatable {
    /// `+…`: AUTH's OK.
    case status
    case error(String)
    /// A `message` or `pmessage`: its payload's bytes.
    case message(Range<Int>)
    /// A subscribe confirmation, an integer, anything else whole.
    case other

    /// The frame at `start` and the offset after it, or nil while it is incomplete.
    static func scan(_ bytes: UnsafeRawBufferPointer, from start: Int) -> (PushFrame, Int)? {
        guard start < bytes.count, let (lineEnd, next) = Self.line(bytes, start + 1) else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "+"): return (.status, next)
        case UInt8(ascii: "-"):
            return (.error(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(start + 1)..<lineEnd]), as: UTF8.self)), next)
        case UInt8(ascii: ":"): return (.other, next)
        case UInt8(ascii: "$"):
            let length = Self.number(bytes, start + 1, lineEnd)
            guard length >= 0 else { return (.other, next) }
            guard next + length + 2 <= bytes.count else { return nil }
            return (.other, next + length + 2)
        case UInt8(ascii: "*"):
            let count = Self.number(bytes, start + 1, lineEnd)
            var position = next
            var first: Range<Int>?
            var last: Range<Int>?
            for element in 0..<max(count, 0) {
                guard position < bytes.count, let (end, after) = Self.line(bytes, position + 1) else { return nil }
                switch bytes[position] {
                case UInt8(ascii: "$"):
                    let length = Self.number(bytes, position + 1, end)
                    guard length >= 0 else {
                        last = nil
                        position = after
                        continue
                    }
                    guard after + length + 2 <= bytes.count else { return nil }
                    last = after..<(after + length)
                    if element == 0 { first = last }
                    position = after + length + 2
                case UInt8(ascii: ":"), UInt8(ascii: "+"):
                    last = nil
                    position = after
                default:
                    return (.error("unexpected reply to a subscriber (byte \(bytes[position]) in an array)"), bytes.count)
                }
            }
            if let first, let last, Self.isMessage(bytes, first, elements: count) { return (.message(last), position) }
            return (.other, position)
        default:
            return (.error("unexpected reply byte \(bytes[start])"), bytes.count)
        }
    }

    /// Whether the first element says `message` (3 elements) or `pmessage` (4).
    private static func isMessage(_ bytes: UnsafeRawBufferPointer, _ kind: Range<Int>, elements: Int) -> Bool {
        let word: StaticString = elements == 3 ? "message" : elements == 4 ? "pmessage" : ""
        guard word.utf8CodeUnitCount == kind.count, kind.count > 0 else { return false }
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        return memcmp(bytes.baseAddress! + kind.lowerBound, expected.baseAddress!, kind.count) == 0
    }

    /// The end of the line starting at `from` (its CR) and the offset after its CRLF.
    private static func line(_ bytes: UnsafeRawBufferPointer, _ from: Int) -> (Int, Int)? {
        var index = from
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return (index, index + 2) }
            index += 1
        }
        return nil
    }

    /// The decimal integer in `bytes[from..<end]` (a leading `-` allowed); -1 if it is not one.
    private static func number(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ end: Int) -> Int {
        guard from < end else { return -1 }
        let negative = bytes[from] == UInt8(ascii: "-")
        var value = 0
        for index in (negative ? from + 1 : from)..<end {
            let digit = bytes[index] &- 48
            guard digit <= 9 else { return -1 }
            value = value &* 10 &+ Int(digit)
        }
        return negative ? -value : value
    }
}
