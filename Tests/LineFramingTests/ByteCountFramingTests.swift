// Framing by byte count next to lines: a header line announces a length, the framer hands out
// exactly that many raw bytes (newlines inside them included), then frames lines again after
// them, however the bytes were split across reads. A model (split the whole stream by hand)
// is the oracle for every split point.

@testable import LineFraming
import Testing

@Suite struct ByteCountFramingTests {
    /// `LEN n` lines announce an n-byte body; any other line is a line. Feeds `stream` in pieces
    /// cut at `cuts`, framing lines with scan() (stopping at a header) and bodies with nextBytes.
    static func frame(_ stream: [UInt8], cuts: [Int]) -> [String] {
        var framer = LineFramer(maxLineBytes: 64)
        var out: [String] = []
        var bodyLength: Int?
        var start = 0
        for end in cuts + [stream.count] where end >= start {
            let piece = Array(stream[start..<end])
            start = end
            var fresh: [UInt8] = piece
            while true {
                if let length = bodyLength {
                    if !fresh.isEmpty { framer.append(contentsOf: fresh); fresh = [] }
                    guard let body = framer.nextBytes(length) else { break }
                    out.append("body:" + String(decoding: body, as: UTF8.self))
                    bodyLength = nil
                }
                let result = fresh.withUnsafeBytes { raw in
                    framer.scan(raw) { line in
                        let text = String(decoding: line.content, as: UTF8.self)
                        if text.hasPrefix("LEN "), let n = Int(text.dropFirst(4)) {
                            bodyLength = n
                            return false
                        }
                        out.append("line:" + text)
                        return true
                    }
                }
                fresh = []
                if result != .stopped { break }
            }
        }
        return out
    }

    @Test func bodiesAndLinesInterleavedSurviveEverySplitPoint() {
        let stream = Array("GET\nLEN 5\nab\ncdLEN 0\nLEN 3\n\n\n\nlast\n".utf8)
        let expected = ["line:GET", "body:ab\ncd", "body:", "body:\n\n\n", "line:last"]
        #expect(Self.frame(stream, cuts: []) == expected)
        for cut in 0...stream.count {
            #expect(Self.frame(stream, cuts: [cut]) == expected, "cut at \(cut)")
        }
        for first in stride(from: 0, through: stream.count, by: 3) {
            for second in first...stream.count {
                #expect(Self.frame(stream, cuts: [first, second]) == expected, "cuts at \(first), \(second)")
            }
        }
    }

    @Test func nextBytesWaitsForTheWholeCountAndUpToHandsOutWhatThereIs() {
        var framer = LineFramer(maxLineBytes: 8)
        framer.append(contentsOf: Array("abc".utf8))
        #expect(framer.nextBytes(4) == nil)
        #expect(framer.bufferedByteCount == 3, "a short body must not be consumed")
        framer.append(contentsOf: Array("defg\nh".utf8))
        #expect(framer.nextBytes(4).map(Array.init) == Array("abcd".utf8))
        #expect(framer.nextBytes(upTo: 2).elementsEqual("ef".utf8))
        guard case .line(let line) = framer.next() else { Issue.record("no line after the body"); return }
        #expect(Array(line.content) == Array("g".utf8))
        #expect(framer.nextBytes(upTo: 10).elementsEqual("h".utf8))
        #expect(framer.nextBytes(upTo: 10).isEmpty)
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func aBodyLongerThanTheLineLimitIsNotTooLong() {
        var framer = LineFramer(maxLineBytes: 4)
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 1000)
        framer.append(contentsOf: body + Array("ok\n".utf8))
        #expect(framer.nextBytes(1000).map(Array.init) == body)
        guard case .line(let line) = framer.next() else { Issue.record("no line after the body"); return }
        #expect(Array(line.content) == Array("ok".utf8))
    }
}
