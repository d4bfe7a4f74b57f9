import Services
import Testing

extension KVSession: ByteService {}

func makeSession() -> KVSession { KVSession(clientID: 7, now: fixedClock) }

@Suite struct KVSessionTests {
    @Test func starSelectsRESPForTheConnectionsLife() {
        // A later request not starting with `*` is a Redis inline command, answered in RESP.
        verify(makeSession, [resp("SET", "k", "v"), resp("GET", "k"), b("get k\n")],
               expect: b("+OK\r\n$1\r\nv\r\n$1\r\nv\r\n"))
    }

    @Test func anythingElseSelectsTheLineProtocol() {
        verify(makeSession, [b("set k v\n"), b("get k\n"), resp("GET", "k")],
               expect: b("OK\nv\nERR unknown command '*2'\nERR unknown command '$3'\nERR wrong number of arguments for 'get'\n"
                         + "ERR unknown command '$1'\nERR unknown command 'k'\n"))
        // A leading blank decides for the line protocol; empty lines before it decide nothing.
        verify(makeSession, [b("\r\n"), b(" ping\n")], expect: b("PONG\n"))
        verify(makeSession, [b("\r\n\n"), resp("PING"), b("PING\r\n")], expect: b("+PONG\r\n+PONG\r\n"))
    }

    @Test func nothingReceivedDecidesNothing() {
        var session = makeSession()
        session.receive([])
        #expect(session.negotiatedProtocol == nil)
        var output: [UInt8] = []
        #expect(session.process(context: TestServer().context, output: &output, outputLimit: 100) == .needMoreData)
        session.receive(b("*"))
        #expect(session.negotiatedProtocol == .resp)
        session.receive(b("1\r\n$4\r\nPING\r\n"))
        #expect(session.process(context: TestServer().context, output: &output, outputLimit: 100) == .needMoreData)
        #expect(output == b("+PONG\r\n"))
    }

    @Test func bothProtocolsShareTheStore() {
        let store = TestServer()
        var line = makeSession()
        var redis = makeSession()
        line.receive(b("set shared 1\n"))
        #expect(line.drain(storage: store).output == b("OK\n"))
        redis.receive(resp("INCR", "shared"))
        #expect(redis.drain(storage: store).output == b(":2\r\n"))
        redis.receive(resp("SET", "crlf", "a\r\nb"))
        #expect(redis.drain(storage: store).output == b("+OK\r\n"))
        line.receive(b("get shared\nget crlf\nbye\n"))
        let last = line.drain(storage: store)
        #expect(last.output == b("2\nERR value not representable; use RESP\nGoodbye\n"))
        #expect(last.result == .close)
    }

    @Test func limitsArePassedToBothProtocols() {
        verify({ KVSession(maxLineBytes: 12, maxValueBytes: 3, now: fixedClock) }, [b("set k 1234\n"), b("1234567890123\n")],
               expect: b("ERR value too large\nERR line too long\n"), result: .close)
        verify({ KVSession(maxLineBytes: 8, maxValueBytes: 3, now: fixedClock) }, [resp("SET", "k", "123"), resp("SET", "k", "1234")],
               expect: b("+OK\r\n-ERR Protocol error: invalid bulk length\r\n"), result: .close)
    }
}
