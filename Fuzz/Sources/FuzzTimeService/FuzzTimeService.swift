// Fuzz target: the time service's request handling (Sources/Services/TimeService.swift). The
// same bytes fed whole and in arbitrary reads must give the same replies and the same watch
// state; every reply line is the time, `OK`, or an `ERR` line, and a watch interval is always in
// the accepted range. The formatter itself is checked for any instant against a plain count.
// Input: [read pattern][8 bytes of an instant][request bytes...].

import FuzzSupport
@testable import Services

func runTime(_ reads: [UnsafeRawBufferPointer]) -> (output: [UInt8], watch: Int?, closed: Bool) {
    var service = TimeService(maxLineBytes: 256)
    var output: [UInt8] = []
    var closed = false
    for read in reads where !closed {
        service.receive(read)
        while true {
            let result = service.process(now: FuzzClock.now, output: &output, outputLimit: 1 << 20)
            switch service.takeWatchChange() {
            case .start(let ms): require(TimeService.watchRange.contains(ms), "watch \(ms) ms accepted")
            case .stop, .none: break
            }
            if result == .outputFull { continue }
            closed = result == .close
            break
        }
    }
    return (output, service.watchMilliseconds, closed)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTimeService(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pattern = input.byte() % 32
    var instant: UInt64 = 0
    for i in 0..<8 { instant |= UInt64(input.byte()) << (8 * UInt64(i)) }

    // The formatter: any instant within ±10,000 years of the epoch, against days counted plainly.
    let seconds = Int(Int64(bitPattern: instant) % 315_569_520_000)
    let text = TimeFormat.iso8601(seconds: seconds, microseconds: Int(instant % 1_000_000))
    let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
    let (year, month, day) = TimeFormat.civil(daysSinceEpoch: days)
    require((1...12).contains(month) && (1...31).contains(day), "\(seconds) s is \(year)-\(month)-\(day)")
    if year >= 0 && year <= 9999 {
        require(text.utf8.count == 27 && text.hasSuffix("Z"), "\(seconds) s formats as \(text)")
    }

    let whole = runTime([input.rest])
    let cut = runTime(chunks(of: input.rest, pattern: pattern))
    require(whole.output == cut.output && whole.watch == cut.watch && whole.closed == cut.closed,
            "fed whole: \(printable(whole.output)); in reads: \(printable(cut.output))")
    let timeLine = Array(TimeFormat.iso8601(seconds: FuzzClock.seconds, microseconds: 0).utf8)
    let lines = whole.output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    require(whole.output.isEmpty || whole.output.last == UInt8(ascii: "\n"), "a reply without its LF")
    for line in lines.dropLast() {
        require(line.elementsEqual(timeLine) || line.elementsEqual("OK".utf8) || line.starts(with: "ERR ".utf8),
                "unexpected reply line \(printable(line))")
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzTimeService) }
}
