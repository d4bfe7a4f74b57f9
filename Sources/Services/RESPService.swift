// The kv service's RESP2 side (SPEC.md "RESP on the kv port"): the subset of Redis commands that
// redis-cli, redis-benchmark and client libraries need, answered with Redis's reply types and
// texts. Keys and values are binary-safe. A protocol error replies and closes, as Redis does.
// No clock: TIME asks the closure the caller supplies.

/// The RESP2 protocol for one kv connection.
///
/// Feed received bytes with ``receive(_:)``, then call ``process(storage:output:outputLimit:)``,
/// which answers every complete buffered request in order. Event-loop thread only.
public struct RESPService {
    /// The server's version as reported to Redis clients (`INFO`, `HELLO`).
    public static let redisCompatibleVersion: StaticString = "7.0.0"

    private var parser: RESPParser
    private let clientID: Int
    private let now: () -> (seconds: Int, microseconds: Int)
    private var clientName: [UInt8]?
    // Set once `.close` has been returned; nothing more is processed afterwards.
    private var closed = false

    /// - Parameters:
    ///   - maxValueBytes: the longest bulk string (key or value) a request may carry; longer is a
    ///     protocol error, as Redis's `proto-max-bulk-len`.
    ///   - maxRequestBytes: the most bytes one incomplete request may hold buffered before the
    ///     connection is refused (Redis's `client-query-buffer-limit`). Raised to at least
    ///     `2 * maxValueBytes + 1024`, so that a SET of the largest key and value always fits.
    ///   - clientID: the id reported by `HELLO` and `CLIENT ID`.
    ///   - now: the wall clock for `TIME`, as seconds and microseconds since the Unix epoch.
    public init(
        maxValueBytes: Int = 1 << 20,
        maxRequestBytes: Int = 1 << 26,
        clientID: Int = 0,
        now: @escaping () -> (seconds: Int, microseconds: Int)
    ) {
        self.parser = RESPParser(
            maxBulkBytes: maxValueBytes,
            maxRequestBytes: max(maxRequestBytes, 2 * maxValueBytes + 1024))
        self.clientID = clientID
        self.now = now
    }

    /// Bytes received but not yet answered.
    public var bufferedByteCount: Int { self.parser.bufferedByteCount }

    /// Buffers received bytes; nothing is answered until ``process(storage:output:outputLimit:)``.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !self.closed else { return }
        self.parser.append(bytes)
    }

    /// Answers buffered complete requests in order, appending the replies to `output`.
    ///
    /// - Parameters:
    ///   - storage: the shared store.
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    /// - Returns: `.close` after `QUIT` or a protocol error (flush `output`, then close);
    ///   `.outputFull` when the limit was reached with input still buffered (call again after
    ///   draining); otherwise `.needMoreData`.
    public mutating func process(
        storage: some KeyValueStorage,
        output: inout [UInt8],
        outputLimit: Int
    ) -> ProcessResult {
        if self.closed { return .close }
        while true {
            if output.count >= outputLimit {
                return self.parser.bufferedByteCount > 0 ? .outputFull : .needMoreData
            }
            switch self.parser.next() {
            case .needMoreData:
                self.parser.releaseIfIdle()
                return .needMoreData
            case .protocolError(let error):
                output.append("-ERR Protocol error: ")
                error.write(to: &output)
                output.append("\r\n")
                self.closed = true
                return .close
            case .command:
                if self.execute(storage: storage, output: &output) {
                    self.closed = true
                    return .close
                }
            }
        }
    }

    // MARK: - Commands

    private enum Command: CaseIterable {
        case ping, echo, get, set, setnx, del, exists, mget, mset, incr, dbsize, info, time, quit, select
        case flushdb, flushall, command, config, client, hello

        var name: StaticString {
            switch self {
            case .ping: "ping"
            case .echo: "echo"
            case .get: "get"
            case .set: "set"
            case .setnx: "setnx"
            case .del: "del"
            case .exists: "exists"
            case .mget: "mget"
            case .mset: "mset"
            case .incr: "incr"
            case .dbsize: "dbsize"
            case .info: "info"
            case .time: "time"
            case .quit: "quit"
            case .select: "select"
            case .flushdb: "flushdb"
            case .flushall: "flushall"
            case .command: "command"
            case .config: "config"
            case .client: "client"
            case .hello: "hello"
            }
        }

        /// Redis's arity convention: positive is exact, negative is a minimum (command name included).
        var arity: Int {
            switch self {
            case .echo, .get, .incr, .select: 2
            case .setnx: 3
            case .dbsize, .time: 1
            case .ping, .info, .quit, .flushdb, .flushall, .command, .hello: -1
            case .del, .exists, .mget, .config, .client: -2
            case .set, .mset: -3
            }
        }

        // `allCases` builds a new array on every call; this one is built once.
        static let all = Command.allCases

        static func named(_ word: ArraySlice<UInt8>) -> Command? {
            for command in Command.all where ASCII.equalsIgnoringCase(word, command.name) { return command }
            return nil
        }
    }

    private func arg(_ index: Int) -> ArraySlice<UInt8> { self.parser.argument(index) }

    private func argIs(_ index: Int, _ lowercaseName: StaticString) -> Bool {
        ASCII.equalsIgnoringCase(self.parser.argument(index), lowercaseName)
    }

    /// Answers the request the parser holds. - Returns: whether the connection must close.
    private mutating func execute(storage: some KeyValueStorage, output: inout [UInt8]) -> Bool {
        let argc = self.parser.argumentCount
        guard let command = Command.named(self.arg(0)) else {
            self.unknownCommand(&output)
            return false
        }
        guard command.arity > 0 ? argc == command.arity : argc >= -command.arity else {
            Self.arityError(command.name, &output)
            return false
        }
        switch command {
        case .ping:
            switch argc {
            case 1: output.append("+PONG\r\n")
            case 2: output.appendBulk(self.arg(1))
            default: Self.arityError(command.name, &output)
            }
        case .echo:
            output.appendBulk(self.arg(1))
        case .get:
            if let value = storage.value(forKey: Array(self.arg(1))) {
                output.appendBulk(value)
            } else {
                output.append("$-1\r\n")
            }
        case .set:
            self.set(storage: storage, output: &output)
        case .setnx:
            let key = Array(self.arg(1))
            if storage.value(forKey: key) != nil {
                output.append(":0\r\n")
            } else if Self.mutate(&output, { () throws(StorageError) in try storage.set(Array(self.arg(2)), forKey: key) }) {
                output.append(":1\r\n")
            }
        case .del:
            var removed = 0
            for i in 1..<argc {
                do throws(StorageError) {
                    if try storage.removeValue(forKey: Array(self.arg(i))) { removed += 1 }
                } catch {
                    // Keys before this one are gone; the client learns of the failure, as it would
                    // of a failed write in Redis, rather than a count that hides it.
                    Self.storageError(error, &output)
                    return false
                }
            }
            output.appendInteger(removed)
        case .exists:
            var found = 0
            for i in 1..<argc where storage.value(forKey: Array(self.arg(i))) != nil { found += 1 }
            output.appendInteger(found)
        case .mget:
            output.appendArrayHeader(argc - 1)
            for i in 1..<argc {
                if let value = storage.value(forKey: Array(self.arg(i))) {
                    output.appendBulk(value)
                } else {
                    output.append("$-1\r\n")
                }
            }
        case .mset:
            guard argc % 2 == 1 else {
                Self.arityError(command.name, &output)
                return false
            }
            for i in stride(from: 1, to: argc, by: 2) {
                guard Self.mutate(&output, { () throws(StorageError) in
                    try storage.set(Array(self.arg(i + 1)), forKey: Array(self.arg(i)))
                }) else { return false }
            }
            output.append("+OK\r\n")
        case .incr:
            self.incr(storage: storage, output: &output)
        case .dbsize:
            output.appendInteger(storage.count)
        case .info:
            self.info(storage: storage, output: &output)
        case .time:
            let time = self.now()
            output.append("*2\r\n")
            var digits: [UInt8] = []
            digits.appendDecimal(time.seconds)
            output.appendBulk(digits)
            digits.removeAll(keepingCapacity: true)
            digits.appendDecimal(time.microseconds)
            output.appendBulk(digits)
        case .quit:
            output.append("+OK\r\n")
            return true
        case .select:
            switch ASCII.parseInteger(self.arg(1)) {
            case 0: output.append("+OK\r\n")
            case nil: output.append("-ERR value is not an integer or out of range\r\n")
            default: output.append("-ERR DB index is out of range\r\n")
            }
        case .flushdb, .flushall:
            // ASYNC and SYNC are accepted and mean the same here: removal is immediate.
            guard argc == 1 || (argc == 2 && (self.argIs(1, "async") || self.argIs(1, "sync"))) else {
                output.append("-ERR syntax error\r\n")
                return false
            }
            if Self.mutate(&output, { () throws(StorageError) in try storage.removeAll() }) {
                output.append("+OK\r\n")
            }
        case .command:
            self.commandCommand(&output)
        case .config:
            self.config(&output)
        case .client:
            self.client(&output)
        case .hello:
            self.hello(&output)
        }
        return false
    }

    /// SET key value [NX|XX]. Expiry options are not supported: `-ERR syntax error`.
    private func set(storage: some KeyValueStorage, output: inout [UInt8]) {
        var onlyIfAbsent = false
        var onlyIfPresent = false
        for i in 3..<self.parser.argumentCount {
            if self.argIs(i, "nx") && !onlyIfPresent {
                onlyIfAbsent = true
            } else if self.argIs(i, "xx") && !onlyIfAbsent {
                onlyIfPresent = true
            } else {
                output.append("-ERR syntax error\r\n")
                return
            }
        }
        let key = Array(self.arg(1))
        if onlyIfAbsent || onlyIfPresent {
            let present = storage.value(forKey: key) != nil
            if present == onlyIfAbsent {
                output.append("$-1\r\n")
                return
            }
        }
        if Self.mutate(&output, { () throws(StorageError) in try storage.set(Array(self.arg(2)), forKey: key) }) {
            output.append("+OK\r\n")
        }
    }

    private func incr(storage: some KeyValueStorage, output: inout [UInt8]) {
        let key = Array(self.arg(1))
        var current: Int64 = 0
        if let value = storage.value(forKey: key) {
            guard let parsed = ASCII.parseInteger(value[...]) else {
                output.append("-ERR value is not an integer or out of range\r\n")
                return
            }
            current = parsed
        }
        let (next, overflow) = current.addingReportingOverflow(1)
        guard !overflow else {
            output.append("-ERR increment or decrement would overflow\r\n")
            return
        }
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        if Self.mutate(&output, { () throws(StorageError) in try storage.set(digits, forKey: key) }) {
            output.appendInteger(next)
        }
    }

    /// INFO [section …]: `# Server`, `# Stats` (the store's statistics) and `# Keyspace`, with
    /// Redis's field names where clients look for them.
    private func info(storage: some KeyValueStorage, output: inout [UInt8]) {
        let argc = self.parser.argumentCount
        func wants(_ section: StaticString) -> Bool {
            if argc == 1 { return true }
            for i in 1..<argc {
                if self.argIs(i, section) || self.argIs(i, "all") || self.argIs(i, "everything")
                    || self.argIs(i, "default")
                {
                    return true
                }
            }
            return false
        }
        var text: [UInt8] = []
        if wants("server") {
            text.append("# Server\r\nredis_version:")
            text.append(Self.redisCompatibleVersion)
            text.append("\r\nredis_mode:standalone\r\nserver_name:reactord\r\nmulti_threaded:no\r\n")
        }
        if wants("stats") {
            if !text.isEmpty { text.append("\r\n") }
            text.append("# Stats\r\n")
            for (name, value) in storage.statistics() {
                text.appendSingleLine(name.utf8)
                text.append(UInt8(ascii: ":"))
                text.appendSingleLine(value.utf8)
                text.append("\r\n")
            }
        }
        if wants("keyspace") {
            if !text.isEmpty { text.append("\r\n") }
            text.append("# Keyspace\r\n")
            let count = storage.count
            if count > 0 {  // Redis lists only databases that hold keys
                text.append("db0:keys=")
                text.appendDecimal(count)
                text.append(",expires=0,avg_ttl=0\r\n")
            }
        }
        output.appendBulk(text)
    }

    /// COMMAND (an empty list), COMMAND COUNT (truthful), COMMAND DOCS (an empty map).
    private func commandCommand(_ output: inout [UInt8]) {
        let argc = self.parser.argumentCount
        if argc == 1 {
            output.append("*0\r\n")
        } else if self.argIs(1, "count") {
            guard argc == 2 else { return Self.arityError("command|count", &output) }
            output.appendInteger(Command.all.count)
        } else if self.argIs(1, "docs") {
            output.append("*0\r\n")
        } else {
            self.unknownSubcommand("COMMAND", &output)
        }
    }

    /// The configuration CONFIG GET reports: only what is true of this server.
    private static let configuration: [(name: StaticString, value: StaticString)] = [
        ("save", ""), ("appendonly", "yes"), ("databases", "1"),
    ]

    /// CONFIG GET pattern [pattern …]: matching name/value pairs as a flat array.
    private func config(_ output: inout [UInt8]) {
        let argc = self.parser.argumentCount
        guard self.argIs(1, "get") else { return self.unknownSubcommand("CONFIG", &output) }
        guard argc >= 3 else { return Self.arityError("config|get", &output) }
        var matches: [Int] = []
        for (index, entry) in Self.configuration.enumerated() {
            let name = UnsafeBufferPointer(start: entry.name.utf8Start, count: entry.name.utf8CodeUnitCount)
            for i in 2..<argc where Glob.matches(pattern: self.arg(i), name) {
                matches.append(index)
                break
            }
        }
        output.appendArrayHeader(2 * matches.count)
        for index in matches {
            let entry = Self.configuration[index]
            output.appendBulk(UnsafeBufferPointer(start: entry.name.utf8Start, count: entry.name.utf8CodeUnitCount))
            output.appendBulk(UnsafeBufferPointer(start: entry.value.utf8Start, count: entry.value.utf8CodeUnitCount))
        }
    }

    /// CLIENT SETNAME / SETINFO (accepted), GETNAME, ID.
    private mutating func client(_ output: inout [UInt8]) {
        let argc = self.parser.argumentCount
        if self.argIs(1, "setname") {
            guard argc == 3 else { return Self.arityError("client|setname", &output) }
            self.clientName = self.arg(2).isEmpty ? nil : Array(self.arg(2))
            output.append("+OK\r\n")
        } else if self.argIs(1, "setinfo") {
            guard argc == 4 else { return Self.arityError("client|setinfo", &output) }
            output.append("+OK\r\n")
        } else if self.argIs(1, "getname") {
            guard argc == 2 else { return Self.arityError("client|getname", &output) }
            if let name = self.clientName { output.appendBulk(name) } else { output.append("$-1\r\n") }
        } else if self.argIs(1, "id") {
            guard argc == 2 else { return Self.arityError("client|id", &output) }
            output.appendInteger(self.clientID)
        } else {
            self.unknownSubcommand("CLIENT", &output)
        }
    }

    /// HELLO [protover [AUTH user pass] [SETNAME name]]: only protocol 2 is spoken.
    private mutating func hello(_ output: inout [UInt8]) {
        let argc = self.parser.argumentCount
        var next = 1
        if argc >= 2 {
            guard let version = ASCII.parseInteger(self.arg(1)) else {
                output.append("-ERR Protocol version is not an integer or out of range\r\n")
                return
            }
            guard version == 2 else {
                output.append("-NOPROTO sorry, this protocol version is not supported\r\n")
                return
            }
            next = 2
        }
        var newName: ArraySlice<UInt8>?
        while next < argc {
            let more = argc - 1 - next
            if self.argIs(next, "auth") && more >= 2 {
                next += 3  // no users or passwords here: any credentials are accepted
            } else if self.argIs(next, "setname") && more >= 1 {
                newName = self.arg(next + 1)
                next += 2
            } else {
                output.append("-ERR Syntax error in HELLO option '")
                output.appendSingleLine(self.arg(next))
                output.append("'\r\n")
                return
            }
        }
        if let newName { self.clientName = newName.isEmpty ? nil : Array(newName) }
        output.append("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n")
        let version = Self.redisCompatibleVersion
        output.appendBulk(UnsafeBufferPointer(start: version.utf8Start, count: version.utf8CodeUnitCount))
        output.append("$5\r\nproto\r\n:2\r\n$2\r\nid\r\n")
        output.appendInteger(self.clientID)
        output.append("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n")
    }

    // MARK: - Errors

    /// Redis's wording: the name and the first arguments, each cut so the list stays near 128
    /// bytes, and cut at a NUL as Redis's C formatting does.
    private func unknownCommand(_ output: inout [UInt8]) {
        output.append("-ERR unknown command '")
        output.appendSingleLine(Self.cString(self.arg(0), max: 128))
        output.append("', with args beginning with: ")
        var written = 0
        var i = 1
        while i < self.parser.argumentCount && written < 128 {
            let shown = Self.cString(self.arg(i), max: 128 - written)
            output.append(UInt8(ascii: "'"))
            output.appendSingleLine(shown)
            output.append("' ")
            written += shown.count + 3
            i += 1
        }
        output.append("\r\n")
    }

    private func unknownSubcommand(_ command: StaticString, _ output: inout [UInt8]) {
        output.append("-ERR unknown subcommand '")
        output.appendSingleLine(Self.cString(self.arg(1), max: 128))
        output.append("'. Try ")
        output.append(command)
        output.append(" HELP.\r\n")
    }

    private static func cString(_ bytes: ArraySlice<UInt8>, max: Int) -> ArraySlice<UInt8> {
        bytes.prefix(max).prefix(while: { $0 != 0 })
    }

    private static func arityError(_ name: StaticString, _ output: inout [UInt8]) {
        output.append("-ERR wrong number of arguments for '")
        output.append(name)
        output.append("' command\r\n")
    }

    private static func storageError(_ error: StorageError, _ output: inout [UInt8]) {
        output.append("-ERR ")
        output.appendSingleLine(error.reason.utf8)
        output.append("\r\n")
    }

    /// Runs a mutation. - Returns: true on success; on failure the `-ERR` reply is written.
    private static func mutate(_ output: inout [UInt8], _ body: () throws(StorageError) -> Void) -> Bool {
        do throws(StorageError) {
            try body()
            return true
        } catch {
            Self.storageError(error, &output)
            return false
        }
    }
}

extension Array where Element == UInt8 {
    /// `$<n>\r\n<bytes>\r\n`
    mutating func appendBulk<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self.append(UInt8(ascii: "$"))
        self.appendDecimal(bytes.count)
        self.append("\r\n")
        self.append(contentsOf: bytes)
        self.append("\r\n")
    }

    /// `:<n>\r\n`
    mutating func appendInteger<T: BinaryInteger>(_ value: T) {
        self.append(UInt8(ascii: ":"))
        self.appendDecimal(value)
        self.append("\r\n")
    }

    /// `*<n>\r\n`
    mutating func appendArrayHeader(_ count: Int) {
        self.append(UInt8(ascii: "*"))
        self.appendDecimal(count)
        self.append("\r\n")
    }
}

/// Redis-style glob matching (`*`, `?`), ASCII case-insensitive, for CONFIG GET.
enum Glob {
    static func matches<P: Collection, N: Collection>(pattern: P, _ name: N) -> Bool
    where P.Element == UInt8, N.Element == UInt8, P.Index == Int, N.Index == Int {
        var p = pattern.startIndex
        var n = name.startIndex
        // Where to resume after the last `*` when a later part fails to match.
        var starP = -1
        var starN = 0
        while n < name.endIndex {
            if p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") {
                starP = p
                starN = n
                p += 1
            } else if p < pattern.endIndex
                && (pattern[p] == UInt8(ascii: "?") || ASCII.lowercased(pattern[p]) == ASCII.lowercased(name[n]))
            {
                p += 1
                n += 1
            } else if starP >= 0 {
                starN += 1
                n = starN
                p = starP + 1
            } else {
                return false
            }
        }
        while p < pattern.endIndex && pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}

extension RESPService {
    /// The capacity of the input buffer, for tests that check nothing is reserved on a claim.
    var parserCapacity: Int { self.parser.capacity }
}
