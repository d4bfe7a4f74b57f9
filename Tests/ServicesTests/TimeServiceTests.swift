// The time protocol as a pure state machine: ISO 8601 formatting by integer arithmetic against
// known instants, and request handling (time lines, `watch`, `stop`, limits) fed whole, one byte
// at a time and concatenated, with an injected clock.

import Services
import Testing

/// A fixed clock for the machine: 2026-11-21T18:45:57.430034Z.
private let fixedNow = (seconds: 1_795_286_757, microseconds: 430_034)
private let fixedLine = "2026-11-21T18:45:57.430034Z\n"

/// What feeding a time service produced: its replies, every watch change it asked for (in
/// order), and whether it asked to close.
private struct TimeRun: Equatable {
    var output = ""
    var changes: [TimeService.WatchChange] = []
    var closed = false
    var watching: Int?
}

/// Feeds `chunks` to a fresh (or given) service, processing after each chunk as the wiring does.
private func runTime(_ chunks: [[UInt8]], service: inout TimeService, outputLimit: Int = .max) -> TimeRun {
    var run = TimeRun()
    var bytes: [UInt8] = []
    for chunk in chunks {
        chunk.withUnsafeBytes { service.receive($0) }
        var result = ProcessResult.outputFull
        while result == .outputFull {
            var output: [UInt8] = []
            result = service.process(now: { fixedNow }, output: &output, outputLimit: outputLimit)
            bytes += output
        }
        let change = service.takeWatchChange()
        if change != .none { run.changes.append(change) }
        if result == .close {
            run.closed = true
            break
        }
    }
    run.output = String(decoding: bytes, as: UTF8.self)
    run.watching = service.watchMilliseconds
    return run
}

private func runTime(_ chunks: [[UInt8]], maxLineBytes: Int = 65536, outputLimit: Int = .max) -> TimeRun {
    var service = TimeService(maxLineBytes: maxLineBytes)
    return runTime(chunks, service: &service, outputLimit: outputLimit)
}

private enum Feed: CaseIterable { case whole, byteByByte }

private func chunks(_ input: [UInt8], _ feed: Feed) -> [[UInt8]] {
    switch feed {
    case .whole: return [input]
    case .byteByByte: return input.map { [$0] }
    }
}

@Suite struct TimeFormatTests {
    @Test(arguments: [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (-1, 999_999, "1969-12-31T23:59:59.999999Z"),
        (951_782_400, 0, "2000-02-29T00:00:00.000000Z"),
        (1_709_164_800, 1, "2024-02-29T00:00:00.000001Z"),
        (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
        (1_709_251_200, 0, "2024-03-01T00:00:00.000000Z"),
        (1_795_286_757, 430_034, "2026-11-21T18:45:57.430034Z"),
        (1_795_286_757, 7, "2026-11-21T18:45:57.000007Z"),
        (1_795_286_757, 43_000, "2026-11-21T18:45:57.043000Z"),
        // 2100 is not a leap year: 28 February is followed by 1 March.
        (4_107_499_200, 500_000, "2100-02-28T12:00:00.500000Z"),
        (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
        (4_133_980_799, 0, "2100-12-31T23:59:59.000000Z"),
    ])
    func formatsKnownInstants(seconds: Int, microseconds: Int, expected: String) {
        #expect(TimeFormat.iso8601(seconds: seconds, microseconds: microseconds) == expected)
    }

    @Test func appendAddsNoTerminatorAndTimeLineAddsOne() {
        var out = Array("x".utf8)
        TimeFormat.append(seconds: 0, microseconds: 0, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "x1970-01-01T00:00:00.000000Z")
        var line: [UInt8] = []
        TimeService.appendTimeLine(now: fixedNow, to: &line)
        #expect(String(decoding: line, as: UTF8.self) == fixedLine)
    }

    @Test func everyDayOfTheEraRoundTripsThroughTheCivilDate() {
        // One instant per day from 1970 to 2400: the fields must be in range and consecutive days
        // must advance the date by exactly one (catching any off-by-one at month/leap boundaries).
        var previous: (Int, Int, Int)?
        for day in 0..<(430 * 366) {
            let text = TimeFormat.iso8601(seconds: day * 86400 + 3661, microseconds: 0)
            let bytes = Array(text.utf8)
            guard bytes.count == 27 else {
                Issue.record("day \(day): \(text)")
                return
            }
            let year = Int(String(decoding: bytes[0..<4], as: UTF8.self))!
            let month = Int(String(decoding: bytes[5..<7], as: UTF8.self))!
            let dom = Int(String(decoding: bytes[8..<10], as: UTF8.self))!
            #expect(text.hasSuffix("T01:01:01.000000Z"))
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            #expect((1...12).contains(month) && (1...lengths[month - 1]).contains(dom), "\(text)")
            if let (py, pm, pd) = previous {
                let plengths = [31, ((py % 4 == 0 && py % 100 != 0) || py % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
                let expected = pd < plengths[pm - 1] ? (py, pm, pd + 1) : (pm < 12 ? (py, pm + 1, 1) : (py + 1, 1, 1))
                if expected != (year, month, dom) {
                    Issue.record("after \(py)-\(pm)-\(pd) came \(text)")
                    return
                }
            }
            previous = (year, month, dom)
        }
    }
}

@Suite struct TimeServiceTests {
    static let usage = "ERR usage: watch <ms> with 10 <= ms <= 3600000\n"

    /// Request → (replies, watch interval afterwards). The machine is the same whether bytes
    /// arrive whole or one at a time.
    static let table: [(input: String, output: String, watching: Int?)] = [
        ("time\n", fixedLine, nil),
        ("anything at all\n", fixedLine, nil),
        ("time\r\n", fixedLine, nil),
        ("\n", "", nil),
        ("\r\n", "", nil),
        ("  \t \n", "", nil),
        ("watch 10\n", "", 10),
        ("watch 50\n", "", 50),
        ("WATCH 3600000\n", "", 3_600_000),
        ("watch\t250\r\n", "", 250),
        ("watch 9\n", usage, nil),
        ("watch 5\n", usage, nil),
        ("watch 0\n", usage, nil),
        ("watch 3600001\n", usage, nil),
        ("watch -10\n", usage, nil),
        ("watch +50\n", usage, nil),
        ("watch 5x\n", usage, nil),
        ("watch\n", usage, nil),
        ("watch 50 60\n", usage, nil),
        ("watch 99999999999999999999999\n", usage, nil),
        ("stop\n", "OK\n", nil),
        ("STOP\r\n", "OK\n", nil),
        ("watch 50\nstop\n", "OK\n", nil),
        ("watch 50\nstop\nstop\n", "OK\nOK\n", nil),
        ("watch 50\nwatch 20\n", "", 20),
        ("watch 50\nwatch 5\n", usage, 50),
        ("time\ntime\ntime\n", fixedLine + fixedLine + fixedLine, nil),
        ("watch 50\ntime\n", fixedLine, 50),
    ]

    @Test(arguments: Array(0..<TimeServiceTests.table.count))
    func requestsGiveTheSameRepliesWholeAndByteByByte(index: Int) {
        let (input, output, watching) = Self.table[index]
        for feed in Feed.allCases {
            let run = runTime(chunks(Array(input.utf8), feed))
            #expect(run.output == output, "\(feed) \(input.debugDescription)")
            #expect(run.watching == watching, "\(feed) \(input.debugDescription)")
            #expect(!run.closed)
        }
    }

    @Test func allRequestsConcatenatedGiveTheConcatenatedReplies() {
        // Each table entry leaves the watch state as its own run does, so prefix each with a
        // `stop` (which answers OK) to start from "not watching".
        let input = Self.table.map { "stop\n" + $0.input }.joined()
        let output = Self.table.map { "OK\n" + $0.output }.joined()
        for feed in Feed.allCases {
            let run = runTime(chunks(Array(input.utf8), feed))
            #expect(run.output == output, "\(feed)")
            #expect(run.watching == Self.table.last!.watching)
        }
    }

    @Test func watchChangesAreReportedOnceAndStopOnlyWhenWatching() {
        var service = TimeService()
        #expect(runTime([Array("watch 50\n".utf8)], service: &service).changes == [.start(milliseconds: 50)])
        #expect(service.takeWatchChange() == .none, "a change is taken once")
        #expect(runTime([Array("watch 70\n".utf8)], service: &service).changes == [.start(milliseconds: 70)])
        #expect(runTime([Array("watch 5\n".utf8)], service: &service).changes == [], "a refused watch changes nothing")
        #expect(service.watchMilliseconds == 70)
        #expect(runTime([Array("time\n".utf8)], service: &service).changes == [])
        #expect(runTime([Array("stop\n".utf8)], service: &service).changes == [.stop])
        #expect(runTime([Array("stop\n".utf8)], service: &service).changes == [], "stop when not watching: OK, no change")
        // Watch then stop in one batch: the net effect is stop (the wiring cancels, nothing starts).
        #expect(runTime([Array("watch 40\nstop\n".utf8)], service: &service).changes == [.stop])
        #expect(service.watchMilliseconds == nil)
        // Stop then watch in one batch: the net effect is a start.
        _ = runTime([Array("watch 40\n".utf8)], service: &service)
        #expect(runTime([Array("stop\nwatch 30\n".utf8)], service: &service).changes == [.start(milliseconds: 30)])
        #expect(service.watchMilliseconds == 30)
    }

    @Test func bytesThatAreNotUTF8AreAnOrdinaryRequest() {
        for feed in Feed.allCases {
            let run = runTime(chunks([0xFF, 0xFE, 0x80, 10, 0xC3, 0x28, 13, 10], feed))
            #expect(run.output == fixedLine + fixedLine, "\(feed)")
        }
    }

    @Test func stopWithArgumentsIsAnOrdinaryTimeRequest() {
        let run = runTime([Array("watch 50\nstop now\n".utf8)])
        #expect(run.output == fixedLine)
        #expect(run.watching == 50)
    }

    @Test func overLongLineIsRefusedAndCloses() {
        for feed in Feed.allCases {
            let long = Array(repeating: UInt8(ascii: "a"), count: 65) + [10] + Array("time\n".utf8)
            let run = runTime(chunks(long, feed), maxLineBytes: 64)
            #expect(run.output == "ERR line too long\n", "\(feed)")
            #expect(run.closed)
            // Unterminated and already too long: refused before the terminator arrives.
            let endless = runTime(chunks(Array(repeating: UInt8(ascii: "b"), count: 200), feed), maxLineBytes: 64)
            #expect(endless.output == "ERR line too long\n", "\(feed)")
            #expect(endless.closed)
        }
        // Exactly the limit (CR not counted) is fine.
        let exact = runTime([Array(repeating: UInt8(ascii: "c"), count: 64) + [13, 10]], maxLineBytes: 64)
        #expect(exact.output == fixedLine)
        #expect(!exact.closed)
    }

    @Test func outputLimitPausesAndResumesWithoutLosingReplies() {
        var service = TimeService()
        let input = Array(String(repeating: "time\n", count: 100).utf8)
        input.withUnsafeBytes { service.receive($0) }
        var collected: [UInt8] = []
        var rounds = 0
        while true {
            var output: [UInt8] = []
            let result = service.process(now: { fixedNow }, output: &output, outputLimit: 100)
            collected += output
            rounds += 1
            if result == .needMoreData { break }
            #expect(result == .outputFull)
        }
        #expect(rounds > 10)
        #expect(String(decoding: collected, as: UTF8.self) == String(repeating: fixedLine, count: 100))
    }
}
