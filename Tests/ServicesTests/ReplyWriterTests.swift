// The reply encoders, one table per reply kind: what line, RESP2 and RESP3 write for the same
// typed reply, and every error's wording per protocol.

@testable import Services
import Testing

/// What `write` produces in each encoding.
private func encoded(_ write: (inout ReplyWriter) -> Void) -> (line: String, resp2: String, resp3: String) {
    func run(_ encoding: ReplyEncoding) -> String {
        var writer = ReplyWriter(encoding: encoding)
        write(&writer)
        return String(decoding: writer.output, as: UTF8.self)
    }
    return (run(.line), run(.resp2), run(.resp3))
}

@Suite struct ReplyWriterTests {
    @Test func scalars() {
        #expect(encoded { $0.ok() } == ("OK\n", "+OK\r\n", "+OK\r\n"))
        #expect(encoded { $0.status("PONG") } == ("PONG\n", "+PONG\r\n", "+PONG\r\n"))
        #expect(encoded { $0.status(bytes: b("a\r\nb")) } == ("a  b\n", "+a  b\r\n", "+a  b\r\n"))
        #expect(encoded { $0.bulk(b("va lue")) } == ("va lue\n", "$6\r\nva lue\r\n", "$6\r\nva lue\r\n"))
        #expect(encoded { $0.bulk(b("")) } == ("\n", "$0\r\n\r\n", "$0\r\n\r\n"))
        #expect(encoded { $0.null() } == ("ERR not found\n", "$-1\r\n", "_\r\n"))
        #expect(encoded { $0.integer(-42) } == ("-42\n", ":-42\r\n", ":-42\r\n"))
        #expect(encoded { $0.boolean(true) } == ("1\n", ":1\r\n", "#t\r\n"))
        #expect(encoded { $0.boolean(false) } == ("0\n", ":0\r\n", "#f\r\n"))
    }

    @Test func doubles() {
        #expect(encoded { $0.double(1.5) } == ("1.5\n", "$3\r\n1.5\r\n", ",1.5\r\n"))
        #expect(encoded { $0.double(3) }.resp3 == ",3\r\n")
        #expect(encoded { $0.double(-0.0) }.resp3 == ",-0\r\n")
        #expect(encoded { $0.double(.infinity) }.resp3 == ",inf\r\n")
        #expect(encoded { $0.double(-.infinity) }.resp2 == "$4\r\n-inf\r\n")
        #expect(encoded { $0.double(.nan) }.resp3 == ",nan\r\n")
        #expect(encoded { $0.double(0.1) }.resp3 == ",0.1\r\n")
    }

    @Test func aggregates() {
        let map = encoded { w in
            w.mapHeader(2)
            w.bulk(b("a"))
            w.integer(1)
            w.bulk(b("b"))
            w.null()
        }
        #expect(map.resp2 == "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n")
        #expect(map.resp3 == "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n")
        let set = encoded { w in
            w.setHeader(1)
            w.bulk(b("m"))
        }
        #expect(set.resp2 == "*1\r\n$1\r\nm\r\n" && set.resp3 == "~1\r\n$1\r\nm\r\n")
        let array = encoded { w in
            w.arrayHeader(2)
            w.bulk(b("x"))
            w.bulk(b("y"))
        }
        #expect(array == ("x\ny\n", "*2\r\n$1\r\nx\r\n$1\r\ny\r\n", "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"))
    }

    @Test func lineProtocolRefusesValuesItCannotShow() {
        for value in ["a\nb", "a\rb", "ERR x"] {
            #expect(encoded { $0.bulk(b(value)) }.line == "ERR value not representable; use RESP\n")
        }
        #expect(encoded { $0.bulk(b("ERR")) }.line == "ERR\n")
    }

    @Test func lineIntegersFollowTheCommandsLineSyntax() {
        var writer = ReplyWriter(encoding: .line)
        writer.lineIntegers = .okOrNotFound
        writer.integer(1)
        writer.integer(0)
        #expect(writer.output == b("OK\nERR not found\n"))
        var resp = ReplyWriter(encoding: .resp2)
        resp.lineIntegers = .okOrNotFound
        resp.integer(0)
        #expect(resp.output == b(":0\r\n"))
    }

    @Test func errorsAreWordedPerProtocol() {
        let rows: [(CommandError, line: String, resp: String)] = [
            (.wrongArity("get"), "ERR wrong number of arguments for 'get'\n",
             "-ERR wrong number of arguments for 'get' command\r\n"),
            (.syntax, "ERR syntax error\n", "-ERR syntax error\r\n"),
            (.notFound, "ERR not found\n", "-ERR not found\r\n"),
            (.keyExists, "ERR key exists\n", "-ERR key exists\r\n"),
            (.storage("disk\nfull"), "ERR disk full\n", "-ERR disk full\r\n"),
            (.unsupportedProtocolVersion, "ERR unsupported protocol version\n",
             "-NOPROTO unsupported protocol version\r\n"),
            (.lineTooLong, "ERR line too long\n", "-ERR line too long\r\n"),
            (.protocolError(.invalidBulkLength), "ERR Protocol error: invalid bulk length\n",
             "-ERR Protocol error: invalid bulk length\r\n"),
        ]
        for (error, line, resp) in rows {
            let text = encoded { $0.error(error) }
            #expect(text.line == line)
            #expect(text.resp2 == resp && text.resp3 == resp)
        }
    }
}
