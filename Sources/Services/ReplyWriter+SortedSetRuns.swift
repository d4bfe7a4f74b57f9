// A sorted set's range reply (ZRANGE and its older forms, with or without WITHSCORES) in one pass, as
// ReplyWriter+Runs.swift writes a collection's bulk strings: each member's `$<n>\r\n<bytes>\r\n` and
// each score (a bulk string in RESP2, a `,` double in RESP3, a `*2` pair in RESP3 WITHSCORES) is
// encoded by pointer into one scratch block, the score's digits by ScoreFormat.swift, and the output
// takes the block in one copy. One `bulk` and `score` call per element cost several output appends
// apiece, a generic length conversion and a formatted print per score.

import Glibc

extension ReplyWriter {
    /// Writes a sorted-set range: `produce` first calls its `header` argument with the element count
    /// (the aggregate header is written then), then `element` with each member and score in order.
    mutating func sortedSetRun(
        withScores: Bool,
        _ produce: (_ header: (Int) -> Void, _ element: (UnsafeRawBufferPointer, Double) -> Void) -> Void
    ) {
        guard self.encoding != .line else {
            produce({ self.sortedSetHeader($0, withScores: withScores) },
                    { self.sortedSetElement($0, $1, withScores: withScores) })
            return
        }
        let resp3 = self.encoding == .resp3
        var run: BulkRun?
        produce({ count in
            self.sortedSetHeader(count, withScores: withScores)
            run = BulkRun(capacity: max(64, min(count, 1 << 20) * (withScores ? 64 : 32)))
        }, { member, score in
            if withScores && resp3 {
                run!.write(upTo: 4) { p in
                    p[0] = UInt8(ascii: "*")
                    p[1] = UInt8(ascii: "2")
                    p[2] = UInt8(ascii: "\r")
                    p[3] = UInt8(ascii: "\n")
                    return 4
                }
            }
            run!.append(member)
            if withScores { run!.write(upTo: 8 + ScoreText.formattedCapacity) { Self.encodeScore(score, resp3: resp3, at: $0) } }
        })
        guard let block = run else { return }
        self.output.append(contentsOf: UnsafeBufferPointer(start: block.base, count: block.used))
        block.free()
    }

    /// `$<n>\r\n<text>\r\n` (RESP2) or `,<text>\r\n` (RESP3) at `p`. - Returns: the bytes written.
    @inline(__always)
    static func encodeScore(_ score: Double, resp3: Bool, at p: UnsafeMutablePointer<UInt8>) -> Int {
        // The text goes after room for the longest prefix (`$NN\r\n`), then moves up to its prefix.
        let length = ScoreText.format(score, into: p + 5)
        var start: Int
        if resp3 {
            p[4] = UInt8(ascii: ",")
            start = 4
        } else {
            p[3] = UInt8(ascii: "\r")
            p[4] = UInt8(ascii: "\n")
            if length < 10 {
                p[2] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: length)
                p[1] = UInt8(ascii: "$")
                start = 1
            } else {
                p[2] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: length % 10)
                p[1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: length / 10)
                p[0] = UInt8(ascii: "$")
                start = 0
            }
        }
        if start > 0 { memmove(p, p + start, 5 - start + length) }
        let end = 5 - start + length
        p[end] = UInt8(ascii: "\r")
        p[end + 1] = UInt8(ascii: "\n")
        return end + 2
    }
}
