// Redis 7's functions (functions.c, function_lua.c): FUNCTION LOAD runs `#!lua name=<library>` code
// whose globals are only Redis's library API (`redis.register_function`, `redis.log`, the versions);
// each registered function keeps a registry reference and is called by FCALL with (keys, args) and
// the ordinary globals. The registry the FUNCTION subcommands read is FunctionLibraries.

import CLua

/// One function of a library.
struct LibraryFunction {
    let name: [UInt8]
    let description: [UInt8]?
    let flags: ScriptFlags
    /// The callback's reference in the Lua registry.
    let reference: Int32
}

/// One loaded library: its name, code (with its shebang) and functions in registration order.
struct Library {
    let name: [UInt8]
    let code: [UInt8]
    var functions: [LibraryFunction]
}

/// The loaded libraries, in load order. Function names are case-insensitive, library names not, as Redis's.
struct FunctionLibraries {
    private(set) var libraries: [Library] = []

    var functionCount: Int { self.libraries.reduce(0) { $0 + $1.functions.count } }

    /// Whether two names are the same, ignoring ASCII case.
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { ASCII.lowercased($0) == ASCII.lowercased($1) }
    }

    func library(named name: [UInt8]) -> Library? { self.libraries.first { $0.name == name } }

    func function(named name: [UInt8]) -> LibraryFunction? {
        for library in self.libraries {
            if let function = library.functions.first(where: { Self.same($0.name, name) }) { return function }
        }
        return nil
    }

    mutating func add(_ library: Library) { self.libraries.append(library) }

    /// Removes the library called `name`. - Returns: it, or nil when absent.
    mutating func remove(named name: [UInt8]) -> Library? {
        guard let index = self.libraries.firstIndex(where: { $0.name == name }) else { return nil }
        return self.libraries.remove(at: index)
    }

    mutating func removeAll() -> [Library] {
        defer { self.libraries = [] }
        return self.libraries
    }
}

extension ScriptEngine {
    /// Letters, digits and underscores, at least one (Redis's functionsVerifyName).
    static func isValidName(_ name: [UInt8]) -> Bool {
        !name.isEmpty && name.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
        }
    }

    /// FUNCTION LOAD: compiles and runs `code`, keeping the functions it registers.
    /// - Returns: the library's name, or the error text (without its leading `-`).
    ///
    /// A library's code only registers functions: one that runs longer than Redis's limit (500 ms,
    /// by `now`) is stopped, so that FUNCTION LOAD of a loop cannot hang the server.
    func loadLibrary(
        _ code: [UInt8], replace: Bool, now: @escaping () -> (seconds: Int, microseconds: Int)
    ) -> Result<[UInt8], ShebangError> {
        guard code.starts(with: Array("#!".utf8)) else { return .failure(ShebangError("ERR Missing library metadata")) }
        guard let end = code.firstIndex(of: ASCII.lf) else { return .failure(ShebangError("ERR Invalid library metadata")) }
        guard let parts = Self.splitArguments(code[..<end]), let first = parts.first else {
            return .failure(ShebangError("ERR Invalid library metadata"))
        }
        var name: [UInt8]?
        for part in parts.dropFirst() {
            guard part.count >= 5, ASCII.equalsIgnoringCase(part[..<5], "name=") else {
                return .failure(ShebangError("ERR Invalid metadata value given: " + String(decoding: part, as: UTF8.self)))
            }
            guard name == nil else {
                return .failure(ShebangError("ERR Invalid metadata value, name argument was given multiple times"))
            }
            name = Array(part.dropFirst(5))
        }
        guard let name else { return .failure(ShebangError("ERR Library name was not given")) }
        guard Self.isValidName(name) else { return .failure(ShebangError("ERR " + Self.invalidName)) }
        let engine = first.dropFirst(2)
        guard ASCII.equalsIgnoringCase(engine, "lua") else {
            return .failure(ShebangError("ERR Engine '" + String(decoding: engine, as: UTF8.self) + "' not found"))
        }
        if self.libraries.library(named: name) != nil && !replace {
            return .failure(ShebangError("ERR Library '" + String(decoding: name, as: UTF8.self) + "' already exists"))
        }
        var registered: [LibraryFunction] = []
        let start = now()
        self.loadDeadline = (now, start.seconds * 1_000_000 + start.microseconds + 500_000)
        clua_set_interrupt_hook(self.lua, LuaAPI.loadTimeout.rawValue, 100_000)
        let failure = self.runLibrary(Array(code[end...]), into: &registered)
        clua_set_interrupt_hook(self.lua, LuaAPI.loadTimeout.rawValue, 0)
        self.loadDeadline = nil
        if let error = failure {
            self.release(registered)
            return .failure(ShebangError(error))
        }
        if registered.isEmpty { return .failure(ShebangError("ERR No functions registered")) }
        for function in registered {
            if let owner = self.libraries.libraries.first(where: {
                $0.functions.contains { FunctionLibraries.same($0.name, function.name) }
            }), owner.name != name {
                self.release(registered)
                return .failure(ShebangError("ERR Function " + String(decoding: function.name, as: UTF8.self) + " already exists"))
            }
        }
        if let old = self.libraries.remove(named: name) { self.release(old.functions) }
        self.libraries.add(Library(name: name, code: code, functions: registered))
        return .success(name)
    }

    static let invalidName =
        "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"

    /// Compiles `body` in the functions' environment and runs it with the library API as its
    /// globals. - Returns: nil, or the error text.
    private func runLibrary(_ body: [UInt8], into registered: inout [LibraryFunction]) -> String? {
        let lua = self.lua
        let status = body.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { luaL_loadbuffer(lua, $0.baseAddress, $0.count, "@user_function") }
        }
        if status != 0 { return "ERR Error compiling function: " + self.popString() }
        lua_getfield(lua, clua_registryindex(), Self.functionEnvironmentKey)
        _ = lua_setfenv(lua, -2)
        self.setFunctionGlobals(Self.loadAPIKey)
        self.loading = []
        let failed = lua_pcall(lua, 0, 0, 0) != 0
        registered = self.loading ?? []
        self.loading = nil
        self.setFunctionGlobals(Self.globalsKeyForFunctions)
        guard failed else { return nil }
        var message: [UInt8]
        if lua_type(lua, -1) == LUA_TTABLE {
            message = ScriptConversion.field(lua, "err") ?? []
        } else {
            message = Array("ERR ".utf8) + self.bytes(at: -1)
        }
        clua_pop(lua, 1)
        return "ERR Error registering functions: " + String(decoding: message, as: UTF8.self)
    }

    /// The key of the table the functions' environment reads when a function runs.
    static let globalsKeyForFunctions = "reactord.protectedGlobals"

    /// Points the functions' environment at the table stored under `key`.
    private func setFunctionGlobals(_ key: String) {
        lua_getfield(self.lua, clua_registryindex(), Self.functionMetaKey)
        if key == Self.globalsKeyForFunctions {
            lua_pushvalue(self.lua, clua_globalsindex())
        } else {
            lua_getfield(self.lua, clua_registryindex(), key)
        }
        lua_setfield(self.lua, -2, "__index")
        clua_pop(self.lua, 1)
    }

    /// Drops the registry references of `functions`.
    func release(_ functions: [LibraryFunction]) {
        for function in functions { luaL_unref(self.lua, clua_registryindex(), function.reference) }
    }

    /// redis.register_function(name, callback) or ({function_name=, callback=, flags=, description=}).
    func registerFunction(_ lua: OpaquePointer) -> Int32 {
        guard self.loading != nil else {
            return self.fail("redis.register_function can only be called on FUNCTION LOAD command")
        }
        let count = lua_gettop(lua)
        guard count == 1 || count == 2 else { return self.fail("wrong number of arguments to redis.register_function") }
        var name: [UInt8]?
        var description: [UInt8]?
        var flags: ScriptFlags = []
        var hasCallback = false
        if count == 2 {
            guard lua_type(lua, 1) == LUA_TSTRING || lua_type(lua, 1) == LUA_TNUMBER else {
                return self.fail("first argument to redis.register_function must be a string")
            }
            name = self.bytes(at: 1)
            guard lua_type(lua, 2) == LUA_TFUNCTION else {
                return self.fail("second argument to redis.register_function must be a function")
            }
            lua_pushvalue(lua, 2)
            hasCallback = true
        } else {
            guard lua_type(lua, 1) == LUA_TTABLE else {
                return self.fail(
                    "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
            }
            lua_settop(lua, 2)  // slot 2 keeps the callback
            lua_pushnil(lua)
            while lua_next(lua, 1) != 0 {
                // Stack: table, callback, key, value. An error leaves them: raising unwinds the stack.
                guard lua_type(lua, -2) == LUA_TSTRING else {
                    return self.fail("named argument key given to redis.register_function is not a string")
                }
                let key = String(decoding: ScriptConversion.bytes(lua, -2) ?? [], as: UTF8.self).lowercased()
                let isText = lua_type(lua, -1) == LUA_TSTRING || lua_type(lua, -1) == LUA_TNUMBER
                switch key {
                case "function_name":
                    guard isText else {
                        return self.fail("function_name argument given to redis.register_function must be a string")
                    }
                    name = self.bytes(at: -1)
                case "description":
                    guard isText else {
                        return self.fail("description argument given to redis.register_function must be a string")
                    }
                    description = self.bytes(at: -1)
                case "callback":
                    guard lua_type(lua, -1) == LUA_TFUNCTION else {
                        return self.fail("callback argument given to redis.register_function must be a function")
                    }
                    lua_pushvalue(lua, -1)
                    lua_replace(lua, 2)
                    hasCallback = true
                case "flags":
                    guard lua_type(lua, -1) == LUA_TTABLE else {
                        return self.fail(
                            "flags argument to redis.register_function must be a table representing function flags")
                    }
                    guard let read = self.readFlags(lua) else { return self.fail("unknown flag given") }
                    flags = read
                default:
                    return self.fail("unknown argument given to redis.register_function")
                }
                clua_pop(lua, 1)
            }
            guard name != nil else { return self.fail("redis.register_function must get a function name argument") }
            guard hasCallback else { return self.fail("redis.register_function must get a callback argument") }
            lua_pushvalue(lua, 2)
        }
        guard let name else { return self.fail("redis.register_function must get a function name argument") }
        guard Self.isValidName(name) else { return self.fail(Self.invalidName) }
        guard !(self.loading ?? []).contains(where: { FunctionLibraries.same($0.name, name) }) else {
            return self.fail("Function already exists in the library")
        }
        // The callback is on top.
        let reference = luaL_ref(lua, clua_registryindex())
        self.loading!.append(LibraryFunction(name: name, description: description, flags: flags, reference: reference))
        return 0
    }

    /// The flags of the array on top (each a flag name). - Returns: nil on an unknown one.
    private func readFlags(_ lua: OpaquePointer) -> ScriptFlags? {
        var flags: ScriptFlags = []
        var index: Int32 = 1
        while true {
            lua_rawgeti(lua, -1, index)
            defer { clua_pop(lua, 1) }
            if lua_type(lua, -1) == LUA_TNIL { return flags }
            guard lua_type(lua, -1) == LUA_TSTRING else { return nil }
            let text = String(decoding: self.bytes(at: -1), as: UTF8.self).lowercased()
            guard let flag = ScriptFlags.names.first(where: { $0.0 == text })?.1 else { return nil }
            flags.insert(flag)
            index += 1
        }
    }

    /// Pushes an error table for raising. - Returns: -1.
    func fail(_ text: String) -> Int32 {
        self.pushError(text)
        return -1
    }

    /// Pushes the error handler, the function's callback and its keys and arguments tables.
    func pushFunction(_ function: LibraryFunction, keys: Int, arguments: Int, _ element: (Int) -> ArraySlice<UInt8>) {
        lua_rawgeti(self.lua, clua_registryindex(), self.errorHandler)
        lua_rawgeti(self.lua, clua_registryindex(), function.reference)
        self.pushArray(keys, element)
        self.pushArray(arguments) { element(keys + $0) }
    }
}
