// Redis 7.0's script sandbox on a stock Lua 5.1. Redis patches its Lua with readonly tables; here
// the same rules come from proxies: the globals scripts see, and each library table, are empty
// tables whose metatable reads through to the real table and refuses writes ("Attempt to modify a
// readonly table"), and reading a global that does not exist is an error ("Script attempted to
// access nonexistent global variable"). Only Redis's allowed globals are kept (no print, dofile,
// loadfile, getfenv, setfenv, newproxy, os, io, package, debug: Redis 7.0.15 as Debian ships it).
// `pcall` returns a redis.call error's text, as Redis's does; the error handler turns any error
// into Redis's {err=, source=, line=} table.

import CLua

extension ScriptEngine {
    /// Builds the `redis` table and the sandbox, and makes the protected globals the state's.
    func installSandbox() {
        let lua = self.lua
        clua_newtable(lua)
        let functions: [(String, LuaAPI)] = [
            ("call", .call), ("pcall", .pcall), ("sha1hex", .sha1hex), ("error_reply", .errorReply),
            ("status_reply", .statusReply), ("log", .log), ("setresp", .setResp), ("set_repl", .setRepl),
            ("replicate_commands", .replicateCommands), ("acl_check_cmd", .aclCheckCommand),
        ]
        for (name, api) in functions {
            clua_push_function(lua, api.rawValue)
            lua_setfield(lua, -2, name)
        }
        let numbers: [(String, Double)] = [
            ("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3),
            ("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3),
            ("REDIS_VERSION_NUM", Double(Self.versionNumber)),
        ]
        for (name, value) in numbers {
            lua_pushnumber(lua, value)
            lua_setfield(lua, -2, name)
        }
        lua_pushstring(lua, Self.version)
        lua_setfield(lua, -2, "REDIS_VERSION")
        lua_setfield(lua, clua_globalsindex(), "redis")
        lua_pushvalue(lua, clua_globalsindex())
        lua_setfield(lua, clua_registryindex(), Self.globalsKey)
        let status = Self.sandboxSource.withCString { luaL_loadbuffer(lua, $0, Self.sandboxSource.utf8.count, "=sandbox") }
        guard status == 0 else { fatalError("the script sandbox failed: \(self.popString())") }
        clua_push_guard_factory(lua)
        clua_push_function(lua, LuaAPI.registerFunction.rawValue)
        guard lua_pcall(lua, 2, 5, 0) == 0 else { fatalError("the script sandbox failed: \(self.popString())") }
        // Results: the protected globals, the error handler, the functions' environment, its
        // metatable, and what a library sees while FUNCTION LOAD runs it.
        lua_setfield(lua, clua_registryindex(), Self.loadAPIKey)
        lua_setfield(lua, clua_registryindex(), Self.functionMetaKey)
        lua_setfield(lua, clua_registryindex(), Self.functionEnvironmentKey)
        self.errorHandler = luaL_ref(lua, clua_registryindex())
        lua_replace(lua, clua_globalsindex())
    }

    /// The version scripts see (`redis.REDIS_VERSION`): the Redis release whose behaviour this follows.
    static let version = "7.0.15"
    static let loadAPIKey = "reactord.loadAPI"
    static let functionMetaKey = "reactord.functionMeta"
    static let functionEnvironmentKey = "reactord.functionEnvironment"
    static let versionNumber = 0x07_00_0F

    /// Pushes the error handler and the cached script's function.
    func pushScript(_ script: CachedScript) {
        lua_rawgeti(self.lua, clua_registryindex(), self.errorHandler)
        lua_rawgeti(self.lua, clua_registryindex(), script.function)
    }

    /// Sets EVAL's global `name` (KEYS, ARGV) to an array of strings, past the protection. The
    /// table of the last call is refilled (no new table per call, as Redis makes) unless the script
    /// left it other than it was given: with keys past those set, or a metatable. Nothing else can
    /// hold it: the globals are readonly, so a script cannot keep it for a later one.
    /// - Returns: the table's reference and count, for the next call.
    func setGlobalArray(_ reused: ReusedArray, _ name: String, _ count: Int, _ element: (Int) -> ArraySlice<UInt8>) -> ReusedArray {
        let lua = self.lua
        var array = reused
        if array.reference != LUA_NOREF {
            lua_rawgeti(lua, clua_registryindex(), array.reference)
            for i in 0..<count {
                self.push(element(i))
                lua_rawseti(lua, -2, Int32(i + 1))
            }
            for i in count..<max(count, array.count) {
                lua_pushnil(lua)
                lua_rawseti(lua, -2, Int32(i + 1))
            }
            // Anything after the last element set (array slots, then the hash part) makes it dirty.
            if count == 0 { lua_pushnil(lua) } else { lua_pushinteger(lua, count) }
            var clean = lua_next(lua, -2) == 0
            if !clean { clua_pop(lua, 2) }
            if lua_getmetatable(lua, -1) != 0 {
                clua_pop(lua, 1)
                clean = false
            }
            clua_pop(lua, 1)
            if clean {
                array.count = count
                return array
            }
            luaL_unref(lua, clua_registryindex(), array.reference)
            array.reference = LUA_NOREF
        }
        lua_getfield(lua, clua_registryindex(), Self.globalsKey)
        self.pushArray(count, element)
        lua_pushvalue(lua, -1)
        array.reference = luaL_ref(lua, clua_registryindex())
        array.count = count
        lua_setfield(lua, -2, name)
        clua_pop(lua, 1)
        return array
    }

    private static let sandboxSource = #"""
        local guard, register = ...
        local G = _G
        local dbg = G.debug
        local rawpcall, rawrawset, rawsetmetatable = pcall, rawset, setmetatable
        local type, tostring, error, rawget, pairs, ipairs, setfenv = type, tostring, error, rawget, pairs, ipairs, setfenv
        local allowed = {}
        for _, name in ipairs({'string', 'cjson', 'bit', 'cmsgpack', 'math', 'table', 'struct', 'redis',
            'xpcall', 'tostring', 'setmetatable', 'next', 'assert', 'tonumber', 'rawequal',
            'collectgarbage', 'getmetatable', 'rawset', 'pcall', 'coroutine', 'type', '_G', 'select', 'unpack',
            'gcinfo', 'pairs', 'rawget', 'loadstring', 'ipairs', '_VERSION', 'load', 'error'}) do allowed[name] = true end
        local removed = {}
        for name in pairs(G) do if not allowed[name] then removed[#removed + 1] = name end end
        for _, name in ipairs(removed) do G[name] = nil end

        local function handler(err)
            local level = 2
            local info = dbg.getinfo(level, 'nSl')
            while info and (info.what == 'C' or info.source == '=sandbox') do
                -- The sandbox's pcall returns through a tail call: its caller is past that frame.
                local sandbox = info.source == '=sandbox'
                level = level + 1
                info = dbg.getinfo(level, 'nSl')
                if sandbox and info and info.what == 'tail' then
                    level = level + 1
                    info = dbg.getinfo(level, 'nSl')
                end
            end
            if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
            if info then
                err['source'] = info.source
                err['line'] = info.currentline
            end
            return err
        end

        local function unwrap(ok, ...)
            if ok then return true, ... end
            local err = ...
            if type(err) == 'table' then
                local text = rawget(err, 'err')
                if type(text) == 'string' or type(text) == 'number' then err = text end
            end
            return false, err
        end
        G.pcall = function(f, ...) return unwrap(rawpcall(f, ...)) end

        local readonly = {}
        local function refuse() error('Attempt to modify a readonly table', 2) end
        local function protect(t, shown)
            local proxy = {}
            local meta = {__index = t, __newindex = refuse, __metatable = false}
            if shown ~= nil then meta.__metatable = shown end
            rawsetmetatable(proxy, meta)
            readonly[proxy] = true
            return proxy
        end
        G.rawset = guard(rawrawset, readonly)
        G.setmetatable = guard(rawsetmetatable, readonly)
        G.__redis__err__handler = handler
        local function nonexistent(_, name)
            error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
        end
        -- While FUNCTION LOAD runs a library, its globals are only `redis` with register_function,
        -- log and the versions (Redis's library API).
        local loading = {register_function = register}
        for _, name in ipairs({'log', 'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING', 'REDIS_VERSION',
            'REDIS_VERSION_NUM'}) do loading[name] = G.redis[name] end
        rawsetmetatable(loading, {__index = nonexistent, __metatable = false})
        for _, name in ipairs({'string', 'math', 'table', 'cjson', 'bit', 'coroutine', 'redis'}) do
            G[name] = protect(G[name])
        end
        local strings = getmetatable('')
        strings.__index = G.string
        strings.__metatable = protect(strings)

        -- Redis's Lua refuses precompiled chunks: one is read as text, and fails as text does.
        local rawloadstring, concat, find, sub = loadstring, table.concat, string.find, string.sub
        local function safeloadstring(source, name)
            if type(source) == 'string' and sub(source, 1, 1) == '\27' then
                local line = sub(source, 1, (find(source, '[%z\r\n]') or #source + 1) - 1)
                return nil, '[string "' .. line .. '"]:1: unexpected symbol near \'char(27)\''
            end
            return rawloadstring(source, name)
        end
        G.loadstring = safeloadstring
        G.load = function(reader, name)
            local pieces = {}
            while true do
                local piece = reader()
                if piece == nil or piece == '' then break end
                pieces[#pieces + 1] = piece
            end
            return safeloadstring(concat(pieces), name)
        end
        rawsetmetatable(G, {__index = nonexistent, __metatable = false})
        -- What getmetatable(_G) shows, as Redis's: a readonly table whose __index raises.
        local globals = protect(G, protect({__index = nonexistent}))
        G._G = globals
        for _, f in ipairs({handler, G.pcall, safeloadstring, G.load}) do setfenv(f, globals) end
        local library = {redis = protect(loading)}
        rawsetmetatable(library, {__index = nonexistent, __metatable = false})
        -- Libraries' code runs in this environment: its metatable reads the library API during
        -- FUNCTION LOAD and the globals when a function is called.
        local functionMeta = {__index = globals, __newindex = refuse, __metatable = false}
        local functionEnvironment = rawsetmetatable({}, functionMeta)
        readonly[functionEnvironment] = true
        return globals, handler, functionEnvironment, functionMeta, protect(library)
        """#
}
