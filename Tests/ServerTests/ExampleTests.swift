// Examples/line-upper, the embedding example, run as its own process: it must build with the
// package, bind the port it prints, and serve its protocol (upper-cased lines, pipelined and
// split across reads, an over-long line refused). Stopped by its PID.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ExampleTests {
    @Test func lineUpperAnswersEveryLineUpperCasedAndRefusesAnOverlongOne() throws {
        let process = try ReactordProcess(executable: "line-upper", arguments: ["0"])
        defer { process.kill() }
        let lines = try #require(process.waitForLine { $0.hasPrefix("line-upper: listening on ") }, "no listening line")
        let port = try #require(lines.last?.split(separator: ":").last.flatMap { Int($0) })

        let client = try TestClient(port: port)
        // Pipelined lines, CRLF kept, bytes that are not ASCII letters untouched, a line split
        // across two writes.
        try client.send(Array("hello\r\nMixed Case 123\n\u{e9}t\u{e9} ok\npart".utf8))
        let expected = Array("HELLO\r\nMIXED CASE 123\n\u{e9}T\u{e9} OK\n".utf8)
        #expect(client.read(count: expected.count) == expected)
        try client.send("ial line\n")
        #expect(client.readLine() == Array("PARTIAL LINE\n".utf8))

        // Many clients at once, each answered on its own connection.
        let others = try (0..<20).map { _ in try TestClient(port: port) }
        for (i, other) in others.enumerated() { try other.send("client \(i)\n") }
        for (i, other) in others.enumerated() { #expect(other.readLine() == Array("CLIENT \(i)\n".utf8)) }

        // A line over 4 KiB: one error line, then the connection closes.
        try client.send([UInt8](repeating: UInt8(ascii: "a"), count: 5000))
        let (rest, eof) = client.readToEOF()
        #expect(rest == Array("ERR line too long\n".utf8))
        #expect(eof)
    }
}
