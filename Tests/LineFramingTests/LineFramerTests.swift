// LineFramer on its own: buffered framing with next(), in-place framing with scan() (only an
// unterminated tail is ever buffered), limits, CRLF, empty lines and bytes that are not UTF-8.

@testable import LineFraming
import Testing

/// Runs `scan` over `bytes`, collecting each line's raw bytes.
private func scanLines(
    _ framer: inout LineFramer, _ bytes: [UInt8], stopAt stop: [UInt8]? = nil
) -> (lines: [[UInt8]], result: LineFramer.ScanResult) {
    var lines: [[UInt8]] = []
    let result = bytes.withUnsafeBytes { raw in
        framer.scan(raw) { line in
            if let stop, line.content.elementsEqual(stop) { return false }
            lines.append(Array(line.raw))
            return true
        }
    }
    return (lines, result)
}

private func b(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct LineFramerTests {
    @Test func nextHandsOutBufferedLinesWithAndWithoutTerminator() {
        var framer = LineFramer(maxLineBytes: 16)
        framer.append(contentsOf: b("a b\r\n\nrest"))
        guard case .line(let first) = framer.next() else { Issue.record("no line"); return }
        #expect(Array(first.raw) == b("a b\r\n") && Array(first.content) == b("a b"))
        guard case .line(let empty) = framer.next() else { Issue.record("no line"); return }
        #expect(empty.content.isEmpty && Array(empty.raw) == b("\n"))
        guard case .needMoreData = framer.next() else { Issue.record("expected needMoreData"); return }
        #expect(framer.bufferedByteCount == 4)
    }

    @Test func scanKeepsOnlyTheUnterminatedTail() {
        var framer = LineFramer(maxLineBytes: 64)
        let first = scanLines(&framer, b("one\ntwo\r\nthr"))
        #expect(first.lines == [b("one\n"), b("two\r\n")])
        #expect(first.result == .needMoreData)
        #expect(framer.bufferedByteCount == 3, "only the partial tail is held")
        let second = scanLines(&framer, b("ee\nfour\n"))
        #expect(second.lines == [b("three\n"), b("four\n")])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func scanOfWholeLinesBuffersNothing() {
        var framer = LineFramer(maxLineBytes: 64)
        let run = scanLines(&framer, b("x\ny\n\n"))
        #expect(run.lines == [b("x\n"), b("y\n"), b("\n")])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func scanOneByteAtATimeGivesTheSameLines() {
        let input = b("alpha\r\nbeta\n\ngamma\n") + [0xff, 0xfe, 0x0a]
        var framer = LineFramer(maxLineBytes: 64)
        var lines: [[UInt8]] = []
        for byte in input {
            let run = scanLines(&framer, [byte])
            lines += run.lines
            #expect(run.result == .needMoreData)
        }
        #expect(lines == [b("alpha\r\n"), b("beta\n"), b("\n"), b("gamma\n"), [0xff, 0xfe, 0x0a]])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func scanStopsAndLeavesTheRestForNext() {
        var framer = LineFramer(maxLineBytes: 64)
        let run = scanLines(&framer, b("a\nstop\nb\nc"), stopAt: b("stop"))
        #expect(run.lines == [b("a\n")])
        #expect(run.result == .stopped)
        guard case .line(let line) = framer.next() else { Issue.record("no line"); return }
        #expect(Array(line.content) == b("b"))
        #expect(framer.bufferedByteCount == 1)
    }

    @Test func lineLimitCountsContentNotTerminator() {
        var exact = LineFramer(maxLineBytes: 4)
        #expect(scanLines(&exact, b("abcd\r\n")).lines == [b("abcd\r\n")])
        var over = LineFramer(maxLineBytes: 4)
        #expect(scanLines(&over, b("ok\nabcde\n")).result == .tooLong)
        // Unterminated: refused once more than max + 1 bytes wait (room for a CR).
        var waiting = LineFramer(maxLineBytes: 4)
        #expect(scanLines(&waiting, b("abcd\r")).result == .needMoreData)
        #expect(scanLines(&waiting, b("x")).result == .tooLong)
        var buffered = LineFramer(maxLineBytes: 4)
        buffered.append(contentsOf: b("abcdef"))
        guard case .tooLong = buffered.next() else { Issue.record("expected tooLong"); return }
    }

    @Test func aLineSpanningReadsIsCompletedInTheBuffer() {
        var framer = LineFramer(maxLineBytes: 8)
        #expect(scanLines(&framer, b("abc")).lines.isEmpty)
        #expect(scanLines(&framer, b("def")).lines.isEmpty)
        #expect(framer.bufferedByteCount == 6)
        let run = scanLines(&framer, b("gh\nxy"))
        #expect(run.lines == [b("abcdefgh\n")])
        #expect(framer.bufferedByteCount == 2)
        // The same line one byte longer is refused.
        var long = LineFramer(maxLineBytes: 8)
        _ = scanLines(&long, b("abcdefg"))
        #expect(scanLines(&long, b("hi\n")).result == .tooLong)
    }

    @Test func releaseIfEmptyDropsStorageOnlyWhenNothingWaits() {
        var framer = LineFramer(maxLineBytes: 8)
        framer.append(contentsOf: b("a\nb"))
        _ = framer.next()
        framer.releaseIfEmpty()
        #expect(framer.bufferedByteCount == 1)
        framer.append(contentsOf: b("\n"))
        _ = framer.next()
        framer.releaseIfEmpty()
        #expect(framer.bufferedByteCount == 0)
    }
}

/// The eight-bytes-at-a-time newline search agrees with a byte-by-byte one wherever it starts,
/// whatever surrounds the newlines (bytes with the high bit set, 0x0B, 0x8A, NULs), so `scan`
/// cuts exactly the lines a reader would.
@Suite struct NewlineSearchTests {
    @Test func agreesWithAByteByByteSearchOnAwkwardBytes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x0A, 0x0B, 0x09, 0x8A, 0x80, 0xFF, 0x00, 0x01, 0x7F, UInt8(ascii: "a")]
        for length in 0..<70 {
            for _ in 0..<40 {
                let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
                bytes.withUnsafeBytes { raw in
                    for start in 0...length {
                        let expected = bytes[start...].firstIndex(of: 0x0A)
                        #expect(LineFramer.indexOfNewline(in: raw, from: start) == expected, "\(bytes) from \(start)")
                    }
                }
            }
        }
    }
}
