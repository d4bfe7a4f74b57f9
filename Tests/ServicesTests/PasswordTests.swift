// The password comparison is constant-time by construction: these tests count which bytes it
// reads (not how long it takes), so they hold on any machine and under any load.

@testable import Services
import Testing

@Suite struct PasswordTests {
    /// Bytes that record every read of an element.
    struct CountingBytes: RandomAccessCollection {
        final class Log { var reads: [Int] = [] }
        let bytes: [UInt8]
        let log = Log()
        init(_ text: String) { self.bytes = Array(text.utf8) }
        var startIndex: Int { 0 }
        var endIndex: Int { self.bytes.count }
        subscript(position: Int) -> UInt8 {
            self.log.reads.append(position)
            return self.bytes[position]
        }
    }

    static let secret = "correct horse battery staple"

    @Test(arguments: [
        "",  // nothing at all
        "x",  // one byte, wrong
        "Xorrect horse battery staple",  // wrong first byte
        "correct horse battery stapleX",  // one byte too many
        "correct horse battery stapl",  // one byte short
        "correct horse battery staplX",  // wrong last byte
        "correct horse battery staple",  // right
        String(repeating: "z", count: 4096),  // far longer
    ])
    func everyExpectedByteIsReadOnceWhateverTheInput(given: String) {
        let expected = CountingBytes(Self.secret)
        let attempt = CountingBytes(given)
        let matched = Password.matches(attempt, expected)
        #expect(matched == (given == Self.secret))
        // The expected password is walked in full and in order: no early exit at a mismatch.
        #expect(expected.log.reads == Array(0..<Self.secret.utf8.count))
        // The attempt is read as many times as the password is long, whatever its own length:
        // the work depends on the password's length only (and on whether the attempt is empty).
        let attemptReads = given.isEmpty ? 0 : Self.secret.utf8.count
        #expect(attempt.log.reads.count == attemptReads)
    }

    @Test func lengthAloneNeverMatches() {
        // A prefix (or a repetition the cycling read would line up) must not pass.
        #expect(!Password.matches(Array("ab".utf8)[...], Array("abab".utf8)))
        #expect(!Password.matches(Array("abab".utf8)[...], Array("ab".utf8)))
        #expect(!Password.matches([UInt8]()[...], Array("a".utf8)))
        #expect(Password.matches([UInt8]()[...], [UInt8]()))
        #expect(Password.matches(Array("p\u{0}w".utf8)[...], Array("p\u{0}w".utf8)))
    }
}
