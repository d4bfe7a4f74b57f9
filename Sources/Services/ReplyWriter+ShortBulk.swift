// A short bulk reply (a popped item, a GET of a small value) in one append: its `$<n>\r\n` header,
// bytes and CRLF are put together on the stack and copied to the output at once. Written piece by
// piece, each of the four appends checked the output's uniqueness and room, and the length went
// through the general decimal writer.

extension ReplyWriter {
    /// The longest bulk written by ``shortBulk(_:)``.
    static let shortBulkBytes = 512

    /// `$<n>\r\n<bytes>\r\n` for at most ``shortBulkBytes`` bytes, in one append.
    @inline(__always)
    mutating func shortBulk(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.shortBulkBytes + 8) { buffer in
            let base = buffer.baseAddress!
            base[0] = UInt8(ascii: "$")
            var at = 1
            if count >= 100 {
                base[at] = ASCII.zero &+ UInt8(truncatingIfNeeded: count / 100)
                at &+= 1
            }
            if count >= 10 {
                base[at] = ASCII.zero &+ UInt8(truncatingIfNeeded: count / 10 % 10)
                at &+= 1
            }
            base[at] = ASCII.zero &+ UInt8(truncatingIfNeeded: count % 10)
            base[at &+ 1] = ASCII.cr
            base[at &+ 2] = ASCII.lf
            at &+= 3
            if count > 0 { UnsafeMutableRawPointer(base + at).copyMemory(from: bytes.baseAddress!, byteCount: count) }
            at &+= count
            base[at] = ASCII.cr
            base[at &+ 1] = ASCII.lf
            self.output.append(contentsOf: UnsafeBufferPointer(start: base, count: at &+ 2))
        }
    }
}
