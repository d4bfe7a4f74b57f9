// HTTPRequest's header lines are ranges of the head's bytes, lent by the framer
// (Sources/ReactorHTTP/HTTPRequestFramer.swift): a request the caller keeps must keep its own
// headers while the framer goes on to later requests, and a lookup by name must find what the
// list holds.

import Reactor
@testable import ReactorHTTP
import Testing

@Suite struct HTTPRequestHeadTests {
    /// Frames each piece in its own call, keeping every request.
    static func keep(_ pieces: [String]) throws -> [HTTPRequest] {
        var framer = HTTPRequestFramer()
        var kept: [HTTPRequest] = []
        for piece in pieces {
            try Array(piece.utf8).withUnsafeBytes { bytes in try framer.frame(bytes) { kept.append($0) } }
        }
        return kept
    }

    static func pairs(_ request: HTTPRequest) -> [String] { request.headers.map { "\($0.name)=\($0.value)" } }

    @Test func aKeptRequestKeepsItsHeadersAfterLaterRequests() throws {
        let kept = try Self.keep([
            "GET /a HTTP/1.1\r\nHost: one\r\nX-First:  1 \r\n\r\nGET /b HTTP/1.1\r\nHo",
            "st: two\r\nX-Second: 2\r\n\r\n",
            "POST /c HTTP/1.1\r\nHost: three\r\nContent-Length: 3\r\n\r\nab",
            "cGET /d HTTP/1.1\r\nHost: four\r\n\r\n",
        ])
        #expect(kept.map(\.target) == ["/a", "/b", "/c", "/d"])
        #expect(Self.pairs(kept[0]) == ["Host=one", "X-First=1"])
        #expect(Self.pairs(kept[1]) == ["Host=two", "X-Second=2"])
        #expect(Self.pairs(kept[2]) == ["Host=three", "Content-Length=3"])
        #expect(kept[2].body == Array("abc".utf8))
        #expect(Self.pairs(kept[3]) == ["Host=four"])
        #expect(kept.map(\.headerCount) == [2, 2, 2, 1])
    }

    @Test func headerFindsTheFirstValueIgnoringCase() throws {
        let request = try #require(try Self.keep([
            "GET / HTTP/1.1\r\nhost: h\r\nAccept: a\r\naccept: b\r\nX-Obs: caf\u{e9}\r\n\r\n",
        ]).first)
        #expect(request.header("Host") == "h")
        #expect(request.header("ACCEPT") == "a")
        #expect(request.header("x-obs") == "caf\u{e9}")
        #expect(request.header("Accept-Encoding") == nil)
        #expect(request.header("") == nil)
    }

    @Test func aRequestDroppedAtOnceLeavesTheFramerHoldingNothingForIt() throws {
        var framer = HTTPRequestFramer()
        var targets: [String] = []
        try Array("GET /x HTTP/1.1\r\nHost: h\r\n\r\n".utf8).withUnsafeBytes { bytes in
            try framer.frame(bytes) { targets.append($0.target) }
        }
        #expect(targets == ["/x"])
        #expect(framer.bufferedByteCount == 0)
    }
}
