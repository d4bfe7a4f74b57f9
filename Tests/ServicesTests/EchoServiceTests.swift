// The echo machine: lines come back exactly as sent (CRLF, empty lines, non-UTF-8 bytes), fed
// whole, one byte at a time and concatenated; `:exit` and over-long lines close; whole lines are
// never held in the framer, only an unterminated tail.

import Services
import Testing

/// Feeds `chunks` to a fresh echo machine, processing after each as the wiring does, then
/// finishes input as a half-close would unless it closed first.
private func echo(
    _ chunks: [[UInt8]], maxLineBytes: Int = 65536, outputLimit: Int = .max, halfClose: Bool = false
) -> (output: [UInt8], result: ProcessResult) {
    var service = EchoService(maxLineBytes: maxLineBytes)
    var collected: [UInt8] = []
    var result = ProcessResult.needMoreData
    for chunk in chunks {
        chunk.withUnsafeBytes { service.receive($0) }
        repeat {
            var output: [UInt8] = []
            result = service.process(output: &output, outputLimit: outputLimit)
            collected += output
        } while result == .outputFull
        if result == .close { return (collected, result) }
    }
    if halfClose { service.finishInput(output: &collected) }
    return (collected, result)
}

private func feed(_ requests: [[UInt8]], _ feeding: Feeding) -> [[UInt8]] {
    switch feeding {
    case .whole: requests
    case .bytewise: requests.flatMap { $0.map { [$0] } }
    case .concatenated: [requests.flatMap { $0 }]
    }
}

@Suite struct EchoServiceTests {
    @Test(arguments: Feeding.allCases)
    func linesComeBackExactlyAsSent(_ feeding: Feeding) {
        let requests = [b("hello\n"), b("crlf\r\n"), b("\n"), b("\r\n"), [0xff, 0x00, 0xc3, 0x28, 0x0a], b("  spaced  \t\n")]
        let run = echo(feed(requests, feeding))
        #expect(Printable(run.output) == Printable(requests.flatMap { $0 }))
        #expect(run.result == .needMoreData)
    }

    @Test(arguments: Feeding.allCases)
    func exitClosesWithoutReplyAndIgnoresWhatFollows(_ feeding: Feeding) {
        let run = echo(feed([b("a\n"), b(":exit\r\n"), b("b\n")], feeding))
        #expect(Printable(run.output) == Printable(b("a\n")))
        #expect(run.result == .close)
    }

    @Test(arguments: Feeding.allCases)
    func overLongLineIsRefusedAndCloses(_ feeding: Feeding) {
        let run = echo(feed([b("ok\n"), b("123456789\n"), b("never\n")], feeding), maxLineBytes: 8)
        #expect(Printable(run.output) == Printable(b("ok\nERR line too long\n")))
        #expect(run.result == .close)
        // Exactly the limit, CR not counted, is fine.
        #expect(echo([b("12345678\r\n")], maxLineBytes: 8).output == b("12345678\r\n"))
    }

    @Test func onlyTheUnterminatedTailIsBuffered() {
        var service = EchoService()
        b("one\ntwo\r\nthr").withUnsafeBytes { service.receive($0) }
        #expect(service.bufferedByteCount == 3)
        b("ee\nfour\n").withUnsafeBytes { service.receive($0) }
        #expect(service.bufferedByteCount == 0)
        var output: [UInt8] = []
        #expect(service.process(output: &output, outputLimit: .max) == .needMoreData)
        #expect(output == b("one\ntwo\r\nthree\nfour\n"))
    }

    @Test func repliesWaitWhileTheOutputIsFull() {
        var service = EchoService()
        b("a\nb\n").withUnsafeBytes { service.receive($0) }
        var output = b("queued")
        #expect(service.process(output: &output, outputLimit: 6) == .outputFull)
        #expect(output == b("queued"))
        #expect(service.process(output: &output, outputLimit: 7) == .needMoreData)
        #expect(output == b("queueda\nb\n"))
    }

    @Test func halfCloseEchoesAnUnterminatedLastLine() {
        #expect(echo([b("x\nlast")], halfClose: true).output == b("x\nlast"))
        #expect(echo([b("x\nlast\r")], halfClose: true).output == b("x\nlast\r"))
        #expect(echo([b("x\n:exit")], halfClose: true).output == b("x\n"))
        #expect(echo([b("x\n")], halfClose: true).output == b("x\n"))
    }

    @Test func manyPipelinedLines() {
        var input: [UInt8] = []
        for i in 0..<10_000 { input += b("line \(i)\r\n") }
        #expect(echo([input]).output == input)
        #expect(echo([input], outputLimit: 100).output == input)
    }
}
