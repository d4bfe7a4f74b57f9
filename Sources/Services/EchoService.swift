// The echo protocol as a state machine: each line goes back exactly as received, terminator
// included (CRLF stays CRLF, empty lines too); the line `:exit` closes without a reply. Whole
// lines are copied once, from the bytes just read into the pending replies, which are then handed
// to the output without a second copy; only an unterminated tail waits in the framer. No sockets.

import LineFraming

/// The echo service's per-connection state.
public struct EchoService {
    private var framer: LineFramer
    /// Lines framed from the last reads and not yet handed to the output.
    private var pending: [UInt8] = []
    /// Set once `:exit` or an over-long line was seen: nothing more is read or echoed.
    private var closing = false

    /// - Parameter maxLineBytes: the longest line, terminator not counted (`--max-line`).
    public init(maxLineBytes: Int = 65536) {
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
    }

    /// Bytes of an unterminated line waiting for its end (complete lines are never held here).
    public var bufferedByteCount: Int { self.framer.bufferedByteCount }

    /// Frames received bytes: whole lines become replies at once, a trailing partial line waits.
    /// Consecutive lines of one read are copied as one run (one copy of the bytes, not per line).
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !self.closing else { return }
        var pending: [UInt8] = []
        swap(&pending, &self.pending)
        defer { swap(&pending, &self.pending) }
        let exit = Self.exitCommand
        // The run of adjacent lines of `bytes` not yet copied. A line completed in the framer's
        // buffer is copied at once: its view dies with the closure call, `bytes` does not.
        var run = UnsafeRawBufferPointer(start: bytes.baseAddress, count: 0)
        let result = self.framer.scan(bytes) { line in
            if line.content.count == exit.count && line.content.elementsEqual(exit) { return false }
            if let base = line.raw.baseAddress, base == run.baseAddress.map({ $0 + run.count }) {
                run = UnsafeRawBufferPointer(start: run.baseAddress, count: run.count + line.raw.count)
            } else if Self.isInside(line.raw, bytes) {
                pending.append(contentsOf: run)
                run = line.raw
            } else {
                pending.append(contentsOf: line.raw)
            }
            return true
        }
        pending.append(contentsOf: run)
        switch result {
        case .needMoreData:
            break
        case .stopped:
            self.closing = true
        case .tooLong:
            CommandError.lineTooLong.write(to: &pending, encoding: .line)
            self.closing = true
        }
    }

    /// Hands the echoed lines to `output`: the buffer itself when `output` is empty (no copy),
    /// else appended.
    ///
    /// - Returns: `.close` after `:exit` or an over-long line; `.outputFull` when `output` was
    ///   already at `outputLimit` with replies waiting; otherwise `.needMoreData`.
    public mutating func process(output: inout [UInt8], outputLimit: Int) -> ProcessResult {
        if !self.pending.isEmpty {
            if output.count >= outputLimit { return .outputFull }
            if output.isEmpty {
                swap(&output, &self.pending)
                // What comes back is the output's spent buffer: give it up, as the framer gives up
                // its buffer when idle, so an idle connection holds no capacity here.
                self.pending = []
            } else {
                output.append(contentsOf: self.pending)
                self.pending = []
            }
        }
        return self.closing ? .close : .needMoreData
    }

    /// The peer stopped sending: a last line without its terminator is echoed as it is.
    public mutating func finishInput(output: inout [UInt8]) {
        _ = self.process(output: &output, outputLimit: .max)
        guard !self.closing, self.framer.bufferedByteCount > 0 else { return }
        self.framer.append(contentsOf: CollectionOfOne(ASCII.lf))
        if case .line(let line) = self.framer.next(), !line.content.elementsEqual(Self.exitCommand) {
            output.append(contentsOf: line.raw.dropLast())
        }
    }

    private static func isInside(_ part: UnsafeRawBufferPointer, _ whole: UnsafeRawBufferPointer) -> Bool {
        guard let p = part.baseAddress, let w = whole.baseAddress else { return false }
        return p >= w && p + part.count <= w + whole.count
    }

    private static let exitCommand: [UInt8] = Array(":exit".utf8)
}
