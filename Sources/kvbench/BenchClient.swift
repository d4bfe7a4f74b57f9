// One benchmark connection. Closed loop: keeps `pipeline` requests in flight and sends the next as
// soon as a reply arrives. Open loop: sends its share of the schedule (every C-th request) as each
// falls due, never more than `pipeline` at once; a due request that waits for room is stamped with
// its due time, so the wait counts in its latency. Each request's stamp sits in a small ring;
// replies are parsed incrementally and matched in order. Loop thread only.

import Reactor

final class BenchClient: ConnectionDelegate {
    unowned let runner: BenchRunner
    let index: Int
    var connection: Connection?
    private var rng: WyRand
    private let pipeline: Int
    private let wireProtocol: WireProtocol
    private var lineParser = LineReplyParser()
    private var respParser = RESPReplyParser()
    private var memcacheParser = MemcacheReplyParser()

    // Requests in flight, oldest first: a ring of `pipeline` slots. Invariant: 0 <= inFlight <= pipeline.
    private var sendTimes: [UInt64]
    private var isGet: [Bool]
    private var ringHead = 0
    private(set) var inFlight = 0
    /// Open loop: the schedule index of this connection's next request (index, index + C, …).
    private var nextScheduled: Int

    init(runner: BenchRunner, index: Int, seed: UInt64, pipeline: Int, wireProtocol: WireProtocol) {
        self.runner = runner
        self.index = index
        // Distinct, decorrelated streams per connection from one seed.
        var mixer = WyRand(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        self.rng = WyRand(seed: mixer.next())
        self.pipeline = pipeline
        self.wireProtocol = wireProtocol
        self.sendTimes = [UInt64](repeating: 0, count: pipeline)
        self.isGet = [Bool](repeating: false, count: pipeline)
        self.nextScheduled = index
    }

    /// The text of the last error reply this connection saw.
    var lastError: String? {
        switch self.wireProtocol {
        case .line: return self.lineParser.lastError
        case .resp: return self.respParser.lastError
        case .memcache: return self.memcacheParser.lastError
        }
    }

    @inline(__always)
    private func push(isGet: Bool, stamp: UInt64) {
        var slot = self.ringHead + self.inFlight
        if slot >= self.pipeline { slot -= self.pipeline }
        self.sendTimes[slot] = stamp
        self.isGet[slot] = isGet
        self.inFlight += 1
    }

    /// Sends one request outside the measured load (AUTH), as the only one in flight.
    func send(_ request: [UInt8], now: UInt64) {
        guard let connection = self.connection else { return }
        connection.write(request)
        self.push(isGet: false, stamp: now)
        connection.flush()
    }

    /// Closed loop: tops the pipeline up with as many requests as the runner allows, in one write.
    func fill(now: UInt64) {
        guard let connection = self.connection, self.inFlight < self.pipeline else { return }
        let encoder = self.runner.encoder
        connection.withOutputBuffer { output in
            while self.inFlight < self.pipeline, let request = self.runner.nextRequest(&self.rng) {
                encoder.append(isGet: request.isGet, key: request.key, to: &output)
                self.push(isGet: request.isGet, stamp: now)
            }
        }
        connection.flush()
    }

    /// Open loop: sends every request of this connection that is due (`index < dueCount`), as far
    /// as the pipeline has room, each stamped with its due time; one write.
    func issueDue(dueCount: Int, schedule: OpenLoopSchedule, now: UInt64) {
        guard let connection = self.connection, self.inFlight < self.pipeline, self.nextScheduled < dueCount else { return }
        let encoder = self.runner.encoder
        let step = self.runner.clientCount
        connection.withOutputBuffer { output in
            while self.inFlight < self.pipeline && self.nextScheduled < dueCount {
                let due = schedule.dueTime(self.nextScheduled)
                let request = self.runner.drawScheduledRequest(&self.rng, due: due, now: now)
                encoder.append(isGet: request.isGet, key: request.key, to: &output)
                self.push(isGet: request.isGet, stamp: due)
                self.nextScheduled += step
            }
        }
        connection.flush()
    }

    // MARK: ConnectionDelegate

    func connectionDidOpen(_ connection: Connection) {
        self.runner.clientDidConnect(self)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        // One clock read per read: every reply in it arrived together, and the requests sent in
        // answer leave together.
        let now = SystemClock.monotonicNanoseconds()
        var unexpected = false
        let emit: (Reply) -> Void = { reply in
            guard self.inFlight > 0 else {
                unexpected = true
                return
            }
            let slot = self.ringHead
            self.ringHead = slot + 1 == self.pipeline ? 0 : slot + 1
            self.inFlight -= 1
            self.runner.record(reply, isGet: self.isGet[slot], sentAt: self.sendTimes[slot], now: now, client: self)
        }
        do {
            switch self.wireProtocol {
            case .line: self.lineParser.parse(bytes, emit)
            case .resp: try self.respParser.parse(bytes, emit)
            case .memcache: try self.memcacheParser.parse(bytes, emit)
            }
        } catch {
            self.runner.clientFailed(self, reason: "protocol error: \(error.message)")
            return
        }
        if unexpected {
            self.runner.clientFailed(self, reason: "protocol error: more replies than requests (does the server speak --protocol \(self.wireProtocol.rawValue)?)")
            return
        }
        self.runner.replenish(self, now: now)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        self.runner.clientFailed(self, reason: "the server closed the connection")
    }

    func connectionDidClose(_ connection: Connection) {
        let reason = connection.closeError.map { BenchRunner.describe($0) } ?? "the connection closed"
        self.runner.clientFailed(self, reason: reason)
    }
}
