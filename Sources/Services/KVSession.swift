// What the server runs on a kv connection: the first byte received picks the protocol for the
// connection's whole life (SPEC.md "RESP on the kv port"): `*` is RESP2, anything else the line
// protocol. Both machines are built up front (neither allocates until it is fed).

/// One kv connection: sniffs the protocol, then forwards to ``KVLineService`` or ``RESPService``.
/// Event-loop thread only.
public struct KVSession {
    /// The protocol a connection speaks, once its first byte has arrived.
    public enum WireProtocol: Equatable, Sendable {
        case line
        case resp
    }

    /// Nil until the first byte has been received.
    public private(set) var negotiatedProtocol: WireProtocol?
    private var line: KVLineService
    private var resp: RESPService

    /// - Parameters:
    ///   - maxLineBytes: the longest line-protocol request (`--max-line`).
    ///   - maxValueBytes: the longest value on either protocol (`--max-value`).
    ///   - clientID: the id RESP's `HELLO` and `CLIENT ID` report.
    ///   - now: the wall clock for RESP's `TIME`, as seconds and microseconds since the Unix epoch.
    public init(
        maxLineBytes: Int = 65536,
        maxValueBytes: Int = 1 << 20,
        clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int)
    ) {
        self.line = KVLineService(maxLineBytes: maxLineBytes, maxValueBytes: maxValueBytes)
        self.resp = RESPService(maxValueBytes: maxValueBytes, clientID: clientID, now: now)
    }

    /// Bytes received but not yet answered.
    public var bufferedByteCount: Int {
        switch self.negotiatedProtocol {
        case nil: 0
        case .line: self.line.bufferedByteCount
        case .resp: self.resp.bufferedByteCount
        }
    }

    /// Buffers received bytes; the first byte ever received decides the protocol.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        if self.negotiatedProtocol == nil {
            guard let first = bytes.first else { return }
            self.negotiatedProtocol = first == UInt8(ascii: "*") ? .resp : .line
        }
        switch self.negotiatedProtocol {
        case .resp: self.resp.receive(bytes)
        default: self.line.receive(bytes)
        }
    }

    /// Answers buffered requests with the negotiated protocol; see
    /// ``KVLineService/process(storage:output:outputLimit:)`` and
    /// ``RESPService/process(storage:output:outputLimit:)``.
    public mutating func process(
        storage: some KeyValueStorage,
        output: inout [UInt8],
        outputLimit: Int
    ) -> ProcessResult {
        switch self.negotiatedProtocol {
        case nil: .needMoreData
        case .line: self.line.process(storage: storage, output: &output, outputLimit: outputLimit)
        case .resp: self.resp.process(storage: storage, output: &output, outputLimit: outputLimit)
        }
    }
}
