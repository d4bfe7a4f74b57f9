// CLIENT REPLY OFF and SKIP silence a command's replies but not the pushes it caused for the same
// client: a RESP3 client hears what it publishes to itself, and the keyspace notifications and
// invalidations of its own writes, as Redis's CLIENT_PUSHING lets pushes through a silenced
// client (networking.c, prepareClientToWrite). The command's output is walked frame by frame and
// only its pushes stay.

extension Commands {
    /// Drops the replies in `output[start...]`, keeping its RESP3 pushes (`>` frames) in order.
    /// Output that does not parse as whole frames is dropped whole.
    static func dropRepliesKeepingPushes(_ output: inout [UInt8], from start: Int) {
        guard start < output.count, output[start...].contains(UInt8(ascii: ">")) else {
            if start < output.count { output.removeSubrange(start...) }
            return
        }
        var kept: [UInt8] = []
        var offset = start
        while offset < output.count {
            guard let end = RESPFrameWalker.end(of: output, at: offset) else {
                kept.removeAll()
                break
            }
            if output[offset] == UInt8(ascii: ">") { kept.append(contentsOf: output[offset..<end]) }
            offset = end
        }
        output.removeSubrange(start...)
        output.append(contentsOf: kept)
    }
}

/// Finds where a RESP2 or RESP3 frame that the server wrote ends.
enum RESPFrameWalker {
    /// The offset just past the frame starting at `start`, or nil if `bytes` does not hold it whole.
    static func end(of bytes: [UInt8], at start: Int) -> Int? {
        guard start < bytes.count, let (lineEnd, next) = Self.line(bytes, start + 1) else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "#"),
             UInt8(ascii: ","), UInt8(ascii: "("):
            return next
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let length = Self.number(bytes, start + 1, lineEnd) else { return nil }
            if length < 0 { return next }
            let end = next + length + 2
            return end <= bytes.count ? end : nil
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = Self.number(bytes, start + 1, lineEnd) else { return nil }
            let pairs = bytes[start] == UInt8(ascii: "%") || bytes[start] == UInt8(ascii: "|")
            var offset = next
            for _ in 0..<max(0, pairs ? count * 2 : count) {
                guard let end = Self.end(of: bytes, at: offset) else { return nil }
                offset = end
            }
            // An attribute describes the frame after it: the two go together.
            return bytes[start] == UInt8(ascii: "|") ? Self.end(of: bytes, at: offset) : offset
        default:
            return nil
        }
    }

    /// The CR ending the line that starts at `from`, and the offset after its LF.
    private static func line(_ bytes: [UInt8], _ from: Int) -> (Int, Int)? {
        var index = from
        while index + 1 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 { return (index, index + 2) }
            index += 1
        }
        return nil
    }

    private static func number(_ bytes: [UInt8], _ from: Int, _ end: Int) -> Int? {
        guard from < end else { return nil }
        var value = 0
        let negative = bytes[from] == UInt8(ascii: "-")
        for index in (negative ? from + 1 : from)..<end {
            let digit = bytes[index] &- 48
            guard digit <= 9 else { return nil }
            value = value &* 10 &+ Int(digit)
        }
        return negative ? -value : value
    }
}
