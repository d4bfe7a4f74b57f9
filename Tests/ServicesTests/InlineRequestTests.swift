@testable import Services
import Testing

/// Splits one line as an inline request does; nil for unbalanced quotes.
private func words(_ line: String) -> [String]? { words(Array(line.utf8)) }

private func words(_ line: [UInt8]) -> [String]? {
    rawWords(line).map { $0.map { String(decoding: $0, as: UTF8.self) } }
}

private func rawWords(_ line: [UInt8]) -> [[UInt8]]? {
    var bytes = line
    var ranges: [Range<Int>] = []
    let balanced = bytes.withUnsafeMutableBufferPointer { InlineRequest.split($0, from: 0, to: line.count, into: &ranges) }
    guard balanced else { return nil }
    return ranges.map { Array(bytes[$0]) }
}

// Expected words and errors as redis-server 7.0 answers the same lines (ECHO of each word).
@Suite struct InlineRequestTests {
    @Test func blanksSeparateWords() {
        #expect(words("SET k1 xyzk") == ["SET", "k1", "xyzk"])
        #expect(words("  GET \t k1  ") == ["GET", "k1"])
        #expect(words("") == [])
        #expect(words(" \t ") == [])
        // Vertical tab and form feed are blanks between words, but not inside one.
        #expect(words("\u{0B}a\u{0C}") == ["a\u{0C}"])
    }

    @Test func doubleQuotesTakeEscapes() {
        #expect(words(#"ECHO "a\x41\n\tb""#) == ["ECHO", "aA\n\tb"])
        #expect(words(#"ECHO "\xZZ\q""#) == ["ECHO", "xZZq"])
        #expect(words(#"ECHO "\r\b\a\"\\""#) == ["ECHO", "\r\u{08}\u{07}\"\\"])
        #expect(words(#"ECHO "a b" c"#) == ["ECHO", "a b", "c"])
        #expect(words(#"ECHO """#) == ["ECHO", ""])
    }

    @Test func singleQuotesTakeOnlyAnEscapedQuote() {
        #expect(words(#"ECHO 'c\'d'"#) == ["ECHO", "c'd"])
        #expect(words(#"ECHO 'a\nb'"#) == ["ECHO", #"a\nb"#])
    }

    @Test func aQuoteMayOpenMidWord() {
        #expect(words(#"ECHO e"f g""#) == ["ECHO", "ef g"])
        #expect(words(#"ECHO x'y z'"#) == ["ECHO", "xy z"])
    }

    @Test func unbalancedQuotes() {
        #expect(words(#"ECHO "abc"#) == nil)
        #expect(words("ECHO 'abc") == nil)
        #expect(words(#"ECHO "abc"d"#) == nil)
        #expect(words("ECHO 'a'b") == nil)
        #expect(words(#"ECHO "ends in a backslash\"#) == nil)
        // A closing quote followed by a vertical tab is fine (isspace), as in Redis.
        #expect(words("ECHO \"a\"\u{0B}") == ["ECHO", "a"])
    }

    @Test func bytesThatAreNotUTF8AreCarried() {
        #expect(rawWords([0x41, 0xFF, 0x20, 0x22, 0x5C, 0x78, 0x66, 0x66, 0x22]) == [[0x41, 0xFF], [0xFF]])
    }
}

let inlineCases: [RESPCase] = {
    var c: [RESPCase] = []
    c.append(RESPCase("inline commands get RESP replies", [b("SET k1 xyzk\r\nGET k1\r\n")], "+OK\r\n$4\r\nxyzk\r\n"))
    c.append(RESPCase("inline and multibulk mixed per request", [resp("PING"), b("PING\r\n"), resp("PING")],
                      "+PONG\r\n+PONG\r\n+PONG\r\n"))
    c.append(RESPCase("an inline line may end in LF alone", [b("ECHO x\n")], "$1\r\nx\r\n"))
    c.append(RESPCase("only the CR before the LF is dropped", [b("ECHO x\r\r\n")], "$1\r\nx\r\n"))
    c.append(RESPCase("blank lines are skipped", [b("   \r\n\t\r\nECHO x\n")], "$1\r\nx\r\n"))
    c.append(RESPCase("empty and negative multibulks are skipped", [b("*0\r\n*-10\r\nPING\r\n")], "+PONG\r\n"))
    c.append(RESPCase("quoted words", [b("ECHO \"a\\x41\\n\\tb\"\r\nECHO 'c\\'d'\r\nECHO e\"f g\"\r\n")],
                      "$5\r\naA\n\tb\r\n$3\r\nc'd\r\n$4\r\nef g\r\n"))
    c.append(RESPCase("inline arity errors as Redis", [b("GET\r\n")], "-ERR wrong number of arguments for 'get' command\r\n"))
    c.append(RESPCase("a NUL hides the line's end, as strchr does in Redis", [b("ECHO a\u{0}b c\r\nPING\r\n")], ""))
    c.append(RESPCase("an inline request without its LF past 64 KiB", [b(String(repeating: "x", count: 70000))],
                      "-ERR Protocol error: too big inline request\r\n", .close))
    c.append(RESPCase("unbalanced quotes close the connection", [b("ECHO 'a'b\r\nPING\r\n")],
                      "-ERR Protocol error: unbalanced quotes in request\r\n", .close))
    return c
}()

@Suite struct InlineRESPTests {
    @Test(arguments: inlineCases)
    func inlineRequestOnARESPConnection(_ row: RESPCase) {
        verify(makeRESP, row.requests, expect: row.expected, result: row.result, storage: { TestServer(row.initial) })
    }
}
