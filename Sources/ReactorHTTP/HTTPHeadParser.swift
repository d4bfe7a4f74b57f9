// Parses a complete request head (request line and header lines, as HTTPRequestFramer gathered
// them) and decides how the body is framed. The rules and their RFC 9112 sections are listed in
// HTTPRequestFramer.swift's header.

/// How the body after a head is delimited.
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

/// Where one header line's name and value lie in the head's bytes (the value without the
/// whitespace around it).
struct HeaderField: Sendable {
    var name: Range<Int>
    var value: Range<Int>
}

/// What a head says, besides its header lines (those are ranges of the head's bytes: see
/// ``HTTPHeadParser/parse(_:fields:)``).
struct ParsedHead {
    var method: String
    var target: String
    var version: HTTPVersion
    var keepAlive: Bool
    var framing: BodyFraming
}

enum HTTPHeadParser {
    /// `bytes` hold the request line, the header lines and the empty line, each ending in LF
    /// (CR before it optional). Each header line's name and value are appended to `fields` as
    /// ranges of `bytes`: no String is made for a header until someone asks for it
    /// (``HTTPRequest/headers``).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, fields: inout [HeaderField]) throws(HTTPRequestError) -> ParsedHead {
        // One pass over the lines, no list of them: the request line, then header lines
        // until the empty one (the framer hands over a head only once that line ended it).
        var start = 0
        var parsed: ParsedHead?
        var ended = false
        var contentLength: Int?
        var transferEncoding: [UInt8]?
        var hosts = 0
        var connectionClose = false
        var connectionKeepAlive = false
        while let newline = indexOfNewline(UnsafeRawBufferPointer(bytes), from: start) {
            var end = newline
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            let range = start..<end
            start = newline + 1
            guard parsed != nil else {
                parsed = try self.parseRequestLine(bytes, range)
                continue
            }
            if range.isEmpty {
                ended = true
                break
            }
            let (name, value) = try self.parseHeaderLine(bytes, range)
            let nameBytes = UnsafeBufferPointer(rebasing: bytes[name])
            let valueBytes = UnsafeBufferPointer(rebasing: bytes[value])
            fields.append(HeaderField(name: name, value: value))
            if equalsLowercase(nameBytes, "host") {
                hosts += 1
            } else if equalsLowercase(nameBytes, "content-length") {
                let length = try self.parseContentLength(bytes[value])
                if let previous = contentLength, previous != length { throw .bad("conflicting Content-Length") }
                contentLength = length
            } else if equalsLowercase(nameBytes, "transfer-encoding") {
                transferEncoding = (transferEncoding.map { $0 + [0x2C] } ?? []) + Array(valueBytes)
            } else if equalsLowercase(nameBytes, "connection") {
                for token in commaSeparated(valueBytes) {
                    if equalsLowercase(token, "close") { connectionClose = true }
                    if equalsLowercase(token, "keep-alive") { connectionKeepAlive = true }
                }
            }
        }
        guard ended, var parsed else { throw .bad("incomplete head") }
        if parsed.version == .http1_1 && hosts != 1 {
            throw .bad(hosts == 0 ? "HTTP/1.1 request without Host" : "more than one Host")
        }
        if let codings = transferEncoding {
            guard parsed.version != .http1_0 else { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            guard contentLength == nil else { throw .bad("both Transfer-Encoding and Content-Length") }
            let tokens = commaSeparated(codings[...])
            guard let last = tokens.last, equalsLowercase(last, "chunked") else {
                throw .bad("Transfer-Encoding whose last coding is not chunked")
            }
            guard tokens.count == 1 else {
                throw HTTPRequestError(status: 501, reason: "transfer coding not implemented")
            }
            parsed.framing = .chunked
        } else if let contentLength {
            parsed.framing = .length(contentLength)
        }
        parsed.keepAlive = parsed.version == .http1_0 ? connectionKeepAlive && !connectionClose : !connectionClose
        return parsed
    }

    /// method SP request-target SP HTTP-version (RFC 9112 3).
    private static func parseRequestLine(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(HTTPRequestError) -> ParsedHead {
        // Plain index loops over the buffer: a slice's firstIndex and allSatisfy check every index.
        var firstSpace = range.lowerBound
        while firstSpace < range.upperBound && bytes[firstSpace] != 0x20 { firstSpace += 1 }
        guard firstSpace < range.upperBound, firstSpace > range.lowerBound else { throw .bad("malformed request line") }
        var lastSpace = range.upperBound - 1
        while bytes[lastSpace] != 0x20 { lastSpace -= 1 }
        guard lastSpace > firstSpace + 1 else { throw .bad("malformed request line") }
        for i in range.lowerBound..<firstSpace where !isTokenByte(bytes[i]) { throw .bad("malformed method") }
        for i in (firstSpace + 1)..<lastSpace where bytes[i] <= 0x20 || bytes[i] >= 0x7F {
            throw .bad("malformed request target")
        }
        let method = bytes[range.lowerBound..<firstSpace]
        let target = bytes[(firstSpace + 1)..<lastSpace]
        let version = bytes[(lastSpace + 1)..<range.upperBound]
        // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (RFC 9112 2.3).
        guard version.count == 8, version[version.startIndex] == 0x48, version[version.startIndex + 1] == 0x54,
              version[version.startIndex + 2] == 0x54, version[version.startIndex + 3] == 0x50,
              version[version.startIndex + 4] == 0x2F,
              let major = digitValue(version[version.startIndex + 5]), version[version.startIndex + 6] == 0x2E,
              let minor = digitValue(version[version.startIndex + 7])
        else { throw .bad("malformed HTTP version") }
        guard major == 1 else { throw HTTPRequestError(status: 505, reason: "HTTP version not supported") }
        return ParsedHead(
            // GET, the usual method, needs no decoding.
            method: method.count == 3 && method[method.startIndex] == 0x47 && method[method.startIndex + 1] == 0x45
                && method[method.startIndex + 2] == 0x54 ? "GET" : String(decoding: UnsafeBufferPointer(rebasing: method), as: UTF8.self),
            target: String(decoding: UnsafeBufferPointer(rebasing: target), as: UTF8.self),
            // 1.x with x above 1 is answered as 1.1, the highest minor this side speaks (RFC 9110 2.5).
            version: minor == 0 ? .http1_0 : .http1_1, keepAlive: true, framing: .none)
    }

    /// field-name ":" OWS field-value OWS (RFC 9112 5).
    private static func parseHeaderLine(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(HTTPRequestError) -> (Range<Int>, Range<Int>) {
        let first = bytes[range.lowerBound]
        if first == 0x20 || first == 0x09 { throw .bad("obsolete line folding") }
        // The name runs to the colon and must be a token: one loop does both.
        var colon = range.lowerBound
        while colon < range.upperBound && bytes[colon] != 0x3A {
            guard isTokenByte(bytes[colon]) else {
                throw bytes[(colon + 1)..<range.upperBound].contains(0x3A)
                    ? .bad("malformed header name") : .bad("header line without a name and colon")
            }
            colon += 1
        }
        guard colon < range.upperBound, colon > range.lowerBound else { throw .bad("header line without a name and colon") }
        var valueStart = colon + 1
        var valueEnd = range.upperBound
        while valueStart < valueEnd && (bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09) { valueStart += 1 }
        while valueEnd > valueStart && (bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09) { valueEnd -= 1 }
        // field-vchar and obs-text, with spaces and tabs inside; never CR, LF, NUL or DEL (RFC 9110 5.5).
        for i in valueStart..<valueEnd where (bytes[i] < 0x20 && bytes[i] != 0x09) || bytes[i] == 0x7F {
            throw .bad("malformed header value")
        }
        return (range.lowerBound..<colon, valueStart..<valueEnd)
    }

    /// 1*DIGIT, or a list of the same number (RFC 9110 8.6).
    private static func parseContentLength(_ value: Slice<UnsafeBufferPointer<UInt8>>) throws(HTTPRequestError) -> Int {
        var result: Int?
        for token in commaSeparated(value) {
            guard !token.isEmpty, token.count <= 18, token.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .bad("malformed Content-Length")
            }
            let length = token.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            if let result, result != length { throw .bad("conflicting Content-Length") }
            result = length
        }
        guard let result else { throw .bad("empty Content-Length") }
        return result
    }
}

/// tchar (RFC 9110 5.6.2).
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
         UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
         UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default: return false
    }
}

@inline(__always)
func digitValue(_ byte: UInt8) -> Int? { byte >= 0x30 && byte <= 0x39 ? Int(byte - 0x30) : nil }

/// Whether `bytes` equal `lowercase` (itself lowercase ASCII), ignoring ASCII case.
func equalsLowercase<C: Collection>(_ bytes: C, _ lowercase: StaticString) -> Bool where C.Element == UInt8 {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    return lowercase.withUTF8Buffer { expected in zip(bytes, expected).allSatisfy { lowerASCII($0) == $1 } }
}

/// The elements of a comma-separated list, trimmed of spaces and tabs, empty ones dropped.
func commaSeparated<C: Collection>(_ bytes: C) -> [C.SubSequence] where C.Element == UInt8 {
    var result: [C.SubSequence] = []
    var start = bytes.startIndex
    while start < bytes.endIndex {
        let end = bytes[start...].firstIndex(of: 0x2C) ?? bytes.endIndex
        var first = start
        var last = end
        while first < last && (bytes[first] == 0x20 || bytes[first] == 0x09) { first = bytes.index(after: first) }
        while last > first {
            let before = bytes.index(last, offsetBy: -1)
            guard bytes[before] == 0x20 || bytes[before] == 0x09 else { break }
            last = before
        }
        if first < last { result.append(bytes[first..<last]) }
        start = end < bytes.endIndex ? bytes.index(after: end) : end
    }
    return result
}
