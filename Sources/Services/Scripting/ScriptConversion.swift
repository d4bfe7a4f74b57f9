// The two conversions of Redis 7.0's scripting (script_lua.c's redisProtocolToLuaType and
// luaReplyToRedisReply), rule for rule:
// - a command's reply (RESP2 or RESP3, as `redis.setresp` chose) to a Lua value: integer → number,
//   bulk → string, null bulk or null array → false, array → table, status → {ok=…}, error →
//   {err=…}; RESP3 null → nil, boolean → boolean, double → {double=…}, map → {map={…}}, set →
//   {set={k=true}}, big number → {big_number=…}, verbatim → {verbatim_string={format=, string=}};
// - a script's result to the caller's reply: string → bulk, number → integer (truncated), true →
//   1 and false → null (a RESP3 script: booleans), {err=…} → error, {ok=…} → status, {double=…},
//   {big_number=…}, {verbatim_string=…}, {map=…}, {set=…}, any other table → array up to its first
//   nil, anything else → null.
// Tables are read with raw accesses only (no metamethod may run here: see ScriptEngine.swift).

import CLua

enum ScriptConversion {
    // MARK: - Lua values

    /// The string at `index` (a number converted as Lua converts it), or nil.
    static func bytes(_ lua: OpaquePointer, _ index: Int32) -> [UInt8]? {
        var length = 0
        guard let pointer = lua_tolstring(lua, index, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// `t[name]` of the table on top, raw, when it is a string or number.
    static func field(_ lua: OpaquePointer, _ name: String) -> [UInt8]? {
        lua_pushstring(lua, name)
        lua_rawget(lua, -2)
        defer { clua_pop(lua, 1) }
        let type = lua_type(lua, -1)
        guard type == LUA_TSTRING || type == LUA_TNUMBER else { return nil }
        return Self.bytes(lua, -1)
    }

    /// A Lua number as C's `(long long)` cast gives it on x86-64 (out of range and NaN: the minimum).
    static func integer(_ value: Double) -> Int64 {
        guard value.isFinite, value >= -9.223372036854775808e18, value < 9.223372036854775808e18 else { return Int64.min }
        return Int64(value)
    }

    // MARK: - Lua result → reply

    /// How deep a result's tables may nest. Redis stops where Lua's stack runs out; here the
    /// conversion recurses on the loop thread's stack, so it stops well before either runs out.
    static let maximumDepth = 1000

    /// Writes the value on top of the stack as the reply and pops it.
    static func write(_ lua: OpaquePointer, to reply: inout ReplyWriter, scriptResp: Int, depth: Int = 0) {
        defer { clua_pop(lua, 1) }
        guard depth < Self.maximumDepth, lua_checkstack(lua, 4) != 0 else {
            return reply.rawError("ERR reached lua stack limit")
        }
        switch lua_type(lua, -1) {
        case LUA_TSTRING:
            var length = 0
            guard let pointer = lua_tolstring(lua, -1, &length) else { return reply.bulk(EmptyCollection<UInt8>()) }
            pointer.withMemoryRebound(to: UInt8.self, capacity: length) { reply.bulk(UnsafeBufferPointer(start: $0, count: length)) }
        case LUA_TBOOLEAN:
            let value = lua_toboolean(lua, -1) != 0
            if scriptResp == 2 {
                if value { reply.integer(1) } else { reply.null() }
            } else {
                reply.boolean(value)
            }
        case LUA_TNUMBER:
            Self.writeInteger(Self.integer(lua_tonumber(lua, -1)), to: &reply)
        case LUA_TTABLE:
            Self.writeTable(lua, to: &reply, scriptResp: scriptResp, depth: depth)
        default:
            reply.null()
        }
    }

    /// An integer reply, `:<n>` and CRLF built on the stack and appended at once (a script's
    /// most common result: the reply writer's general path appends it in three pieces).
    static func writeInteger(_ value: Int64, to reply: inout ReplyWriter) {
        guard reply.encoding != .line else { return reply.integer(value) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            var index = 22
            buffer[22] = ASCII.cr
            buffer[23] = ASCII.lf
            var magnitude = value.magnitude  // 19 digits at most, Int64.min's
            repeat {
                index -= 1
                buffer[index] = ASCII.zero &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                index -= 1
                buffer[index] = ASCII.minus
            }
            index -= 1
            buffer[index] = UInt8(ascii: ":")
            reply.output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index...]))
        }
    }

    private static func writeTable(_ lua: OpaquePointer, to reply: inout ReplyWriter, scriptResp: Int, depth: Int) {
        if Self.rawType(lua, "err") == LUA_TSTRING {
            return reply.rawError(bytes: Self.field(lua, "err") ?? [])
        }
        if Self.rawType(lua, "ok") == LUA_TSTRING {
            return reply.status(bytes: Self.field(lua, "ok") ?? [])
        }
        if Self.rawType(lua, "double") == LUA_TNUMBER {
            lua_pushstring(lua, "double")
            lua_rawget(lua, -2)
            let value = lua_tonumber(lua, -1)
            clua_pop(lua, 1)
            return Self.writeDouble(value, to: &reply)
        }
        if Self.rawType(lua, "big_number") == LUA_TSTRING {
            let digits = Self.field(lua, "big_number") ?? []
            guard reply.encoding == .resp3 else { return reply.bulk(digits) }
            reply.output.append(UInt8(ascii: "("))
            reply.output.appendSingleLine(digits)
            reply.output.append("\r\n")
            return
        }
        if Self.rawType(lua, "verbatim_string") == LUA_TTABLE {
            lua_pushstring(lua, "verbatim_string")
            lua_rawget(lua, -2)
            let format = Self.rawType(lua, "format") == LUA_TSTRING ? Self.field(lua, "format") : nil
            let text = Self.rawType(lua, "string") == LUA_TSTRING ? Self.field(lua, "string") : nil
            clua_pop(lua, 1)
            if let format, let text {
                guard reply.encoding == .resp3 else { return reply.bulk(text) }
                reply.output.append(UInt8(ascii: "="))
                reply.output.appendDecimal(text.count + 4)
                reply.output.append("\r\n")
                reply.output.append(contentsOf: (format + Array("   ".utf8)).prefix(3))
                reply.output.append(UInt8(ascii: ":"))
                reply.output.append(contentsOf: text)
                reply.output.append("\r\n")
                return
            }
        }
        if Self.rawType(lua, "map") == LUA_TTABLE {
            lua_pushstring(lua, "map")
            lua_rawget(lua, -2)
            reply.mapHeader(Self.pairCount(lua))
            lua_pushnil(lua)
            while lua_next(lua, -2) != 0 {
                lua_pushvalue(lua, -2)
                Self.write(lua, to: &reply, scriptResp: scriptResp, depth: depth + 1)  // the key
                Self.write(lua, to: &reply, scriptResp: scriptResp, depth: depth + 1)  // the value
            }
            clua_pop(lua, 1)
            return
        }
        if Self.rawType(lua, "set") == LUA_TTABLE {
            lua_pushstring(lua, "set")
            lua_rawget(lua, -2)
            reply.setHeader(Self.pairCount(lua))
            lua_pushnil(lua)
            while lua_next(lua, -2) != 0 {
                clua_pop(lua, 1)
                lua_pushvalue(lua, -1)
                Self.write(lua, to: &reply, scriptResp: scriptResp, depth: depth + 1)
            }
            clua_pop(lua, 1)
            return
        }
        var count: Int32 = 0
        while true {
            lua_rawgeti(lua, -1, count + 1)
            let isNil = lua_type(lua, -1) == LUA_TNIL
            clua_pop(lua, 1)
            if isNil { break }
            count += 1
        }
        reply.arrayHeader(Int(count))
        for i in 0..<count {
            lua_rawgeti(lua, -1, i + 1)
            Self.write(lua, to: &reply, scriptResp: scriptResp, depth: depth + 1)
        }
    }

    /// The type of `t[name]`, raw, for the table on top.
    private static func rawType(_ lua: OpaquePointer, _ name: String) -> Int32 {
        lua_pushstring(lua, name)
        lua_rawget(lua, -2)
        let type = lua_type(lua, -1)
        clua_pop(lua, 1)
        return type
    }

    /// The number of pairs of the table on top.
    private static func pairCount(_ lua: OpaquePointer) -> Int {
        var count = 0
        lua_pushnil(lua)
        while lua_next(lua, -2) != 0 {
            clua_pop(lua, 1)
            count += 1
        }
        return count
    }

    /// A double as Redis 7.0 writes it: `%.17g`, a bulk string in RESP2, `,` in RESP3.
    static func writeDouble(_ value: Double, to reply: inout ReplyWriter) {
        var text: [UInt8]
        if value.isInfinite {
            text = Array((value > 0 ? "inf" : "-inf").utf8)
        } else {
            text = [UInt8](repeating: 0, count: 40)
            let length = text.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { clua_format_double(value, $0.baseAddress, 40) }
            }
            text.removeSubrange(Int(length)...)
        }
        guard reply.encoding == .resp3 else { return reply.bulk(text) }
        reply.output.append(UInt8(ascii: ","))
        reply.output.append(contentsOf: text)
        reply.output.append("\r\n")
    }

    // MARK: - Command reply → Lua

    /// Reads one reply written by a command run from the script and pushes it as a Lua value.
    struct ReplyReader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0
        let lua: OpaquePointer
        /// Not retained: the engine is reading a reply for the script it runs, and outlives it.
        unowned(unsafe) let engine: ScriptEngine

        init(bytes: UnsafeBufferPointer<UInt8>, lua: OpaquePointer, engine: ScriptEngine) {
            self.bytes = bytes
            self.lua = lua
            self.engine = engine
        }

        /// Pushes the next reply (or, with `push` false, skips it: RESP3 attributes).
        mutating func read(push: Bool = true) {
            let lua = self.lua
            guard self.position < self.bytes.count else {
                if push { lua_pushnil(lua) }
                return
            }
            let type = self.bytes[self.position]
            // The replies most commands give, an integer or a bulk string, without the general
            // line scan and parse. They push one value: a reply read at the top has the stack the
            // C function was given (LUA_MINSTACK slots), one inside an aggregate the room its
            // parent checked below.
            if push && (type == UInt8(ascii: ":") || type == UInt8(ascii: "$")), let value = self.decimalLine() {
                if type == UInt8(ascii: ":") { return lua_pushnumber(lua, Double(value)) }
                guard value >= 0 else { return lua_pushboolean(lua, 0) }
                let length = Int(value)
                guard self.bytes.count - self.position >= length else {
                    // Cut short (never, from a command): what the general path would push.
                    let body = UnsafeBufferPointer(rebasing: self.bytes[self.position...])
                    self.position = self.bytes.count
                    return body.withMemoryRebound(to: CChar.self) { lua_pushlstring(lua, $0.baseAddress, $0.count) }
                }
                let body = self.bytes.baseAddress! + self.position
                self.position += length + 2
                return body.withMemoryRebound(to: CChar.self, capacity: length) { lua_pushlstring(lua, $0, length) }
            }
            _ = lua_checkstack(lua, 5)
            let line = self.line()
            switch type {
            case UInt8(ascii: ":"):
                if push { lua_pushnumber(lua, Double(ASCII.parseInteger(line) ?? 0)) }
            case UInt8(ascii: "$"), UInt8(ascii: "="):
                let length = Int(ASCII.parseInteger(line) ?? -1)
                guard length >= 0 else {
                    if push { lua_pushboolean(lua, 0) }
                    return
                }
                let body = self.bytes[self.position..<min(self.position + length, self.bytes.count)]
                self.position += length + 2
                guard push else { return }
                if type == UInt8(ascii: "$") {
                    UnsafeBufferPointer(rebasing: body).withMemoryRebound(to: CChar.self) { lua_pushlstring(lua, $0.baseAddress, $0.count) }
                } else {
                    self.pushVerbatim(Array(body))
                }
            case UInt8(ascii: "+"):
                guard push else { return }
                self.pushSingleField("ok", Array(line))
            case UInt8(ascii: "-"):
                guard push else { return }
                self.engine.pushError([ASCII.minus] + Array(line))
                lua_pushstring(lua, "ignore_error_stats_update")
                lua_pushboolean(lua, 1)
                lua_rawset(lua, -3)
            case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
                let count = Int(ASCII.parseInteger(line) ?? -1)
                guard count >= 0 else {
                    if push { lua_pushboolean(lua, 0) }
                    return
                }
                if type == UInt8(ascii: "~") {
                    self.readSet(count, push: push)
                } else {
                    if push { lua_createtable(lua, Int32(count), 0) }
                    for i in 0..<count {
                        self.read(push: push)
                        if push { lua_rawseti(lua, -2, Int32(i + 1)) }
                    }
                }
            case UInt8(ascii: "%"):
                let count = Int(ASCII.parseInteger(line) ?? 0)
                if push {
                    clua_newtable(lua)
                    lua_pushstring(lua, "map")
                    clua_newtable(lua)
                }
                for _ in 0..<count {
                    self.read(push: push)
                    self.read(push: push)
                    if push { Self.rawSetUnlessNilKey(lua) }
                }
                if push { lua_rawset(lua, -3) }
            case UInt8(ascii: "|"):
                let count = Int(ASCII.parseInteger(line) ?? 0)
                for _ in 0..<(2 * count) { self.read(push: false) }
                self.read(push: push)
            case UInt8(ascii: "_"):
                if push { lua_pushnil(lua) }
            case UInt8(ascii: "#"):
                if push { lua_pushboolean(lua, line.first == UInt8(ascii: "t") ? 1 : 0) }
            case UInt8(ascii: ","):
                guard push else { return }
                let value = Double(String(decoding: line, as: UTF8.self)) ?? 0
                clua_newtable(lua)
                lua_pushstring(lua, "double")
                lua_pushnumber(lua, value)
                lua_rawset(lua, -3)
            case UInt8(ascii: "("):
                guard push else { return }
                self.pushSingleField("big_number", Array(line))
            default:
                if push { lua_pushnil(lua) }
            }
        }

        /// The decimal number after the current line's type byte, when the line is only that
        /// (an optional minus, 1 to 18 digits, CRLF): moves past the line. - Returns: nil, having
        /// moved nowhere, for any other line.
        private mutating func decimalLine() -> Int64? {
            let count = self.bytes.count
            guard let base = self.bytes.baseAddress else { return nil }
            var index = self.position + 1
            let negative = index < count && base[index] == ASCII.minus
            if negative { index += 1 }
            let first = index
            var value: Int64 = 0
            while index < count {
                let digit = base[index] &- ASCII.zero
                guard digit < 10 else { break }
                value = value &* 10 &+ Int64(digit)
                index += 1
            }
            guard index > first, index - first <= 18, index + 1 < count, base[index] == ASCII.cr, base[index + 1] == ASCII.lf
            else { return nil }
            self.position = index + 2
            return negative ? -value : value
        }

        /// The rest of the current line after its type byte; moves past its CRLF.
        private mutating func line() -> Slice<UnsafeBufferPointer<UInt8>> {
            let start = self.position + 1
            var end = start
            while end + 1 < self.bytes.count && !(self.bytes[end] == ASCII.cr && self.bytes[end + 1] == ASCII.lf) { end += 1 }
            self.position = min(end + 2, self.bytes.count)
            return self.bytes[start..<min(end, self.bytes.count)]
        }

        private func pushSingleField(_ name: String, _ value: [UInt8]) {
            let lua = self.lua
            clua_newtable(lua)
            lua_pushstring(lua, name)
            self.engine.push(value)
            lua_rawset(lua, -3)
        }

        private func pushVerbatim(_ body: [UInt8]) {
            let lua = self.lua
            clua_newtable(lua)
            lua_pushstring(lua, "verbatim_string")
            clua_newtable(lua)
            lua_pushstring(lua, "string")
            self.engine.push(Array(body.dropFirst(4)))
            lua_rawset(lua, -3)
            lua_pushstring(lua, "format")
            self.engine.push(Array(body.prefix(3)))
            lua_rawset(lua, -3)
            lua_rawset(lua, -3)
        }

        private mutating func readSet(_ count: Int, push: Bool) {
            let lua = self.lua
            if push {
                clua_newtable(lua)
                lua_pushstring(lua, "set")
                clua_newtable(lua)
            }
            for _ in 0..<count {
                self.read(push: push)
                if push {
                    lua_pushboolean(lua, 1)
                    Self.rawSetUnlessNilKey(lua)
                }
            }
            if push { lua_rawset(lua, -3) }
        }

        /// `t[k] = v` for t, k, v on top, popping k and v; a nil key (which Lua refuses) is dropped.
        private static func rawSetUnlessNilKey(_ lua: OpaquePointer) {
            if lua_type(lua, -2) == LUA_TNIL {
                clua_pop(lua, 2)
            } else {
                lua_rawset(lua, -3)
            }
        }
    }
}
