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
    /// The last Content-Length response's head (status line to the empty line) and what it was
    /// made from: a server answering the same status, headers and body length again (the common
    /// case) copies it instead of encoding a dozen pieces. Remade when the Date second changes.
    private var lastHead: [UInt8] = []
    private var lastKey = HeadKey(status: -1, version: .http1_1, keepAlive: false, bodyCount: -1, second: -1)
    private var lastHeaders: [(name: String, value: String)] = []

    private struct HeadKey: Equatable {
        let status: Int
        let version: HTTPVersion
        let keepAlive: Bool
        let bodyCount: Int
        let second: Int
    }

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
    @inlinable
    public mutating func writeResponse(
        status: Int, headers: [(name: String, value: String)] = [], body: some Collection<UInt8>,
        keepAlive: Bool, version: HTTPVersion = .http1_1, headOnly: Bool = false, into buffer: inout [UInt8]
    ) {
        // Inlinable so that the body's copy is specialized for the caller's collection (one
        // memcpy for an array) instead of going through its witness table; the head is not generic.
        let sendsBody = self.appendHead(status: status, headers: headers, bodyCount: body.count, keepAlive: keepAlive,
                                        version: version, into: &buffer)
        if sendsBody && !headOnly {
            // A contiguous body (an array, a buffer) is one copy; the generic append walks it.
            if body.withContiguousStorageIfAvailable({ buffer.append(contentsOf: $0) }) == nil {
                buffer.append(contentsOf: body)
            }
        }
    }

    /// Appends the head of a response with a `Content-Length` body of `count` bytes (the last
    /// head again when nothing it was made from changed).
    /// - Returns: whether the status may carry a body (not 1xx, 204 or 304).
    @usableFromInline
    mutating func appendHead(
        status: Int, headers: [(name: String, value: String)], bodyCount count: Int, keepAlive: Bool,
        version: HTTPVersion, into buffer: inout [UInt8]
    ) -> Bool {
        let bodyless = (100..<200).contains(status) || status == 204 || status == 304
        let key = HeadKey(status: status, version: version, keepAlive: keepAlive, bodyCount: count, second: Int(time(nil)))
        if key == self.lastKey && Self.sameHeaders(headers, self.lastHeaders) {
            buffer.append(contentsOf: self.lastHead)
        } else {
            var head = self.lastHead
            self.lastHead = []  // unshared while it is rewritten
            head.removeAll(keepingCapacity: true)
            self.writeHead(status: status, headers: headers, keepAlive: keepAlive, version: version, into: &head)
            if !bodyless {
                appendASCII("Content-Length: ", to: &head)
                appendDecimal(count, to: &head)
                appendASCII("\r\n", to: &head)
            }
            appendASCII("\r\n", to: &head)
            buffer.append(contentsOf: head)
            self.lastHead = head
            self.lastHeaders = headers
            // The Date line written is the one for dateSecond (appendDate may have remade it).
            self.lastKey = HeadKey(status: status, version: version, keepAlive: keepAlive, bodyCount: count, second: self.dateSecond)
        }
        return !bodyless
    }

    /// Appends the head of a chunked response (HTTP/1.1 only); follow with ``writeChunk(_:into:)``
    /// for each piece and ``writeLastChunk(into:)``.
    public mutating func writeChunkedHead(
        status: Int, headers: [(name: String, value: String)] = [], keepAlive: Bool, into buffer: inout [UInt8]
    ) {
        self.writeHead(status: status, headers: headers, keepAlive: keepAlive, version: .http1_1, into: &buffer)
        appendASCII("Transfer-Encoding: chunked\r\n\r\n", to: &buffer)
    }

    /// Appends one chunk; an empty piece appends nothing (a zero-size chunk would end the body).
    public func writeChunk(_ bytes: some Collection<UInt8>, into buffer: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        appendHex(bytes.count, to: &buffer)
        appendASCII("\r\n", to: &buffer)
        if bytes.withContiguousStorageIfAvailable({ buffer.append(contentsOf: $0) }) == nil { buffer.append(contentsOf: bytes) }
        appendASCII("\r\n", to: &buffer)
    }

    /// Appends the last chunk and an empty trailer section.
    public func writeLastChunk(into buffer: inout [UInt8]) {
        appendASCII("0\r\n\r\n", to: &buffer)
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
        // Static text and each String's UTF-8 go in as contiguous copies: appending a String's
        // UTF8View element by element is the slow path of Array.append(contentsOf:).
        appendASCII(version == .http1_0 ? "HTTP/1.0 " : "HTTP/1.1 ", to: &buffer)
        appendDecimal(status, to: &buffer)
        buffer.append(0x20)
        appendASCII(Self.staticReasonPhrase(status), to: &buffer)
        appendASCII("\r\n", to: &buffer)
        self.appendDate(to: &buffer)
        for header in headers {
            appendUTF8(header.name, to: &buffer)
            appendASCII(": ", to: &buffer)
            appendUTF8(header.value, to: &buffer)
            appendASCII("\r\n", to: &buffer)
        }
        if version == .http1_0 {
            if keepAlive { appendASCII("Connection: keep-alive\r\n", to: &buffer) }
        } else if !keepAlive {
            appendASCII("Connection: close\r\n", to: &buffer)
        }
    }

    /// Whether two header lists are equal: the same array buffer (the caller passes one constant
    /// list, and the writer's copy keeps that buffer alive and unchanged), or equal line by line.
    private static func sameHeaders(_ a: [(name: String, value: String)], _ b: [(name: String, value: String)]) -> Bool {
        guard a.count == b.count else { return false }
        let identical = a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress } }
        if identical { return true }
        for i in 0..<a.count where a[i].name != b[i].name || a[i].value != b[i].value { return false }
        return true
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
    public static func reasonPhrase(_ status: Int) -> String { String(describing: self.staticReasonPhrase(status)) }

    static func staticReasonPhrase(_ status: Int) -> StaticString {
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

/// Appends `value` in decimal, with no allocation: the digits are made on the stack and appended
/// in one copy.
func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
    precondition(value >= 0)
    if value < 10 {
        buffer.append(UInt8(truncatingIfNeeded: 0x30 + value))
        return
    }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var i = digits.count
        var rest = value
        repeat {
            i -= 1
            digits[i] = UInt8(truncatingIfNeeded: 0x30 + rest % 10)
            rest /= 10
        } while rest > 0
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i...]))
    }
}

/// Appends static ASCII text in one copy.
@inline(__always)
func appendASCII(_ text: StaticString, to buffer: inout [UInt8]) {
    text.withUTF8Buffer { buffer.append(contentsOf: $0) }
}

/// Appends a String's UTF-8 in one copy (a small string's bytes are copied out of it first).
@inline(__always)
func appendUTF8(_ text: String, to buffer: inout [UInt8]) {
    var text = text
    text.withUTF8 { buffer.append(contentsOf: $0) }
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
