// The benchmark engine: one EventLoop on the calling thread, C client connections, AUTH when a
// password is given, an optional preload phase, then the measured phase. Closed loop, it hands
// out requests as replies free room (exactly N in -n mode, until the deadline in --duration
// mode); open loop (--rate), requests fall due on a fixed schedule whatever the replies (the
// loop sleeps until the next one is due), and each latency runs from its due time. It counts
// every reply and records latencies after the warm-up in an HdrHistogram. Any connection lost or
// refused ends the run with a BenchFailure (exit 3). Loop thread only.

import Histogram
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Why a run could not complete: one line for stderr, and the exit status.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    /// 3: cannot connect, or the server was lost (as reactor-cli); 1: anything else.
    var exitCode: Int32 = 1

    static func network(_ description: String) -> BenchFailure {
        BenchFailure(description: description, exitCode: 3)
    }
}

/// What a finished run measured.
struct BenchResult {
    var requests = 0
    /// Non-error replies (hits, misses and OKs).
    var replies = 0
    var errors = 0
    var misses = 0
    var elapsedSeconds = 0.0
    var warmupRequests = 0
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    /// Replies per 100 ms bucket of the measured phase.
    var timeline: [Int] = []
    var lastError: String?
    var preloadedKeys = 0
    var preloadErrors = 0
    var preloadSeconds = 0.0
    /// Open loop: the rate asked for, and the requests due that were never sent because they
    /// were still waiting at the pipeline cap when the duration ended.
    var intendedRate: Double?
    var unsentRequests = 0
    /// Open loop: how late each request left after its due time, in µs (after the warm-up):
    /// waiting at the pipeline cap, and the loop's own delays (a late wake-up, a busy turn).
    var sendLag = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)

    /// Whether the open-loop schedule was kept: the achieved rate is at least 95% of the
    /// intended one. (A few requests still waiting at the pipeline cap when the duration ends
    /// are normal near saturation; thousands pull the achieved rate down.)
    var scheduleKept: Bool {
        guard let intended = self.intendedRate else { return true }
        return self.opsPerSecond >= 0.95 * intended
    }

    var opsPerSecond: Double { self.elapsedSeconds > 0 ? Double(self.requests) / self.elapsedSeconds : 0 }
}

final class BenchRunner {
    enum Phase { case connecting, auth, scriptLoad, preload, measure, done }

    static let bucketNanoseconds: UInt64 = 100_000_000

    let configuration: BenchConfiguration
    let encoder: RequestEncoder
    private let loop: EventLoop
    private let address: SocketAddress
    private var clients: [BenchClient] = []
    private var phase = Phase.connecting
    private var connected = 0
    private var failure: BenchFailure?
    private var progressTimer: TimerID?
    private var deadlineTimer: TimerID?
    private let keys: KeyChooser
    /// Open loop: the schedule of the measured phase (nil in closed loop).
    private var schedule: OpenLoopSchedule?
    /// Open loop: schedule indices below this were offered to their connections.
    private var scanned = 0
    /// The connection whose AUTH was refused, if one was.
    private var authRefusedBy: BenchClient?
    /// The connection whose SCRIPT LOAD was refused, if one was.
    private var scriptRefusedBy: BenchClient?

    // Issuing.
    private let requestLimit: Int
    private var issued = 0
    private var stopIssuing = false
    private let setWeight: UInt64
    private let totalWeight: UInt64
    private var preloadNext = 0

    // Accounting.
    private var result = BenchResult()
    private var completed = 0
    private var phaseStart: UInt64 = 0
    private var lastReply: UInt64 = 0
    private var warmupCount = 0
    private var warmupUntil: UInt64 = 0
    private var deadline: UInt64 = .max
    private var progressDrawn = false

    /// - Throws: ``BenchFailure`` if the loop cannot be created or the host is not an address.
    init(configuration: BenchConfiguration) throws(BenchFailure) {
        self.configuration = configuration
        self.encoder = RequestEncoder(
            wireProtocol: configuration.wireProtocol, workload: configuration.workload, keyspace: configuration.keyspace,
            valueSize: configuration.valueSize, keyPrefix: configuration.keyPrefix,
            elementsPerKey: configuration.elementsPerKey, scriptSHA: SHA1.hex(Array(configuration.script.utf8)))
        self.keys = KeyChooser(distribution: configuration.distribution, keyspace: configuration.keyspace)
        (self.loop, self.address, self.requestLimit) = try Self.prepare(configuration)
        self.setWeight = UInt64(configuration.ratio.sets)
        self.totalWeight = UInt64(configuration.ratio.sets + configuration.ratio.gets)
    }

    /// What every kvbench run starts from (the flows' too, FlowRunner.swift): its loop, the server's
    /// address, and how many requests it may send (`-n`; with `--duration`, the rate's share of it).
    static func prepare(
        _ configuration: BenchConfiguration
    ) throws(BenchFailure) -> (loop: EventLoop, address: SocketAddress, limit: Int) {
        let loop: EventLoop
        do {
            loop = try EventLoop()
        } catch {
            throw BenchFailure(description: "cannot create the event loop: \(error)")
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(host: configuration.host, port: configuration.port)
        } catch {
            throw BenchFailure(description: error.description)
        }
        switch (configuration.limit, configuration.rate) {
        case (.requests(let n), _): return (loop, address, n)
        case (.duration(let seconds), let rate?): return (loop, address, max(1, Int((seconds * rate).rounded(.up))))
        case (.duration, nil): return (loop, address, .max)
        }
    }

    /// Runs the benchmark to the end on the calling thread.
    /// - Throws: ``BenchFailure`` when a connection is refused or lost, or the server stalls.
    func run() throws(BenchFailure) -> BenchResult {
        let limit = EventLoop.raiseDescriptorLimit()
        guard self.configuration.connections + 16 <= limit else {
            throw BenchFailure(description: "\(self.configuration.connections) connections need more descriptors than the limit of \(limit)")
        }
        for index in 0..<self.configuration.connections {
            let client = BenchClient(runner: self, index: index, seed: self.configuration.seed,
                                     pipeline: self.configuration.pipeline, wireProtocol: self.configuration.wireProtocol)
            self.clients.append(client)
            do {
                let connection = try Connection.connect(loop: self.loop, to: self.address, delegate: client)
                connection.idleTimeoutEnabled = false
                client.connection = connection
            } catch {
                self.phase = .done
                self.closeAll()
                throw BenchFailure.network("cannot connect to \(self.address): \(Self.describe(error))")
            }
        }
        // The progress timer doubles as the stall watchdog, so it runs even when nothing is drawn.
        self.lastReply = SystemClock.monotonicNanoseconds()
        self.progressTimer = self.loop.scheduleTimer(after: .milliseconds(250), repeating: .milliseconds(250)) { [unowned self] in
            self.tick()
        }
        if self.configuration.rate != nil {
            // Whatever woke the loop, requests that fell due meanwhile leave before it sleeps, and
            // the sleep ends when the next one falls due (epoll_pwait2's nanosecond timeout): the
            // loop thread is the schedule's only clock, so a due request costs one wake-up.
            self.loop.addBeforeSleepHook { [unowned self] in
                let now = SystemClock.monotonicNanoseconds()
                self.issueAllDue(now: now)
                self.wakeForNextDue(now: now)
            }
        }
        do {
            try self.loop.run()
        } catch {
            self.failure = BenchFailure(description: "event loop failed: \(error)")
        }
        self.phase = .done
        self.clearProgress()
        if let timer = self.progressTimer { self.loop.cancelTimer(timer) }
        if let timer = self.deadlineTimer { self.loop.cancelTimer(timer) }
        self.closeAll()
        if let client = self.authRefusedBy {
            self.authRefusedBy = nil
            throw BenchFailure(description: "authentication with \(self.address) failed: \(client.lastError ?? "error reply")")
        }
        if let client = self.scriptRefusedBy {
            self.scriptRefusedBy = nil
            throw BenchFailure(description: "SCRIPT LOAD on \(self.address) failed: \(client.lastError ?? "no SHA in the reply")")
        }
        if let failure = self.failure { throw failure }
        self.result.lastError = self.clients.lazy.compactMap { $0.lastError }.first
        return self.result
    }

    // MARK: Called by clients

    func clientDidConnect(_ client: BenchClient) {
        guard self.phase == .connecting else { return }
        self.connected += 1
        if self.connected == self.clients.count {
            self.begin(self.phase(after: .connecting))
        }
    }

    /// The number of connections (the stride of each one's share of the schedule).
    var clientCount: Int { self.clients.count }

    func clientFailed(_ client: BenchClient, reason: String) {
        guard self.phase != .done, self.failure == nil else { return }
        if self.phase == .connecting {
            self.failure = .network("cannot connect to \(self.address): \(reason)")
        } else {
            self.failure = .network("connection to \(self.address) lost after \(self.completed) replies: \(reason)")
        }
        self.phase = .done
        self.loop.stop()
    }

    /// The next request to send, or nil when the phase has issued all it may.
    @inline(__always)
    func nextRequest(_ rng: inout WyRand) -> (isGet: Bool, key: Int)? {
        switch self.phase {
        case .measure:
            guard self.schedule == nil, !self.stopIssuing, self.issued < self.requestLimit else { return nil }
            self.issued += 1
            return self.draw(&rng)
        case .preload:
            guard self.preloadNext < self.configuration.keyspace else { return nil }
            self.preloadNext += 1
            return (false, self.preloadNext - 1)
        case .connecting, .auth, .scriptLoad, .done:
            return nil
        }
    }

    /// Open loop: a request for a schedule slot the client is about to send (counted as issued).
    @inline(__always)
    func drawScheduledRequest(_ rng: inout WyRand, due: UInt64, now: UInt64) -> (isGet: Bool, key: Int) {
        // The watchdog measures silence only while something is outstanding.
        if self.issued == self.completed { self.lastReply = now }
        if now >= self.warmupUntil {
            self.result.sendLag.record(min((now &- min(due, now) &+ 500) / 1000, self.result.sendLag.highestTrackableValue))
        }
        self.issued += 1
        return self.draw(&rng)
    }

    @inline(__always)
    private func draw(_ rng: inout WyRand) -> (isGet: Bool, key: Int) {
        let key = self.keys.next(&rng)
        let isGet: Bool
        if self.setWeight == 0 {
            isGet = true
        } else if self.setWeight == self.totalWeight {
            isGet = false
        } else {
            isGet = rng.next(below: self.totalWeight) >= self.setWeight
        }
        return (isGet, key)
    }

    /// After a client's replies were accounted: it sends what it may (closed loop: refills its
    /// pipeline; open loop: its requests that are due).
    @inline(__always)
    func replenish(_ client: BenchClient, now: UInt64) {
        if self.phase == .measure, let schedule = self.schedule {
            guard !self.stopIssuing else { return }
            client.issueDue(dueCount: schedule.dueCount(at: now), schedule: schedule, now: now)
        } else {
            client.fill(now: now)
        }
    }

    /// Open loop: offers every request that fell due since the last call to its connection. A
    /// connection at its pipeline cap sends its due requests later, as replies make room.
    private func issueAllDue(now: UInt64) {
        guard self.phase == .measure, let schedule = self.schedule, !self.stopIssuing else { return }
        let due = schedule.dueCount(at: now)
        guard due > self.scanned else { return }
        if due - self.scanned >= self.clients.count {
            for client in self.clients { client.issueDue(dueCount: due, schedule: schedule, now: now) }
        } else {
            for index in self.scanned..<due {
                self.clients[index % self.clients.count].issueDue(dueCount: due, schedule: schedule, now: now)
            }
        }
        self.scanned = due
    }

    /// Open loop: the loop's next sleep ends when the next request falls due, but never sooner
    /// than ``minimumWakeGapNanoseconds`` from now (at higher rates the requests due meanwhile
    /// leave together).
    private func wakeForNextDue(now: UInt64) {
        guard self.phase == .measure, let schedule = self.schedule, !self.stopIssuing, self.scanned < schedule.total else { return }
        self.loop.wakeNoLaterThan(max(schedule.dueTime(self.scanned), now &+ Self.minimumWakeGapNanoseconds))
    }

    /// Linux ends a timed sleep up to the thread's timer slack (50 µs by default) late, which adds
    /// straight to every latency measured from a due time. prctl(PR_SET_TIMERSLACK) is variadic
    /// and not callable from Swift, so the slack is set through /proc/self/timerslack_ns (the
    /// process's main thread, which runs kvbench's loop). If that is refused the default stays
    /// (the send lag in the summary shows it, and is where to look for the difference).
    private static func reduceTimerSlack() {
        let fd = open("/proc/self/timerslack_ns", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = write(fd, "1", 1)
        close(fd)
    }

    /// The shortest sleep the schedule asks for: each wake-up costs a system call and a context
    /// switch, so at rates above 20,000/s requests fall due in small groups.
    static let minimumWakeGapNanoseconds: UInt64 = 50_000

    /// Accounts one reply.
    @inline(__always)
    func record(_ reply: Reply, isGet: Bool, sentAt: UInt64, now: UInt64, client: BenchClient) {
        self.completed += 1
        self.lastReply = now
        let latencyNanoseconds = now > sentAt ? now - sentAt : 0
        switch self.phase {
        case .measure:
            let isError: Bool
            switch reply {
            case .error: isError = true
            case .notFound, .null:
                // A script may answer nil (the default one, for a key it had not written yet).
                let read = isGet || self.configuration.workload == .script
                isError = !read
                if read { self.result.misses += 1 }
            case .ok: isError = false
            case .value: isError = !isGet && !self.isWriteSuccess(reply)
            }
            if isError { self.result.errors += 1 } else { self.result.replies += 1 }
            // The warm-up: the first replies, by count or by time (open loop: replies before the
            // first 1% of the schedule, or its first 0.5 s, had passed).
            if self.completed > self.warmupCount && now >= self.warmupUntil {
                self.result.histogram.record(min((latencyNanoseconds &+ 500) / 1000, self.result.histogram.highestTrackableValue))
            }
            if self.configuration.recordTimeline {
                let bucket = Int((now &- self.phaseStart) / Self.bucketNanoseconds)
                while self.result.timeline.count <= bucket { self.result.timeline.append(0) }
                self.result.timeline[bucket] += 1
            }
            if now >= self.deadline { self.stopIssuing = true }
            if self.completed == self.requestLimit || (self.stopIssuing && self.issued == self.completed) {
                self.finishMeasure(now: now)
            }
        case .auth:
            if reply == .error || reply == .notFound {
                // The reply's text is read once the parser has returned (run(), below).
                self.authRefusedBy = client
                self.phase = .done
                self.loop.stop()
                return
            }
            if self.completed == self.clients.count { self.begin(self.phase(after: .auth)) }
        case .scriptLoad:
            if reply == .error || reply == .notFound || reply == .null {
                self.scriptRefusedBy = client
                self.phase = .done
                self.loop.stop()
                return
            }
            self.begin(self.phase(after: .scriptLoad))
        case .preload:
            if !self.isWriteSuccess(reply) { self.result.preloadErrors += 1 }
            if self.completed == self.configuration.keyspace {
                self.result.preloadedKeys = self.completed
                self.result.preloadSeconds = Double(now &- self.phaseStart) / 1e9
                self.clearProgress()
                if self.configuration.showProgress {
                    Self.writeStderr("kvbench: preloaded \(self.completed) keys in \(Self.format(self.result.preloadSeconds, 2)) s"
                        + (self.result.preloadErrors > 0 ? ", \(self.result.preloadErrors) errors" : "") + "\n")
                }
                self.begin(.measure)
            }
        case .connecting, .done:
            break
        }
    }

    /// Whether the watchdog should expect replies: something is outstanding.
    private var awaitingReplies: Bool {
        self.phase != .measure || self.schedule == nil || self.issued > self.completed
    }

    // MARK: Phases

    /// The phase that follows `phase`: AUTH when a password is set, SCRIPT LOAD for the script
    /// workload, the preload when asked for, then the measured load.
    private func phase(after phase: Phase) -> Phase {
        if phase == .connecting && self.configuration.password != nil { return .auth }
        if (phase == .connecting || phase == .auth) && self.configuration.workload == .script { return .scriptLoad }
        if phase != .preload && self.configuration.preload { return .preload }
        return .measure
    }

    /// Whether `reply` acknowledges a write: SET's OK; HSET's and SADD's counts; any script answer.
    private func isWriteSuccess(_ reply: Reply) -> Bool {
        switch reply {
        case .ok: true
        case .value, .null: self.configuration.workload != .kv
        case .error, .notFound: false
        }
    }

    private func begin(_ phase: Phase) {
        self.phase = phase
        self.completed = 0
        self.issued = 0
        let now = SystemClock.monotonicNanoseconds()
        self.phaseStart = now
        self.lastReply = now
        if phase == .auth {
            // EventLoop.run has not returned: the password was validated to be present.
            let request = RequestEncoder.authRequest(password: self.configuration.password ?? "",
                                                     wireProtocol: self.configuration.wireProtocol) ?? []
            for client in self.clients {
                client.send(request, now: now)
                if self.phase != phase { return }
            }
            return
        }
        if phase == .scriptLoad {
            // Scripts are the server's, not a connection's: one load serves every connection.
            let text = Array(self.configuration.script.utf8)
            self.clients[0].send(Array("*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$\(text.count)\r\n".utf8) + text + Array("\r\n".utf8),
                                 now: now)
            return
        }
        if phase == .measure, let rate = self.configuration.rate {
            self.beginOpenLoop(rate: rate, now: now)
            return
        }
        if phase == .measure {
            switch self.configuration.limit {
            case .requests(let n):
                self.warmupCount = n / 100
            case .duration(let seconds):
                let nanoseconds = UInt64(seconds * 1e9)
                self.deadline = now + nanoseconds
                self.warmupUntil = now + min(500_000_000, nanoseconds / 10)
                self.deadlineTimer = self.loop.scheduleTimer(after: .nanoseconds(Int64(nanoseconds))) { [unowned self] in
                    self.stopIssuing = true
                    if self.phase == .measure && self.issued == self.completed {
                        self.finishMeasure(now: SystemClock.monotonicNanoseconds())
                    }
                }
            }
        }
        for client in self.clients {
            client.fill(now: now)
            if self.phase != phase { return }  // a write failed and ended the run
        }
    }

    /// Starts the measured phase on a schedule: request i due at now + i/rate, the loop waking
    /// when requests fall due (``wakeForNextDue(now:)``), a deadline in --duration mode after which
    /// nothing more is sent.
    private func beginOpenLoop(rate: Double, now: UInt64) {
        let schedule = OpenLoopSchedule(startNanoseconds: now, ratePerSecond: rate, total: self.requestLimit)
        self.schedule = schedule
        Self.reduceTimerSlack()
        self.result.intendedRate = rate
        switch self.configuration.limit {
        case .requests(let n):
            self.warmupUntil = schedule.dueTime(n / 100)
        case .duration(let seconds):
            let nanoseconds = UInt64(seconds * 1e9)
            self.warmupUntil = now + min(500_000_000, nanoseconds / 10)
            self.deadline = now + nanoseconds
            self.deadlineTimer = self.loop.scheduleTimer(after: .nanoseconds(Int64(nanoseconds))) { [unowned self] in
                guard self.phase == .measure else { return }
                // Every request on the schedule is due by now (the last one was due just before
                // the deadline): whatever a connection has room for leaves; only what waits at
                // the pipeline cap stays unsent.
                self.issueAllDue(now: max(SystemClock.monotonicNanoseconds(), self.deadline))
                self.stopIssuing = true
                if self.issued == self.completed {
                    self.finishMeasure(now: SystemClock.monotonicNanoseconds())
                }
            }
        }
        self.issueAllDue(now: now)
    }

    private func finishMeasure(now: UInt64) {
        if self.schedule != nil {
            self.result.unsentRequests = self.requestLimit - self.issued
        }
        self.result.requests = self.completed
        self.result.elapsedSeconds = Double(now &- self.phaseStart) / 1e9
        if case .requests = self.configuration.limit, self.schedule == nil {
            self.result.warmupRequests = self.warmupCount
        } else {
            self.result.warmupRequests = self.completed - Int(self.result.histogram.totalCount)
        }
        self.phase = .done
        self.loop.stop()
    }

    private func closeAll() {
        for client in self.clients {
            client.connection?.abort()
            client.connection = nil
        }
    }

    // MARK: Progress and watchdog

    private func tick() {
        let now = SystemClock.monotonicNanoseconds()
        guard self.phase != .done else { return }
        let stall = UInt64(self.configuration.stallTimeoutSeconds * 1e9)
        if self.awaitingReplies && now &- self.lastReply > stall {
            let what = self.phase == .connecting ? "no connection completed" : "no reply"
            self.failure = .network(
                "\(what) from \(self.address) for \(Self.format(self.configuration.stallTimeoutSeconds, 0)) s; giving up")
            self.phase = .done
            self.loop.stop()
            return
        }
        guard self.configuration.showProgress, self.phase == .preload || self.phase == .measure else { return }
        let elapsed = Double(now &- self.phaseStart) / 1e9
        let rate = elapsed > 0 ? Double(self.completed) / elapsed : 0
        var line: String
        if self.phase == .preload {
            let total = self.configuration.keyspace
            line = "preload \(self.completed)/\(total) keys  \(Self.format(rate, 0)) ops/s  \(Self.format(elapsed, 1)) s"
        } else {
            line = "\(Self.format(rate, 0)) ops/s  \(self.completed) replies  \(Self.format(elapsed, 1)) s elapsed  "
            switch self.configuration.limit {
            case .requests(let n):
                line += "\(n - self.completed) requests left"
            case .duration(let seconds):
                line += "\(Self.format(max(0, seconds - elapsed), 1)) s left"
            }
            if self.result.errors > 0 { line += "  \(self.result.errors) errors" }
        }
        Self.writeStderr("\r\u{1B}[K" + line)
        self.progressDrawn = true
    }

    private func clearProgress() {
        if self.progressDrawn {
            Self.writeStderr("\r\u{1B}[K")
            self.progressDrawn = false
        }
    }

    // MARK: Helpers

    static func describe(_ error: IOError) -> String {
        String(cString: strerror(error.errno))
    }

    static func writeStderr(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    /// Fixed-point formatting without Foundation.
    static func format(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if decimals > 0 {
            let fraction = Int(scaled) - whole * Int(scale)
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: decimals - digits.count) + digits
        }
        return text
    }
}
