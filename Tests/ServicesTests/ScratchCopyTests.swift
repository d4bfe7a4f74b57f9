// The connection's reused copy buffers (CommandCall+Scratch.swift): a copy handed out earlier keeps its
// bytes whatever later copies write, at the same length (written in place), another length, and past
// the buffers' limit.

@testable import Services
import Testing

@Suite struct ScratchCopyTests {
    static func arguments(_ words: [String]) -> ArgumentVector {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for word in words {
            ranges.append(bytes.count..<(bytes.count + word.utf8.count))
            bytes += Array(word.utf8)
        }
        return ArgumentVector(bytes: bytes[...], ranges: ranges)
    }

    @Test func keptKeyCopiesKeepTheirBytes() {
        let client = ClientState(id: 1, name: nil)
        let request = Self.arguments(["rpop", "queue:1", "queue:2", "q", String(repeating: "k", count: 300)])
        let first = client.copyKey(request, 1)
        let second = client.copyKey(request, 2)  // same length: the in-place path
        let third = client.copyKey(request, 3)  // another length
        let long = client.copyKey(request, 4)  // past the limit: a copy of its own
        #expect(first == Array("queue:1".utf8))
        #expect(second == Array("queue:2".utf8))
        #expect(third == Array("q".utf8))
        #expect(long == Array(String(repeating: "k", count: 300).utf8))
        #expect(client.copyKey(request, 2) == second)
    }

    @Test func keptItemCopiesKeepTheirBytes() {
        let client = ClientState(id: 1, name: nil)
        var kept: [[UInt8]] = []
        for word in ["job-1", "job-2", "", "job-10", "job-11", String(repeating: "x", count: 257)] {
            kept.append(Array(word.utf8).withUnsafeBytes { client.copyItem($0) })
        }
        #expect(kept.map { String(decoding: $0, as: UTF8.self) }
            == ["job-1", "job-2", "", "job-10", "job-11", String(repeating: "x", count: 257)])
    }
}
