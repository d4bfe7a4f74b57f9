// How an async connection (AsyncConnection.swift) cuts the bytes it reads into messages: a
// small protocol a framer implements on the loop thread, and the two framers most tools need
// (byte chunks as read, and lines). A protocol framer (ReactorHTTP's request framer, say)
// conforms to it and gets an async server for free.

/// Cuts a connection's bytes into messages, on the loop thread.
public protocol InboundFramer {
    /// What one message is.
    associatedtype Message: Sendable
    /// Consumes `bytes` (valid only during the call) and hands each complete message to `emit`,
    /// keeping an incomplete one for the next call.
    /// - Throws: when the bytes cannot be framed (a line too long, a malformed request): the
    ///   connection closes and the consumer's next read throws the error.
    mutating func frame(_ bytes: UnsafeRawBufferPointer, emit: (Message) -> Void) throws
}

/// Messages are the byte chunks as read (at most the loop's read buffer each).
public struct ByteChunks: InboundFramer, Sendable {
    public init() {}
    public mutating func frame(_ bytes: UnsafeRawBufferPointer, emit: ([UInt8]) -> Void) {
        emit(Array(bytes))
    }
}

/// Messages are lines, without their `\n` or `\r\n`.
public struct Lines: InboundFramer, Sendable {
    /// A line ran past the limit without a `\n`.
    public struct LineTooLong: Error, Equatable, Sendable {
        public let limit: Int
    }

    /// The longest line accepted, terminator excluded.
    public let maxLineBytes: Int
    private var partial: [UInt8] = []

    public init(maxLineBytes: Int = 64 * 1024) {
        self.maxLineBytes = maxLineBytes
    }

    public mutating func frame(_ bytes: UnsafeRawBufferPointer, emit: ([UInt8]) -> Void) throws {
        var start = 0
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                self.partial.append(contentsOf: bytes[start...])
                if self.partial.count > self.maxLineBytes { throw LineTooLong(limit: self.maxLineBytes) }
                return
            }
            var line: [UInt8]
            if self.partial.isEmpty {
                line = Array(bytes[start..<newline])
            } else {
                line = self.partial
                line.append(contentsOf: bytes[start..<newline])
                self.partial = []
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.count > self.maxLineBytes { throw LineTooLong(limit: self.maxLineBytes) }
            emit(line)
            start = newline + 1
        }
    }
}
