// The command table itself: names, arities, flags and line syntax are consistent, every RESP
// command answers in RESP3 with RESP3's types, and one command serves both protocols.

@testable import Services
import Testing

/// Runs one request straight through the table with `encoding`, against `store`.
func execute(
    _ words: [String], on wireProtocol: KVSession.WireProtocol, encoding: ReplyEncoding, store: TestServer
) -> String {
    var bytes: [UInt8] = []
    var ranges: [Range<Int>] = []
    for word in words {
        ranges.append(bytes.count..<(bytes.count + word.utf8.count))
        bytes += b(word)
    }
    var call = CommandCall(
        context: store.context, client: ClientState(id: 9, name: nil), reply: ReplyWriter(encoding: encoding), now: fixedClock,
        maxValueBytes: 100)
    if store.state.password == nil { call.client.markAuthenticated() }
    CommandTable.execute(
        ArgumentVector(bytes: bytes[...], ranges: ranges), on: wireProtocol, names: CommandTable.names(on: wireProtocol),
        maxValueBytes: 100, call: &call)
    return String(decoding: call.reply.output, as: UTF8.self)
}

@Suite struct CommandTableTests {
    @Test func namesAreLowerCaseAndUniquePerProtocol() {
        var resp: Set<String> = []
        var line: Set<String> = []
        for command in CommandTable.commands {
            let name = command.name.description
            #expect(name == name.lowercased())
            if !command.flags.contains(.lineOnly) { #expect(resp.insert(name).inserted, "\(name)") }
            if let syntax = command.line {
                #expect(line.insert((syntax.name ?? command.name).description).inserted, "\(name)")
            } else {
                #expect(!command.flags.contains(.lineOnly), "\(name) is line-only without a line syntax")
            }
        }
        #expect(resp.count == CommandTable.respCommandCount)
        #expect(line == ["put", "set", "get", "del", "count", "ping", "stats", "help", "bye", "setex", "expire", "ttl", "persist",
                         "auth"])
    }

    @Test func flagsSayWhatCommandsDo() {
        func flags(_ name: String) -> CommandFlags? {
            CommandTable.commands.first { $0.name.description == name }?.flags
        }
        for name in ["set", "put", "setnx", "mset", "incr"] {
            #expect(flags(name)?.isSuperset(of: [.write, .mayAddMemory]) == true, "\(name)")
        }
        for name in ["del", "flushdb", "flushall"] {
            #expect(flags(name)?.contains(.write) == true && flags(name)?.contains(.mayAddMemory) == false, "\(name)")
        }
        for name in ["get", "mget", "exists", "dbsize"] { #expect(flags(name)?.contains(.readOnly) == true, "\(name)") }
        for name in ["hello", "quit", "bye"] { #expect(flags(name)?.contains(.allowedBeforeAuth) == true, "\(name)") }
        for name in ["multi", "exec", "discard", "watch", "quit", "reset"] {
            #expect(flags(name)?.contains(.runsInMulti) == true, "\(name)")
        }
    }

    @Test func lineRestArgumentsAreDeclaredInTheTable() {
        let store = TestServer()
        #expect(execute(["set", "k", " two  words "], on: .line, encoding: .line, store: store) == "OK\n")
        #expect(store["k"] == " two  words ")
        #expect(execute(["put", "k", ""], on: .line, encoding: .line, store: store)
                == "ERR wrong number of arguments for 'put'\n")
    }

    @Test func oneCommandServesBothProtocols() {
        let store = TestServer(["a": "1"])
        #expect(execute(["get", "a"], on: .line, encoding: .line, store: store) == "1\n")
        #expect(execute(["GET", "a"], on: .resp, encoding: .resp2, store: store) == "$1\r\n1\r\n")
        #expect(execute(["count"], on: .line, encoding: .line, store: store) == "1\n")
        #expect(execute(["DBSIZE"], on: .resp, encoding: .resp2, store: store) == ":1\r\n")
        #expect(execute(["count"], on: .resp, encoding: .resp2, store: store).hasPrefix("-ERR unknown command 'count'"))
        #expect(execute(["dbsize"], on: .line, encoding: .line, store: store) == "ERR unknown command 'dbsize'\n")
        #expect(execute(["del", "a"], on: .line, encoding: .line, store: store) == "OK\n")
        #expect(execute(["del", "a"], on: .line, encoding: .line, store: store) == "ERR not found\n")
        #expect(execute(["DEL", "a"], on: .resp, encoding: .resp2, store: store) == ":0\r\n")
    }

    @Test func respCommandsUseRESP3TypesInRESP3() {
        let store = TestServer(["a": "1"])
        #expect(execute(["GET", "nope"], on: .resp, encoding: .resp3, store: store) == "_\r\n")
        #expect(execute(["MGET", "a", "nope"], on: .resp, encoding: .resp3, store: store) == "*2\r\n$1\r\n1\r\n_\r\n")
        #expect(execute(["SET", "a", "2", "NX"], on: .resp, encoding: .resp3, store: store) == "_\r\n")
        #expect(execute(["CLIENT", "GETNAME"], on: .resp, encoding: .resp3, store: store) == "_\r\n")
        #expect(execute(["CONFIG", "GET", "data*"], on: .resp, encoding: .resp3, store: store)
                == "%1\r\n$9\r\ndatabases\r\n$1\r\n1\r\n")
        #expect(execute(["COMMAND", "DOCS", "get"], on: .resp, encoding: .resp3, store: store) == "%1\r\n$3\r\nget\r\n%0\r\n")
        let hello = execute(["HELLO"], on: .resp, encoding: .resp3, store: store)
        #expect(hello.hasPrefix("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"))
        #expect(hello.contains("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:9\r\n"))
    }
}
