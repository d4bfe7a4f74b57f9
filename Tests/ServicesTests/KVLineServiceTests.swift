@testable import Services
import Store
import Testing

/// One row of the line protocol's table: requests against a store, and the exact replies.
struct LineCase: CustomTestStringConvertible, Sendable {
    let name: String
    let initial: [String: String]
    let requests: [[UInt8]]
    let expected: [UInt8]
    let result: ProcessResult
    var testDescription: String { self.name }

    init(_ name: String, _ requests: [String], _ expected: String, _ result: ProcessResult = .needMoreData) {
        self.init(name, [:], requests, expected, result)
    }

    init(
        _ name: String, _ initial: [String: String], _ requests: [String], _ expected: String,
        _ result: ProcessResult = .needMoreData
    ) {
        self.name = name
        self.initial = initial
        self.requests = requests.map { Array($0.utf8) }
        self.expected = Array(expected.utf8)
        self.result = result
    }
}

let k1024 = String(repeating: "k", count: 1024)
let k1025 = String(repeating: "k", count: 1025)

let lineCases: [LineCase] = {
    var cases: [LineCase] = []
    cases.append(LineCase("put inserts", ["put k v\n", "get k\n"], "OK\nv\n"))
    cases.append(LineCase("put on an existing key", ["a": "1"], ["put a 2\n", "get a\n"], "ERR key exists\n1\n"))
    cases.append(LineCase("put without a value", ["put k\n", "put k \n", "put\n"],
             "ERR wrong number of arguments for 'put'\nERR wrong number of arguments for 'put'\n"
             + "ERR wrong number of arguments for 'put'\n"))
    cases.append(LineCase("set inserts and overwrites", ["a": "1"], ["set a 2\n", "set b 3\n", "get a\n", "get b\n"],
             "OK\nOK\n2\n3\n"))
    cases.append(LineCase("set alone stores the empty value", ["set k\n", "get k\n", "count\n"], "OK\n\n1\n"))
    cases.append(LineCase("set with one separator stores the empty value", ["set k \n", "get k\n"], "OK\n\n"))
    cases.append(LineCase("set without a key", ["set\n"], "ERR wrong number of arguments for 'set'\n"))
    cases.append(LineCase("value keeps internal and extra spaces", ["set k  a b\tc  \n", "get k\n"], "OK\n a b\tc  \n"))
    cases.append(LineCase("tab separates key and value", ["set\tk\tv w\n", "get k\n"], "OK\nv w\n"))
    cases.append(LineCase("get missing", ["get nope\n"], "ERR not found\n"))
    cases.append(LineCase("get arity", ["get\n", "get a b\n"],
             "ERR wrong number of arguments for 'get'\nERR wrong number of arguments for 'get'\n"))
    cases.append(LineCase("del present and missing", ["a": "1"], ["del a\n", "del a\n", "count\n"], "OK\nERR not found\n0\n"))
    cases.append(LineCase("del arity", ["del\n", "DEL a b\n"],
             "ERR wrong number of arguments for 'del'\nERR wrong number of arguments for 'del'\n"))
    cases.append(LineCase("count", ["a": "1", "b": "2"], ["count\n"], "2\n"))
    cases.append(LineCase("count arity", ["count x\n"], "ERR wrong number of arguments for 'count'\n"))
    cases.append(LineCase("ping", ["ping\n"], "PONG\n"))
    cases.append(LineCase("ping arity", ["ping x\n"], "ERR wrong number of arguments for 'ping'\n"))
    cases.append(LineCase("stats", ["a": "1"], ["stats\n"], "keys=1 mutations=0\n"))
    cases.append(LineCase("help", ["help\n"],
             "commands: put <key> <value> | set <key> [value] | get <key> | del <key> | count | ping | stats | help | bye | setex <key> <seconds> <value> | expire <key> <seconds> | ttl <key> | persist <key> | auth <password>\n"))
    cases.append(LineCase("bye closes and ignores what follows", ["ping\n", "bye\n", "ping\n"], "PONG\nGoodbye\n", .close))
    cases.append(LineCase("bye arity", ["bye now\n"], "ERR wrong number of arguments for 'bye'\n"))
    cases.append(LineCase("unknown command keeps its case", ["Frob a b\n"], "ERR unknown command 'Frob'\n"))
    cases.append(LineCase("commands are case-insensitive", ["SET k v\n", "Get k\n", "PiNg\n", "COUNT\n", "dEl k\n", "ByE\n"],
             "OK\nv\nPONG\n1\nOK\nGoodbye\n", .close))
    cases.append(LineCase("CRLF terminators", ["set k v\r\n", "get k\r\n", "ping\r\n"], "OK\nv\nPONG\n"))
    cases.append(LineCase("empty and blank lines are ignored", ["\n", "\r\n", "  \t \n", "ping\n", "\n"], "PONG\n"))
    cases.append(LineCase("leading blanks before the command", ["  \tping\n", " get  k\n"], "PONG\nERR not found\n"))
    cases.append(LineCase("key of 1024 bytes", ["set " + k1024 + " v\n",
                                   "get " + k1024 + "\n"], "OK\nv\n"))
    cases.append(LineCase("key of 1025 bytes", ["set " + k1025 + " v\n",
                                   "get " + k1025 + "\n",
                                   "del " + k1025 + "\n"],
             "ERR key too long\nERR key too long\nERR key too long\n"))
    cases.append(LineCase("value beginning ERR is refused", ["set k ERR x\n", "put k ERR \n", "get k\n"],
             "ERR value may not begin with ERR\nERR value may not begin with ERR\nERR not found\n"))
    cases.append(LineCase("value ERR without space and lower-case err are fine", ["set a ERR\n", "set b err x\n", "get a\n", "get b\n"],
             "OK\nOK\nERR\nerr x\n"))
    cases.append(LineCase("stored value with LF or CR is not representable", ["a": "x\ny", "b": "x\ry"], ["get a\n", "get b\n"],
             "ERR value not representable; use RESP\nERR value not representable; use RESP\n"))
    cases.append(LineCase("stored value beginning ERR is not representable", ["a": "ERR x"], ["get a\n"],
             "ERR value not representable; use RESP\n"))
    cases.append(LineCase("pipelined requests answer in order", ["set a 1\nset b 2\nget a\nget b\ndel a\ncount\n"],
             "OK\nOK\n1\n2\nOK\n1\n"))
    return cases
}()

@Suite struct KVLineServiceTests {
    @Test(arguments: lineCases)
    func tableRow(_ row: LineCase) {
        verify({ KVSession(speaking: .line, now: fixedClock) }, row.requests, expect: row.expected, result: row.result,
               storage: { TestServer(row.initial) })
    }

    @Test func allRowsPipelinedOnOneConnection() {
        // Every row that keeps the connection open, one after another on one store. Rows touch the
        // same keys, so the reference replies come from feeding each request whole; the verifier
        // then checks bytewise and one-buffer feeding against them.
        let requests = lineCases.filter { $0.result == .needMoreData }.flatMap { $0.requests }
        var reference: [UInt8] = []
        var service = KVSession(speaking: .line, now: fixedClock)
        let store = TestServer()
        for request in requests {
            service.receive(request)
            reference += service.drain(storage: store).output
        }
        #expect(reference.count > 500)
        verify({ KVSession(speaking: .line, now: fixedClock) }, requests, expect: reference)
    }

    @Test func nonUTF8BytesAreCarriedAsBytes() {
        let key: [UInt8] = [0xff, 0xfe, 0x80]
        let value: [UInt8] = [0xc3, 0x28, 0x00, 0xa0, 0x20, 0xe2, 0x82]
        let stores = verify(
            { KVSession(speaking: .line, now: fixedClock) },
            [b("set ") + key + b(" ") + value + b("\n"), b("get ") + key + b("\n"), b("x\u{00}") + [0xff] + b(" y\n")],
            expect: b("OK\n") + value + b("\nERR unknown command 'x\u{00}") + [0xff] + b("'\n"))
        for store in stores { #expect(store.data.values[key] == value) }
    }

    @Test func valueLimit() {
        verify({ KVSession(speaking: .line, maxValueBytes: 4, now: fixedClock) }, [b("set k 1234\n"), b("set k 12345\n"), b("put j 12345\n"), b("get k\n")],
               expect: b("OK\nERR value too large\nERR value too large\n1234\n"))
    }

    @Test func overLongLineRepliesThenCloses() {
        let limit = 16
        // Exactly at the limit is fine, CR not counted.
        verify({ KVSession(speaking: .line, maxLineBytes: limit, now: fixedClock) },
               [b("set k " + String(repeating: "v", count: limit - 6) + "\r\n"), b("get k\n")],
               expect: b("OK\n" + String(repeating: "v", count: limit - 6) + "\n"))
        // One byte more, terminated or not, answers what came before, then the error, then closes.
        verify({ KVSession(speaking: .line, maxLineBytes: limit, now: fixedClock) },
               [b("ping\n"), b("set k " + String(repeating: "v", count: limit - 5) + "\n"), b("ping\n")],
               expect: b("PONG\nERR line too long\n"), result: .close)
        verify({ KVSession(speaking: .line, maxLineBytes: limit, now: fixedClock) },
               [b("ping\n"), b(String(repeating: "x", count: 10_000)), b("ping\n")],
               expect: b("PONG\nERR line too long\n"), result: .close)
    }

    @Test func closedServiceStaysClosed() {
        var service = KVSession(speaking: .line, now: fixedClock)
        let store = TestServer()
        service.receive("bye\n")
        #expect(service.drain(storage: store).result == .close)
        service.receive("ping\n")
        let again = service.drain(storage: store)
        #expect(again.output.isEmpty && again.result == .close)
    }

    @Test func storageFailureIsAnsweredWithERR() {
        let failing = { () -> TestServer in
            let store = TestServer(["a": "1"])
            store.data.failure = StoreError(operation: "write", path: "log", detail: "disk full\nreally")
            return store
        }
        let stores = verify(
            { KVSession(speaking: .line, now: fixedClock) }, [b("set k v\n"), b("put k v\n"), b("del a\n"), b("get a\n"), b("count\n")],
            expect: b(String(repeating: "ERR write log: disk full really\n", count: 3) + "1\n1\n"), storage: failing)
        for store in stores { #expect(store["a"] == "1" && store["k"] == nil) }
    }

    @Test func backpressureStopsAndResumesWithoutLoss() {
        var requests = ""
        var expected = ""
        for i in 0..<200 {
            requests += "set key\(i) value\(i)\nget key\(i)\n"
            expected += "OK\nvalue\(i)\n"
        }
        requests += "count\n"
        expected += "200\n"
        // Whole, bytewise and concatenated, with the output drained whenever it passes 10 bytes.
        verify({ KVSession(speaking: .line, now: fixedClock) }, [b(requests)], expect: b(expected), outputLimit: 10)

        // The exact contract: outputFull while input remains, nothing processed past the limit.
        var service = KVSession(speaking: .line, now: fixedClock)
        let store = TestServer()
        service.receive(requests)
        var output: [UInt8] = []
        var collected: [UInt8] = []
        var fullCount = 0
        while true {
            let result = service.process(context: store.context, output: &output, outputLimit: 32)
            #expect(output.count < 32 + 20)  // at most one reply past the limit
            collected += output
            output.removeAll()
            if result == .needMoreData { break }
            #expect(result == .outputFull)
            fullCount += 1
        }
        #expect(fullCount > 10)
        #expect(Printable(collected) == Printable(b(expected)))
    }

    @Test func outputAlreadyFullWithNothingBufferedAsksForData() {
        var service = KVSession(speaking: .line, now: fixedClock)
        var output = [UInt8](repeating: 0, count: 100)
        #expect(service.process(context: TestServer().context, output: &output, outputLimit: 10) == .needMoreData)
        service.receive("ping\n")
        #expect(service.process(context: TestServer().context, output: &output, outputLimit: 10) == .outputFull)
        #expect(output.count == 100)
    }
}
