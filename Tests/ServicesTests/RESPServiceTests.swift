@testable import Services
import Store
import Testing



/// A RESP2 request: a multibulk of bulk strings.
func resp(_ args: String...) -> [UInt8] { respBytes(args.map { Array($0.utf8) }) }

func respBytes(_ args: [[UInt8]]) -> [UInt8] {
    var frame = b("*\(args.count)\r\n")
    for arg in args { frame += b("$\(arg.count)\r\n") + arg + b("\r\n") }
    return frame
}

/// A bulk-string reply.
func bulk(_ text: String) -> String { "$\(text.utf8.count)\r\n\(text)\r\n" }

func fixedClock() -> (seconds: Int, microseconds: Int) { (1_700_000_000, 42) }

func makeRESP() -> KVSession { KVSession(speaking: .resp, clientID: 7, now: fixedClock) }

struct RESPCase: CustomTestStringConvertible, Sendable {
    let name: String
    let initial: [String: String]
    let requests: [[UInt8]]
    let expected: [UInt8]
    let result: ProcessResult
    var testDescription: String { self.name }

    init(_ name: String, _ requests: [[UInt8]], _ expected: String, _ result: ProcessResult = .needMoreData) {
        self.init(name, [:], requests, expected, result)
    }

    init(_ name: String, _ initial: [String: String], _ requests: [[UInt8]], _ expected: String,
         _ result: ProcessResult = .needMoreData) {
        self.name = name
        self.initial = initial
        self.requests = requests
        self.expected = b(expected)
        self.result = result
    }
}

let helloReply = "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n"
    + "$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
let hello3Reply = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
    + "$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
let x200 = String(repeating: "x", count: 200)
let x128 = String(repeating: "x", count: 128)

let respCases: [RESPCase] = {
    var c: [RESPCase] = []
    c.append(RESPCase("PING", [resp("PING"), resp("ping", "hi"), resp("PING", "a", "b")],
                      "+PONG\r\n$2\r\nhi\r\n-ERR wrong number of arguments for 'ping' command\r\n"))
    c.append(RESPCase("ECHO", [resp("ECHO", "hello world"), resp("echo", ""), resp("ECHO")],
                      "$11\r\nhello world\r\n$0\r\n\r\n-ERR wrong number of arguments for 'echo' command\r\n"))
    c.append(RESPCase("GET", ["k": "v"], [resp("GET", "k"), resp("get", "missing"), resp("GET"), resp("GET", "a", "b")],
                      "$1\r\nv\r\n$-1\r\n-ERR wrong number of arguments for 'get' command\r\n"
                      + "-ERR wrong number of arguments for 'get' command\r\n"))
    c.append(RESPCase("SET inserts and overwrites", ["k": "old"], [resp("SET", "k", "new"), resp("SET", "j", ""),
                      resp("GET", "k"), resp("GET", "j")], "+OK\r\n+OK\r\n$3\r\nnew\r\n$0\r\n\r\n"))
    c.append(RESPCase("SET NX", ["k": "old"], [resp("SET", "k", "new", "NX"), resp("SET", "j", "1", "nx"),
                      resp("GET", "k"), resp("GET", "j")], "$-1\r\n+OK\r\n$3\r\nold\r\n$1\r\n1\r\n"))
    c.append(RESPCase("SET XX", ["k": "old"], [resp("SET", "k", "new", "XX"), resp("SET", "j", "1", "xx"),
                      resp("GET", "k"), resp("GET", "j")], "+OK\r\n$-1\r\n$3\r\nnew\r\n$-1\r\n"))
    c.append(RESPCase("SET options", [resp("SET", "k", "v", "NX", "XX"), resp("SET", "k", "v", "EX", "10"),
                      resp("SET", "k", "v", "KEEPTTL"), resp("SET", "k", "v", "NX", "NX"), resp("SET", "k")],
                      "-ERR syntax error\r\n+OK\r\n+OK\r\n$-1\r\n"
                      + "-ERR wrong number of arguments for 'set' command\r\n"))
    c.append(RESPCase("SETNX", [resp("SETNX", "k", "1"), resp("SETNX", "k", "2"), resp("GET", "k"), resp("SETNX", "k")],
                      ":1\r\n:0\r\n$1\r\n1\r\n-ERR wrong number of arguments for 'setnx' command\r\n"))
    c.append(RESPCase("DEL", ["a": "1", "b": "2"], [resp("DEL", "a", "b", "c", "a"), resp("DEL", "a"), resp("DEL")],
                      ":2\r\n:0\r\n-ERR wrong number of arguments for 'del' command\r\n"))
    c.append(RESPCase("EXISTS", ["a": "1"], [resp("EXISTS", "a", "a", "nope"), resp("EXISTS")],
                      ":2\r\n-ERR wrong number of arguments for 'exists' command\r\n"))
    c.append(RESPCase("MGET", ["a": "1", "b": "22"], [resp("MGET", "a", "nope", "b"), resp("MGET")],
                      "*3\r\n$1\r\n1\r\n$-1\r\n$2\r\n22\r\n-ERR wrong number of arguments for 'mget' command\r\n"))
    c.append(RESPCase("MSET", [resp("MSET", "a", "1", "b", "2"), resp("MGET", "a", "b"), resp("MSET", "a"),
                      resp("MSET", "a", "1", "b")],
                      "+OK\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n-ERR wrong number of arguments for 'mset' command\r\n"
                      + "-ERR wrong number of arguments for 'mset' command\r\n"))
    c.append(RESPCase("INCR", ["n": "41", "neg": "-5", "s": "abc", "sp": " 1", "z": "01", "max": "9223372036854775807"],
                      [resp("INCR", "n"), resp("INCR", "new"), resp("INCR", "new"), resp("INCR", "neg"), resp("INCR", "s"),
                       resp("INCR", "sp"), resp("INCR", "z"), resp("INCR", "max"), resp("GET", "n"), resp("INCR")],
                      ":42\r\n:1\r\n:2\r\n:-4\r\n-ERR value is not an integer or out of range\r\n"
                      + "-ERR value is not an integer or out of range\r\n-ERR value is not an integer or out of range\r\n"
                      + "-ERR increment or decrement would overflow\r\n$2\r\n42\r\n"
                      + "-ERR wrong number of arguments for 'incr' command\r\n"))
    c.append(RESPCase("DBSIZE", ["a": "1", "b": "2"], [resp("DBSIZE"), resp("DBSIZE", "x")],
                      ":2\r\n-ERR wrong number of arguments for 'dbsize' command\r\n"))
    c.append(RESPCase("INFO sections", ["a": "1"], [resp("INFO", "keyspace"), resp("INFO", "nope")],
                      bulk("# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n") + "$0\r\n\r\n"))
    c.append(RESPCase("INFO on an empty store lists no database", [resp("INFO", "keyspace")], bulk("# Keyspace\r\n")))
    c.append(RESPCase("TIME", [resp("TIME"), resp("TIME", "x")],
                      "*2\r\n$10\r\n1700000000\r\n$2\r\n42\r\n-ERR wrong number of arguments for 'time' command\r\n"))
    c.append(RESPCase("QUIT closes and ignores what follows", [resp("PING"), resp("QUIT"), resp("PING")],
                      "+PONG\r\n+OK\r\n", .close))
    c.append(RESPCase("SELECT", [resp("SELECT", "0"), resp("SELECT", "1"), resp("SELECT", "x"), resp("SELECT")],
                      "+OK\r\n-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n"
                      + "-ERR wrong number of arguments for 'select' command\r\n"))
    c.append(RESPCase("FLUSHDB and FLUSHALL", ["a": "1"], [resp("FLUSHDB"), resp("DBSIZE"), resp("SET", "b", "2"),
                      resp("FLUSHALL", "ASYNC"), resp("DBSIZE"), resp("FLUSHDB", "now"), resp("flushall", "sync")],
                      "+OK\r\n:0\r\n+OK\r\n+OK\r\n:0\r\n-ERR syntax error\r\n+OK\r\n"))
    c.append(RESPCase("COMMAND", [resp("COMMAND", "COUNT"), resp("command", "docs", "get", "nope"),
                      resp("COMMAND", "INFO", "get", "nope"), resp("COMMAND", "NOPE"), resp("COMMAND", "COUNT", "x")],
                      ":\(CommandTable.respCommandCount)\r\n*2\r\n$3\r\nget\r\n*0\r\n"
                      + "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*0\r\n*0\r\n$-1\r\n"
                      + "-ERR unknown subcommand 'NOPE'. Try COMMAND HELP.\r\n"
                      + "-ERR wrong number of arguments for 'command|count' command\r\n"))
    c.append(RESPCase("CONFIG GET", [resp("CONFIG", "GET", "save"), resp("CONFIG", "get", "appendonly"),
                      resp("CONFIG", "GET", "d*"), resp("CONFIG", "GET", "APPEND*", "s?ve", "nope")],
                      "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"
                      + "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"
                      + "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"))
    // The thresholds are the process's own, shared by every test running at once: set only to defaults
    // here (a changed value is checked by the data-type tests on a server in a child process).
    c.append(RESPCase("CONFIG of the encoding thresholds",
                      [resp("CONFIG", "GET", "hash-max-*-entries"), resp("CONFIG", "SET", "hash-max-ziplist-entries", "512"),
                       resp("CONFIG", "GET", "hash-max-listpack-entries"), resp("CONFIG", "SET", "zset-max-listpack-value", "64"),
                       resp("CONFIG", "SET", "list-compress-depth", "-1"),
                       resp("CONFIG", "SET", "set-max-intset-entries", "512", "zset-max-listpack-value", "64")],
                      "*4\r\n$25\r\nhash-max-listpack-entries\r\n$3\r\n512\r\n$24\r\nhash-max-ziplist-entries\r\n$3\r\n512\r\n"
                      + "+OK\r\n*2\r\n$25\r\nhash-max-listpack-entries\r\n$3\r\n512\r\n+OK\r\n"
                      + "-ERR CONFIG SET failed (possibly related to argument 'list-compress-depth') - argument must be between 0 and 2147483647 inclusive\r\n"
                      + "+OK\r\n"))
    c.append(RESPCase("CONFIG errors", [resp("CONFIG"), resp("CONFIG", "GET"), resp("CONFIG", "SET", "daemonize", "no"),
                                        resp("CONFIG", "NOPE")],
                      "-ERR wrong number of arguments for 'config' command\r\n"
                      + "-ERR wrong number of arguments for 'config|get' command\r\n"
                      + "-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"
                      + "-ERR unknown subcommand 'NOPE'. Try CONFIG HELP.\r\n"))
    c.append(RESPCase("CLIENT", [resp("CLIENT", "GETNAME"), resp("CLIENT", "SETNAME", "me"), resp("client", "getname"),
                      resp("CLIENT", "SETINFO", "lib-name", "redis-py"), resp("CLIENT", "SETINFO", "lib-ver", "5.0"),
                      resp("CLIENT", "ID"), resp("CLIENT", "NOPE"), resp("CLIENT", "SETNAME"), resp("CLIENT")],
                      "$-1\r\n+OK\r\n$2\r\nme\r\n+OK\r\n+OK\r\n:7\r\n-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
                      + "-ERR wrong number of arguments for 'client|setname' command\r\n"
                      + "-ERR wrong number of arguments for 'client' command\r\n"))
    // HELLO 3 answers in RESP3 (a map), and the connection stays there until HELLO 2.
    c.append(RESPCase("HELLO", [resp("HELLO"), resp("HELLO", "2"), resp("HELLO", "3"), resp("GET", "nope"),
                                resp("HELLO", "1"), resp("HELLO", "x"), resp("HELLO", "2"), resp("GET", "nope")],
                      helloReply + helloReply + hello3Reply
                      + "_\r\n-NOPROTO unsupported protocol version\r\n"
                      + "-ERR Protocol version is not an integer or out of range\r\n" + helloReply + "$-1\r\n"))
    c.append(RESPCase("HELLO options", [resp("HELLO", "2", "AUTH", "default", "pw", "SETNAME", "cli"),
                      resp("CLIENT", "GETNAME"), resp("HELLO", "2", "BOGUS"), resp("HELLO", "2", "SETNAME")],
                      helloReply + "$3\r\ncli\r\n-ERR Syntax error in HELLO option 'BOGUS'\r\n"
                      + "-ERR Syntax error in HELLO option 'SETNAME'\r\n"))
    c.append(RESPCase("unknown command, Redis's wording", [resp("FOO"), resp("Foo", "a", "b c")],
                      "-ERR unknown command 'FOO', with args beginning with: \r\n"
                      + "-ERR unknown command 'Foo', with args beginning with: 'a' 'b c' \r\n"))
    c.append(RESPCase("unknown command with long, multi-line arguments", [resp("NOPE", "a\r\nb", x200, "more")],
                      "-ERR unknown command 'NOPE', with args beginning with: 'a  b' '"
                      + String(repeating: "x", count: 121) + "' \r\n"))
    c.append(RESPCase("unknown command name is cut at 128 bytes", [resp(x200)],
                      "-ERR unknown command '" + x128 + "', with args beginning with: \r\n"))
    c.append(RESPCase("commands are case-insensitive", [resp("sEt", "k", "v"), resp("GeT", "k"), resp("dbsize")],
                      "+OK\r\n$1\r\nv\r\n:1\r\n"))
    c.append(RESPCase("empty and null multibulks are skipped", [b("*0\r\n"), resp("PING"), b("*-1\r\n"), resp("PING")],
                      "+PONG\r\n+PONG\r\n"))
    c.append(RESPCase("pipelined frames in one request", [resp("SET", "a", "1") + resp("GET", "a") + resp("DEL", "a")],
                      "+OK\r\n$1\r\n1\r\n:1\r\n"))
    // As Redis: an empty line between frames is an empty inline request, skipped without a reply
    // (`redis-cli --pipe` sends one before its closing ECHO).
    c.append(RESPCase("empty lines between frames are skipped", [resp("PING"), b("\r\n\n"), resp("PING")],
                      "+PONG\r\n+PONG\r\n"))
    return c
}()

let protocolErrorCases: [RESPCase] = {
    var c: [RESPCase] = []
    c.append(RESPCase("unbalanced quotes in an inline command", [resp("PING"), b("ECHO \"a\r\n"), resp("PING")],
                      "+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n", .close))
    c.append(RESPCase("non-number multibulk count", [b("*abc\r\n")],
                      "-ERR Protocol error: invalid multibulk length\r\n", .close))
    c.append(RESPCase("empty multibulk count", [b("*\r\n")], "-ERR Protocol error: invalid multibulk length\r\n", .close))
    c.append(RESPCase("CR without LF in a count", [b("*1\rx\n")],
                      "-ERR Protocol error: invalid multibulk length\r\n", .close))
    c.append(RESPCase("absurd multibulk count", [b("*1048577\r\n")],
                      "-ERR Protocol error: invalid multibulk length\r\n", .close))
    c.append(RESPCase("huge multibulk count", [b("*99999999999999999999999\r\n")],
                      "-ERR Protocol error: invalid multibulk length\r\n", .close))
    c.append(RESPCase("not a bulk where one belongs", [b("*1\r\n:1\r\n")],
                      "-ERR Protocol error: expected '$', got ':'\r\n", .close))
    c.append(RESPCase("negative bulk length", [b("*1\r\n$-1\r\n")], "-ERR Protocol error: invalid bulk length\r\n", .close))
    c.append(RESPCase("non-number bulk length", [b("*1\r\n$1x\r\n")], "-ERR Protocol error: invalid bulk length\r\n", .close))
    c.append(RESPCase("bulk longer than the value limit", [resp("PING"), b("*2\r\n$3\r\nGET\r\n$1048577\r\n")],
                      "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n", .close))
    c.append(RESPCase("claimed 2 GB bulk", [b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2147483648\r\n")],
                      "-ERR Protocol error: invalid bulk length\r\n", .close))
    c.append(RESPCase("bulk data longer than its length", [b("*1\r\n$4\r\nPINGG\r\n")],
                      "-ERR Protocol error: expected CRLF after bulk data\r\n", .close))
    c.append(RESPCase("bulk data with CR but no LF", [b("*1\r\n$4\r\nPING\rX")],
                      "-ERR Protocol error: expected CRLF after bulk data\r\n", .close))
    return c
}()

@Suite struct RESPServiceTests {
    @Test(arguments: respCases)
    func command(_ row: RESPCase) {
        verify(makeRESP, row.requests, expect: row.expected, result: row.result,
               storage: { TestServer(row.initial) })
    }

    @Test(arguments: protocolErrorCases)
    func protocolErrorRepliesThenCloses(_ row: RESPCase) {
        verify(makeRESP, row.requests, expect: row.expected, result: row.result,
               storage: { TestServer(row.initial) })
    }

    @Test func allCommandRowsPipelinedOnOneConnection() {
        let requests = respCases.filter { $0.result == .needMoreData }.flatMap { $0.requests }
        var reference: [UInt8] = []
        var service = makeRESP()
        let store = TestServer()
        for request in requests {
            service.receive(request)
            reference += service.drain(storage: store).output
        }
        verify(makeRESP, requests, expect: reference)
    }

    @Test func binarySafeKeysAndValues() {
        let key: [UInt8] = [0x61, 0x0d, 0x0a, 0x00, 0xff, 0x24, 0x2a]  // "a\r\n\0\xff$*"
        let value: [UInt8] = b("\r\n$5\r\n*1\r\n") + [0x00, 0xfe, 0x0d]
        var expected = b("+OK\r\n$\(value.count)\r\n") + value + b("\r\n")
        expected += b("*2\r\n$\(value.count)\r\n") + value + b("\r\n$-1\r\n:1\r\n")
        let stores = verify(
            makeRESP,
            [respBytes([b("SET"), key, value]), respBytes([b("GET"), key]), respBytes([b("MGET"), key, [0x00]]),
             respBytes([b("EXISTS"), key])],
            expect: expected)
        for store in stores { #expect(store.data.values[key] == value) }
    }

    @Test func framesSplitAtEveryByte() {
        let stream = resp("SET", "key", "va\r\nlue") + resp("GET", "key") + resp("PING", "x") + b("*0\r\n")
            + resp("MGET", "key", "nope") + resp("DEL", "key")
        let expected = b("+OK\r\n$7\r\nva\r\nlue\r\n$1\r\nx\r\n*2\r\n$7\r\nva\r\nlue\r\n$-1\r\n:1\r\n")
        for split in 0...stream.count {
            let parts = [Array(stream[..<split]), Array(stream[split...])]
            let (output, result) = run(makeRESP, parts, storage: TestServer(), feeding: .whole)
            #expect(Printable(output) == Printable(expected), "split at \(split)")
            #expect(result == .needMoreData)
        }
    }

    @Test func thousandsOfPipelinedFrames() {
        var stream: [UInt8] = []
        var expected: [UInt8] = []
        for i in 0..<5000 {
            stream += resp("SET", "key:\(i)", "value \(i)")
            stream += resp("GET", "key:\(i)")
            expected += b("+OK\r\n") + b(bulk("value \(i)"))
        }
        stream += resp("DBSIZE")
        expected += b(":5000\r\n")
        let (output, result) = run(makeRESP, [stream], storage: TestServer(), feeding: .concatenated)
        #expect(Printable(output) == Printable(expected))
        #expect(result == .needMoreData)
        // And with backpressure: the output drained every 100 bytes, nothing lost or reordered.
        let limited = run(makeRESP, [stream], storage: TestServer(), feeding: .concatenated, outputLimit: 100)
        #expect(Printable(limited.output) == Printable(expected))
    }

    @Test func backpressureStopsAtTheLimit() {
        var service = makeRESP()
        let store = TestServer()
        var stream: [UInt8] = []
        for _ in 0..<100 { stream += resp("PING") }
        service.receive(stream)
        var output: [UInt8] = []
        var calls = 0
        var collected: [UInt8] = []
        while true {
            let result = service.process(context: store.context, output: &output, outputLimit: 21)
            calls += 1
            #expect(output.count <= 21)  // 7-byte replies: stops exactly at three
            collected += output
            output.removeAll()
            if result == .needMoreData { break }
            #expect(result == .outputFull)
        }
        #expect(calls == 34)
        #expect(collected == Array(repeating: b("+PONG\r\n"), count: 100).flatMap { $0 })
    }

    @Test func claimedHugeBulkWaitsWithoutReserving() {
        // With a limit that allows it, a 2 GB claim just waits for data; only what arrived is kept.
        var service = KVSession(speaking: .resp, maxValueBytes: 1 << 40, now: fixedClock)
        let store = TestServer()
        let header = b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2147483648\r\n")
        service.receive(header)
        #expect(service.drain(storage: store).result == .needMoreData)
        for _ in 0..<64 { service.receive([UInt8](repeating: 0x61, count: 1024)) }
        let step = service.drain(storage: store)
        #expect(step.output.isEmpty && step.result == .needMoreData)
        #expect(service.bufferedByteCount == header.count + 65536)
        #expect(service.parserCapacity < 1 << 20)
        #expect(store.data.count == 0)
    }

    @Test func oversizedRequestIsRefused() {
        // 2 × 10 + 1024 = 1044 bytes at most for one incomplete request.
        var stream = b("*1000\r\n")
        for _ in 0..<200 { stream += b("$1\r\nx\r\n") }
        verify({ KVSession(speaking: .resp, maxValueBytes: 10, maxRequestBytes: 100, now: fixedClock) }, [resp("PING"), stream],
               expect: b("+PONG\r\n-ERR Protocol error: request too large\r\n"), result: .close)
    }

    @Test func storageFailureIsAnsweredWithERR() {
        let failing = { () -> TestServer in
            let store = TestServer(["a": "1", "n": "5"])
            store.data.failure = StoreError(operation: "write", path: "log", detail: "disk full")
            return store
        }
        let stores = verify(
            makeRESP,
            [resp("SET", "k", "v"), resp("SETNX", "k", "v"), resp("DEL", "a"), resp("MSET", "x", "1"), resp("INCR", "n"),
             resp("FLUSHDB"), resp("GET", "a"), resp("SET", "a", "2", "XX"), resp("DBSIZE")],
            expect: b(String(repeating: "-ERR write log: disk full\r\n", count: 6) + "$1\r\n1\r\n-ERR write log: disk full\r\n:2\r\n"),
            storage: failing)
        for store in stores { #expect(store["a"] == "1" && store["n"] == "5" && store.data.count == 2) }
    }

    @Test func closedServiceStaysClosed() {
        var service = makeRESP()
        let store = TestServer()
        service.receive(b("*1\r\n$1x"))
        #expect(service.drain(storage: store).result == .close)
        service.receive(resp("PING"))
        let again = service.drain(storage: store)
        #expect(again.output.isEmpty && again.result == .close)
    }

    @Test func parserReleasesABigBufferOnceIdle() {
        var service = makeRESP()
        let store = TestServer()
        service.receive(resp("SET", "k", String(repeating: "v", count: 500_000)))
        #expect(service.parserCapacity >= 500_000)
        #expect(service.drain(storage: store).output == b("+OK\r\n"))
        #expect(service.parserCapacity == 0)
        service.receive(resp("PING"))
        #expect(service.drain(storage: store).output == b("+PONG\r\n"))
        #expect(service.parserCapacity <= 4096)
    }
}

@Suite struct RESPLargeValueTests {
    @Test func largeValueArrivingInSmallChunks() {
        let value = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let request = respBytes([b("SET"), b("big"), value]) + resp("STRLEN-IS-UNKNOWN") + respBytes([b("GET"), b("big")])
        var chunks: [[UInt8]] = []
        var start = 0
        while start < request.count {
            chunks.append(Array(request[start..<min(start + 997, request.count)]))
            start += 997
        }
        let store = TestServer()
        let (output, result) = run(makeRESP, chunks, storage: store, feeding: .whole)
        let expected = b("+OK\r\n-ERR unknown command 'STRLEN-IS-UNKNOWN', with args beginning with: \r\n")
            + b("$300000\r\n") + value + b("\r\n")
        #expect(output == expected)
        #expect(result == .needMoreData)
        #expect(store.data.values[b("big")] == value)
    }
}

@Suite struct RESPServerCommandTests {
    @Test func infoHasRedisSectionsAndFieldsAndIsVerbatimInRESP3() {
        let store = TestServer(["a": "1"])
        let info = execute(["INFO"], on: .resp, encoding: .resp2, store: store)
        for needle in ["# Server\r\nredis_version:7.0.15\r\n", "# Clients\r\n", "# Memory\r\nused_memory:", "# Persistence\r\n",
                       "rdb_last_save_time:", "# Stats\r\n", "total_commands_processed:", "# Replication\r\nrole:master",
                       "# Keyspace\r\ndb0:keys=1,", "# Reactord\r\nkeys:1\r\n"] {
            #expect(info.contains(needle), "\(needle)")
        }
        #expect(info.hasPrefix("$"))
        let verbatim = execute(["INFO", "server"], on: .resp, encoding: .resp3, store: store)
        #expect(verbatim.hasPrefix("=") && verbatim.contains("\r\ntxt:# Server\r\n"))
        #expect(!execute(["INFO", "keyspace", "server"], on: .resp, encoding: .resp2, store: store).contains("# Stats"))
    }

    @Test func persistenceAndShutdownCommandsReachTheContext() {
        let store = TestServer()
        #expect(execute(["BGSAVE"], on: .resp, encoding: .resp2, store: store) == "+Background saving started\r\n")
        #expect(execute(["BGSAVE"], on: .resp, encoding: .resp2, store: store)
                == "-ERR Background save already in progress\r\n")
        #expect(execute(["BGSAVE", "SCHEDULE"], on: .resp, encoding: .resp2, store: store) == "+Background saving scheduled\r\n")
        #expect(execute(["BGREWRITEAOF"], on: .resp, encoding: .resp2, store: store)
                == "+Background append only file rewriting started\r\n")
        #expect(execute(["LASTSAVE"], on: .resp, encoding: .resp2, store: store) == ":0\r\n")
        #expect(execute(["SHUTDOWN", "NOSAVE"], on: .resp, encoding: .resp2, store: store) == "")
        #expect(execute(["SHUTDOWN", "SAVE", "NOW"], on: .resp, encoding: .resp2, store: store) == "")
        #expect(execute(["SHUTDOWN"], on: .resp, encoding: .resp2, store: store) == "")
        #expect(store.control.shutdowns == [false, true, nil])
        #expect(execute(["SHUTDOWN", "SAVE", "NOSAVE"], on: .resp, encoding: .resp2, store: store) == "-ERR syntax error\r\n")
        #expect(execute(["SHUTDOWN", "ABORT"], on: .resp, encoding: .resp2, store: store)
                == "-ERR No shutdown in progress.\r\n")
        #expect(execute(["SHUTDOWN", "ABORT", "NOW"], on: .resp, encoding: .resp2, store: store) == "-ERR syntax error\r\n")
        #expect(store.control.shutdowns.count == 3)
    }
}
