// Framing shared by the stream services: what a framer yields, and the request loop the time
// service runs (a framer cuts buffered bytes into requests, a handler answers each into the
// caller's output, and the loop stops for more bytes, for backpressure at the output limit, or to
// close). The kv session runs its own copy of this loop, specialised per framer
// (KVSession.swift). No I/O here.

/// What a framer found in its buffered bytes.
enum Framed<Request> {
    /// A complete request, valid until the framer is next called.
    case request(Request)
    /// No complete request is buffered.
    case needMoreData
    /// The stream cannot be framed any further: answer the error, then close.
    case failed(FramingError)
}

/// Why a stream cannot be framed any further. Kept apart from ``CommandError`` (whose cases
/// carry arguments) so that a framed request stays cheap to hand around.
enum FramingError: Equatable {
    /// A line longer than the limit.
    case lineTooLong
    /// A RESP stream that cannot be parsed.
    case protocolError(RESPParser.ProtocolError)

    /// The error reply it gets.
    var commandError: CommandError {
        switch self {
        case .lineTooLong: .lineTooLong
        case .protocolError(.bulkPastMemoryLimit): .outOfMemory
        case .protocolError(let error): .protocolError(error)
        }
    }
}

/// Cuts buffered bytes into requests: lines, argument vectors.
protocol RequestFramer {
    associatedtype Request
    /// Buffers received bytes.
    mutating func append(_ bytes: UnsafeRawBufferPointer)
    /// The next complete request, parsing on from where the last call stopped.
    mutating func next() -> Framed<Request>
    /// Bytes received and not yet handed out as part of a request.
    var bufferedByteCount: Int { get }
    /// Gives back buffer storage once everything received has been handed out.
    mutating func releaseIfIdle()
}

/// The request loop of the line services: frames requests and hands each to a handler
/// until more bytes are needed, the output reaches its limit, or the session must close.
/// Once closed it stays closed: later bytes are dropped and every call answers `.close`.
struct RequestLoop<Framer: RequestFramer> {
    private(set) var framer: Framer
    private var closed = false

    init(_ framer: Framer) { self.framer = framer }

    /// Bytes received but not yet answered.
    var bufferedByteCount: Int { self.framer.bufferedByteCount }

    /// Buffers received bytes, unless the session has closed.
    mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !self.closed else { return }
        self.framer.append(bytes)
    }

    /// Answers buffered requests in order.
    ///
    /// - Parameters:
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    ///   - encoding: how a framing error is written.
    ///   - handle: answers one request into the output. Returns whether the session must close.
    /// - Returns: `.close` after a framing error or when `handle` asked (flush `output`, then
    ///   close); `.outputFull` when the limit was reached with input still buffered (call again
    ///   after draining); otherwise `.needMoreData`.
    mutating func process(
        output: inout [UInt8],
        outputLimit: Int,
        encoding: ReplyEncoding,
        handle: (Framer.Request, inout [UInt8]) -> Bool
    ) -> ProcessResult {
        if self.closed { return .close }
        while true {
            if output.count >= outputLimit {
                return self.framer.bufferedByteCount > 0 ? .outputFull : .needMoreData
            }
            switch self.framer.next() {
            case .needMoreData:
                self.framer.releaseIfIdle()
                return .needMoreData
            case .failed(let error):
                error.commandError.write(to: &output, encoding: encoding)
                self.closed = true
                return .close
            case .request(let request):
                if handle(request, &output) {
                    self.closed = true
                    return .close
                }
            }
        }
    }
}
