// One benchmark connection: keeps `pipeline` requests in flight (closed loop), stamps each with its
// send time in a small ring, parses replies incrementally, and for each reply records its latency
// with the runner and sends the next request. Requests made in one read callback go out in one
// write. Loop thread only.

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

    // Requests in flight, oldest first: a ring of `pipeline` slots. Invariant: 0 <= inFlight <= pipeline.
    private var sendTimes: [UInt64]
    private var isGet: [Bool]
    private var ringHead = 0
    private(set) var inFlight = 0

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
    }

    /// The text of the last error reply this connection saw.
    var lastError: String? { self.wireProtocol == .line ? self.lineParser.lastError : self.respParser.lastError }

    /// Tops the pipeline up with as many requests as the runner allows, in one write.
    func fill(now: UInt64) {
        guard let connection = self.connection, self.inFlight < self.pipeline else { return }
        let encoder = self.runner.encoder
        connection.withOutputBuffer { output in
            while self.inFlight < self.pipeline, let request = self.runner.nextRequest(&self.rng) {
                encoder.append(isGet: request.isGet, key: request.key, to: &output)
                var slot = self.ringHead + self.inFlight
                if slot >= self.pipeline { slot -= self.pipeline }
                self.sendTimes[slot] = now
                self.isGet[slot] = request.isGet
                self.inFlight += 1
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
            self.runner.record(reply, isGet: self.isGet[slot], latencyNanoseconds: now &- self.sendTimes[slot], now: now)
        }
        switch self.wireProtocol {
        case .line:
            self.lineParser.parse(bytes, emit)
        case .resp:
            do {
                try self.respParser.parse(bytes, emit)
            } catch {
                self.runner.clientFailed(self, reason: "protocol error: \(error.message)")
                return
            }
        }
        if unexpected {
            self.runner.clientFailed(self, reason: "protocol error: more replies than requests (does the server speak --protocol \(self.wireProtocol.rawValue)?)")
            return
        }
        self.fill(now: now)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        self.runner.clientFailed(self, reason: "the server closed the connection")
    }

    func connectionDidClose(_ connection: Connection) {
        let reason = connection.closeError.map { BenchRunner.describe($0) } ?? "the connection closed"
        self.runner.clientFailed(self, reason: reason)
    }
}
