// redis.call's arguments pass through buffers the engine keeps from call to call
// (ScriptEngine+API.swift: collectArguments, redisCall): each call must see exactly its own
// arguments whatever the calls before it left there (longer ones, more of them, a buffer grown
// past the kept limit, a call refused half-way).

@testable import Services
import Testing

@Suite struct ScriptCallArgumentTests {
    func eval(_ script: String, _ arguments: [String], _ server: TestServer) -> String {
        execute(["EVAL", script] + arguments, on: .resp, encoding: .resp2, store: server)
    }

    @Test func eachCallSeesItsOwnArguments() {
        let server = TestServer()
        let roundTrip = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
        // Around the first growth (256 bytes), past the kept limit (64 KB), and short after long.
        let sizes = [3, 0, 1, 255, 256, 257, 5_000, 70_000, 2, 40_000, 1, 0]
        for (i, size) in sizes.enumerated() {
            let value = String(repeating: Character(Unicode.Scalar(UInt8(97 + i % 26))), count: size)
            #expect(self.eval(roundTrip, ["1", "k\(i)", value], server) == "$\(size)\r\n\(value)\r\n", "size \(size)")
        }
        // Many arguments of mixed lengths in one call, then fewer in the next.
        let keys = (0..<150).map { "key" + String(repeating: "k", count: $0 % 23) + "\($0)" }
        let values = (0..<150).map { String(repeating: "v", count: $0 % 37) + "\($0)" }
        let pairs = zip(keys, values).flatMap { [$0, $1] }
        #expect(self.eval("return redis.call('MSET', unpack(ARGV))", ["0"] + pairs, server) == "+OK\r\n")
        let read = self.eval("return redis.call('MGET', unpack(KEYS))", ["150"] + keys, server)
        #expect(read == "*150\r\n" + values.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined())
        #expect(self.eval("return redis.call('GET', KEYS[1])", ["1", keys[149]], server) == "$\(values[149].utf8.count)\r\n\(values[149])\r\n")
        // Numbers as Redis formats them (%.17g), beside strings in one call.
        #expect(self.eval("redis.call('SET', KEYS[1], 0.1) return redis.call('GET', KEYS[1])", ["1", "n"], server)
            == "$19\r\n0.10000000000000001\r\n")
        #expect(self.eval("return redis.call('MSET', 'a', 7, 'bb', 'x')", ["0"], server) == "+OK\r\n")
        #expect(self.eval("return redis.call('MGET', 'a', 'bb')", ["0"], server) == "*2\r\n$1\r\n7\r\n$1\r\nx\r\n")
        // Refused half-way (a table argument) or refused whole (unknown, wrong arity): the next
        // call still sees its own arguments.
        let refusals = [
            ("return redis.pcall('SET', KEYS[1], 'long value that stays behind', {})",
             "-ERR Lua redis lib command arguments must be strings or integers"),
            ("return redis.pcall('NOSUCH', KEYS[1], 'another long value')", "-ERR Unknown Redis command called from script"),
            ("return redis.pcall('GET', KEYS[1], 'extra')", "-ERR Wrong number of args calling Redis command from script"),
        ]
        for (script, expected) in refusals {
            #expect(self.eval(script, ["1", "r"], server).hasPrefix(expected), "\(script)")
            #expect(self.eval("return redis.call('ECHO', ARGV[1])", ["0", "ok"], server) == "$2\r\nok\r\n", "after \(script)")
        }
    }
}
