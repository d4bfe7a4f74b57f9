// HTTPRequestFramer (Sources/ReactorHTTP): every request is framed the same whether its bytes come
// whole, one byte at a time or split at every position; what RFC 9112 says to reject is
// rejected with its status; keep-alive follows the version's default; and a seeded random
// mutation run checks that nothing crashes, split and whole agree, and what the framer holds
// stays within its limits.

import Reactor
@testable import ReactorHTTP
import Testing
import TestSupport

/// What a framer made of a stream, as comparable text.
struct Outcome: Equatable, CustomStringConvertible {
    var requests: [String] = []
    var failure: HTTPRequestError?
    var description: String { "\(self.requests) \(String(describing: self.failure))" }
}

func summary(_ request: HTTPRequest) -> String {
    let headers = request.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ";")
    return "\(request.method) \(request.target) \(request.version.major).\(request.version.minor) [\(headers)] "
        + "body=\(String(decoding: request.body, as: UTF8.self)) keepAlive=\(request.keepAlive)"
}

/// Frames `bytes` cut into pieces of the given sizes (the rest in one last piece), checking the
/// buffering bound after each piece.
func frame(_ bytes: [UInt8], pieces: [Int] = [], limits: HTTPLimits = HTTPLimits()) -> Outcome {
    var framer = HTTPRequestFramer(limits: limits)
    var outcome = Outcome()
    var start = 0
    var cuts = pieces
    while start < bytes.count {
        let size = cuts.isEmpty ? bytes.count - start : min(max(cuts.removeFirst(), 1), bytes.count - start)
        do {
            try bytes[start..<(start + size)].withUnsafeBytes { piece in
                try framer.frame(piece) { outcome.requests.append(summary($0)) }
            }
        } catch let error as HTTPRequestError {
            outcome.failure = error
            return outcome
        } catch {
            Issue.record("unexpected error \(error)")
        }
        let bound = max(limits.maxRequestLineBytes + 2 + limits.maxHeaderBytes, limits.maxBodyBytes + max(limits.maxChunkLineBytes, limits.maxHeaderBytes))
        #expect(framer.bufferedByteCount <= bound)
        start += size
    }
    return outcome
}

func byteByByte(_ text: String) -> Outcome {
    let bytes = Array(text.utf8)
    return frame(bytes, pieces: Array(repeating: 1, count: bytes.count))
}

@Suite struct HTTPRequestFramerTests {
    static let pipelined = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        + "POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        + "PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: t\r\n\r\n"
        + "GET /d HTTP/1.1\nHost: x\nConnection: close\n\n"

    @Test func pipelinedRequestsFrameTheSameWholeAndByteByByte() {
        let whole = frame(Array(Self.pipelined.utf8))
        #expect(whole.failure == nil)
        #expect(whole.requests == [
            "GET /a 1.1 [Host=x] body= keepAlive=true",
            "POST /b?q=1 1.1 [Host=x;Content-Length=5] body=hello keepAlive=true",
            "PUT /c 1.1 [Host=x;Transfer-Encoding=chunked] body=abcdefg keepAlive=true",
            "GET /d 1.1 [Host=x;Connection=close] body= keepAlive=false",
        ])
        #expect(byteByByte(Self.pipelined) == whole)
    }

    @Test func everyTwoPieceSplitFramesTheSame() {
        let bytes = Array(Self.pipelined.utf8)
        let whole = frame(bytes)
        for cut in 1..<bytes.count {
            let split = frame(bytes, pieces: [cut])
            #expect(split == whole, "cut at \(cut)")
        }
    }

    @Test func keepAliveFollowsTheVersionsDefault() {
        #expect(frame(Array("GET / HTTP/1.0\r\n\r\n".utf8)).requests == ["GET / 1.0 [] body= keepAlive=false"])
        #expect(frame(Array("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".utf8)).requests
            == ["GET / 1.0 [Connection=Keep-Alive] body= keepAlive=true"])
        #expect(frame(Array("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n".utf8)).requests
            == ["GET / 1.1 [Host=h;Connection=upgrade, close] body= keepAlive=false"])
        // A later 1.x minor is answered as 1.1 (RFC 9110 2.5).
        #expect(frame(Array("GET / HTTP/1.7\r\nHost: h\r\n\r\n".utf8)).requests == ["GET / 1.1 [Host=h] body= keepAlive=true"])
    }

    @Test func emptyLinesBeforeARequestLineAreSkipped() {
        #expect(byteByByte("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").requests == ["GET / 1.1 [Host=h] body= keepAlive=true"])
    }

    @Test func headerValuesLoseSurroundingWhitespaceAndListsOfOneLengthAreAccepted() {
        let text = "POST / HTTP/1.1\r\nHost:  h \t\r\nContent-Length: 3, 3\r\n\r\nabc"
        #expect(byteByByte(text).requests == ["POST / 1.1 [Host=h;Content-Length=3, 3] body=abc keepAlive=true"])
    }

    static let rejected: [(String, Int)] = [
        ("GET / HTTP/1.1\r\n\r\n", 400),  // no Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),  // two Hosts
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/1.11\r\nHost: a\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /\r\nHost: a\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),  // obs-fold
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),  // space before the colon
        ("GET / HTTP/1.1\r\nHost a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12a\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400),
    ]

    @Test func malformedRequestsAreRejectedWithTheirStatusWholeAndByteByByte() {
        for (text, status) in Self.rejected {
            #expect(frame(Array(text.utf8)).failure?.status == status, "\(text.debugDescription)")
            #expect(byteByByte(text).failure?.status == status, "\(text.debugDescription) byte by byte")
        }
    }

    @Test func limitsGive414And431And413() {
        var limits = HTTPLimits()
        limits.maxRequestLineBytes = 32
        limits.maxHeaderBytes = 64
        limits.maxHeaderCount = 3
        limits.maxBodyBytes = 10
        let longTarget = "GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        #expect(frame(Array(longTarget.utf8), limits: limits).failure?.status == 414)
        // Still 414 when the line never ends (the framer does not wait for it).
        #expect(frame(Array(("GET /" + String(repeating: "a", count: 100)).utf8), limits: limits).failure?.status == 414)
        let bigHeader = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 80) + "\r\n\r\n"
        #expect(frame(Array(bigHeader.utf8), limits: limits).failure?.status == 431)
        let manyHeaders = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        #expect(frame(Array(manyHeaders.utf8), limits: limits).failure?.status == 431)
        let threeHeaders = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"
        #expect(frame(Array(threeHeaders.utf8), limits: limits).failure == nil)
        let longBody = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
        #expect(frame(Array(longBody.utf8), limits: limits).failure?.status == 413)
        let chunks = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
        #expect(byteByByte(chunks).failure == nil)
        #expect(frame(Array(chunks.utf8), limits: limits).failure?.status == 413)
        let bigTrailers = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + String(repeating: "t", count: 80) + "\r\n\r\n"
        #expect(frame(Array(bigTrailers.utf8), limits: limits).failure?.status == 431)
    }

    @Test func aFailedFramerStaysFailed() throws {
        var framer = HTTPRequestFramer()
        let bad = Array("GET / HTTP/3.0\r\nHost: a\r\n\r\n".utf8)
        let good = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(throws: HTTPRequestError.self) { try bad.withUnsafeBytes { try framer.frame($0) { _ in } } }
        var framed = 0
        #expect(throws: HTTPRequestError(status: 505, reason: "HTTP version not supported")) {
            try good.withUnsafeBytes { try framer.frame($0) { _ in framed += 1 } }
        }
        #expect(framed == 0)
    }

    @Test func randomMutationsNeverCrashAgreeWhenSplitAndStayBounded() {
        var random = SplitMix(state: 29)
        var limits = HTTPLimits()
        limits.maxRequestLineBytes = 64
        limits.maxHeaderBytes = 128
        limits.maxHeaderCount = 8
        limits.maxBodyBytes = 64
        limits.maxChunkLineBytes = 16
        let seed = Array(Self.pipelined.utf8)
        let alphabet = Array(" \r\n:;,0123456789abcdefABCDEF/HTTP.-chunked\t\u{0}\u{7f}".utf8)
        var outcomes: [Int: Int] = [:]
        for _ in 0..<3000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: at)
                case 2: if bytes.count > 1 { bytes.remove(at: at) }
                default: bytes.insert(contentsOf: repeatElement(bytes[at], count: Int.random(in: 1...200, using: &random)), at: at)
                }
            }
            let whole = frame(bytes, limits: limits)
            let pieces = (0..<8).map { _ in Int.random(in: 1...17, using: &random) }
            let split = frame(bytes, pieces: pieces, limits: limits)
            #expect(split == whole, "\(String(decoding: bytes, as: UTF8.self).debugDescription) split \(pieces)")
            if let status = whole.failure?.status {
                #expect([400, 413, 414, 431, 501, 505].contains(status))
            }
            outcomes[whole.failure?.status ?? 200, default: 0] += 1
        }
        // The mutations reach both accepted streams and several refusals.
        #expect(outcomes[200, default: 0] > 0 && outcomes[400, default: 0] > 0 && outcomes.count >= 4, "\(outcomes)")
    }
}
