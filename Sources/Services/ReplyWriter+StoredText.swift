// Replies whose text is also what a command stores: INCR's answer `:<n>` holds the same decimal digits
// the key takes as its new value, so the number is formatted once, into the reply, and the store copies
// the digits from there (Commands+Strings.swift). RESP only: the line protocol writes integers its own way.

extension ReplyWriter {
    /// Writes the RESP integer reply `:<value>` and gives the range of ``output`` its digits occupy (valid
    /// until the next write); nil, writing nothing, on the line protocol.
    mutating func integerGivingDigits(_ value: Int64) -> Range<Int>? {
        guard self.encoding != .line else { return nil }
        self.output.append(UInt8(ascii: ":"))
        let start = self.output.count
        self.output.appendDecimal(value)
        let end = self.output.count
        self.output.append("\r\n")
        return start..<end
    }

    /// Takes back the reply ``integerGivingDigits(_:)`` wrote at `digits` (its write failed: an error
    /// answers instead).
    mutating func withdrawInteger(at digits: Range<Int>) {
        self.output.removeSubrange((digits.lowerBound - 1)...)
    }
}
