// A short bulk reply (a popped item, a GET of a small value) in one append: its `$<n>\r\n` header,
// bytes and CRLF are put together on the stack and copied to the output at once. Written piece by
// piece, each of the four appends checked the output's uniqueness and room, and the length went
// through the general decimal writer. An integer reply (`:<n>\r\n`, a list's length after a push,
// an INCR) is put together the same way.

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

    /// `:<n>\r\n` in one append (a 64-bit integer has at most 20 digits and a sign).
    @inline(__always)
    mutating func integerReply(_ value: Int64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            let base = buffer.baseAddress!
            // Digits last first, from the end of the buffer; then the sign and the colon before them.
            var at = 21
            base[at] = ASCII.cr
            base[at &+ 1] = ASCII.lf
            var magnitude = value.magnitude
            repeat {
                at &-= 1
                base[at] = ASCII.zero &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                at &-= 1
                base[at] = ASCII.minus
            }
            at &-= 1
            base[at] = UInt8(ascii: ":")
            self.output.append(contentsOf: UnsafeBufferPointer(start: base + at, count: 23 &- at))
        }
    }
}
