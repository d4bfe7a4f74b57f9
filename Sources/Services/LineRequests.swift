// Line framing as a RequestFramer, for the line services that answer line by line (time, file):
// each request is one line's content, terminator excluded. No parsing here.

import LineFraming

/// Yields each buffered line's content; an over-long line is `ERR line too long`, then close.
struct LineRequests: RequestFramer {
    private var lines: LineFramer

    /// - Parameter maxLineBytes: the longest line, terminator not counted (`--max-line`).
    init(maxLineBytes: Int) {
        self.lines = LineFramer(maxLineBytes: maxLineBytes)
    }

    var bufferedByteCount: Int { self.lines.bufferedByteCount }

    mutating func append(_ bytes: UnsafeRawBufferPointer) { self.lines.append(bytes) }

    mutating func releaseIfIdle() { self.lines.releaseIfEmpty() }

    mutating func next() -> Framed<ArraySlice<UInt8>> {
        switch self.lines.next() {
        case .line(let line): .request(line.content)
        case .needMoreData: .needMoreData
        case .tooLong: .failed(.lineTooLong)
        }
    }
}
