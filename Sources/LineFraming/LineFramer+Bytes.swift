// Framing by byte count next to lines: a protocol whose header line gives a length (an HTTP
// `Content-Length` body, a RESP bulk string, a memcached value) takes that many raw bytes from
// the same framer, then goes on framing lines after them. The bytes are never searched for a
// terminator: a body may hold any byte, newlines included.

extension LineFramer {
    /// The next `count` bytes exactly as received, once that many are buffered; nil until then
    /// (append what arrives and ask again). Taken bytes are consumed: the next line starts after
    /// them. Valid until the next ``append(_:)``, as a line from ``next()`` is.
    ///
    /// With ``scan(_:_:)``, stop the scan at the line that announces the body (return false):
    /// the bytes after it stay buffered, and this takes the body from there.
    /// - Parameter count: how many bytes; 0 answers an empty slice.
    public mutating func nextBytes(_ count: Int) -> ArraySlice<UInt8>? {
        precondition(count >= 0, "negative byte count")
        guard self.bufferedByteCount >= count else { return nil }
        return self.takeBytes(count)
    }

    /// Up to `maxCount` of the buffered bytes (fewer, or none, if fewer are buffered), consumed:
    /// for a body streamed on as it arrives instead of held whole.
    public mutating func nextBytes(upTo maxCount: Int) -> ArraySlice<UInt8> {
        precondition(maxCount >= 0, "negative byte count")
        return self.takeBytes(min(maxCount, self.bufferedByteCount))
    }

    private mutating func takeBytes(_ count: Int) -> ArraySlice<UInt8> {
        let start = self.readIndex
        self.readIndex += count
        // What was scanned for a newline inside the taken bytes says nothing about what follows.
        self.scanIndex = max(self.scanIndex, self.readIndex)
        return self.buffer[start..<self.readIndex]
    }
}
