// What must hold between two script calls, for the fuzz target of scripts (Fuzz/Sources/FuzzScripts)
// and tests to check: nothing left on Lua's stack, no script running, and the sandbox as it was
// built (no global added, removed or replaced, no library table changed), whatever the last script
// did or failed to do. Raw accesses only (no metamethod runs: see ScriptEngine.swift).

import CLua

extension ScriptEngine {
    /// Values left on Lua's stack: 0 between calls.
    var stackDepth: Int { Int(lua_gettop(self.lua)) }

    /// One line per global of the sandbox (name, type, identity or value) and per entry of the table
    /// each global table reads through to (its own entries and its metatable's `__index` table's), sorted.
    /// KEYS and ARGV are left out (every EVAL refills them), and `_G` is not followed (it reads
    /// through to the globals themselves).
    func sandboxFingerprint() -> [String] {
        let lua = self.lua
        lua_getfield(lua, clua_registryindex(), Self.globalsKey)
        let lines = self.describeEntries(prefix: "") { lua, name in
            guard name != "_G", lua_type(lua, -1) == LUA_TTABLE else { return [] }
            // The table itself (a library, or its readonly proxy) and what a proxy reads through to.
            var lines = self.describeEntries(prefix: name + ".", nested: nil)
            if lua_getmetatable(lua, -1) != 0 {
                lua_pushstring(lua, "__index")
                lua_rawget(lua, -2)
                if lua_type(lua, -1) == LUA_TTABLE { lines += self.describeEntries(prefix: name + "->", nested: nil) }
                clua_pop(lua, 2)
            }
            return lines
        }
        clua_pop(lua, 1)
        return lines.sorted()
    }

    /// A line for each entry of the table on top of the stack (left there) but KEYS and ARGV, and
    /// what `nested` returns for each such entry, called with the entry's value on top.
    private func describeEntries(prefix: String, nested: ((OpaquePointer, String) -> [String])?) -> [String] {
        let lua = self.lua
        var lines: [String] = []
        lua_pushnil(lua)
        while lua_next(lua, -2) != 0 {
            // Keys are read without lua_tolstring on a number, which would convert it in place and
            // derail lua_next.
            let name = lua_type(lua, -2) == LUA_TSTRING ? self.string(at: -2) : "[\(Self.describe(lua, -2))]"
            if name != "KEYS" && name != "ARGV" {
                lines.append(prefix + name + " = " + Self.describe(lua, -1))
                if let nested { lines += nested(lua, name) }
            }
            clua_pop(lua, 1)
        }
        return lines
    }

    /// A value's type and identity (tables, functions, userdata) or value (numbers, strings, booleans).
    private static func describe(_ lua: OpaquePointer, _ index: Int32) -> String {
        let type = lua_type(lua, index)
        let typeName = String(cString: lua_typename(lua, type))
        switch type {
        case LUA_TNUMBER: return typeName + " \(lua_tonumber(lua, index))"
        case LUA_TBOOLEAN: return typeName + " \(lua_toboolean(lua, index) != 0)"
        case LUA_TSTRING:
            var length = 0
            let pointer = lua_tolstring(lua, index, &length)!
            return typeName + " " + String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
        default: return typeName + " \(lua_topointer(lua, index).map { UInt(bitPattern: $0) } ?? 0)"
        }
    }
}
