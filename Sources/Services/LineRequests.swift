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

    /// Bytes received and not yet handed out as a line.
    var bufferedByteCount: Int { self.lines.bufferedByteCount }

    /// Buffers received bytes.
    mutating func append(_ bytes: UnsafeRawBufferPointer) { self.lines.append(bytes) }

    /// Gives back the buffer once everything received has been handed out.
    mutating func releaseIfIdle() { self.lines.releaseIfEmpty() }

    /// The next line's content.
    mutating func next() -> Framed<ArraySlice<UInt8>> {
        switch self.lines.next() {
        case .line(let line): .request(line.content)
        case .needMoreData: .needMoreData
        case .tooLong: .failed(.lineTooLong)
        }
    }
}
