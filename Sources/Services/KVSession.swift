// One kv connection's protocol machine: bytes in, a framer cuts them into argument vectors, the
// command table answers each into the connection's output. The first byte received that is not
// CR or LF picks the framer for the connection's whole life (docs/protocol.md "RESP on the kv
// port"): `*` is RESP (which then reads Redis's inline requests too, per request), anything else
// the line protocol. Both framers are built up front (neither allocates until it
// is fed); the one the connection speaks decides command names, arities and the reply encoding.
// No I/O here: ServicesTests drive it with no socket.

/// A framer that yields argument vectors for the command table.
protocol CommandFramer: RequestFramer where Request == ArgumentVector {
    /// Hands the framer the connection's authentication state (RESP limits requests until set).
    mutating func attach(_ authentication: AuthenticationState)
    /// The protocol it frames (command names, arities and limits differ per protocol).
    static var wireProtocol: KVSession.WireProtocol { get }
}

extension LineCommandFramer: CommandFramer {
    mutating func attach(_ authentication: AuthenticationState) {}
    static var wireProtocol: KVSession.WireProtocol { .line }
}

extension RESPParser: CommandFramer {
    static var wireProtocol: KVSession.WireProtocol { .resp }
}

/// One kv connection, whatever its protocol. Event-loop thread only.
///
/// Feed received bytes with ``receive(_:)``, then call ``process(context:output:outputLimit:)``,
/// which answers every complete buffered request in order.
public struct KVSession {
    /// The protocol a connection speaks, once its first byte has arrived.
    public enum WireProtocol: Equatable, Sendable {
        case line
        case resp
    }

    /// Nil until the first byte has been received.
    public private(set) var negotiatedProtocol: WireProtocol?
    // The framers and the rest apart: a batch runs with both borrowed at once.
    private var line: LineCommandFramer
    private var resp: RESPParser
    private var state: State

    /// What a connection keeps between batches besides its framer.
    struct State {
        let client: ClientState
        var encoding = ReplyEncoding.line
        /// The protocol's command names, kept here so dispatch reads no global.
        var names = CommandTable.lineNames
        let maxValueBytes: Int
        let now: () -> (seconds: Int, microseconds: Int)
        /// Set after QUIT/`bye` or a framing error: later bytes are dropped, every call answers `.close`.
        var closed = false
        /// What the client registry shows for this connection, to update it only on change.
        var shownCommand: StaticString?
        var shownName: [UInt8]?
        var shownEncoding = ReplyEncoding.line
    }

    /// - Parameters:
    ///   - wireProtocol: the protocol, when known before the first byte (tests); nil: sniffed.
    ///   - maxLineBytes: the longest line-protocol request, terminator not counted (`--max-line`).
    ///   - maxValueBytes: the longest value on either protocol (`--max-value`, Redis's
    ///     `proto-max-bulk-len`); on the line protocol longer is `ERR value too large`, in RESP a
    ///     protocol error.
    ///   - maxRequestBytes: the most bytes one incomplete RESP request may hold buffered before
    ///     the connection is refused (Redis's `client-query-buffer-limit`). Raised to at least
    ///     `2 * maxValueBytes + 1024`, so that a SET of the largest key and value always fits.
    ///   - clientID: the id RESP's `HELLO` and `CLIENT ID` report.
    ///   - now: the wall clock for RESP's `TIME`, as seconds and microseconds since the Unix epoch.
    ///   - memoryRoom: the room left under the memory limit; a RESP bulk announced past it is
    ///     refused (`-OOM`, then the close) before its body is buffered. Nil: no such check.
    public init(
        speaking wireProtocol: WireProtocol? = nil,
        maxLineBytes: Int = 65536,
        maxValueBytes: Int = 1 << 20,
        maxRequestBytes: Int = 1 << 26,
        clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int),
        memoryRoom: MemoryRoom? = nil
    ) {
        precondition(maxValueBytes >= 0)
        let client = ClientState(id: clientID, name: nil)
        self.line = LineCommandFramer(maxLineBytes: maxLineBytes)
        var resp = RESPParser(maxBulkBytes: maxValueBytes, maxRequestBytes: max(maxRequestBytes, 2 * maxValueBytes + 1024))
        resp.attach(memoryRoom)
        resp.attach(client.authentication)
        self.resp = resp
        self.state = State(client: client, maxValueBytes: maxValueBytes, now: now)
        if let wireProtocol { self.negotiate(wireProtocol) }
    }

    /// Bytes received but not yet answered.
    public var bufferedByteCount: Int {
        switch self.negotiatedProtocol {
        case nil: 0
        case .line: self.line.bufferedByteCount
        case .resp: self.resp.bufferedByteCount
        }
    }

    /// The encoding replies are written in now.
    var replyEncoding: ReplyEncoding { self.state.encoding }

    /// The capacity of the RESP input buffer, for tests that check nothing is reserved on a claim.
    var parserCapacity: Int { self.resp.capacity }

    /// The protocol a connection whose first byte is `firstByte` speaks: `*` is RESP, anything
    /// else the line protocol.
    public static func wireProtocol(firstByte: UInt8) -> WireProtocol {
        firstByte == UInt8(ascii: "*") ? .resp : .line
    }

    private mutating func negotiate(_ wireProtocol: WireProtocol) {
        self.negotiatedProtocol = wireProtocol
        let encoding: ReplyEncoding = wireProtocol == .resp ? .resp2 : .line
        (self.state.encoding, self.state.shownEncoding) = (encoding, encoding)
        self.state.names = CommandTable.names(on: wireProtocol)
    }

    /// Buffers received bytes; the first byte ever received decides the protocol. Nothing is
    /// answered until ``process(context:output:outputLimit:)``.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !self.state.closed else { return }
        if self.negotiatedProtocol == nil {
            // Empty lines before the first request decide nothing (both protocols skip them).
            guard let first = bytes.first(where: { $0 != ASCII.cr && $0 != ASCII.lf }) else { return }
            self.negotiate(Self.wireProtocol(firstByte: first))
        }
        switch self.negotiatedProtocol {
        case .resp: self.resp.append(bytes)
        default: self.line.append(bytes)
        }
    }

    /// Answers buffered complete requests in order, appending the replies to `output`.
    ///
    /// - Parameters:
    ///   - context: the data store, server state and server control.
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    /// - Returns: `.close` after QUIT/`bye` or a framing error (flush `output`, then close);
    ///   `.outputFull` when the limit was reached with input still buffered (call again after
    ///   draining); otherwise `.needMoreData`.
    ///
    /// The store and control are existentials on purpose: they are classes, so passing them boxes
    /// nothing, and the loop below stays fully specialised per framer.
    public mutating func process(context: CommandContext, output: inout [UInt8], outputLimit: Int) -> ProcessResult {
        if self.state.closed { return .close }
        // A blocked client's further requests wait (Blocking.swift): they stay buffered.
        if self.state.client.blocked != nil { return .needMoreData }
        switch self.negotiatedProtocol {
        case nil: return .needMoreData
        case .line: return Self.answer(&self.line, &self.state, context: context, output: &output, outputLimit: outputLimit)
        case .resp: return Self.answer(&self.resp, &self.state, context: context, output: &output, outputLimit: outputLimit)
        }
    }

    /// The request loop: frames requests and runs each through the command table until more
    /// bytes are needed, the output reaches its limit, or the connection must close.
    @inline(__always)
    private static func answer<Framer: CommandFramer>(
        _ framer: inout Framer, _ state: inout State, context: CommandContext, output: inout [UInt8],
        outputLimit: Int
    ) -> ProcessResult {
        let client = state.client
        let shared = context.state
        if !client.authenticated && shared.password == nil { client.markAuthenticated() }
        // The writer takes the connection's output for the batch and hands it back: two swaps, no copy.
        var call = CommandCall(
            context: context, client: client, reply: ReplyWriter(encoding: state.encoding), now: state.now,
            maxValueBytes: state.maxValueBytes)
        swap(&call.reply.output, &output)
        defer { swap(&call.reply.output, &output) }
        let pubsub = shared.pubsub
        let outerClient = pubsub.runningClient
        pubsub.runningClient = client.id
        defer { pubsub.endBatch(restoring: outerClient, output: &call.reply.output) }
        call.notifying = pubsub.notifying
        call.monitoring = shared.clients.hasMonitors
        call.watchesActive = shared.observesKeys
        call.afterEachCommand = client.replyMode != .on || shared.pubsub.tracking.isActive
        call.memoryLimited = shared.maxMemoryBytes > 0
        call.statistics = shared.commandStatistics?.recorder
        call.intercepting = !client.authenticated || client.transaction != nil || call.monitoring || call.memoryLimited
            || client.subscriber != nil || (call.afterEachCommand && shared.pubsub.tracking.clients[client.id] != nil)
            || shared.busyScript != nil
        let (names, maxValueBytes, now) = (state.names, state.maxValueBytes, state.now)
        let slowLog = shared.slowLog
        defer { Self.endBatch(&state, call, context: context) }
        while true {
            if call.reply.output.count >= outputLimit {
                return framer.bufferedByteCount > 0 ? .outputFull : .needMoreData
            }
            switch framer.next() {
            case .needMoreData:
                framer.releaseIfIdle()
                return .needMoreData
            case .failed(let error):
                error.commandError.write(to: &call.reply.output, encoding: call.reply.encoding)
                state.closed = true
                return .close
            case .request(let arguments):
                // Every command timed, as Redis does: INFO commandstats and latencystats, SLOWLOG.
                let start = now()
                let replyStart = call.reply.output.count
                CommandTable.execute(
                    arguments, on: Framer.wireProtocol, names: names, maxValueBytes: maxValueBytes, call: &call)
                let end = now()
                let elapsed = (end.seconds - start.seconds) &* 1_000_000 &+ end.microseconds &- start.microseconds
                CommandTable.recordInfo(call, microseconds: elapsed)
                let threshold = slowLog.thresholdMicroseconds
                if threshold >= 0 && elapsed >= threshold { Self.logSlow(arguments, elapsed, end, &call) }
                if call.afterEachCommand { Commands.afterCommand(&call, replyStart: replyStart) }
                if call.closeAfterReply {
                    state.closed = true
                    return .close
                }
                // Clients blocked on keys this command filled are served before the next command.
                // Not while a script is busy: it has not ended, and its writes are not yet visible.
                if shared.blocking.hasReadyKeys && shared.busyScript == nil { shared.blocking.serveReady() }
                if client.blocked != nil { return .needMoreData }
            }
        }
    }

    /// This connection's client state (blocking: Blocking.swift).
    var client: ClientState { self.state.client }

    /// Runs `body` with a command call writing into `output`, outside the request loop (a blocked
    /// command served, or the end of its wait).
    mutating func withCall<Result>(context: CommandContext, output: inout [UInt8], _ body: (inout CommandCall) -> Result) -> Result {
        var call = CommandCall(
            context: context, client: self.state.client, reply: ReplyWriter(encoding: self.state.encoding),
            now: self.state.now, maxValueBytes: self.state.maxValueBytes)
        swap(&call.reply.output, &output)
        call.watchesActive = context.state.observesKeys
        call.notifying = context.state.pubsub.notifying  // a served blocking pop announces what it popped
        let pubsub = context.state.pubsub
        let outerClient = pubsub.runningClient
        pubsub.runningClient = self.state.client.id
        let replyStart = call.reply.output.count
        let result = body(&call)
        if pubsub.tracking.isActive {
            pubsub.tracking.afterCommand(self.state.client.id, replyStart: replyStart, state: context.state, output: &call.reply.output)
        }
        pubsub.endBatch(restoring: outerClient, output: &call.reply.output)
        swap(&call.reply.output, &output)
        return result
    }

    /// Once per batch, not per request: the command count, and the client registry only when
    /// something it shows changed (the last command's name, the client name, the protocol).
    @inline(__always)
    private static func endBatch(_ state: inout State, _ call: borrowing CommandCall, context: CommandContext) {
        state.encoding = call.reply.encoding
        call.client.subscriber?.encoding = call.reply.encoding
        guard call.commandCount > 0 else { return }
        context.state.countCommands(call.commandCount)
        let (name, encoding, lastCommand) = (call.client.name, call.reply.encoding, call.lastCommand)
        if lastCommand?.utf8Start != state.shownCommand?.utf8Start || name != state.shownName
            || encoding != state.shownEncoding
        {
            (state.shownCommand, state.shownName, state.shownEncoding) = (lastCommand, name, encoding)
            context.state.clients.update(id: call.client.id) { record in
                record.name = name ?? []
                record.protocolVersion = encoding == .resp3 ? 3 : 2
                if let lastCommand { record.lastCommand = lastCommand }
            }
        }
    }

    /// Records one slow command.
    @inline(never)
    static func logSlow(
        _ arguments: ArgumentVector, _ microseconds: Int, _ end: (seconds: Int, microseconds: Int), _ call: inout CommandCall
    ) {
        let record = call.state.clients.record(id: call.client.id)
        call.state.slowLog.record(
            arguments, microseconds: microseconds, at: end.seconds, client: Array((record?.address ?? "").utf8),
            name: call.client.name ?? [])
    }

    /// Drops what the connection holds in the context's shared state (its WATCHes). Call once
    /// when the connection closes.
    public mutating func release(context: CommandContext) {
        for entry in self.state.client.watched { context.state.watches.unwatch(entry.key, database: entry.database) }
        self.state.client.watched = []
        if self.state.client.blocked != nil {
            self.state.client.blocked = nil
            context.state.blocking.remove(self.state.client.id)
        }
        self.state.client.transaction = nil
        if let subscriber = self.state.client.subscriber { context.state.pubsub.removeAll(subscriber) }
        context.state.pubsub.tracking.disable(self.state.client.id)
        self.state.client.subscriber = nil
        self.state.client.pubSubOutput = nil
    }

    /// Whether the connection has pub/sub subscriptions.
    public var isSubscribed: Bool { self.state.client.subscriber != nil }

    /// Where other clients' publications to this connection go (its connection). Set once, when
    /// the connection opens.
    public func attach(_ output: PubSubOutput) {
        self.state.client.pubSubOutput = output
    }

    /// One error line in the connection's protocol (`-ERR <reason>\r\n` in RESP, `ERR <reason>\n`
    /// on the line protocol), for errors raised outside a command, such as a failed log write.
    /// CR and LF in `reason` become spaces.
    public func errorLine(reason: String) -> [UInt8] {
        var output: [UInt8] = []
        let encoding: ReplyEncoding = self.negotiatedProtocol == .resp ? self.state.encoding : .line
        CommandError.storage(reason).write(to: &output, encoding: encoding)
        return output
    }
}
