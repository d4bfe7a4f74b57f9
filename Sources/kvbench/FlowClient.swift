// One connection of a flow workload (FlowRunner.swift): a producer, a consumer (a queue's BRPOP,
// a scheduler's poller) or a subscriber that never reads (the others have reader loops of their
// own, SubscriberReaders.swift); and the small RESP reader
// they share, which keeps what consumers receive (the stamps in the messages).

import Reactor

/// One producer or consumer connection of a flow.
final class FlowClient: ConnectionDelegate {
    enum Role { case producer, consumer, slow }

    unowned let runner: FlowRunner
    let role: Role
    /// Its position among the clients of its role (a subscriber's channel is `index % channels`).
    let index: Int
    var connection: Connection?
    var inFlight = 0
    /// A producer's messages awaiting their replies, oldest first.
    var sequences: [Int] = []
    private var sequenceHead = 0
    /// A poller's jobs whose ZREM replies are awaited, oldest first.
    private var taking: [[UInt8]] = []
    private var polling = false
    /// Setup requests (AUTH, SUBSCRIBE) waiting for their replies.
    private var setupInFlight = 0
    private var buffer: [UInt8] = []
    private(set) var lastError: String?
    private var waitKey: [UInt8] = []

    init(runner: FlowRunner, role: Role, index: Int) {
        self.runner = runner
        self.role = role
        self.index = index
    }

    var isProducer: Bool { self.role == .producer }

    /// A poller with nothing asked of the server.
    var isIdle: Bool { !self.polling && self.taking.isEmpty }

    /// A scheduler's poller: asks for up to ten jobs due by now.
    func poll(key: [UInt8], nowMilliseconds: UInt64) {
        self.waitKey = key
        self.polling = true
        self.connection?.write(RESPFrame.command([
            Array("ZRANGEBYSCORE".utf8), key, Array("-inf".utf8), Array("\(nowMilliseconds)".utf8),
            Array("LIMIT".utf8), Array("0".utf8), Array("10".utf8),
        ]))
        self.connection?.flush()
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
        if self.role == .slow && self.setupInFlight == 0 { return }  // past its SUBSCRIBEs nothing it reads counts
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
            let sequence = self.sequences[self.sequenceHead]
            self.sequenceHead += 1
            if self.sequenceHead > 1024 {
                self.sequences.removeFirst(self.sequenceHead)
                self.sequenceHead = 0
            }
            self.runner.producerReplied(frame, sequence: sequence)
            self.runner.topUp(self)
            return
        }
        if self.runner.isScheduler { return self.handlePoll(frame) }
        switch frame {
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

    /// A poller's replies: the due jobs (each then removed with ZREM; whoever removes it took it),
    /// then the ZREM counts.
    private func handlePoll(_ frame: RESPFrame) {
        if self.polling {
            self.polling = false
            guard case .array(let members?) = frame else {
                if case .error(let text) = frame { self.runner.consumerFailed(text) }
                return
            }
            var batch: [UInt8] = []
            for case .bulk(let member?) in members {
                self.taking.append(member)
                batch += RESPFrame.command([Array("ZREM".utf8), self.waitKey, member])
            }
            if !batch.isEmpty {
                self.connection?.write(batch)
                self.connection?.flush()
            }
            return
        }
        guard !self.taking.isEmpty else { return }
        let member = self.taking.removeFirst()
        if case .integer(1) = frame { self.runner.delivered(member) }
        if case .error(let text) = frame { self.runner.consumerFailed(text) }
        // A poller that took its batch looks again at once: more may be due.
        if self.taking.isEmpty && self.runner.consuming {
            self.poll(key: self.waitKey, nowMilliseconds: self.runner.elapsedMilliseconds)
        }
    }

    func connectionDidReadEOF(_ connection: Connection) {
        if self.role == .slow { return connection.close() }
        self.runner.fail("the server closed the connection")
    }

    func connectionDidClose(_ connection: Connection) {
        if self.role == .slow { return self.runner.slowSubscriberClosed() }
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
