// The contract between the protocol state machines and whoever drives them (the server's
// connection wiring, or a test), and the one request loop every stream session runs: bytes in,
// replies appended to the caller's output up to a limit, a ProcessResult out. Services never
// touch sockets, clocks or files.

/// Where a service stopped after processing buffered input.
public enum ProcessResult: Equatable, Sendable {
    /// Every complete request was handled; feed more bytes.
    case needMoreData
    /// The output passed the caller's limit; call again once it has drained (backpressure).
    case outputFull
    /// Flush what is in the output, then close the connection.
    case close
}

/// Thrown by a ``CommandContext`` mutation that could not be logged; the reply is `ERR <reason>`.
public struct StorageError: Error, Equatable, Sendable {
    /// One line saying what failed (CR and LF are shown as spaces in replies).
    public let reason: String
    public init(reason: String) { self.reason = reason }
}

/// What kv commands run against: the keyspace and the server-wide state they report.
/// Implemented by the server over the durable store, and by an in-memory fake in tests.
/// Called on the event-loop thread only.
///
/// Mutations apply at once (every client sees them) and are logged before any reply that
/// depends on them leaves the server: holding those replies is the implementer's job.
/// Per-connection state (client id and name, protocol) lives in the session, and the clock is
/// passed to the session as `now`.
public protocol CommandContext: AnyObject {
    /// The number of keys.
    var count: Int { get }
    /// The value stored under `key`, or nil.
    func value(forKey key: [UInt8]) -> [UInt8]?
    /// Inserts or overwrites. - Throws: ``StorageError`` when the log cannot take the write.
    func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError)
    /// Removes `key`. - Returns: whether it was present. - Throws: ``StorageError``.
    func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool
    /// Removes every key. - Throws: ``StorageError``.
    func removeAll() throws(StorageError)
    /// `name=value` fields for the line protocol's `stats` and RESP `INFO`, in a stable order.
    func statistics() -> [(name: String, value: String)]
}

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

/// The request loop every stream session shares: frames requests and hands each to a handler
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
