// An HTTP/1.1 request framer for tools built on the Reactor: it turns a connection's bytes into
// whole requests (head and body), incrementally, whatever the split of the bytes, and rejects what
// RFC 9112 says a server must reject, with the status to answer. It is not a web framework: no
// routing, no URL decoding, no content codings. Everything it buffers is bounded by HTTPLimits
// (the head by its two limits, a body by maxBodyBytes), so a peer cannot make it grow without end.
//
// What it follows (RFC 9112 sections):
// - 2.2: empty lines before a request line are skipped; a bare LF ends a line as CRLF does.
// - 3: request-line = method SP request-target SP HTTP-version; anything else is 400. A request
//   line over the limit is 414, a version of another major number 505 (3.1, RFC 9110 15.6.6).
// - 5: a header line is `name: value` with no whitespace before the colon (400 otherwise);
//   obsolete line folding is 400 (5.2). A head over its limits is 431 (RFC 6585).
// - 6.1: Transfer-Encoding in an HTTP/1.0 request, or whose last coding is not chunked, is 400;
//   a coding besides chunked is 501. With Content-Length too it is 400 (6.3 lets a server reject).
// - 6.3: a Content-Length that is not a number, or a list of differing numbers, is 400. A body
//   over the limit is 413 (RFC 9110 15.5.14). No length and no chunked coding: no body.
// - 7.1: chunked bodies with extensions (ignored) and trailers (read, bounded, and dropped).
// - 3.2: an HTTP/1.1 request must carry exactly one Host header (400 otherwise).
// - 9.3: HTTP/1.1 is persistent unless `Connection: close`; HTTP/1.0 only with `keep-alive`.
//
// After an error the framer stays failed (it throws the same error again): the caller answers
// with the error's status and closes, since the bytes that follow cannot be framed reliably.

import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Limits on what one request may make the framer buffer.
public struct HTTPLimits: Sendable {
    /// Longest request line (414 past it).
    public var maxRequestLineBytes = 8 * 1024
    /// Longest header section, line ends included (431 past it); also bounds a chunked body's trailers.
    public var maxHeaderBytes = 16 * 1024
    /// Most header lines (431 past it).
    public var maxHeaderCount = 100
    /// Largest body, Content-Length or chunked (413 past it).
    public var maxBodyBytes = 1024 * 1024
    /// Longest chunk-size line, extensions included (400 past it).
    public var maxChunkLineBytes = 1024

    public init() {}
}

/// A request the framer rejected, with the status RFC 9112 says to answer it with.
public struct HTTPRequestError: Error, Equatable, Sendable {
    /// 400, 413, 414, 431, 501 or 505.
    public let status: Int
    /// What was wrong, for logs (not for the response body: it may echo the peer's bytes).
    public let reason: String

    public init(status: Int, reason: String) {
        self.status = status
        self.reason = reason
    }

    static func bad(_ reason: String) -> HTTPRequestError { HTTPRequestError(status: 400, reason: reason) }
}

/// An HTTP version (`HTTP/1.1` is major 1, minor 1).
public struct HTTPVersion: Equatable, Hashable, Sendable {
    public let major: Int
    public let minor: Int
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
}

/// One request: its head and its whole body.
public struct HTTPRequest: Sendable {
    /// The method, as sent (methods are case-sensitive).
    public let method: String
    /// The request target, as sent (no decoding).
    public let target: String
    public let version: HTTPVersion
    /// The body (empty when there is none).
    public let body: [UInt8]
    /// Whether the connection stays open after the response (RFC 9112 9.3).
    public let keepAlive: Bool
    /// The head's bytes as received and where each header line lies in them. The framer lends
    /// its own buffers: a request dropped before the next one is framed (a server answering in
    /// its read callback) costs no allocation; one kept longer keeps them and the framer starts
    /// new ones.
    let head: [UInt8]
    let fields: [HeaderField]

    /// The header lines in order: names as sent, values without surrounding whitespace. Made
    /// from the head's bytes on each access (``header(_:)`` finds one without making the rest).
    public var headers: [(name: String, value: String)] {
        self.head.withUnsafeBufferPointer { bytes in
            self.fields.map { (Self.text(bytes, $0.name), Self.text(bytes, $0.value)) }
        }
    }

    /// How many header lines the request has.
    public var headerCount: Int { self.fields.count }

    /// The first value of the header `name` (compared case-insensitively).
    public func header(_ name: String) -> String? {
        self.head.withUnsafeBufferPointer { bytes in
            for field in self.fields where asciiCaseInsensitiveEquals(bytes[field.name], name.utf8) {
                return Self.text(bytes, field.value)
            }
            return nil
        }
    }

    private static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// Cuts bytes into ``HTTPRequest``s (see the file header). Usable on its own or as the framer of
/// an async server (`EventLoop.serve(at:framing:handler:)`).
public struct HTTPRequestFramer: InboundFramer, Sendable {
    public typealias Message = HTTPRequest

    public let limits: HTTPLimits

    private enum Phase {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    private var phase = Phase.head
    private var failure: HTTPRequestError?
    /// The head being read (request line and header lines, line ends included); once parsed, the
    /// head of the request being completed, lent to it (``HTTPRequest``) with `fields`, and
    /// emptied when the next head starts.
    private var head: [UInt8] = []
    /// The parsed head's header lines, as ranges of `head`.
    private var fields: [HeaderField] = []
    /// `head` and `fields` belong to the last request parsed, not to a head being read.
    private var headParsed = false
    /// Where the line being read starts in `head` (or in `line`, for chunk lines and trailers).
    private var lineStart = 0
    /// Whether the request line has been read completely, and its length with its line end.
    private var sawRequestLine = false
    private var requestLineBytes = 0
    private var headerLines = 0
    /// A chunk-size line, or the trailers read so far.
    private var line: [UInt8] = []
    private var trailerBytes = 0
    /// The head of the request whose body is being read.
    private var pending: ParsedHead?
    private var body: [UInt8] = []

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Bytes held for the request being read (head, chunk line or trailers, body). Never more
    /// than the limits allow: request line + header section, or chunk line + body, or trailers + body.
    public var bufferedByteCount: Int { (self.headParsed ? 0 : self.head.count) + self.line.count + self.body.count }

    /// Frames `bytes`, handing each complete request to `emit` in order.
    /// - Throws: ``HTTPRequestError`` when a request is malformed or over a limit; every later
    ///   call throws it again.
    public mutating func frame(_ bytes: UnsafeRawBufferPointer, emit: (HTTPRequest) -> Void) throws(HTTPRequestError) {
        if let failure = self.failure { throw failure }
        do {
            try self.consume(bytes, emit: emit)
        } catch {
            self.failure = error
            self.head = []
            self.fields = []
            self.headParsed = false
            self.line = []
            self.body = []
            throw error
        }
    }

    private mutating func consume(_ bytes: UnsafeRawBufferPointer, emit: (HTTPRequest) -> Void) throws(HTTPRequestError) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch self.phase {
            case .head:
                if self.headParsed {
                    // The last request is out of the caller's hands by now, unless it kept it:
                    // the buffers are reused, or (kept) left to it and new ones started.
                    self.head.removeAll(keepingCapacity: self.head.count <= 4096)
                    self.fields.removeAll(keepingCapacity: true)
                    self.headParsed = false
                }
                // Skip empty lines before a request line (RFC 9112 2.2).
                if self.head.isEmpty && (bytes[i] == 0x0D || bytes[i] == 0x0A) {
                    i += 1
                    continue
                }
                // Line by line where the bytes lie, copied into `head` once: when the head ends
                // or the bytes do.
                let start = i
                var ended = false
                while i < n {
                    let end = indexOfNewline(bytes, from: i)
                    let stop = end.map { $0 + 1 } ?? n
                    let headCount = self.head.count + (stop - start)
                    // The request line may take its limit plus CRLF; the header section its own.
                    let limit = self.sawRequestLine
                        ? self.requestLineBytes + self.limits.maxHeaderBytes : self.limits.maxRequestLineBytes + 2
                    guard headCount <= limit else {
                        throw self.sawRequestLine
                            ? HTTPRequestError(status: 431, reason: "header section too large")
                            : HTTPRequestError(status: 414, reason: "request line too long")
                    }
                    i = stop
                    guard let end else { break }
                    let crBefore = end > start ? bytes[end - 1] == 0x0D : self.head.last == 0x0D
                    if try self.lineEnded(headCount: headCount, crBeforeLF: crBefore) {
                        ended = true
                        break
                    }
                }
                appendBytes(bytes, start..<i, to: &self.head)
                if ended { try self.headEnded(emit: emit) }
            case .body(let remaining):
                let take = min(remaining, n - i)
                appendBytes(bytes, i..<(i + take), to: &self.body)
                i += take
                if take == remaining { self.complete(emit: emit) } else { self.phase = .body(remaining: remaining - take) }
            case .chunkSize, .trailers:
                let end = indexOfNewline(bytes, from: i)
                let stop = end.map { $0 + 1 } ?? n
                appendBytes(bytes, i..<stop, to: &self.line)
                i = stop
                if case .chunkSize = self.phase, self.line.count > self.limits.maxChunkLineBytes {
                    throw .bad("chunk-size line too long")
                }
                if case .trailers = self.phase, self.trailerBytes + self.line.count > self.limits.maxHeaderBytes {
                    throw HTTPRequestError(status: 431, reason: "trailer section too large")
                }
                guard end != nil else { continue }
                if case .chunkSize = self.phase { try self.chunkSizeLineEnded() } else { self.trailerLineEnded(emit: emit) }
            case .chunkData(let remaining):
                let take = min(remaining, n - i)
                appendBytes(bytes, i..<(i + take), to: &self.body)
                i += take
                self.phase = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                // CRLF (or LF) after the chunk's data.
                let byte = bytes[i]
                i += 1
                if byte == 0x0D && self.line.isEmpty {
                    self.line.append(byte)
                } else if byte == 0x0A {
                    self.line.removeAll(keepingCapacity: true)
                    self.phase = .chunkSize
                } else {
                    throw .bad("chunk data not followed by CRLF")
                }
            }
        }
    }

    /// A line of the head ended: the head, with the bytes not yet copied into `head`, is
    /// `headCount` bytes long and its last is LF, with CR before it if `crBeforeLF`.
    /// - Returns: whether the line was the empty one that ends the head.
    private mutating func lineEnded(headCount: Int, crBeforeLF: Bool) throws(HTTPRequestError) -> Bool {
        var lineEnd = headCount - 1
        if lineEnd > self.lineStart && crBeforeLF { lineEnd -= 1 }
        if !self.sawRequestLine {
            self.sawRequestLine = true
            self.requestLineBytes = headCount
        } else if lineEnd == self.lineStart {
            return true
        } else {
            self.headerLines += 1
            guard self.headerLines <= self.limits.maxHeaderCount else {
                throw HTTPRequestError(status: 431, reason: "too many header lines")
            }
        }
        self.lineStart = headCount
        return false
    }

    /// The empty line after the headers: parse the head and decide on the body.
    private mutating func headEnded(emit: (HTTPRequest) -> Void) throws(HTTPRequestError) {
        var fields = self.fields
        self.fields = []
        let parsed = try self.head.withUnsafeBufferPointer { (bytes) throws(HTTPRequestError) in
            try HTTPHeadParser.parse(bytes, fields: &fields)
        }
        self.fields = fields
        self.headParsed = true
        self.lineStart = 0
        self.sawRequestLine = false
        self.headerLines = 0
        // A request without a body goes out from here; only one with a body waits in `pending`
        // (storing and taking the optional is a generic destroy each time).
        switch parsed.framing {
        case .none:
            self.complete(parsed, emit: emit)
        case .length(let length):
            guard length <= self.limits.maxBodyBytes else { throw HTTPRequestError(status: 413, reason: "body too large") }
            if length == 0 {
                self.complete(parsed, emit: emit)
            } else {
                self.pending = parsed
                self.body.reserveCapacity(length)
                self.phase = .body(remaining: length)
            }
        case .chunked:
            self.pending = parsed
            self.line.removeAll(keepingCapacity: true)
            self.phase = .chunkSize
        }
    }

    private mutating func chunkSizeLineEnded() throws(HTTPRequestError) {
        // chunk-size [ chunk-ext ] CRLF; the extensions are ignored (RFC 9112 7.1.1).
        var size = 0
        var digits = 0
        for byte in self.line {
            guard let value = hexValue(byte) else { break }
            guard size <= (Int.max - 15) / 16 else { throw .bad("chunk size overflows") }
            size = size * 16 + value
            digits += 1
        }
        guard digits > 0 else { throw .bad("chunk size is not hexadecimal") }
        let rest = self.line[digits...]
        guard let first = rest.first, first == 0x3B || first == 0x0D || first == 0x0A || first == 0x20 || first == 0x09 else {
            throw .bad("chunk size is not hexadecimal")
        }
        guard size <= self.limits.maxBodyBytes - self.body.count else {
            throw HTTPRequestError(status: 413, reason: "body too large")
        }
        self.line.removeAll(keepingCapacity: true)
        if size == 0 {
            self.trailerBytes = 0
            self.phase = .trailers
        } else {
            self.phase = .chunkData(remaining: size)
        }
    }

    /// A trailer line ended: the empty one completes the request; the others are dropped.
    private mutating func trailerLineEnded(emit: (HTTPRequest) -> Void) {
        let empty = self.line.count == 1 || (self.line.count == 2 && self.line[0] == 0x0D)
        self.trailerBytes += self.line.count
        self.line.removeAll(keepingCapacity: true)
        if empty { self.complete(emit: emit) }
    }

    /// The body of the pending request is complete.
    private mutating func complete(emit: (HTTPRequest) -> Void) {
        // Moved out, not copied: a copy would retain the strings in the head.
        self.complete(self.pending.take()!, emit: emit)
    }

    private mutating func complete(_ parsed: ParsedHead, emit: (HTTPRequest) -> Void) {
        let body = self.body
        self.body = []
        self.phase = .head
        emit(HTTPRequest(method: parsed.method, target: parsed.target, version: parsed.version,
                         body: body, keepAlive: parsed.keepAlive, head: self.head, fields: self.fields))
    }
}

/// The index of the first LF in `bytes` at or after `start` (memchr: word at a time).
@inline(__always)
func indexOfNewline(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
    guard start < bytes.count, let base = bytes.baseAddress,
          let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
    return base.distance(to: UnsafeRawPointer(found))
}

/// Appends `bytes[range]` to `array` in one copy.
@inline(__always)
func appendBytes(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, to array: inout [UInt8]) {
    guard !range.isEmpty, let base = bytes.baseAddress else { return }
    array.append(contentsOf: UnsafeBufferPointer(start: (base + range.lowerBound).assumingMemoryBound(to: UInt8.self), count: range.count))
}

@inline(__always)
func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case 0x30...0x39: return Int(byte - 0x30)
    case 0x41...0x46: return Int(byte - 0x41 + 10)
    case 0x61...0x66: return Int(byte - 0x61 + 10)
    default: return nil
    }
}

/// ASCII case-insensitive comparison (header names and tokens are ASCII).
func asciiCaseInsensitiveEquals<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
where A.Element == UInt8, B.Element == UInt8 {
    guard a.count == b.count else { return false }
    return zip(a, b).allSatisfy { lowerASCII($0) == lowerASCII($1) }
}

@inline(__always)
func lowerASCII(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
