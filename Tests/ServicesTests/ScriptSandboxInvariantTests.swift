// What must hold between script calls whatever a script did (ScriptEngine+Invariants.swift, which
// the scripts fuzz target also checks): nothing left on Lua's stack and the sandbox as built, after
// scripts that try to change it, fail half-way or leave KEYS and ARGV dirty; and Lua's heap stays
// bounded when scripts allocate, with the collection steps sized by what they allocated
// (ScriptEngine.collectGarbageNow).

import CLua
@testable import Services
import Testing

@Suite struct ScriptSandboxInvariantTests {
    func eval(_ script: String, _ arguments: [String] = ["0"], _ server: TestServer) -> String {
        execute(["EVAL", script] + arguments, on: .resp, encoding: .resp2, store: server)
    }

    @Test func scriptsLeaveNeitherStackNorSandboxChanged() {
        let server = TestServer(["k": "1"])
        #expect(self.eval("return redis.call('GET', KEYS[1])", ["1", "k"], server) == "$1\r\n1\r\n")
        let engine = server.state.scripts
        let baseline = engine.sandboxFingerprint()
        #expect(baseline.contains { $0.hasPrefix("redis->call = function") }, "\(baseline.prefix(5))")
        #expect(baseline.contains { $0.hasPrefix("string->format = function") })
        // Each tries to change the sandbox, fails half-way, or leaves KEYS/ARGV other than given.
        let attempts: [(String, [String], String)] = [
            ("x = 1", ["0"], "Attempt to modify a readonly table"),
            ("redis.call = nil", ["0"], "Attempt to modify a readonly table"),
            ("setmetatable(_G, {})", ["0"], "Attempt to modify a readonly table"),
            ("rawset(string, 'x', 1)", ["0"], "Attempt to modify a readonly table"),
            ("KEYS = {}", ["0"], "Attempt to modify a readonly table"),
            ("KEYS[3] = 'x' setmetatable(ARGV, {}) return #KEYS", ["1", "k", "a"], ":1\r\n"),
            ("redis.call('SET', KEYS[1], 'v') redis.call('NOSUCH')", ["1", "k"], "Unknown Redis command called from script"),
            ("return {pcall(redis.call, 'INCR', 'k'), redis.pcall('INCR', 'k')}", ["0"], "*2\r\n"),
            ("local t = {} for i = 1, 200 do t[i] = {i} end return #t", ["0"], ":200\r\n"),
            ("return loadstring('return os')()", ["0"], "-ERR"),
            ("error({err = 'ERR mine'})", ["0"], "-ERR mine"),
        ]
        for (script, arguments, expected) in attempts {
            let reply = self.eval(script, arguments, server)
            #expect(reply.contains(expected), "\(script): \(reply)")
            #expect(engine.stackDepth == 0, "\(script)")
            #expect(engine.run == nil, "\(script)")
            #expect(engine.sandboxFingerprint() == baseline, "\(script)")
        }
        // The check sees a change made past the protection (from C, as no script can).
        lua_getfield(engine.lua, clua_registryindex(), ScriptEngine.globalsKey)
        lua_pushstring(engine.lua, "intruder")
        lua_pushnumber(engine.lua, 1)
        lua_rawset(engine.lua, -3)
        lua_settop(engine.lua, 0)
        let changed = engine.sandboxFingerprint()
        #expect(changed != baseline && changed.contains("intruder = number 1.0"), "\(changed.count)")
    }

    @Test func luaHeapStaysBoundedWhileScriptsAllocate() {
        let server = TestServer()
        let engine = server.state.scripts
        _ = self.eval("return 1", ["0"], server)
        let start = engine.luaBytes
        // 2,000 calls allocating 20 KB each: 40 MB in all, collected as they go.
        for i in 0..<2000 {
            let reply = self.eval("local s = string.rep(ARGV[1], 20000) return #s", ["0", String(i % 10)], server)
            guard reply == ":20000\r\n" else {
                Issue.record("call \(i): \(reply)")
                return
            }
        }
        #expect(engine.luaBytes < start + 4 << 20, "Lua holds \(engine.luaBytes) bytes, \(start) at the start")
        #expect(engine.stackDepth == 0)
    }
}
