// The kv line protocol end to end over loopback against an in-process server (kv on port 0, every
// other service off, a temporary data dir, `--fsync always`): every documented row byte for byte,
// pipelined and one request at a time, many concurrent writers, half-close, and values stored
// through RESP that the line protocol cannot carry.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct KVServerTests {
    /// What one request must be answered with: exact bytes (without the `\n`), a check for
    /// replies docs/protocol.md does not fix word for word (`stats`, `help`), or nothing (an empty line).
    enum Reply {
        case exact(String)
        case satisfies(String, @Sendable (String) -> Bool)
        case none
    }

    static let longKey = String(repeating: "k", count: 1025)
    static let maxKey = String(repeating: "m", count: 1024)

    /// Every row of the kv table in docs/protocol.md, the framing rules, and the failure replies.
    static let transcript: [(request: String, reply: Reply)] = [
        ("ping", .exact("PONG")),
        ("PiNg", .exact("PONG")),
        ("put k1 hello world", .exact("OK")),
        ("put k1 other", .exact("ERR key exists")),
        ("get k1", .exact("hello world")),
        ("set k1 second  value\twith tab ", .exact("OK")),
        ("get k1", .exact("second  value\twith tab ")),
        ("set fresh v", .exact("OK")),
        ("SET\tfresh\tv2", .exact("OK")),
        ("get   fresh", .exact("v2")),
        ("set empty", .exact("OK")),
        ("get empty", .exact("")),
        ("set empty2 ", .exact("OK")),
        ("get empty2", .exact("")),
        ("get missing", .exact("ERR not found")),
        ("del k1", .exact("OK")),
        ("del k1", .exact("ERR not found")),
        ("get k1", .exact("ERR not found")),
        ("", .none),
        ("   ", .none),
        ("get fresh\r", .exact("v2")),
        ("put \(maxKey) longest", .exact("OK")),
        ("get \(maxKey)", .exact("longest")),
        ("get \(longKey)", .exact("ERR key too long")),
        ("set \(longKey) v", .exact("ERR key too long")),
        ("put \(longKey) v", .exact("ERR key too long")),
        ("del \(longKey)", .exact("ERR key too long")),
        ("set bad ERR not a value", .exact("ERR value may not begin with ERR")),
        ("put bad2 ERR x", .exact("ERR value may not begin with ERR")),
        ("get bad", .exact("ERR not found")),
        ("set almost ERRATA", .exact("OK")),
        ("get almost", .exact("ERRATA")),
        ("frobnicate now", .exact("ERR unknown command 'frobnicate'")),
        ("FROB", .exact("ERR unknown command 'FROB'")),
        ("get", .exact("ERR wrong number of arguments for 'get'")),
        ("get a b", .exact("ERR wrong number of arguments for 'get'")),
        ("put", .exact("ERR wrong number of arguments for 'put'")),
        ("put lonely", .exact("ERR wrong number of arguments for 'put'")),
        ("set", .exact("ERR wrong number of arguments for 'set'")),
        ("del", .exact("ERR wrong number of arguments for 'del'")),
        ("del a b", .exact("ERR wrong number of arguments for 'del'")),
        ("count extra", .exact("ERR wrong number of arguments for 'count'")),
        ("ping extra", .exact("ERR wrong number of arguments for 'ping'")),
        ("bye now", .exact("ERR wrong number of arguments for 'bye'")),
        // fresh, empty, empty2, the 1024-byte key, almost
        ("count", .exact("5")),
        ("COUNT", .exact("5")),
        ("stats", .satisfies("name=value pairs including keys=5", { line in
            let pairs = line.split(separator: " ", omittingEmptySubsequences: false)
            return !pairs.isEmpty && pairs.allSatisfy { $0.split(separator: "=", maxSplits: 1).count == 2 }
                && pairs.contains("keys=5")
        })),
        ("help", .satisfies("one line naming every command", { line in
            ["put", "set", "get", "del", "count", "ping", "stats", "help", "bye"].allSatisfy { line.contains($0) }
                && !line.hasPrefix("ERR")
        })),
        ("bye", .exact("Goodbye")),
    ]

    static func check(_ reply: String, against expected: Reply, request: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let shown = request.count > 60 ? String(request.prefix(60)) + "…" : request
        switch expected {
        case .exact(let text): #expect(reply == text, "request \(shown.debugDescription)", sourceLocation: sourceLocation)
        case .satisfies(let what, let test): #expect(test(reply), "request \(shown.debugDescription): \(reply.debugDescription) is not \(what)", sourceLocation: sourceLocation)
        case .none: Issue.record("request \(shown.debugDescription) expects no reply", sourceLocation: sourceLocation)
        }
    }

    @Test func everySpecRowPipelinedInOneSendIsAnsweredByteForByteThenGoodbyeCloses() throws {
        try withKVLineServer { server, client in
            try client.send(Self.transcript.map { $0.request + "\n" }.joined())
            let (bytes, eof) = client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof, "the server did not close after Goodbye")
            let expected = Self.transcript.filter { if case .none = $0.reply { false } else { true } }
            #expect(bytes.last == UInt8(ascii: "\n"), "the last reply is not terminated")
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast()
                .map { String(decoding: $0, as: UTF8.self) }
            try #require(lines.count == expected.count, "\(lines.count) replies to \(expected.count) requests: \(lines)")
            for (line, step) in zip(lines, expected) { Self.check(line, against: step.reply, request: step.request) }
        }
    }

    @Test func everySpecRowOneRequestAtATimeIsAnsweredByteForByteThenGoodbyeCloses() throws {
        try withKVLineServer { server, client in
            for step in Self.transcript {
                try client.send(step.request + "\n")
                // An ignored line has no reply: the next request's reply proves nothing was sent for it.
                if case .none = step.reply { continue }
                let reply = client.readLine()
                try #require(reply.last == UInt8(ascii: "\n"), "no reply to \(step.request.prefix(60).debugDescription)")
                Self.check(String(decoding: reply.dropLast(), as: UTF8.self), against: step.reply, request: step.request)
            }
            let rest = client.readToEOF()
            #expect(rest.eof && rest.bytes.isEmpty, "after Goodbye: \(rest)")
        }
    }

    @Test func fiftyConcurrentWritersAreAllSeenByOneReader() throws {
        let dir = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: dir.path)
        defer { server.stop() }
        let port = server.kvPort
        let clients = 50
        let perClient = 200
        let failures = Shared<[String]>([])
        let done = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        for c in 0..<clients {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    let client = try TestClient(port: port)
                    start.wait()
                    let requests = (0..<perClient).map { "set w\(c)-\($0) value \(c) \($0) \(String(repeating: "v", count: ($0 * 7 + c) % 40))" }
                    if c % 2 == 0 {
                        // Even clients pipeline everything at once, odd ones wait for each OK.
                        try client.send(requests.map { $0 + "\n" }.joined(), deadline: .now + .seconds(30))
                        let replies = try client.readLines(perClient, deadline: .now + .seconds(30))
                        if let bad = replies.first(where: { $0 != Array("OK".utf8) }) {
                            failures.with { $0.append("client \(c): \(String(decoding: bad, as: UTF8.self))") }
                        }
                    } else {
                        for request in requests {
                            let reply = try client.request(request, deadline: .now + .seconds(30))
                            if reply != "OK" { failures.with { $0.append("client \(c): \(reply)") }; break }
                        }
                    }
                } catch {
                    failures.with { $0.append("client \(c): \(error)") }
                }
            }.start()
        }
        for _ in 0..<clients { start.signal() }
        try #require(done.wait(timeout: .now() + 60) == .success, "writers did not finish within 60 s")
        #expect(failures.current.isEmpty, "\(failures.current.prefix(5))")

        let reader = try TestClient(port: port)
        var requests: [UInt8] = []
        var expected: [[UInt8]] = []
        for c in 0..<clients {
            for i in 0..<perClient {
                requests += Array("get w\(c)-\(i)\n".utf8)
                expected.append(Array("value \(c) \(i) \(String(repeating: "v", count: (i * 7 + c) % 40))".utf8))
            }
        }
        requests += Array("count\n".utf8)
        try reader.send(requests, deadline: .now + .seconds(30))
        let replies = try reader.readLines(expected.count + 1, deadline: .now + .seconds(30))
        var wrong = 0
        for (reply, want) in zip(replies, expected) where reply != want { wrong += 1 }
        #expect(wrong == 0, "\(wrong) of \(expected.count) keys read back wrong")
        #expect(String(decoding: replies[expected.count], as: UTF8.self) == "\(clients * perClient)")
    }

    @Test func valuesWithCRorLFStoredThroughRESPAreNotRepresentableOnTheLineProtocol() throws {
        try withKVServer { server, resp in
            let stored: [(String, [UInt8])] = [
                ("crlf", Array("two\r\nlines".utf8)), ("lf", Array("a\nb".utf8)), ("cr", Array("a\rb".utf8)),
                ("trailing", Array("ends in newline\n".utf8)), ("plain", Array("tab\there and \u{0}nul".utf8)),
            ]
            for (key, value) in stored {
                #expect(try resp.call([Array("SET".utf8), Array(key.utf8), value]) == .simple("OK"))
            }
            let line = try TestClient(port: server.kvPort)
            for key in ["crlf", "lf", "cr", "trailing"] {
                #expect(try line.request("get \(key)") == "ERR value not representable; use RESP", "key \(key)")
            }
            // A value without CR or LF is carried as it is, other control bytes included.
            try line.send("get plain\n")
            #expect(line.readLine() == Array("tab\there and \u{0}nul\n".utf8))
            // Both protocols still see the same store, and RESP reads the value back unchanged.
            #expect(try line.request("count") == "5")
            #expect(try resp.call("GET", "crlf") == .bulk("two\r\nlines"))
            #expect(try line.request("del crlf") == "OK")
            #expect(try resp.call("EXISTS", "crlf") == .integer(0))
        }
    }

    @Test func halfClosedClientGetsEveryAcknowledgementBeforeTheClose() throws {
        try withKVLineServer { server, client in
            let count = 300
            try client.send((0..<count).map { "set half\($0) \($0)\n" }.joined() + "get half7\ncount\n")
            client.shutdownWrite()
            let (bytes, eof) = client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof)
            let expected = String(repeating: "OK\n", count: count) + "7\n\(count)\n"
            #expect(String(decoding: bytes, as: UTF8.self) == expected)
        }
    }

    @Test func writesFollowedByByeInOneBatchAreAcknowledgedBeforeGoodbye() throws {
        try withKVLineServer { server, client in
            try client.send("set a 1\nput b 2\ndel a\nbye\nset never 1\n")
            let (bytes, eof) = client.readToEOF()
            #expect(eof)
            #expect(String(decoding: bytes, as: UTF8.self) == "OK\nOK\nOK\nGoodbye\n")
            let again = try TestClient(port: server.kvPort)
            #expect(try again.request("get b") == "2")
            #expect(try again.request("get never") == "ERR not found")
        }
    }

    @Test func overLongLineIsRefusedThenTheConnectionCloses() throws {
        try withKVLineServer(configure: { $0.maxLineBytes = 64 }) { server, client in
            let fits = "set fits " + String(repeating: "f", count: 64 - 9)
            #expect(try client.request(fits) == "OK")
            try client.send("set long " + String(repeating: "x", count: 100) + "\nget fits\n")
            let (bytes, eof) = client.readToEOF()
            #expect(String(decoding: bytes, as: UTF8.self) == "ERR line too long\n")
            #expect(eof)
            let again = try TestClient(port: server.kvPort)
            #expect(try again.request("get fits") == String(repeating: "f", count: 55))
            #expect(try again.request("get long") == "ERR not found")
        }
    }

    /// CONFIG SET timeout changes the idle timeout of every service at run time (the idle
    /// connection here is on echo, the setting arrives over kv), and CONFIG GET reports it.
    @Test func configSetTimeoutClosesConnectionsIdleLongerThanTheNewTimeout() throws {
        let dir = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: dir.path) {
            $0.echoPort = .port(0)
            $0.idleTimeout = .zero  // never, to start with
        }
        defer { server.stop() }
        let idle = try TestClient(port: server.echoPort)
        try idle.send("hi\n")
        #expect(idle.readLine() == Array("hi\n".utf8))
        let admin = try RESPTestClient(port: server.kvPort)
        #expect(try admin.call("CONFIG", "SET", "timeout", "1") == .simple("OK"))
        #expect(try admin.call("CONFIG", "GET", "timeout") == .array([.bulk("timeout"), .bulk("1")]))
        let (rest, eof) = idle.readToEOF(deadline: .now + .seconds(10))
        #expect(rest.isEmpty)
        #expect(eof, "an echo connection idle past the new 1 s timeout was not closed")
    }
}
