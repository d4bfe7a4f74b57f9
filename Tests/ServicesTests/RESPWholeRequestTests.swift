// The RESP parser's one-pass path for a request that is all buffered (RESPParser.parseWhole) against
// its byte-by-byte state machine: the same stream fed whole, in random pieces and one byte at a time
// must frame the same requests and fail with the same error at the same request. Fed a byte at a
// time, no request is ever whole when the parser first looks at it, so that feed is the state
// machine alone.

@testable import Services
import TestSupport
import Testing

@Suite struct RESPWholeRequestTests {
    /// What a parser made of a stream: the requests' arguments in order, then the error if it failed.
    struct Outcome: Equatable {
        var requests: [[[UInt8]]] = []
        var failure: FramingError?
    }

    static func frame(_ stream: [UInt8], pieces: [Int], maxBulkBytes: Int = 1 << 20) -> Outcome {
        var parser = RESPParser(maxBulkBytes: maxBulkBytes, maxRequestBytes: 1 << 26)
        var outcome = Outcome()
        var offset = 0
        var pieceIndex = 0
        while offset < stream.count {
            let size = min(pieces.isEmpty ? stream.count : pieces[pieceIndex % pieces.count], stream.count - offset)
            pieceIndex += 1
            stream[offset..<(offset + size)].withUnsafeBytes { parser.append($0) }
            offset += size
            framing: while true {
                switch parser.next() {
                case .request(let arguments):
                    outcome.requests.append((0..<arguments.count).map { Array(arguments[$0]) })
                case .needMoreData: break framing
                case .failed(let error):
                    outcome.failure = error
                    return outcome
                }
            }
        }
        return outcome
    }

    /// A random request: mostly well formed (0 to 12 arguments of 0 to 40 bytes, lengths sometimes
    /// with leading zeros, bodies sometimes holding CR, LF, `*` or `$`), sometimes damaged at one byte
    /// or cut short, sometimes an inline line.
    static func request(_ random: inout SplitMix) -> [UInt8] {
        if random.next() % 20 == 0 { return Array("PING \(random.next() % 100)\r\n".utf8) }
        let count = Int(random.next() % 13)
        var bytes = Array("*\(count)\r\n".utf8)
        if random.next() % 15 == 0 { bytes = Array("*0\(count)\r\n".utf8) }
        for _ in 0..<count {
            let length = Int(random.next() % 41)
            let zeros = random.next() % 12 == 0 ? "00" : ""
            bytes += Array("$\(zeros)\(length)\r\n".utf8)
            let alphabet: [UInt8] = Array("ab*$\r\n0123456789".utf8)
            for _ in 0..<length { bytes.append(alphabet[Int(random.next() % UInt64(alphabet.count))]) }
            bytes += [13, 10]
        }
        if random.next() % 10 == 0, !bytes.isEmpty {
            let at = Int(random.next() % UInt64(bytes.count))
            bytes[at] = Array("x-*$\r\n09".utf8)[Int(random.next() % 8)]
        }
        return bytes
    }

    @Test(arguments: 0..<4)
    func wholeAndPiecewiseFramingAgree(seed: UInt64) {
        var random = SplitMix(seed: 0x5E5_0000 + seed)
        for _ in 0..<300 {
            var stream: [UInt8] = []
            for _ in 0..<Int(1 + random.next() % 8) { stream += Self.request(&random) }
            let bytewise = Self.frame(stream, pieces: [1])
            let pieces = (0..<5).map { _ in Int(1 + random.next() % 30) }
            #expect(Self.frame(stream, pieces: []) == bytewise, "stream \(String(decoding: stream, as: UTF8.self).debugDescription)")
            #expect(Self.frame(stream, pieces: pieces) == bytewise, "pieces \(pieces)")
            // A bulk limit below some lengths: the one-pass path leaves those to the state machine's check.
            #expect(Self.frame(stream, pieces: [], maxBulkBytes: 20) == Self.frame(stream, pieces: [1], maxBulkBytes: 20))
        }
    }

    @Test func tenArgumentsAndEmptyBulksFrameWhole() {
        let arguments = (0..<10).map { $0 % 3 == 0 ? [] : Array("v\($0)".utf8) }
        var stream = Array("*10\r\n".utf8)
        for argument in arguments { stream += Array("$\(argument.count)\r\n".utf8) + argument + [13, 10] }
        stream += Array("*1\r\n$4\r\nPING\r\n".utf8)
        let outcome = Self.frame(stream, pieces: [])
        #expect(outcome == Outcome(requests: [arguments, [Array("PING".utf8)]]))
        #expect(Self.frame(stream, pieces: [1]) == outcome)
    }
}
