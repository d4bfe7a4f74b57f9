// One kv connection's command session, whatever its protocol: a framer yielding argument vectors
// (line or RESP), the shared request loop, and the command table. Nothing here is written twice
// per protocol; the framer type decides names, arities and the reply encoding.

/// A framer that yields argument vectors for the command table.
protocol CommandFramer: RequestFramer where Request == ArgumentVector {
    /// Hands the framer the connection's authentication state (RESP limits requests until set).
    mutating func attach(_ authentication: AuthenticationState)
    /// The protocol it frames (command names, arities and limits differ per protocol).
    static var wireProtocol: KVSession.WireProtocol { get }
    /// The reply encoding a connection starts with.
    static var initialEncoding: ReplyEncoding { get }
}

extension LineCommandFramer: CommandFramer {
    mutating func attach(_ authentication: AuthenticationState) {}
    static var wireProtocol: KVSession.WireProtocol { .line }
    static var initialEncoding: ReplyEncoding { .line }
}

extension RESPParser: CommandFramer {
    static var wireProtocol: KVSession.WireProtocol { .resp }
    static var initialEncoding: ReplyEncoding { .resp2 }
}

/// The kv service for one connection in one protocol. Event-loop thread only.
///
/// Feed received bytes with ``receive(_:)``, then call ``process(context:output:outputLimit:)``,
/// which answers every complete buffered request in order.
struct CommandSession<Framer: CommandFramer> {
    private var loop: RequestLoop<Framer>
    private let client: ClientState
    private var encoding = Framer.initialEncoding
    private let maxValueBytes: Int
    /// The protocol's command names, kept here so dispatch reads no global.
    private let names = CommandTable.names(on: Framer.wireProtocol)
    private let now: () -> (seconds: Int, microseconds: Int)
    /// What the client registry shows for this connection, to update it only on change.
    private var shownCommand: StaticString?
    private var shownName: [UInt8]?
    private var shownEncoding = Framer.initialEncoding

    private init(framer: Framer, maxValueBytes: Int, clientID: Int, now: @escaping () -> (seconds: Int, microseconds: Int)) {
        precondition(maxValueBytes >= 0)
        let client = ClientState(id: clientID, name: nil)
        var framer = framer
        framer.attach(client.authentication)
        self.loop = RequestLoop(framer)
        self.client = client
        self.maxValueBytes = maxValueBytes
        self.now = now
    }

    /// Bytes received but not yet answered.
    var bufferedByteCount: Int { self.loop.bufferedByteCount }

    /// The encoding replies are written in now.
    var replyEncoding: ReplyEncoding { self.encoding }

    /// Drops what the connection holds in the context's shared state (its WATCHes). Call once
    /// when the connection closes.
    mutating func release(context: any CommandContext) {
        for entry in self.client.watched { context.watches.unwatch(entry.key) }
        self.client.watched = []
        self.client.transaction = nil
    }

    /// Buffers received bytes; nothing is answered until ``process(context:output:outputLimit:)``.
    mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        self.loop.receive(bytes)
    }

    /// Answers buffered complete requests in order, appending the replies to `output`.
    ///
    /// - Parameters:
    ///   - context: the keyspace and server state.
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    /// - Returns: `.close` after QUIT/`bye` or a framing error (flush `output`, then close);
    ///   `.outputFull` when the limit was reached with input still buffered (call again after
    ///   draining); otherwise `.needMoreData`.
    ///
    /// The context is an existential on purpose: it is a class, so passing it boxes nothing, and
    /// the session stays fully specialised (generic over the context, nothing here would be).
    mutating func process(context: any CommandContext, output: inout [UInt8], outputLimit: Int) -> ProcessResult {
        if !self.client.authenticated && context.password == nil { self.client.markAuthenticated() }
        var call = CommandCall(
            context: context, client: self.client, reply: ReplyWriter(encoding: self.encoding), now: self.now,
            maxValueBytes: self.maxValueBytes)
        call.monitoring = context.clients.hasMonitors
        call.watchesActive = !context.watches.isEmpty
        call.memoryLimited = context.maxMemoryBytes > 0
        call.statistics = context.commandStatistics?.recorder
        call.intercepting = !call.client.authenticated || call.client.transaction != nil || call.monitoring
            || call.memoryLimited
        let maxValueBytes = self.maxValueBytes
        let names = self.names
        let slowLog = context.slowLog
        let now = self.now
        defer {
            self.encoding = call.reply.encoding
            // Once per batch, not per request, and the registry only when something it shows
            // changed (the last command's name, the client name, the protocol).
            if call.commandCount > 0 {
                context.countCommands(call.commandCount)
                let (name, encoding, lastCommand) = (call.client.name, call.reply.encoding, call.lastCommand)
                if lastCommand?.utf8Start != self.shownCommand?.utf8Start || name != self.shownName
                    || encoding != self.shownEncoding
                {
                    (self.shownCommand, self.shownName, self.shownEncoding) = (lastCommand, name, encoding)
                    context.clients.update(id: call.client.id) { record in
                        record.name = name ?? []
                        record.protocolVersion = encoding == .resp3 ? 3 : 2
                        if let lastCommand { record.lastCommand = lastCommand }
                    }
                }
            }
        }
        return self.loop.process(output: &output, outputLimit: outputLimit, encoding: self.encoding) { arguments, output in
            // The writer takes the output for the request and hands it back: two swaps, no copy.
            swap(&call.reply.output, &output)
            defer { swap(&call.reply.output, &output) }
            // SLOWLOG: every command timed, as Redis does (two clock reads; none when disabled).
            let start = slowLog.thresholdMicroseconds >= 0 ? now() : nil
            CommandTable.execute(
                arguments, on: Framer.wireProtocol, names: names, maxValueBytes: maxValueBytes, call: &call)
            if let start {
                let end = now()
                let elapsed = (end.seconds - start.seconds) * 1_000_000 + end.microseconds - start.microseconds
                if elapsed >= slowLog.thresholdMicroseconds { Self.logSlow(arguments, elapsed, end, &call) }
            }
            return call.closeAfterReply
        }
    }
}

extension CommandSession {
    /// Records one slow command.
    @inline(never)
    static func logSlow(
        _ arguments: ArgumentVector, _ microseconds: Int, _ end: (seconds: Int, microseconds: Int), _ call: inout CommandCall
    ) {
        let record = call.context.clients.record(id: call.client.id)
        call.context.slowLog.record(
            arguments, microseconds: microseconds, at: end.seconds, client: Array((record?.address ?? "").utf8),
            name: call.client.name ?? [])
    }
}

/// The kv line protocol for one connection (docs/protocol.md "kv service").
typealias KVLineService = CommandSession<LineCommandFramer>

extension CommandSession where Framer == LineCommandFramer {
    /// - Parameters:
    ///   - maxLineBytes: the longest request line, terminator not counted (`--max-line`).
    ///   - maxValueBytes: the longest value `put`/`set` accept; longer: `ERR value too large`.
    ///   - clientID: the connection's id.
    ///   - now: the wall clock, as seconds and microseconds since the Unix epoch.
    init(
        maxLineBytes: Int = 65536, maxValueBytes: Int = 1 << 20, clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int)
    ) {
        self.init(framer: LineCommandFramer(maxLineBytes: maxLineBytes), maxValueBytes: maxValueBytes,
                  clientID: clientID, now: now)
    }
}

/// RESP on the kv port for one connection (docs/protocol.md "RESP on the kv port").
typealias RESPService = CommandSession<RESPParser>

extension CommandSession where Framer == RESPParser {
    /// - Parameters:
    ///   - maxValueBytes: the longest bulk string (key or value) a request may carry; longer is a
    ///     protocol error, as Redis's `proto-max-bulk-len`.
    ///   - maxRequestBytes: the most bytes one incomplete request may hold buffered before the
    ///     connection is refused (Redis's `client-query-buffer-limit`). Raised to at least
    ///     `2 * maxValueBytes + 1024`, so that a SET of the largest key and value always fits.
    ///   - clientID: the id reported by `HELLO` and `CLIENT ID`.
    ///   - now: the wall clock for `TIME`, as seconds and microseconds since the Unix epoch.
    ///   - memoryRoom: refuses a bulk announced past the room left under the memory limit.
    init(
        maxValueBytes: Int = 1 << 20, maxRequestBytes: Int = 1 << 26, clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int), memoryRoom: MemoryRoom? = nil
    ) {
        var parser = RESPParser(maxBulkBytes: maxValueBytes, maxRequestBytes: max(maxRequestBytes, 2 * maxValueBytes + 1024))
        parser.attach(memoryRoom)
        self.init(framer: parser, maxValueBytes: maxValueBytes, clientID: clientID, now: now)
    }

    /// The capacity of the input buffer, for tests that check nothing is reserved on a claim.
    var parserCapacity: Int { self.loop.framer.capacity }
}
