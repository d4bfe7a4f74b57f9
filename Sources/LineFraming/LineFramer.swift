// Cuts a byte stream into lines for line-oriented protocols (reactord's kv, echo, time and file
// services, or any embedder's). It never allocates per line and never interprets bytes: lines are
// byte slices or views, not Strings, so bytes that are not UTF-8 pass through untouched. It knows
// nothing of sockets, protocols or replies.

/// One framed line held in the framer's buffer.
///
/// `content` excludes the terminator (`\n`, and a `\r` before it); `raw` is the line exactly as
/// received, terminator included (what an echo service returns).
public struct Line {
    /// The line as received, terminator included.
    public let raw: ArraySlice<UInt8>
    /// The line without its terminator.
    public let content: ArraySlice<UInt8>
}

/// One framed line seen in place, in the bytes just read or in the framer's buffer.
///
/// Both views are valid only inside the closure given to ``LineFramer/scan(_:_:)``: never keep
/// them, copy what must outlive the call.
public struct LineView {
    /// The line as received, terminator included.
    public let raw: UnsafeRawBufferPointer
    /// The line without its terminator (`\n`, and a `\r` before it).
    public let content: UnsafeRawBufferPointer

    @usableFromInline
    init(raw: UnsafeRawBufferPointer, content: UnsafeRawBufferPointer) {
        self.raw = raw
        self.content = content
    }
}

/// Incremental line framer with a maximum line length.
///
/// Two ways to use it:
/// - Buffered: feed bytes with ``append(_:)``, then call ``next()`` until it answers
///   `.needMoreData`. A slice handed out by ``next()`` stays valid until the next ``append(_:)``.
///   Suits a protocol that may stop mid-batch (backpressure) and resume later.
/// - In place: ``scan(_:_:)`` hands every complete line of a fresh read to a closure as a view
///   into those very bytes, and buffers only what cannot be handed out yet: the unterminated tail
///   (and a line that began in an earlier read, completed in the buffer). An echo server copies
///   each line once, from the read into its output.
///
/// A value type for one connection; not thread-safe, use it from one thread at a time.
public struct LineFramer {
    /// What ``next()`` found.
    public enum Next {
        /// A complete line.
        case line(Line)
        /// No complete line is buffered.
        case needMoreData
        /// The buffered line exceeds the maximum length (terminator not counted). Protocols
        /// usually reply with an error and close: nothing after it can be framed reliably.
        case tooLong
    }

    /// Where ``scan(_:_:)`` stopped.
    public enum ScanResult: Equatable, Sendable {
        /// Every complete line was handed out; an unterminated tail, if any, is buffered.
        case needMoreData
        /// The closure asked to stop; the bytes after that line are buffered, so ``next()`` or
        /// another ``scan(_:_:)`` resumes with them.
        case stopped
        /// A line exceeds the maximum length. Nothing after it is buffered.
        case tooLong
    }

    /// The longest line accepted, not counting its terminator.
    public let maxLineBytes: Int

    // Invariant: 0 <= readIndex <= scanIndex <= buffer.count. Bytes before readIndex are consumed;
    // bytes in readIndex..<scanIndex are known to hold no '\n'. (Internal, not private: byte-count
    // framing lives in LineFramer+Bytes.swift.)
    var buffer: [UInt8] = []
    var readIndex = 0
    var scanIndex = 0

    /// - Parameter maxLineBytes: the longest line accepted, terminator not counted; at least 1.
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

    /// Frames the complete lines of `bytes` in place, handing each to `body` in order.
    ///
    /// A line that began in an earlier call is completed in the buffer and handed out from there;
    /// every later line is a view into `bytes` (no copy). Only an unterminated tail is buffered.
    /// Lines still buffered (by ``append(_:)``, or after `.stopped`) are handed out first.
    ///
    /// - Parameters:
    ///   - bytes: the bytes just read.
    ///   - body: called once per line; return false to stop (the rest of `bytes` is buffered).
    /// - Returns: why it stopped.
    @inlinable  // so the caller's closure is inlined into the loop, not called through a context per line
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, _ body: (LineView) -> Bool) -> ScanResult {
        var start = 0
        if self.bufferedByteCount > 0 {
            // Complete the line that began earlier in the buffer: only its remainder is copied.
            start = Self.indexOfNewline(in: bytes, from: 0).map { $0 + 1 } ?? bytes.count
            self.append(UnsafeRawBufferPointer(rebasing: bytes[..<start]))
            buffered: while true {
                switch self.next() {
                case .needMoreData:
                    break buffered
                case .tooLong:
                    return .tooLong
                case .line(let line):
                    if !line.raw.withUnsafeBytes({ body(Self.view($0)) }) {
                        self.append(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                        return .stopped
                    }
                }
            }
            if self.bufferedByteCount > 0 { return .needMoreData }  // no terminator in `bytes`
            self.releaseIfEmpty()
        }
        while start < bytes.count {
            guard let end = Self.indexOfNewline(in: bytes, from: start) else { break }
            let line = Self.view(UnsafeRawBufferPointer(rebasing: bytes[start...end]))
            if line.content.count > self.maxLineBytes { return .tooLong }
            start = end + 1
            if !body(line) {
                self.append(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                return .stopped
            }
        }
        let tail = bytes.count - start
        if tail > self.maxLineBytes + 1 { return .tooLong }
        if tail > 0 { self.append(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
        return .needMoreData
    }

    /// The index of the first `\n` in `bytes` at or after `start`, or nil.
    ///
    /// Eight bytes at a time: XOR with eight newlines turns a newline into a zero byte, and
    /// `(x - 0x01…01) & ~x & 0x80…80` is non-zero exactly when some byte of `x` is zero (its lowest
    /// set bit marks the first one; borrows only run upwards, so they cannot fake an earlier
    /// zero). A byte-at-a-time search through the generic `firstIndex(of:)` cost several instructions
    /// a byte, most of the echo service's time.
    @inlinable @inline(__always)
    static func indexOfNewline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        var i = start
        let newlines: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= count {
            let x = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ newlines
            let found = (x &- ones) & ~x & highs
            if found != 0 { return i + found.trailingZeroBitCount / 8 }
            i += 8
        }
        while i < count {
            if base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "\n") { return i }
            i += 1
        }
        return nil
    }

    /// A line's view from its bytes, terminator included (the last byte is `\n`).
    @inlinable
    static func view(_ raw: UnsafeRawBufferPointer) -> LineView {
        var contentEnd = raw.count - 1
        if contentEnd > 0 && raw[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
        return LineView(raw: raw, content: UnsafeRawBufferPointer(rebasing: raw[..<contentEnd]))
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
