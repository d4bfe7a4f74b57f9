// HTTP/1.1 request framing for the metrics port (docs/protocol.md "metrics"), as RFC 9112 reads
// a request: request line, header fields, an optional Content-Length body that is skipped. Only
// what a scraper or a health check sends is kept (method, path, version, Host, Connection,
// Authorization). Bytes in, requests or an error out: no sockets, no clock, no Foundation, so
// a fuzz target can drive it alone. Transfer-Encoding bodies are refused (400), not decoded.

/// One parsed request.
public struct HTTPRequest: Equatable, Sendable {
    /// The method as sent (case-sensitive, RFC 9110 9.1): `GET`.
    public var method: [UInt8]
    /// The request target up to `?`: `/metrics`.
    public var path: [UInt8]
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Whether the connection stays open after the response (HTTP/1.1 unless `Connection:
    /// close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool
    /// The `Authorization` field's value, if present (the last one if repeated).
    public var authorization: [UInt8]?

    public init(method: [UInt8], path: [UInt8], minorVersion: Int, keepAlive: Bool, authorization: [UInt8]?) {
        self.method = method
        self.path = path
        self.minorVersion = minorVersion
        self.keepAlive = keepAlive
        self.authorization = authorization
    }
}

/// Why a request could not be read. The connection is answered with `status` and closed.
public struct HTTPRequestError: Error, Equatable, Sendable {
    /// 400 (malformed), 431 (header section too large) or 505 (not HTTP/1.x).
    public let status: Int
    /// A short, fixed reason (never echoes the peer's bytes).
    public let reason: String

    static func bad(_ reason: String) -> HTTPRequestError { HTTPRequestError(status: 400, reason: reason) }
}

/// Cuts a byte stream into HTTP/1.x requests, pipelined requests in order.
///
/// Feed bytes with ``append(_:)``, then call ``next()`` until it answers `.needMoreData`. After
/// `.failed` the stream cannot be read any further.
public struct HTTPRequestParser {
    /// What ``next()`` found.
    public enum Result: Equatable, Sendable {
        case request(HTTPRequest)
        case needMoreData
        case failed(HTTPRequestError)
    }

    /// The longest header section (request line and fields, terminators included).
    public let maxHeaderBytes: Int
    /// The most bytes held unparsed; a peer that pipelines more than this while the server is
    /// still answering an earlier request is refused (400).
    public let maxBufferedBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    /// How far past `start` the search for the blank line has looked (so a header section fed a
    /// byte at a time is scanned once, not once per byte).
    private var scanned = 0
    /// Body bytes of the last request still to be skipped.
    private var bodyRemaining = 0
    private var failure: HTTPRequestError?

    /// - Parameters:
    ///   - maxHeaderBytes: the longest header section accepted (longer: 431).
    ///   - maxBufferedBytes: the most unparsed bytes held (more: 400).
    public init(maxHeaderBytes: Int = 8192, maxBufferedBytes: Int = 128 * 1024) {
        precondition(maxHeaderBytes > 0 && maxBufferedBytes >= maxHeaderBytes)
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBufferedBytes = maxBufferedBytes
    }

    /// Bytes received and not yet consumed by a request.
    public var bufferedByteCount: Int { self.buffer.count - self.start }

    /// Buffers received bytes (body bytes still owed by the last request are dropped at once).
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard self.failure == nil else { return }
        var bytes = bytes[...]
        if self.bodyRemaining > 0 {
            let skipped = min(self.bodyRemaining, bytes.count)
            self.bodyRemaining -= skipped
            bytes = bytes.dropFirst(skipped)
        }
        guard !bytes.isEmpty else { return }
        if self.start > 0 && self.start == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: true)
            self.start = 0
        }
        if self.bufferedByteCount + bytes.count > self.maxBufferedBytes {
            self.failure = .bad("too many pipelined bytes")
            return
        }
        self.buffer.append(contentsOf: bytes)
    }

    /// The next complete request, or why there is none.
    public mutating func next() -> Result {
        if let failure { return .failed(failure) }
        let result = self.parse()
        if case .failed(let error) = result { self.failure = error }
        if self.start == self.buffer.count {
            // Nothing unread: give the storage back rather than hold it between requests.
            self.buffer = []
            self.start = 0
        } else if self.start > 4096 && self.start * 2 > self.buffer.count {
            self.buffer.removeFirst(self.start)
            self.start = 0
        }
        return result
    }

    private mutating func parse() -> Result {
        // RFC 9112 2.2: empty lines before the request line are ignored.
        while self.start < self.buffer.count, self.buffer[self.start] == ASCII.cr || self.buffer[self.start] == ASCII.lf {
            if self.buffer[self.start] == ASCII.cr {
                guard self.start + 1 < self.buffer.count else { return .needMoreData }
                guard self.buffer[self.start + 1] == ASCII.lf else { return .failed(.bad("bare CR")) }
                self.start += 2
            } else {
                self.start += 1
            }
            self.scanned = 0
        }
        guard let end = self.headerEnd() else {
            if self.bufferedByteCount > self.maxHeaderBytes {
                return .failed(HTTPRequestError(status: 431, reason: "header section too large"))
            }
            return .needMoreData
        }
        if end.afterTerminator - self.start > self.maxHeaderBytes {
            return .failed(HTTPRequestError(status: 431, reason: "header section too large"))
        }
        let header = self.buffer[self.start..<end.contentEnd]
        let parsed = Self.parseHeader(header)
        self.start = end.afterTerminator
        self.scanned = 0
        switch parsed {
        case .failure(let error):
            return .failed(error)
        case .success(let (request, bodyBytes)):
            let available = min(bodyBytes, self.buffer.count - self.start)
            self.start += available
            self.bodyRemaining = bodyBytes - available
            return .request(request)
        }
    }

    /// Where the header section ends: the blank line (CRLF CRLF, or LF LF as RFC 9112 2.2 lets a
    /// recipient accept).
    private mutating func headerEnd() -> (contentEnd: Int, afterTerminator: Int)? {
        // An LF found earlier may end the section once its next two bytes arrive: look again
        // from two bytes before where the last search stopped.
        var i = self.start + max(0, self.scanned - 2)
        let limit = min(self.buffer.count, self.start + self.maxHeaderBytes + 4)
        while i < limit {
            if self.buffer[i] == ASCII.lf {
                if i + 1 < self.buffer.count && self.buffer[i + 1] == ASCII.lf { return (i, i + 2) }
                if i + 2 < self.buffer.count && self.buffer[i + 1] == ASCII.cr && self.buffer[i + 2] == ASCII.lf {
                    return (i, i + 3)
                }
            }
            i += 1
        }
        self.scanned = i - self.start
        return nil
    }

    /// The request line and fields (without the blank line).
    private static func parseHeader(_ header: ArraySlice<UInt8>) -> Swift.Result<(HTTPRequest, Int), HTTPRequestError> {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = header.startIndex
        for i in header.indices where header[i] == ASCII.lf {
            lines.append(Self.trimCR(header[lineStart..<i]))
            lineStart = i + 1
        }
        lines.append(Self.trimCR(header[lineStart...]))
        for line in lines where line.contains(ASCII.cr) { return .failure(.bad("bare CR")) }

        // request-line = method SP request-target SP HTTP-version
        let parts = lines[0].split(separator: ASCII.space, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte) else {
            return .failure(.bad("malformed request line"))
        }
        let target = parts[1]
        guard let first = target.first, first == UInt8(ascii: "/") || target.elementsEqual("*".utf8),
              target.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return .failure(.bad("malformed request target")) }
        let version = Array(parts[2])
        let minor: Int
        if version == Array("HTTP/1.1".utf8) {
            minor = 1
        } else if version == Array("HTTP/1.0".utf8) {
            minor = 0
        } else if version.count == 8, version.starts(with: "HTTP/".utf8), version[6] == UInt8(ascii: "."),
                  Self.isDigit(version[5]), Self.isDigit(version[7])
        {
            return .failure(HTTPRequestError(status: 505, reason: "HTTP version not supported"))
        } else {
            return .failure(.bad("malformed HTTP version"))
        }

        var hosts = 0
        var authorization: [UInt8]?
        var connectionClose = false
        var connectionKeepAlive = false
        var contentLength: Int?
        for line in lines.dropFirst() {
            // RFC 9112 5.2: obsolete line folding is refused.
            guard let firstByte = line.first, firstByte != ASCII.space, firstByte != ASCII.tab else {
                return .failure(.bad("malformed header field"))
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .failure(.bad("malformed header field")) }
            let name = line[line.startIndex..<colon]
            // RFC 9112 5.1: no whitespace between the field name and the colon.
            guard !name.isEmpty, name.allSatisfy(Self.isTokenByte) else { return .failure(.bad("malformed header field")) }
            let value = Self.trimBlanks(line[(colon + 1)...])
            guard value.allSatisfy({ $0 == ASCII.tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .failure(.bad("malformed header field"))
            }
            if ASCII.equalsIgnoringCase(name, "host") {
                hosts += 1
            } else if ASCII.equalsIgnoringCase(name, "authorization") {
                authorization = Array(value)
            } else if ASCII.equalsIgnoringCase(name, "connection") {
                for option in value.split(separator: UInt8(ascii: ",")) {
                    let option = Self.trimBlanks(option)
                    if ASCII.equalsIgnoringCase(option, "close") { connectionClose = true }
                    if ASCII.equalsIgnoringCase(option, "keep-alive") { connectionKeepAlive = true }
                }
            } else if ASCII.equalsIgnoringCase(name, "content-length") {
                guard let length = ASCII.parseNonNegative(value) else { return .failure(.bad("malformed Content-Length")) }
                // RFC 9112 6.3: differing lengths are an unrecoverable framing error.
                if let contentLength, contentLength != length { return .failure(.bad("conflicting Content-Length")) }
                contentLength = length
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding") {
                return .failure(.bad("Transfer-Encoding not supported"))
            }
        }
        // RFC 9112 3.2: an HTTP/1.1 request without exactly one Host field gets 400.
        if minor == 1 && hosts != 1 { return .failure(.bad("missing or repeated Host")) }
        let path = target.firstIndex(of: UInt8(ascii: "?")).map { target[target.startIndex..<$0] } ?? target
        let keepAlive = minor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        let request = HTTPRequest(
            method: Array(parts[0]), path: Array(path), minorVersion: minor, keepAlive: keepAlive,
            authorization: authorization)
        return .success((request, contentLength ?? 0))
    }

    private static func trimCR(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.last == ASCII.cr ? line.dropLast() : line
    }

    private static func trimBlanks(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var bytes = bytes
        while let f = bytes.first, f == ASCII.space || f == ASCII.tab { bytes = bytes.dropFirst() }
        while let l = bytes.last, l == ASCII.space || l == ASCII.tab { bytes = bytes.dropLast() }
        return bytes
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= ASCII.zero && byte <= ASCII.nine }

    /// RFC 9110 5.6.2 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
