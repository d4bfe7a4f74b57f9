// Fuzz target: the line framer (Sources/LineFraming) through both of its interfaces, buffered
// (`append`/`next`) and in place (`scan`, also stopped after every line and resumed), and the echo
// service built on it, each fed the same bytes in arbitrary reads. All must agree with a plain
// model of the framing rules: lines end in LF, one CR before it is dropped, a line (or an
// unterminated tail) past the limit is `tooLong` and ends the stream.
// Input: [max line bytes choice][read pattern][bytes...].

import FuzzSupport
import LineFraming
import Services

/// What framing a stream yields: its lines until the end or an over-long line.
struct Framing: Equatable {
    var lines: [(raw: [UInt8], content: [UInt8])] = []
    var tooLong = false

    static func == (a: Framing, b: Framing) -> Bool {
        a.tooLong == b.tooLong && a.lines.count == b.lines.count
            && zip(a.lines, b.lines).allSatisfy { $0.raw == $1.raw && $0.content == $1.content }
    }

    mutating func add(raw: some Collection<UInt8>, content: some Collection<UInt8>) {
        self.lines.append((Array(raw), Array(content)))
    }
}

/// The framing rules, written as plainly as possible.
func model(_ bytes: UnsafeRawBufferPointer, maxLineBytes: Int) -> (framing: Framing, tail: [UInt8]) {
    var framing = Framing()
    var start = 0
    for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
        let raw = Array(bytes[start...i])
        var content = Array(raw.dropLast())
        if content.last == UInt8(ascii: "\r") { content.removeLast() }
        if content.count > maxLineBytes {
            framing.tooLong = true
            return (framing, [])
        }
        framing.add(raw: raw, content: content)
        start = i + 1
    }
    let tail = Array(bytes[start...])
    if tail.count > maxLineBytes + 1 { framing.tooLong = true }
    return (framing, tail)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLineFramer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let maxLineBytes = 1 + Int(input.byte() % 64)
    let pattern = input.byte() % 32
    let reads = chunks(of: input.rest, pattern: pattern)
    let (expected, tail) = model(input.rest, maxLineBytes: maxLineBytes)

    // Buffered: append, then next() until it needs more.
    var buffered = Framing()
    var framer = LineFramer(maxLineBytes: maxLineBytes)
    bufferedLoop: for read in reads {
        framer.append(read)
        while true {
            switch framer.next() {
            case .line(let line): buffered.add(raw: line.raw, content: line.content)
            case .needMoreData: continue bufferedLoop
            case .tooLong:
                buffered.tooLong = true
                break bufferedLoop
            }
        }
    }
    require(buffered == expected, "append/next: \(buffered.lines.count) lines, tooLong \(buffered.tooLong); "
            + "model: \(expected.lines.count), \(expected.tooLong)")
    if !expected.tooLong {
        require(framer.bufferedByteCount == tail.count, "append/next buffers \(framer.bufferedByteCount) bytes, tail is \(tail.count)")
    }

    // In place, never stopping; then stopping after every line and resuming.
    for stopEachLine in [false, true] {
        var scanned = Framing()
        var framer = LineFramer(maxLineBytes: maxLineBytes)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        scanLoop: for read in reads {
            var bytes = read
            while true {
                let result = framer.scan(bytes) { line in
                    require(line.raw.last == UInt8(ascii: "\n"), "a line view without its LF")
                    scanned.add(raw: line.raw, content: line.content)
                    return !stopEachLine
                }
                bytes = empty
                switch result {
                case .needMoreData: continue scanLoop
                case .stopped: continue
                case .tooLong:
                    scanned.tooLong = true
                    break scanLoop
                }
            }
        }
        require(scanned == expected, "scan (stopping: \(stopEachLine)): \(scanned.lines.count) lines, tooLong "
                + "\(scanned.tooLong); model: \(expected.lines.count), \(expected.tooLong)")
        if !expected.tooLong {
            require(framer.bufferedByteCount == tail.count, "scan buffers \(framer.bufferedByteCount), tail is \(tail.count)")
        }
    }

    // The echo service: every line back as received until `:exit` or an over-long line.
    var echo = EchoService(maxLineBytes: maxLineBytes)
    var echoed: [UInt8] = []
    var closed = false
    for read in reads where !closed {
        echo.receive(read)
        var output: [UInt8] = []
        closed = echo.process(output: &output, outputLimit: .max) == .close
        echoed += output
    }
    var expectedEcho: [UInt8] = []
    var exited = false
    for line in expected.lines {
        if line.content.elementsEqual(":exit".utf8) {
            exited = true
            break
        }
        expectedEcho += line.raw
    }
    if !closed {
        echo.finishInput(output: &echoed)
        var content = tail
        if content.last == UInt8(ascii: "\r") { content.removeLast() }
        if !tail.isEmpty && content.count <= maxLineBytes && !content.elementsEqual(":exit".utf8) { expectedEcho += tail }
    }
    require(echoed.starts(with: expectedEcho), "echo: \(printable(echoed)) does not begin with \(printable(expectedEcho))")
    if expected.tooLong && !exited {
        require(closed, "echo did not close after an over-long line")
        require(echoed[expectedEcho.count...].starts(with: "ERR ".utf8), "echo: no error after an over-long line")
    } else {
        require(echoed.count == expectedEcho.count, "echo: \(printable(echoed)), expected \(printable(expectedEcho))")
        require(closed == exited, "echo closed: \(closed), `:exit` seen: \(exited)")
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzLineFramer) }
}
