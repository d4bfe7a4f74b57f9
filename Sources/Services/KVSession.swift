// What the server runs on a kv connection: the first byte received picks the protocol for the
// connection's whole life (docs/protocol.md "RESP on the kv port"): `*` is RESP, anything else the line
// protocol. Both sessions are built up front (neither allocates until it is fed); both run the
// same command table, differing only in framer and reply encoding.

/// One kv connection: sniffs the protocol, then forwards to the line or the RESP command session.
/// Event-loop thread only.
public struct KVSession {
    /// The protocol a connection speaks, once its first byte has arrived.
    public enum WireProtocol: Equatable, Sendable {
        case line
        case resp
    }

    /// Nil until the first byte has been received.
    public private(set) var negotiatedProtocol: WireProtocol?
    private var line: CommandSession<LineCommandFramer>
    private var resp: CommandSession<RESPParser>

    /// - Parameters:
    ///   - maxLineBytes: the longest line-protocol request (`--max-line`).
    ///   - maxValueBytes: the longest value on either protocol (`--max-value`).
    ///   - clientID: the id RESP's `HELLO` and `CLIENT ID` report.
    ///   - now: the wall clock for RESP's `TIME`, as seconds and microseconds since the Unix epoch.
    ///   - memoryRoom: the room left under the memory limit; a RESP bulk announced past it is
    ///     refused (`-OOM`, then the close) before its body is buffered. Nil: no such check.
    public init(
        maxLineBytes: Int = 65536,
        maxValueBytes: Int = 1 << 20,
        clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int),
        memoryRoom: MemoryRoom? = nil
    ) {
        self.line = CommandSession(maxLineBytes: maxLineBytes, maxValueBytes: maxValueBytes, clientID: clientID, now: now)
        self.resp = CommandSession(maxValueBytes: maxValueBytes, clientID: clientID, now: now, memoryRoom: memoryRoom)
    }

    /// Bytes received but not yet answered.
    public var bufferedByteCount: Int {
        switch self.negotiatedProtocol {
        case nil: 0
        case .line: self.line.bufferedByteCount
        case .resp: self.resp.bufferedByteCount
        }
    }

    /// The protocol a connection whose first byte is `firstByte` speaks: `*` is RESP, anything
    /// else the line protocol.
    public static func wireProtocol(firstByte: UInt8) -> WireProtocol {
        firstByte == UInt8(ascii: "*") ? .resp : .line
    }

    /// Buffers received bytes; the first byte ever received decides the protocol.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        if self.negotiatedProtocol == nil {
            guard let first = bytes.first else { return }
            self.negotiatedProtocol = Self.wireProtocol(firstByte: first)
        }
        switch self.negotiatedProtocol {
        case .resp: self.resp.receive(bytes)
        default: self.line.receive(bytes)
        }
    }

    /// Answers buffered complete requests in the negotiated protocol, appending the replies to
    /// `output`.
    ///
    /// - Parameters:
    ///   - context: the keyspace and server state.
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    /// - Returns: `.close` after QUIT/`bye` or a framing error (flush `output`, then close);
    ///   `.outputFull` when the limit was reached with input still buffered (call again after
    ///   draining); otherwise `.needMoreData`.
    public mutating func process(
        context: any CommandContext,
        output: inout [UInt8],
        outputLimit: Int
    ) -> ProcessResult {
        switch self.negotiatedProtocol {
        case nil: .needMoreData
        case .line: self.line.process(context: context, output: &output, outputLimit: outputLimit)
        case .resp: self.resp.process(context: context, output: &output, outputLimit: outputLimit)
        }
    }

    /// Drops what the connection holds in the context's shared state (its WATCHes). Call once
    /// when the connection closes.
    public mutating func release(context: any CommandContext) {
        switch self.negotiatedProtocol {
        case nil: break
        case .line: self.line.release(context: context)
        case .resp: self.resp.release(context: context)
        }
    }

    /// One error line in the connection's protocol (`-ERR <reason>\r\n` in RESP, `ERR <reason>\n`
    /// on the line protocol), for errors raised outside a command, such as a failed log write.
    /// CR and LF in `reason` become spaces.
    public func errorLine(reason: String) -> [UInt8] {
        var output: [UInt8] = []
        let encoding = self.negotiatedProtocol == .resp ? self.resp.replyEncoding : self.line.replyEncoding
        CommandError.storage(StorageError(reason: reason)).write(to: &output, encoding: encoding)
        return output
    }
}
