// Encodes HTTP/1.1 responses into a byte buffer (a connection's output buffer, through
// Connection.withOutputBuffer, or any [UInt8]): the status line, a Date header (RFC 9110 6.6.1:
// an origin server with a clock must send one; the text is remade at most once a second), the
// caller's headers, Connection when the persistence differs from the version's default
// (RFC 9112 9.3), and the body with Content-Length, or chunked (RFC 9112 7.1) when its length is
// not known up front.

#if canImport(Glibc)
import Glibc
#endif

/// Writes responses (see the file header). Loop thread: the Date cache is per writer, not shared.
public struct HTTPResponseWriter {
    private var dateSecond = -1
    private var dateLine: [UInt8] = []

    public init() {}

    /// Appends a whole response with a `Content-Length` body.
    /// - Parameters:
    ///   - status: the status code; the reason phrase is the standard one (``reasonPhrase(_:)``).
    ///   - headers: extra header lines (not Date, Content-Length, Transfer-Encoding or Connection).
    ///   - body: the body; none for 1xx, 204 and 304, and for HEAD requests when `headOnly`.
    ///   - keepAlive: whether the connection stays open after it (the request's ``HTTPRequest/keepAlive``
    ///     unless the server decides to close).
    ///   - version: the request's version: an HTTP/1.0 peer is answered as HTTP/1.0 expects.
    ///   - headOnly: the request was HEAD: Content-Length is the body's but the body is not sent.
    public mutating func writeResponse(
        status: Int, headers: [(name: String, value: String)] = [], body: some Collection<UInt8>,
        keepAlive: Bool, version: HTTPVersion = .http1_1, headOnly: Bool = false, into buffer: inout [UInt8]
    ) {
        self.writeHead(status: status, headers: headers, keepAlive: keepAlive, version: version, into: &buffer)
        let bodyless = (100..<200).contains(status) || status == 204 || status == 304
        if !bodyless {
            buffer.append(contentsOf: "Content-Length: ".utf8)
            appendDecimal(body.count, to: &buffer)
            buffer.append(contentsOf: "\r\n".utf8)
        }
        buffer.append(contentsOf: "\r\n".utf8)
        if !bodyless && !headOnly { buffer.append(contentsOf: body) }
    }

    /// Appends the head of a chunked response (HTTP/1.1 only); follow with ``writeChunk(_:into:)``
    /// for each piece and ``writeLastChunk(into:)``.
    public mutating func writeChunkedHead(
        status: Int, headers: [(name: String, value: String)] = [], keepAlive: Bool, into buffer: inout [UInt8]
    ) {
        self.writeHead(status: status, headers: headers, keepAlive: keepAlive, version: .http1_1, into: &buffer)
        buffer.append(contentsOf: "Transfer-Encoding: chunked\r\n\r\n".utf8)
    }

    /// Appends one chunk; an empty piece appends nothing (a zero-size chunk would end the body).
    public func writeChunk(_ bytes: some Collection<UInt8>, into buffer: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        appendHex(bytes.count, to: &buffer)
        buffer.append(contentsOf: "\r\n".utf8)
        buffer.append(contentsOf: bytes)
        buffer.append(contentsOf: "\r\n".utf8)
    }

    /// Appends the last chunk and an empty trailer section.
    public func writeLastChunk(into buffer: inout [UInt8]) {
        buffer.append(contentsOf: "0\r\n\r\n".utf8)
    }

    /// Appends the response for a request the framer rejected: the error's status, a short
    /// plain-text body naming it, and `Connection: close` (the caller then closes).
    public mutating func writeError(_ error: HTTPRequestError, into buffer: inout [UInt8]) {
        let body = Array("\(error.status) \(Self.reasonPhrase(error.status))\n".utf8)
        self.writeResponse(status: error.status, headers: [("Content-Type", "text/plain")], body: body,
                           keepAlive: false, into: &buffer)
    }

    private mutating func writeHead(
        status: Int, headers: [(name: String, value: String)], keepAlive: Bool, version: HTTPVersion, into buffer: inout [UInt8]
    ) {
        buffer.append(contentsOf: version == .http1_0 ? "HTTP/1.0 ".utf8 : "HTTP/1.1 ".utf8)
        appendDecimal(status, to: &buffer)
        buffer.append(0x20)
        buffer.append(contentsOf: Self.reasonPhrase(status).utf8)
        buffer.append(contentsOf: "\r\n".utf8)
        self.appendDate(to: &buffer)
        for (name, value) in headers {
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: ": ".utf8)
            buffer.append(contentsOf: value.utf8)
            buffer.append(contentsOf: "\r\n".utf8)
        }
        if version == .http1_0 {
            if keepAlive { buffer.append(contentsOf: "Connection: keep-alive\r\n".utf8) }
        } else if !keepAlive {
            buffer.append(contentsOf: "Connection: close\r\n".utf8)
        }
    }

    /// `Date: <IMF-fixdate>\r\n`, remade when the second changes.
    private mutating func appendDate(to buffer: inout [UInt8]) {
        var now = time(nil)
        if Int(now) != self.dateSecond {
            self.dateSecond = Int(now)
            var parts = tm()
            gmtime_r(&now, &parts)
            var text = [CChar](repeating: 0, count: 64)
            let count = strftime(&text, text.count, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &parts)
            self.dateLine = text[0..<count].map { UInt8(bitPattern: $0) }
        }
        buffer.append(contentsOf: self.dateLine)
    }

    /// The standard reason phrase for `status` (RFC 9110 15), or "Unknown".
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Unknown"
        }
    }
}

/// Appends `value` in decimal, most significant digit first, with no allocation.
func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    precondition(value >= 0)
    var divisor = 1
    while divisor <= value / 10 { divisor *= 10 }
    var rest = value
    while divisor > 0 {
        buffer.append(UInt8(0x30 + rest / divisor))
        rest %= divisor
        divisor /= 10
    }
}

/// Appends `value` in lowercase hexadecimal, with no allocation.
func appendHex(_ value: Int, to buffer: inout [UInt8]) {
    precondition(value >= 0)
    var shift = 0
    while shift + 4 < Int.bitWidth && value >> (shift + 4) != 0 { shift += 4 }
    while shift >= 0 {
        let digit = UInt8((value >> shift) & 15)
        buffer.append(digit < 10 ? 0x30 + digit : 0x57 + digit)
        shift -= 4
    }
}
