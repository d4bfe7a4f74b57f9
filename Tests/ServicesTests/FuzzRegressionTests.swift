// Inputs the fuzz targets (Fuzz/) once failed on, replayed through the same entry points the
// targets use, with the behaviour the fix established. Each input is also kept in the target's
// seed corpus (Fuzz/Corpus/<target>/regression-*), so the harness replays it too.

@testable import Services
import Testing

@Suite struct FuzzRegressionTests {
    /// FuzzKVLine: an unknown command holding a CR was echoed raw into its error line, so a
    /// client that also splits lines at CR saw two replies. The name is shown on one line.
    @Test func unknownCommandWithCarriageReturnIsAnsweredOnOneLine() {
        let input: [UInt8] = Array("ielp\nhelp\rpersisthelp\nstats\n".utf8)
        var session = KVSession(speaking: .line, now: { (1_700_000_000, 0) })
        session.receive(input)
        let (output, result) = session.drain(storage: TestServer())
        #expect(result == .needMoreData)
        let expected = b("ERR unknown command 'ielp'\nERR unknown command 'help persisthelp'\nkeys=")
        #expect(Printable(Array(output.prefix(expected.count))) == Printable(expected))
        #expect(!output.contains(UInt8(ascii: "\r")), "\(Printable(output))")
    }
}
