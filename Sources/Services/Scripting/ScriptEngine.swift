// The Lua interpreter behind EVAL and FCALL: one Lua 5.1 state per server, Redis 7.0's scripting
// environment in it (the `redis` table, KEYS/ARGV, the sandbox: readonly globals and libraries, no
// `print`, `dofile`, `loadfile`, `os`, `io`), the script cache, and the run of one script on the loop
// thread. What `redis.*` does is in ScriptEngine+API.swift, the reply conversions in
// ScriptConversion.swift, the sandbox's Lua side in ScriptSandbox.swift.
//
// Lua reports errors with longjmp. None may cross a Swift frame: every function the engine gives Lua
// is a C trampoline (Sources/CLua/shim.c) that calls ``ScriptEngine/dispatch`` and raises the error
// Swift left on the stack after Swift has returned; Swift touches tables only with raw accesses
// (no metamethod can run, so nothing raises under it).

import CLua

/// What the script's shebang (`#!lua flags=…`) declares; none for a script without one (Redis's
/// compatibility mode, where only the commands' own flags count).
struct ScriptFlags: OptionSet {
    let rawValue: UInt8
    static let noWrites = ScriptFlags(rawValue: 1 << 0)
    static let allowOOM = ScriptFlags(rawValue: 1 << 1)
    static let allowStale = ScriptFlags(rawValue: 1 << 2)
    static let noCluster = ScriptFlags(rawValue: 1 << 3)
    static let allowCrossSlot = ScriptFlags(rawValue: 1 << 4)
    /// No shebang: Redis's "EVAL compatibility mode".
    static let compatible = ScriptFlags(rawValue: 1 << 7)

    /// The flag names Redis accepts, in shebangs and in `register_function`.
    static let names: [(String, ScriptFlags)] = [
        ("no-writes", .noWrites), ("allow-oom", .allowOOM), ("allow-stale", .allowStale),
        ("no-cluster", .noCluster), ("allow-cross-slot-keys", .allowCrossSlot),
    ]
}

/// A script in the cache: its SHA-1 (as the cache's key, which holds its lower-case hex digits
/// unchanged), the length of its body (for the memory account), flags, and the compiled function
/// (a reference in Lua's registry, so a call fetches it by number instead of by a name built per
/// call). Plain values only: EVALSHA copies it out of the cache without a retain.
struct CachedScript {
    let digest: ScriptDigest
    let bodyBytes: Int
    let flags: ScriptFlags
    let function: Int32

    /// The SHA-1 in lower-case hex, what errors and SCRIPT LOAD call the script.
    var sha: [UInt8] { self.digest.bytes }
}

/// What the running script is called: a script by its SHA-1 (kept as its digest, so that running
/// one stores no array), a function by its name.
enum ScriptName {
    case script(ScriptDigest)
    case function([UInt8])

    var bytes: [UInt8] {
        switch self {
        case .script(let digest): digest.bytes
        case .function(let name): name
        }
    }
}

/// A script's SHA-1 as the cache's key: its 40 hex digits as five words with ASCII case folded
/// (bit 5 set in every byte), so that EVALSHA looks a script up without an allocation or a pass over
/// the digits. Folding that bit also folds some bytes that are no hex digit onto digits: a key found
/// is confirmed against the script's own SHA-1 (``ScriptEngine/script(_:)``).
struct ScriptDigest: Hashable {
    let words: (UInt64, UInt64, UInt64, UInt64, UInt64)
    /// Whether folding changed any byte (the text was not all lower case and digits).
    let folded: Bool

    /// nil unless `hex` is 40 bytes long.
    init?(hex: ArraySlice<UInt8>) {
        guard hex.count == 40 else { return nil }
        let lower: UInt64 = 0x2020_2020_2020_2020
        let raw = hex.withUnsafeBytes { bytes in
            (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
             bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
             bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        }
        self.words = (raw.0 | lower, raw.1 | lower, raw.2 | lower, raw.3 | lower, raw.4 | lower)
        self.folded = (raw.0 & raw.1 & raw.2 & raw.3 & raw.4) & lower != lower
    }

    /// The 40 digits as they are kept: for a SHA-1 written in lower case, its own text.
    var bytes: [UInt8] {
        var words = self.words
        return withUnsafeBytes(of: &words) { Array($0) }
    }

    static func == (a: ScriptDigest, b: ScriptDigest) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
            && a.words.4 == b.words.4
    }

    /// The first 16 hex digits only: a SHA-1's digits are uniformly spread, so they separate
    /// scripts as well as all 40 (equality compares all), for a third of the hashing.
    func hash(into hasher: inout Hasher) {
        hasher.combine(self.words.0)
        hasher.combine(self.words.1)
    }
}

/// A table reused from call to call (EVAL's KEYS and ARGV): its registry reference and how many
/// elements the last call set.
struct ReusedArray {
    var reference: Int32 = LUA_NOREF
    var count = 0
}

/// The functions the engine provides to Lua (CLua's `which`).
enum LuaAPI: Int32 {
    case call = 1, pcall, sha1hex, errorReply, statusReply, log, setResp, setRepl, replicateCommands
    case registerFunction, aclCheckCommand, loadTimeout, unavailable, busyCheck
}

/// The interpreter and script cache of one server. Loop thread only.
final class ScriptEngine {
    let lua: OpaquePointer
    /// Cached scripts by the SHA-1 of their body.
    private(set) var scripts: [ScriptDigest: CachedScript] = [:]
    /// Bytes the cache holds (INFO `used_memory_scripts_eval`).
    private(set) var scriptBytes = 0
    /// The script running now, if any.
    var run: ScriptRun?
    /// What the running script is called (its SHA-1, or the function's name): slow-script lines
    /// and FUNCTION STATS show it.
    var runName: [UInt8] { self.runScriptName.bytes }
    private var runScriptName = ScriptName.function([])
    /// The FCALL running now, if any (FUNCTION STATS shows it).
    var runningCommand: ArgumentVector?
    /// While FUNCTION LOAD runs a library: where its redis.log lines go.
    weak var loadingControl: (any ServerControl)?
    /// Libraries loaded with FUNCTION LOAD (ScriptEngine+Functions.swift).
    var libraries = FunctionLibraries()
    /// The functions a library registers while FUNCTION LOAD runs it; nil otherwise.
    var loading: [LibraryFunction]?
    /// While FUNCTION LOAD runs a library: the clock and when (Unix microseconds) it gives up.
    var loadDeadline: (now: () -> (seconds: Int, microseconds: Int), microseconds: Int)?
    /// The error handler's registry reference (ScriptSandbox.swift).
    var errorHandler: Int32 = LUA_NOREF
    /// EVAL's KEYS and ARGV globals, refilled by each call (ScriptSandbox.swift).
    var keysArray = ReusedArray()
    var argvArray = ReusedArray()
    /// redis.call's argument bytes and ranges, kept from call to call so that building the
    /// argument vector allocates nothing once they have grown (ScriptEngine+API.swift).
    var argumentBytes = ArraySlice<UInt8>()
    var argumentRanges: [Range<Int>] = []
    /// The buffer redis.call's command writes its reply into, kept likewise.
    var replyBuffer: [UInt8] = []
    /// Where redis.call formats a number argument (ScriptEngine+API.swift).
    let numberScratch = UnsafeMutablePointer<CChar>.allocate(capacity: 40)
    /// Where redis.call's arguments end in ``argumentBytes``, as the shim writes them; grown for
    /// a call with more arguments.
    var argumentEnds = UnsafeMutablePointer<Int>.allocate(capacity: 16)
    var argumentEndsCapacity = 16
    /// The commands redis.call resolved last (ScriptEngine+API.swift).
    var commandCache = ScriptCommandCache()

    init() {
        clua_set_handler(ScriptEngine.dispatch)
        guard let lua = clua_open() else { fatalError("Lua could not allocate its state") }
        self.lua = lua
        clua_set_context(lua, Unmanaged.passUnretained(self).toOpaque())
        // Numbers differ from one server run to the next, as Redis's (a script that wants a fixed
        // sequence calls math.randomseed).
        var generator = SystemRandomNumberGenerator()
        clua_seed_random(Int32(truncatingIfNeeded: generator.next() as UInt64))
        self.installSandbox()
    }

    deinit {
        lua_close(self.lua)
        self.numberScratch.deallocate()
        self.argumentEnds.deallocate()
        self.commandCache.deallocate()
    }

    static let globalsKey = "reactord.globals"

    /// The one handler of every trampoline, given the engine as the state's context (set in
    /// init). The engine is borrowed, not retained: it owns the state that is calling, so it
    /// outlives the call (a retain and release per redis.call).
    static let dispatch: clua_handler = { state, which, context in
        guard let state, let pointer = context else { return 0 }
        return Unmanaged<ScriptEngine>.fromOpaque(pointer)._withUnsafeGuaranteedRef {
            $0.handle(state, LuaAPI(rawValue: which) ?? .unavailable)
        }
    }

    /// Memory Lua itself holds (INFO `used_memory_lua`).
    var luaBytes: Int { Int(lua_gc(self.lua, LUA_GCCOUNT, 0)) * 1024 + Int(lua_gc(self.lua, LUA_GCCOUNTB, 0)) }

    // MARK: - The script cache

    /// The script the last EVALSHA found: a client calls the same script over and over, and
    /// comparing five words costs a fraction of hashing them and probing the cache. Cleared with
    /// the cache (SCRIPT FLUSH), the only way a script leaves it.
    private var lastFound: CachedScript?

    /// The cached script whose SHA-1 is `hex` (40 hex digits, either case), if any.
    func script(_ hex: ArraySlice<UInt8>) -> CachedScript? {
        guard let digest = ScriptDigest(hex: hex) else { return nil }
        let script: CachedScript
        if let last = self.lastFound, last.digest == digest {
            script = last
        } else {
            guard let found = self.scripts[digest] else { return nil }
            self.lastFound = found
            script = found
        }
        // Unfolded, the text is the script's (lower-case) SHA-1 itself; folded, each byte that changed
        // must be an upper-case hex letter.
        guard digest.folded else { return script }
        for (byte, digit) in zip(hex, script.sha) where byte != digit {
            guard byte | 0x20 == digit, digit >= UInt8(ascii: "a") else { return nil }
        }
        return script
    }

    /// Compiles `body` under its SHA-1 unless cached. - Returns: the script, or nil once the
    /// compile error has been answered.
    func load(_ body: [UInt8], reply: inout ReplyWriter) -> CachedScript? {
        let sha = SHA1.hex(body)
        let digest = ScriptDigest(hex: sha[...])!
        if let cached = self.scripts[digest] { return cached }
        let flags: ScriptFlags
        let shebangLength: Int
        switch Self.parseShebang(body) {
        case .failure(let message):
            reply.rawError("ERR " + message.message)
            return nil
        case .success(let parsed): (flags, shebangLength) = parsed
        }
        // The shebang line is skipped but its line feed kept, so line numbers stay the user's.
        let status = body.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { base in
                luaL_loadbuffer(self.lua, base + shebangLength, buffer.count - shebangLength, "@user_script")
            }
        }
        if status != 0 {
            reply.rawError("ERR Error compiling script (new function): " + self.popString())
            return nil
        }
        let function = luaL_ref(self.lua, clua_registryindex())
        let script = CachedScript(digest: digest, bodyBytes: body.count, flags: flags, function: function)
        self.scripts[digest] = script
        self.scriptBytes += body.count + sha.count
        return script
    }

    /// Forgets every cached script (SCRIPT FLUSH).
    func flushScripts() {
        for script in self.scripts.values { luaL_unref(self.lua, clua_registryindex(), script.function) }
        self.scripts = [:]
        self.lastFound = nil
        self.scriptBytes = 0
        lua_gc(self.lua, LUA_GCCOLLECT, 0)
    }

    /// Redis's shebang: `#!lua` then options, of which only `flags=a,b` exists.
    static func parseShebang(_ body: [UInt8]) -> Result<(ScriptFlags, Int), ShebangError> {
        guard body.count >= 2, body[0] == UInt8(ascii: "#"), body[1] == UInt8(ascii: "!") else {
            return .success((.compatible, 0))
        }
        guard let end = body.firstIndex(of: ASCII.lf) else { return .failure(ShebangError("Invalid script shebang")) }
        guard let split = Self.splitArguments(body[..<end]), let engine = split.first.map({ String(decoding: $0, as: UTF8.self) })
        else { return .failure(ShebangError("Invalid engine in script shebang")) }
        let parts = split.map { String(decoding: $0, as: UTF8.self) }
        guard engine == "#!lua" else { return .failure(ShebangError("Unexpected engine in script shebang: " + engine)) }
        var flags: ScriptFlags = []
        for part in parts.dropFirst() {
            guard part.hasPrefix("flags=") else { return .failure(ShebangError("Unknown lua shebang option: " + part)) }
            let list = part.dropFirst(6)
            guard !list.isEmpty else { continue }
            for name in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard let flag = ScriptFlags.names.first(where: { $0.0 == name })?.1 else {
                    return .failure(ShebangError("Unexpected flag in script shebang: " + name))
                }
                flags.insert(flag)
            }
        }
        return .success((flags, end))
    }

    /// A shebang line's words as Redis's sdssplitargs reads them: blanks separate, and `"…"` (with
    /// `\n`, `\r`, `\t`, `\b`, `\a`, `\xHH` escapes) or `'…'` quote anywhere in a word. - Returns:
    /// nil for an unbalanced quote or a closing quote not followed by a blank.
    static func splitArguments(_ line: ArraySlice<UInt8>) -> [[UInt8]]? {
        var words: [[UInt8]] = []
        var i = line.startIndex
        let end = line.endIndex
        func isBlank(_ byte: UInt8) -> Bool { byte == ASCII.space || byte == ASCII.tab || byte == ASCII.cr || byte == ASCII.lf || byte == 0 }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while true {
            while i < end && isBlank(line[i]) { i += 1 }
            guard i < end else { return words }
            var word: [UInt8] = []
            var double = false
            var single = false
            while i < end {
                let byte = line[i]
                if double {
                    if byte == UInt8(ascii: "\\") && i + 3 < end && line[i + 1] == UInt8(ascii: "x"),
                       let high = hex(line[i + 2]), let low = hex(line[i + 3]) {
                        word.append(high << 4 | low)
                        i += 3
                    } else if byte == UInt8(ascii: "\\") && i + 1 < end {
                        i += 1
                        switch line[i] {
                        case UInt8(ascii: "n"): word.append(ASCII.lf)
                        case UInt8(ascii: "r"): word.append(ASCII.cr)
                        case UInt8(ascii: "t"): word.append(ASCII.tab)
                        case UInt8(ascii: "b"): word.append(8)
                        case UInt8(ascii: "a"): word.append(7)
                        default: word.append(line[i])
                        }
                    } else if byte == UInt8(ascii: "\"") {
                        guard i + 1 >= end || isBlank(line[i + 1]) else { return nil }
                        double = false
                        i += 1
                        break
                    } else {
                        word.append(byte)
                    }
                } else if single {
                    if byte == UInt8(ascii: "\\") && i + 1 < end && line[i + 1] == UInt8(ascii: "'") {
                        word.append(UInt8(ascii: "'"))
                        i += 1
                    } else if byte == UInt8(ascii: "'") {
                        guard i + 1 >= end || isBlank(line[i + 1]) else { return nil }
                        single = false
                        i += 1
                        break
                    } else {
                        word.append(byte)
                    }
                } else if isBlank(byte) {
                    break
                } else if byte == UInt8(ascii: "\"") {
                    double = true
                } else if byte == UInt8(ascii: "'") {
                    single = true
                } else {
                    word.append(byte)
                }
                i += 1
            }
            if double || single { return nil }
            words.append(word)
        }
    }

    struct ShebangError: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    // MARK: - Running

    /// Runs the function on top of the stack (under it: the error handler; over it, in function
    /// mode, the keys and arguments tables) and answers its result or error.
    ///
    /// - Parameters:
    ///   - name: what error replies call the script (the SHA-1, or the function's name).
    ///   - argumentCount: 0 for EVAL (KEYS and ARGV are globals), 2 for FCALL.
    func call(
        name: ScriptName, flags: ScriptFlags, readOnlyCommand: Bool, evalMode: Bool, argumentCount: Int32,
        _ call: inout CommandCall
    ) {
        let readOnly = readOnlyCommand || (!flags.contains(.compatible) && flags.contains(.noWrites))
        var run = ScriptRun(readOnly: readOnly, evalMode: evalMode, flags: flags)
        self.runScriptName = name
        // The time limit's hook (ScriptBusy.swift). Redis runs it every 100 000 instructions; here
        // every 10 000, since a redis.call costs more time per instruction than in Redis and a script
        // looping over calls would otherwise see other clients late. Before the limit it only reads the clock.
        let threshold = call.state.busyReplyThresholdMilliseconds
        if threshold > 0 {
            let start = call.now()
            run.startMicroseconds = start.seconds &* 1_000_000 &+ start.microseconds
            clua_set_interrupt_hook(self.lua, LuaAPI.busyCheck.rawValue, 10_000)
        }
        // A SELECT inside the script changes only the script's database: the caller's is back after
        // it, as in Redis 7 (whose scripts run on a client of their own).
        let database = call.client.database
        let status: Int32 = withUnsafeMutablePointer(to: &call) { pointer in
            run.call = pointer
            self.run = run
            let status = lua_pcall(self.lua, argumentCount, 1, -(argumentCount + 2))
            run = self.run!
            self.run = nil
            return status
        }
        if call.client.database != database { call.selectDatabase(database) }
        if threshold > 0 { clua_set_interrupt_hook(self.lua, LuaAPI.busyCheck.rawValue, 0) }
        if run.timedOut { self.endBusy(&call) }
        if status != 0 {
            self.answerError(name: name.bytes, &call.reply)
        } else {
            ScriptConversion.write(self.lua, to: &call.reply, scriptResp: run.resp)
        }
        clua_pop(self.lua, 1)  // the error handler
        self.collectGarbageNow()
    }

    private var callsSinceCollection = 0
    /// Lua's heap (kilobytes) after the last step ``collectGarbageNow()`` took.
    private var heapAfterCollection: Int32 = 0

    /// A small garbage-collection step every 50 calls, as Redis does, instead of letting Lua run a
    /// whole cycle in the middle of some script; but sized by what those calls allocated (Redis
    /// always asks for 50 KB, the most here): a step asks the collector for work in proportion to
    /// its size, and on a small heap one of 50 KB is a whole cycle, marking and sweeping every
    /// object, even after calls that allocated nothing. Lua's own collector still runs as it
    /// allocates, so the heap stays bounded whatever the steps skip.
    private func collectGarbageNow() {
        self.callsSinceCollection += 1
        guard self.callsSinceCollection == 50 else { return }
        self.callsSinceCollection = 0
        let grown = lua_gc(self.lua, LUA_GCCOUNT, 0) - self.heapAfterCollection
        if grown > 0 { lua_gc(self.lua, LUA_GCSTEP, min(grown, 50)) }
        self.heapAfterCollection = lua_gc(self.lua, LUA_GCCOUNT, 0)
    }

    /// The script failed: its error (a table from the error handler: err, source, line) becomes
    /// `-<err> script: <name>, on <source>:<line>.`, as Redis words it.
    private func answerError(name: [UInt8], _ reply: inout ReplyWriter) {
        let lua = self.lua
        guard lua_type(lua, -1) == LUA_TTABLE else {
            var message = "execution failure"
            if lua_type(lua, -1) == LUA_TSTRING { message = String(self.string(at: -1).prefix(100)) }
            reply.rawError("ERR Error running script " + String(decoding: name, as: UTF8.self) + ", " + message)
            clua_pop(lua, 1)
            return
        }
        let message = ScriptConversion.field(lua, "err") ?? []
        var text = message
        if let source = ScriptConversion.field(lua, "source"), let line = ScriptConversion.field(lua, "line") {
            text += Array(" script: ".utf8) + name + Array(", on ".utf8) + source + [UInt8(ascii: ":")] + line + [UInt8(ascii: ".")]
        }
        reply.rawError(bytes: text)
        clua_pop(lua, 1)
    }

    // MARK: - Stack helpers

    /// Pushes the string `bytes`.
    func push(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { lua_pushlstring(self.lua, $0.baseAddress, $0.count) }
        }
    }

    /// Pushes the string `bytes`.
    func push(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { lua_pushlstring(self.lua, $0.baseAddress, $0.count) }
        }
    }

    /// Pushes the string `bytes`.
    func push(_ bytes: UnsafeBufferPointer<UInt8>) {
        bytes.withMemoryRebound(to: CChar.self) { lua_pushlstring(self.lua, $0.baseAddress, $0.count) }
    }

    /// The string at `index` (a number is converted as Lua converts it), or empty.
    func bytes(at index: Int32) -> [UInt8] { ScriptConversion.bytes(self.lua, index) ?? [] }

    func string(at index: Int32) -> String { String(decoding: self.bytes(at: index), as: UTF8.self) }

    func popString() -> String {
        let text = self.string(at: -1)
        clua_pop(self.lua, 1)
        return text
    }

    /// Pushes Redis's error table `{err = "<CODE> <message>"}` for `text`: a leading `-` means
    /// the text starts with its code; otherwise the code is ERR (Redis's luaPushErrorBuff).
    func pushError(_ text: [UInt8]) {
        var code: ArraySlice<UInt8> = Array("ERR".utf8)[...]
        var message = text[...]
        if message.first == ASCII.minus {
            message = message.dropFirst()
            if let space = message.firstIndex(of: ASCII.space) {
                code = message[..<space]
                message = message[(space + 1)...]
            }
        }
        while let first = message.first, first == ASCII.cr || first == ASCII.lf { message = message.dropFirst() }
        while let last = message.last, last == ASCII.cr || last == ASCII.lf { message = message.dropLast() }
        clua_newtable(self.lua)
        self.push(Array("err".utf8))
        self.push(Array(code) + [ASCII.space] + Array(message))
        lua_rawset(self.lua, -3)
    }

    func pushError(_ text: String) { self.pushError(Array(text.utf8)) }

    /// Pushes an array of strings.
    func pushArray(_ count: Int, _ element: (Int) -> ArraySlice<UInt8>) {
        lua_createtable(self.lua, Int32(count), 0)
        for i in 0..<count {
            let bytes = element(i)
            bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { lua_pushlstring(self.lua, $0.baseAddress, $0.count) }
            }
            lua_rawseti(self.lua, -2, Int32(i + 1))
        }
    }
}

/// The script running now: what redis.call checks. Plain values only (its name is the engine's
/// ``ScriptEngine/runName``), so that reading it, as every redis.call does, retains nothing.
struct ScriptRun {
    /// The command that runs the script (EVAL's call), for redis.call to run commands through.
    var call: UnsafeMutablePointer<CommandCall>?
    let readOnly: Bool
    let evalMode: Bool
    let flags: ScriptFlags
    /// The protocol redis.call's replies are read in (`redis.setresp`).
    var resp = 2
    /// A write command ran.
    var wrote = false
    /// When it started (Unix microseconds), for the time limit (ScriptBusy.swift).
    var startMicroseconds = 0
    /// It ran past `busy-reply-threshold`: other connections are served from its hook.
    var timedOut = false
    /// SCRIPT KILL, FUNCTION KILL or SHUTDOWN NOSAVE asked it to stop.
    var killed = false
}

extension ReplyWriter {
    /// An error reply whose text carries its own code: `-<text>\r\n` (CR and LF become spaces).
    mutating func rawError(_ text: String) { self.rawError(bytes: Array(text.utf8)) }

    mutating func rawError(bytes: [UInt8]) {
        self.wroteError = true
        self.output.append(UInt8(ascii: "-"))
        self.output.appendSingleLine(bytes)
        self.output.append("\r\n")
    }
}
