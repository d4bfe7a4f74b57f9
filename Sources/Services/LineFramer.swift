// Cuts a byte stream into lines for the line protocols (kv, echo, time, file).
// It never allocates per line and never interprets bytes: lines are byte slices, not Strings,
// so bytes that are not UTF-8 pass through untouched. It knows nothing of sockets.

/// One framed line. `content` excludes the terminator (`\n`, and a `\r` before it);
/// `raw` is the line exactly as received, terminator included (what the echo service returns).
public struct Line {
    public let raw: ArraySlice<UInt8>
    public let content: ArraySlice<UInt8>
}

/// Incremental line framer with a maximum line length.
///
/// Feed bytes with ``append(_:)``, then call ``next()`` until it answers `.needMoreData`.
/// A slice handed out by ``next()`` stays valid until the next call to ``append(_:)``.
public struct LineFramer {
    public enum Next {
        /// A complete line.
        case line(Line)
        /// No complete line is buffered.
        case needMoreData
        /// The buffered line exceeds the maximum length (terminator not counted): the protocol
        /// replies `ERR line too long` and closes.
        case tooLong
    }

    /// The longest line accepted, not counting its terminator.
    public let maxLineBytes: Int

    // Invariant: 0 <= readIndex <= scanIndex <= buffer.count. Bytes before readIndex are consumed;
    // bytes in readIndex..<scanIndex are known to hold no '\n'.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var scanIndex = 0

    public init(maxLineBytes: Int) {
        precondition(maxLineBytes > 0)
        self.maxLineBytes = maxLineBytes
    }

    /// Bytes received but not yet handed out as lines.
    public var bufferedByteCount: Int { self.buffer.count - self.readIndex }

    /// Appends received bytes. Compacts consumed bytes first so the buffer never grows past
    /// what is unconsumed plus one read.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        self.compact()
        self.buffer.append(contentsOf: bytes)
    }

    /// Appends received bytes.
    public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        self.compact()
        self.buffer.append(contentsOf: bytes)
    }

    /// The next complete line, if one is buffered.
    public mutating func next() -> Next {
        let end = self.buffer.count
        var i = self.scanIndex
        while i < end && self.buffer[i] != UInt8(ascii: "\n") { i += 1 }
        if i == end {
            self.scanIndex = end
            // Without a terminator yet: too long once more than max+1 bytes wait (the +1 leaves
            // room for a '\r' that may precede the '\n' still to come).
            return end - self.readIndex > self.maxLineBytes + 1 ? .tooLong : .needMoreData
        }
        let start = self.readIndex
        var contentEnd = i
        if contentEnd > start && self.buffer[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
        self.readIndex = i + 1
        self.scanIndex = i + 1
        if contentEnd - start > self.maxLineBytes { return .tooLong }
        return .line(Line(raw: self.buffer[start..<(i + 1)], content: self.buffer[start..<contentEnd]))
    }

    /// Releases the buffer's storage when nothing is pending, so an idle connection costs little.
    public mutating func releaseIfEmpty() {
        if self.readIndex == self.buffer.count {
            self.buffer = []
            self.readIndex = 0
            self.scanIndex = 0
        }
    }

    private mutating func compact() {
        guard self.readIndex > 0 else { return }
        if self.readIndex == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: true)
        } else {
            self.buffer.removeFirst(self.readIndex)
        }
        self.scanIndex -= self.readIndex
        self.readIndex = 0
    }
}
