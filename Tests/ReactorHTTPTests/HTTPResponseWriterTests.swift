// HTTPResponseWriter (Sources/ReactorHTTP): status line, Date, Content-Length or chunked
// framing, Connection as the version's default requires, no body where none may be sent; and
// what it writes frames back through a client-side reading of the same rules.

import Foundation
@testable import ReactorHTTP
import Testing

@Suite struct HTTPResponseWriterTests {
    /// Splits a response into its head lines (without the Date line, checked separately) and the rest.
    func split(_ bytes: [UInt8]) -> (lines: [String], date: String?, rest: String) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        var lines = parts[0].components(separatedBy: "\r\n")
        let date = lines.first { $0.hasPrefix("Date: ") }
        lines.removeAll { $0.hasPrefix("Date: ") }
        return (lines, date, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func contentLengthResponse() {
        var writer = HTTPResponseWriter()
        var out: [UInt8] = []
        writer.writeResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("Hello, World!".utf8),
                             keepAlive: true, into: &out)
        let (lines, date, rest) = self.split(out)
        #expect(lines == ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 13"])
        #expect(rest == "Hello, World!")
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
        let value = date.map { String($0.dropFirst(6)) } ?? ""
        #expect(value.count == 29 && value.hasSuffix(" GMT") && value.dropFirst(3).hasPrefix(", "), "\(value)")
    }

    @Test func aReusedHeadIsNeverStale() {
        // The writer reuses the last head when status, version, persistence, body length and
        // headers repeat: each change below must show, and a repeat must equal a fresh writer's.
        var writer = HTTPResponseWriter()
        let constant = [(name: "Content-Type", value: "text/plain")]
        func lines(_ status: Int, _ headers: [(name: String, value: String)], _ body: String, keepAlive: Bool = true,
                   version: HTTPVersion = .http1_1) -> ([String], String) {
            var out: [UInt8] = []
            writer.writeResponse(status: status, headers: headers, body: Array(body.utf8), keepAlive: keepAlive, version: version, into: &out)
            var fresh = HTTPResponseWriter()
            var expected: [UInt8] = []
            fresh.writeResponse(status: status, headers: headers, body: Array(body.utf8), keepAlive: keepAlive, version: version, into: &expected)
            #expect(self.split(out).lines == self.split(expected).lines)
            let (head, _, rest) = self.split(out)
            return (head, rest)
        }
        #expect(lines(200, constant, "abc").0 == ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 3"])
        #expect(lines(200, constant, "abc") == (["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 3"], "abc"))
        #expect(lines(200, constant, "xyz") == (["HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 3"], "xyz"))
        #expect(lines(404, constant, "xyz").0 == ["HTTP/1.1 404 Not Found", "Content-Type: text/plain", "Content-Length: 3"])
        #expect(lines(404, constant, "xy").0 == ["HTTP/1.1 404 Not Found", "Content-Type: text/plain", "Content-Length: 2"])
        #expect(lines(404, [("Content-Type", "text/html")], "xy").0 == ["HTTP/1.1 404 Not Found", "Content-Type: text/html", "Content-Length: 2"])
        var changed = constant
        changed[0].value = "text/css"  // the same count, a new buffer, another value
        #expect(lines(404, changed, "xy").0 == ["HTTP/1.1 404 Not Found", "Content-Type: text/css", "Content-Length: 2"])
        #expect(lines(404, changed, "xy", keepAlive: false).0.contains("Connection: close"))
        #expect(lines(404, changed, "xy", keepAlive: true, version: .http1_0).0.first == "HTTP/1.0 404 Not Found")
        #expect(lines(204, changed, "").0 == ["HTTP/1.1 204 No Content", "Content-Type: text/css"])
    }

    @Test func connectionHeaderOnlyWhereItDiffersFromTheDefault() {
        var writer = HTTPResponseWriter()
        var out: [UInt8] = []
        writer.writeResponse(status: 404, body: [UInt8](), keepAlive: false, into: &out)
        #expect(self.split(out).lines == ["HTTP/1.1 404 Not Found", "Connection: close", "Content-Length: 0"])
        out = []
        writer.writeResponse(status: 200, body: Array("x".utf8), keepAlive: true, version: .http1_0, into: &out)
        #expect(self.split(out).lines == ["HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"])
        out = []
        writer.writeResponse(status: 200, body: Array("x".utf8), keepAlive: false, version: .http1_0, into: &out)
        #expect(self.split(out).lines == ["HTTP/1.0 200 OK", "Content-Length: 1"])
    }

    @Test func noBodyFor204And304AndHead() {
        var writer = HTTPResponseWriter()
        var out: [UInt8] = []
        writer.writeResponse(status: 204, body: Array("ignored".utf8), keepAlive: true, into: &out)
        #expect(self.split(out).lines == ["HTTP/1.1 204 No Content"])
        #expect(self.split(out).rest.isEmpty)
        out = []
        writer.writeResponse(status: 200, body: Array("12345".utf8), keepAlive: true, headOnly: true, into: &out)
        #expect(self.split(out).lines == ["HTTP/1.1 200 OK", "Content-Length: 5"])
        #expect(self.split(out).rest.isEmpty)
    }

    @Test func chunkedResponseFramesBackThroughTheRequestFramersRules() throws {
        var writer = HTTPResponseWriter()
        var out: [UInt8] = []
        writer.writeChunkedHead(status: 200, keepAlive: true, into: &out)
        writer.writeChunk(Array("hello ".utf8), into: &out)
        writer.writeChunk([UInt8](), into: &out)  // nothing: a zero-size chunk would end the body
        writer.writeChunk([UInt8](repeating: 0x61, count: 300), into: &out)
        writer.writeLastChunk(into: &out)
        let (lines, _, rest) = self.split(out)
        #expect(lines == ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"])
        #expect(rest == "6\r\nhello \r\n12c\r\n" + String(repeating: "a", count: 300) + "\r\n0\r\n\r\n")
        // The same body, framed as a request's would be, comes back whole.
        var framer = HTTPRequestFramer()
        var body: [UInt8] = []
        let request = Array("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".utf8) + Array(rest.utf8)
        try request.withUnsafeBytes { try framer.frame($0) { body = $0.body } }
        #expect(body == Array("hello ".utf8) + [UInt8](repeating: 0x61, count: 300))
    }

    @Test func errorResponsesCloseAndNameTheirStatus() {
        var writer = HTTPResponseWriter()
        var out: [UInt8] = []
        writer.writeError(HTTPRequestError(status: 431, reason: "header section too large"), into: &out)
        let (lines, _, rest) = self.split(out)
        #expect(lines.first == "HTTP/1.1 431 Request Header Fields Too Large")
        #expect(lines.contains("Connection: close"))
        #expect(rest == "431 Request Header Fields Too Large\n")
    }

    @Test func decimalAndHexWithoutAllocationMatchTheLibrary() {
        for value in [0, 1, 9, 10, 99, 100, 12345, Int(Int32.max), Int.max] {
            var decimal: [UInt8] = []
            appendDecimal(value, to: &decimal)
            #expect(String(decoding: decimal, as: UTF8.self) == String(value))
            var hex: [UInt8] = []
            appendHex(value, to: &hex)
            #expect(String(decoding: hex, as: UTF8.self) == String(value, radix: 16))
        }
    }
}
