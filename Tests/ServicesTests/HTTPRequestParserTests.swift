// The metrics port's HTTP request parser: table-driven, each input fed whole, one byte at a
// time and (for the good ones) all concatenated into one pipeline.

import Services
import Testing

@Suite struct HTTPRequestParserTests {
    /// Feeds `input` in pieces of `chunk` bytes (0: whole) and collects every result until the
    /// parser needs more data or fails.
    static func parse(_ input: String, chunk: Int = 0, maxHeaderBytes: Int = 8192) -> [HTTPRequestParser.Result] {
        var parser = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes)
        var results: [HTTPRequestParser.Result] = []
        let bytes = Array(input.utf8)
        let size = chunk == 0 ? max(bytes.count, 1) : chunk
        var offset = 0
        repeat {
            let piece = Array(bytes[offset..<min(offset + size, bytes.count)])
            piece.withUnsafeBytes { parser.append($0) }
            offset += size
            while true {
                let result = parser.next()
                if result == .needMoreData { break }
                results.append(result)
                if case .failed = result { return results }
            }
        } while offset < bytes.count
        return results
    }

    static func request(_ path: String, method: String = "GET", minor: Int = 1, keepAlive: Bool = true,
                        authorization: String? = nil) -> HTTPRequestParser.Result {
        .request(HTTPRequest(method: Array(method.utf8), path: Array(path.utf8), minorVersion: minor, keepAlive: keepAlive,
                             authorization: authorization.map { Array($0.utf8) }))
    }

    static let good: [(String, HTTPRequestParser.Result)] = [
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", request("/metrics")),
        ("GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n", request("/healthz")),
        // Bare LF line ends (RFC 9112 2.2 lets a recipient accept them).
        ("GET /metrics HTTP/1.1\nHost: x\n\n", request("/metrics")),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", request("/metrics", keepAlive: false)),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nconnection: Keep-Alive, CLOSE\r\n\r\n", request("/metrics", keepAlive: false)),
        ("GET / HTTP/1.0\r\n\r\n", request("/", minor: 0, keepAlive: false)),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", request("/", minor: 0, keepAlive: true)),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization:   Bearer s3cret  \r\n\r\n",
         request("/metrics", authorization: "Bearer s3cret")),
        ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", request("/metrics", method: "POST")),
        // Empty lines before a request line are skipped.
        ("\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n", request("/x")),
    ]

    @Test(arguments: [0, 1, 7])
    func parsesWellFormedRequests(chunk: Int) {
        for (input, expected) in Self.good {
            #expect(Self.parse(input, chunk: chunk) == [expected], "\(input.debugDescription) in chunks of \(chunk)")
        }
    }

    @Test(arguments: [0, 1])
    func pipelinedRequestsComeOutInOrder(chunk: Int) {
        let all = Self.good.map(\.0).joined()
        #expect(Self.parse(all, chunk: chunk) == Self.good.map(\.1))
    }

    @Test func aBodyIsSkippedEvenWhenItArrivesLater() {
        var parser = HTTPRequestParser()
        func feed(_ text: String) { Array(text.utf8).withUnsafeBytes { parser.append($0) } }
        feed("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
        #expect(parser.next() == Self.request("/a", method: "PUT"))
        #expect(parser.next() == .needMoreData)
        feed("456789GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(parser.next() == Self.request("/b"))
        #expect(parser.next() == .needMoreData)
        #expect(parser.bufferedByteCount == 0)
    }

    static let bad: [(String, Int)] = [
        ("GET /metrics\r\n\r\n", 400),
        ("GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\n\r\n", 400),  // no Host
        ("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\rEvil: 1\r\n\r\n", 400),
        ("GET /m\u{7F} HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("G\u{E9}T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400),
    ]

    @Test(arguments: [0, 1])
    func malformedRequestsFailWithTheirStatus(chunk: Int) {
        for (input, status) in Self.bad {
            let results = Self.parse(input, chunk: chunk)
            guard case .failed(let error)? = results.last else {
                Issue.record("\(input.debugDescription): \(results)")
                continue
            }
            #expect(error.status == status, "\(input.debugDescription)")
        }
    }

    @Test func afterAFailureNothingMoreIsParsed() {
        var parser = HTTPRequestParser()
        Array("BAD\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { parser.append($0) }
        guard case .failed = parser.next() else { Issue.record("expected a failure"); return }
        guard case .failed = parser.next() else { Issue.record("expected the failure again"); return }
    }

    @Test func theHeaderSectionIsBounded() {
        let long = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: " + String(repeating: "a", count: 300) + "\r\n\r\n"
        // Whole, and fed a byte at a time: the parser gives up once the limit is passed, without
        // waiting for the end of the header section.
        for chunk in [0, 1] {
            let results = Self.parse(long, chunk: chunk, maxHeaderBytes: 256)
            #expect(results.count == 1)
            if case .failed(let error)? = results.first { #expect(error.status == 431) } else { Issue.record("\(results)") }
        }
        var parser = HTTPRequestParser(maxHeaderBytes: 256)
        Array(String(repeating: "a", count: 300).utf8).withUnsafeBytes { parser.append($0) }
        if case .failed(let error) = parser.next() { #expect(error.status == 431) } else { Issue.record("no failure") }
        // Just under the limit is fine.
        #expect(Self.parse(long, maxHeaderBytes: long.utf8.count) == [Self.request("/metrics")])
    }

    @Test func pipelinedBytesAreBounded() {
        var parser = HTTPRequestParser(maxHeaderBytes: 64, maxBufferedBytes: 110)
        let one = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        for _ in 0..<3 { one.withUnsafeBytes { parser.append($0) } }
        #expect(parser.bufferedByteCount == 3 * one.count)
        one.withUnsafeBytes { parser.append($0) }
        guard case .failed(let error) = parser.next() else { Issue.record("no failure"); return }
        #expect(error.status == 400)
    }
}
