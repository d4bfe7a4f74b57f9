// The time protocol as a state machine: any request line gets the server's time; `watch <ms>`
// asks for pushed time lines every <ms> milliseconds, `stop` ends that. The clock is passed in
// (no clock reads here) and the wiring owns the timer: this type only says what it wants.

/// Formats wall-clock time as ISO 8601 UTC with microseconds (`2026-11-21T18:45:57.430034Z`),
/// by integer arithmetic (no Foundation, no locale, no time zone database).
public enum TimeFormat {
    /// - Parameters:
    ///   - seconds: seconds since 1970-01-01T00:00:00Z.
    ///   - microseconds: 0…999,999.
    public static func iso8601(seconds: Int, microseconds: Int) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(28)
        Self.append(seconds: seconds, microseconds: microseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the formatted time (no terminator) to `out`.
    public static func append(seconds: Int, microseconds: Int, to out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let (year, month, day) = Self.civil(daysSinceEpoch: days)
        Self.digits(year, width: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        Self.digits(month, width: 2, into: &out)
        out.append(UInt8(ascii: "-"))
        Self.digits(day, width: 2, into: &out)
        out.append(UInt8(ascii: "T"))
        Self.digits(secondOfDay / 3600, width: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        Self.digits(secondOfDay / 60 % 60, width: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        Self.digits(secondOfDay % 60, width: 2, into: &out)
        out.append(UInt8(ascii: "."))
        Self.digits(microseconds, width: 6, into: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// Proleptic Gregorian date of a day count since 1970-01-01: shift the epoch to 0000-03-01 so
    /// leap days fall at the end of a year, then split into 400-year eras of 146,097 days.
    static func civil(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func digits(_ value: Int, width: Int, into out: inout [UInt8]) {
        var buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48)
        var v = max(0, value)
        withUnsafeMutableBytes(of: &buffer) { raw in
            var i = width - 1
            while i >= 0 {
                raw[i] = UInt8(48 + v % 10)
                v /= 10
                i -= 1
            }
            out.append(contentsOf: raw[0..<width])
        }
    }
}

/// The time service's per-connection state.
public struct TimeService {
    /// What the wiring should do with the connection's tick timer after ``process(now:output:outputLimit:)``.
    public enum WatchChange: Equatable, Sendable {
        case none
        /// Start (or re-time) ticks every this many milliseconds.
        case start(milliseconds: Int)
        case stop
    }

    /// Accepted `watch` intervals, in milliseconds.
    public static let watchRange = 10...3_600_000

    private var loop: RequestLoop<LineRequests>
    private var watch = WatchState()

    /// - Parameter maxLineBytes: the longest request line, terminator not counted (`--max-line`).
    public init(maxLineBytes: Int = 65536) {
        self.loop = RequestLoop(LineRequests(maxLineBytes: maxLineBytes))
    }

    /// The current tick interval, if watching.
    public var watchMilliseconds: Int? { self.watch.milliseconds }

    /// Buffers received bytes.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        self.loop.receive(bytes)
    }

    /// Answers every complete buffered request, up to `outputLimit` bytes of output.
    /// - Parameter now: the wall clock, read by the caller (seconds and microseconds since the epoch).
    /// - Returns: see ``ProcessResult``; `.close` only after an over-long line.
    public mutating func process(
        now: () -> (seconds: Int, microseconds: Int), output: inout [UInt8], outputLimit: Int
    ) -> ProcessResult {
        var watch = self.watch
        defer { self.watch = watch }
        return self.loop.process(output: &output, outputLimit: outputLimit, encoding: .line) { line, output in
            watch.handle(line, now: now, output: &output)
            return false
        }
    }

    /// The watch change requested since the last call, then resets it.
    public mutating func takeWatchChange() -> WatchChange {
        defer { self.watch.pendingChange = .none }
        return self.watch.pendingChange
    }

    /// Appends one time line (what a request or a tick sends).
    public static func appendTimeLine(now: (seconds: Int, microseconds: Int), to output: inout [UInt8]) {
        TimeFormat.append(seconds: now.seconds, microseconds: now.microseconds, to: &output)
        output.append(ASCII.lf)
    }

    /// The `watch` state and what a request line does to it.
    private struct WatchState {
        var milliseconds: Int?
        var pendingChange = WatchChange.none

        mutating func handle(
            _ content: ArraySlice<UInt8>, now: () -> (seconds: Int, microseconds: Int), output: inout [UInt8]
        ) {
            var words = WordScanner(content)
            guard let command = words.next() else { return }  // empty line: ignored
            if ASCII.equalsIgnoringCase(command, "watch") {
                guard let argument = words.next(), words.next() == nil,
                      let ms = ASCII.parseNonNegative(argument), TimeService.watchRange.contains(ms)
                else {
                    output.append("ERR usage: watch <ms> with 10 <= ms <= 3600000\n")
                    return
                }
                self.milliseconds = ms
                self.pendingChange = .start(milliseconds: ms)
            } else if ASCII.equalsIgnoringCase(command, "stop") && words.next() == nil {
                if self.milliseconds != nil {
                    self.milliseconds = nil
                    self.pendingChange = .stop
                }
                output.append("OK\n")
            } else {
                TimeService.appendTimeLine(now: now(), to: &output)
            }
        }
    }
}
