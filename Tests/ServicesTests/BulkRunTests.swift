// ReplyWriter.bulkRun (Sources/Services/ReplyWriter+Runs.swift) writes what one `bulk` call per string
// writes, in every protocol: strings of every length class (empty, one digit to six digits of length,
// past the first block's size), after output already queued, with too low an expected count.

@testable import Services
import Testing

@Suite struct BulkRunTests {
    static func strings(seed: UInt64) -> [[UInt8]] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let lengths = [0, 1, 9, 10, 99, 100, 999, 1_000, 65_536, 100_000] + (0..<200).map { _ in Int(next() % 64) }
        return lengths.map { length in (0..<length).map { _ in UInt8(ascii: "a") + UInt8(next() % 26) } }
    }

    @Test(arguments: [ReplyEncoding.line, .resp2, .resp3], [0, 1, 500])
    func writesWhatOneBulkPerStringWrites(encoding: ReplyEncoding, expected: Int) {
        let strings = Self.strings(seed: UInt64(expected) + 7)
        var one = ReplyWriter(encoding: encoding, output: Array("+queued\r\n".utf8))
        var run = one
        for string in strings { one.bulk(string) }
        run.bulkRun(expected: expected) { write in
            for string in strings { string.withUnsafeBytes(write) }
        }
        #expect(run.output == one.output)
    }

    @Test func anEmptyRunWritesNothing() {
        var writer = ReplyWriter(encoding: .resp2)
        writer.bulkRun(expected: 0) { _ in }
        #expect(writer.output.isEmpty)
    }
}
