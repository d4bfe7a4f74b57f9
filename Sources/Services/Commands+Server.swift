// The connection and server commands (PING, QUIT, HELLO, CLIENT, INFO, CONFIG, COMMAND, TIME and
// the line protocol's `stats`, `help`, `bye`), each written once and answered through
// ReplyWriter. No clock reads (TIME asks the `now` the caller passed in), no protocol bytes.

extension Commands {
    /// The server's version as reported to Redis clients (`INFO`, `HELLO`).
    static let redisCompatibleVersion: StaticString = "7.0.15"

    /// PING [message]: `PONG`, or the message as a bulk string.
    static func ping(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch arguments.count {
        case 1: call.reply.status("PONG")
        case 2: call.reply.bulk(arguments[1])
        default: call.reply.error(.wrongArity("ping"))
        }
    }

    /// ECHO message.
    static func echo(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.bulk(arguments[1])
    }

    /// QUIT: `OK`, then the connection closes.
    static func quit(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.ok()
        call.closeAfterReply = true
    }

    /// `bye` (line protocol): `Goodbye`, then the connection closes.
    static func bye(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.status("Goodbye")
        call.closeAfterReply = true
    }

    /// SELECT index: only database 0 exists.
    static func select(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch ASCII.parseInteger(arguments[1]) {
        case 0: call.reply.ok()
        case nil: call.reply.error(.notInteger)
        default: call.reply.error(.dbIndexOutOfRange)
        }
    }

    /// TIME: seconds and microseconds as two bulk strings.
    static func time(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let time = call.now()
        call.reply.arrayHeader(2)
        var digits: [UInt8] = []
        digits.appendDecimal(time.seconds)
        call.reply.bulk(digits)
        digits.removeAll(keepingCapacity: true)
        digits.appendDecimal(time.microseconds)
        call.reply.bulk(digits)
    }

    /// `stats` (line protocol): the context's statistics as `name=value` pairs on one line.
    static func stats(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var text: [UInt8] = []
        for (name, value) in call.context.statistics() {
            if !text.isEmpty { text.append(ASCII.space) }
            text.append(contentsOf: name.utf8)
            text.append(UInt8(ascii: "="))
            text.append(contentsOf: value.utf8)
        }
        call.reply.status(bytes: text)
    }

    /// `help` (line protocol): the line protocol's commands, from the table.
    static func help(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var text: [UInt8] = []
        text.append("commands: ")
        for command in CommandTable.commands {
            guard let usage = command.line?.usage else { continue }
            if text.count > 10 { text.append(" | ") }
            text.append(usage)
        }
        call.reply.status(bytes: text)
    }

    /// INFO [section …]: `# Server`, `# Stats` (the context's statistics) and `# Keyspace`, with
    /// Redis's field names where clients look for them.
    static func info(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        func wants(_ section: StaticString) -> Bool {
            if arguments.count == 1 { return true }
            for i in 1..<arguments.count {
                if arguments.argument(i, is: section) || arguments.argument(i, is: "all")
                    || arguments.argument(i, is: "everything") || arguments.argument(i, is: "default")
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
            for (name, value) in call.context.statistics() {
                text.appendSingleLine(name.utf8)
                text.append(UInt8(ascii: ":"))
                text.appendSingleLine(value.utf8)
                text.append("\r\n")
            }
        }
        if wants("keyspace") {
            if !text.isEmpty { text.append("\r\n") }
            text.append("# Keyspace\r\n")
            let count = call.context.count
            if count > 0 {  // Redis lists only databases that hold keys
                text.append("db0:keys=")
                text.appendDecimal(count)
                text.append(",expires=0,avg_ttl=0\r\n")
            }
        }
        call.reply.bulk(text)
    }

    /// COMMAND (an empty list), COMMAND COUNT (truthful), COMMAND DOCS (an empty map).
    static func command(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        if arguments.count == 1 {
            call.reply.arrayHeader(0)
        } else if arguments.argument(1, is: "count") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("command|count")) }
            call.reply.integer(CommandTable.respCommandCount)
        } else if arguments.argument(1, is: "docs") {
            call.reply.mapHeader(0)
        } else {
            call.reply.error(.unknownSubcommand(command: "COMMAND", arguments[1]))
        }
    }

    /// The configuration CONFIG GET reports: only what is true of this server.
    private static let configuration: [(name: StaticString, value: StaticString)] = [
        ("save", ""), ("appendonly", "yes"), ("databases", "1"),
    ]

    /// CONFIG GET pattern [pattern …]: the matching parameters as a map.
    static func config(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.argument(1, is: "get") else {
            return call.reply.error(.unknownSubcommand(command: "CONFIG", arguments[1]))
        }
        guard arguments.count >= 3 else { return call.reply.error(.wrongArity("config|get")) }
        let matches = Self.configuration.filter { entry in
            let name = UnsafeBufferPointer(start: entry.name.utf8Start, count: entry.name.utf8CodeUnitCount)
            return (2..<arguments.count).contains { Glob.matches(pattern: arguments[$0], name) }
        }
        call.reply.mapHeader(matches.count)
        for entry in matches {
            call.reply.bulk(entry.name)
            call.reply.bulk(entry.value)
        }
    }

    /// CLIENT SETNAME / SETINFO (accepted), GETNAME, ID.
    static func client(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let count = arguments.count
        if arguments.argument(1, is: "setname") {
            guard count == 3 else { return call.reply.error(.wrongArity("client|setname")) }
            call.client.name = arguments[2].isEmpty ? nil : arguments.copy(2)
            call.reply.ok()
        } else if arguments.argument(1, is: "setinfo") {
            guard count == 4 else { return call.reply.error(.wrongArity("client|setinfo")) }
            call.reply.ok()
        } else if arguments.argument(1, is: "getname") {
            guard count == 2 else { return call.reply.error(.wrongArity("client|getname")) }
            if let name = call.client.name { call.reply.bulk(name) } else { call.reply.null() }
        } else if arguments.argument(1, is: "id") {
            guard count == 2 else { return call.reply.error(.wrongArity("client|id")) }
            call.reply.integer(call.client.id)
        } else {
            call.reply.error(.unknownSubcommand(command: "CLIENT", arguments[1]))
        }
    }

    /// HELLO [protover [AUTH user pass] [SETNAME name]]: switches the connection to RESP2 or
    /// RESP3 (the reply itself is in the new protocol) and describes the server as a map.
    static func hello(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let count = arguments.count
        var next = 1
        var newEncoding: ReplyEncoding?
        if count >= 2 {
            guard let version = ASCII.parseInteger(arguments[1]) else {
                return call.reply.error(.protocolVersionNotInteger)
            }
            guard version == 2 || version == 3 else { return call.reply.error(.unsupportedProtocolVersion) }
            newEncoding = version == 3 ? .resp3 : .resp2
            next = 2
        }
        var newName: ArraySlice<UInt8>?
        while next < count {
            let more = count - 1 - next
            if arguments.argument(next, is: "auth") && more >= 2 {
                next += 3  // no users or passwords here: any credentials are accepted
            } else if arguments.argument(next, is: "setname") && more >= 1 {
                newName = arguments[next + 1]
                next += 2
            } else {
                return call.reply.error(.helloOption(arguments[next]))
            }
        }
        if let newName { call.client.name = newName.isEmpty ? nil : Array(newName) }
        if let newEncoding { call.reply.encoding = newEncoding }
        call.reply.mapHeader(7)
        call.reply.bulk("server")
        call.reply.bulk("redis")
        call.reply.bulk("version")
        call.reply.bulk(Self.redisCompatibleVersion)
        call.reply.bulk("proto")
        call.reply.integer(call.reply.encoding == .resp3 ? 3 : 2)
        call.reply.bulk("id")
        call.reply.integer(call.client.id)
        call.reply.bulk("mode")
        call.reply.bulk("standalone")
        call.reply.bulk("role")
        call.reply.bulk("master")
        call.reply.bulk("modules")
        call.reply.arrayHeader(0)
    }
}

/// Redis-style glob matching (`*`, `?`), ASCII case-insensitive, for CONFIG GET.
enum Glob {
    /// Whether `name` matches `pattern`.
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
