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

    /// INFO [section …]: Redis's sections and field names, filled from the server's facts;
    /// `default`/no argument gives the default sections, `all`/`everything` every section.
    static func info(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let sections: [StaticString] = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                                        "keyspace", "reactord"]
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
        let facts = call.context.facts()
        var text: [UInt8] = []
        for section in sections where wants(section) {
            if !text.isEmpty { text.append("\r\n") }
            Self.appendInfo(section, facts, call.now(), to: &text)
        }
        call.reply.verbatim(text)
    }

    private static func appendInfo(
        _ section: StaticString, _ facts: ServerFacts, _ now: (seconds: Int, microseconds: Int), to text: inout [UInt8]
    ) {
        func field(_ name: StaticString, _ value: String) {
            text.append(name)
            text.append(UInt8(ascii: ":"))
            text.appendSingleLine(value.utf8)
            text.append("\r\n")
        }
        switch section.description {
        case "server":
            text.append("# Server\r\n")
            field("redis_version", Self.redisCompatibleVersion.description)
            field("reactord_version", facts.version)
            field("redis_git_sha1", "00000000")
            field("redis_git_dirty", "0")
            field("redis_mode", "standalone")
            field("os", "Linux")
            field("arch_bits", "64")
            field("multiplexing_api", "epoll")
            field("process_id", String(facts.processID))
            field("process_supervised", "no")
            field("tcp_port", String(facts.tcpPort))
            field("server_time_usec", String(now.seconds * 1_000_000 + now.microseconds))
            field("uptime_in_seconds", String(facts.uptimeSeconds))
            field("uptime_in_days", String(facts.uptimeSeconds / 86400))
            field("hz", "10")
            field("io_threads_active", "0")
        case "clients":
            text.append("# Clients\r\n")
            field("connected_clients", String(facts.connectedClients))
            field("maxclients", String(facts.maxClients))
            field("blocked_clients", "0")
            field("tracking_clients", "0")
        case "memory":
            text.append("# Memory\r\n")
            field("used_memory", String(facts.usedMemoryBytes))
            field("maxmemory", String(facts.maxMemoryBytes))
            field("maxmemory_policy", facts.maxMemoryPolicy)
        case "persistence":
            text.append("# Persistence\r\n")
            field("loading", "0")
            field("async_loading", "0")
            field("rdb_changes_since_last_save", String(facts.changesSinceLastSave))
            field("rdb_bgsave_in_progress", facts.compactionInProgress ? "1" : "0")
            field("rdb_last_save_time", String(facts.lastSaveTime))
            field("rdb_last_bgsave_status", facts.lastCompactionSucceeded ? "ok" : "err")
            field("rdb_saves", String(facts.compactions))
            field("aof_enabled", "1")
            field("aof_rewrite_in_progress", facts.compactionInProgress ? "1" : "0")
            field("aof_last_bgrewrite_status", facts.lastCompactionSucceeded ? "ok" : "err")
            field("aof_current_size", String(facts.logBytes))
        case "stats":
            text.append("# Stats\r\n")
            field("total_connections_received", String(facts.totalConnectionsReceived))
            field("total_commands_processed", String(facts.totalCommandsProcessed))
            field("rejected_connections", String(facts.rejectedConnections))
            field("expired_keys", String(facts.expiredKeys))
            field("evicted_keys", String(facts.evictedKeys))
        case "replication":
            text.append("# Replication\r\n")
            field("role", "master")
            field("connected_slaves", "0")
            field("master_repl_offset", "0")
        case "cpu":
            text.append("# CPU\r\n")
            // Seconds with six decimals, as Redis prints them.
            func seconds(_ microseconds: Int) -> String {
                let fraction = String(microseconds % 1_000_000)
                return "\(microseconds / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
            }
            field("used_cpu_sys", seconds(facts.cpuSystemMicroseconds))
            field("used_cpu_user", seconds(facts.cpuUserMicroseconds))
            field("used_cpu_sys_children", "0.000000")
            field("used_cpu_user_children", "0.000000")
            field("used_cpu_sys_main_thread", seconds(facts.cpuSystemMainThreadMicroseconds))
            field("used_cpu_user_main_thread", seconds(facts.cpuUserMainThreadMicroseconds))
        case "keyspace":
            text.append("# Keyspace\r\n")
            if facts.keys > 0 {  // Redis lists only databases that hold keys
                field("db0", "keys=\(facts.keys),expires=\(facts.keysWithExpiry),avg_ttl=0")
            }
        default:
            text.append("# Reactord\r\n")
            for (name, value) in facts.extra {
                text.appendSingleLine(name.utf8)
                text.append(UInt8(ascii: ":"))
                text.appendSingleLine(value.utf8)
                text.append("\r\n")
            }
        }
    }

    /// COMMAND (every command's INFO), COMMAND COUNT, COMMAND LIST, COMMAND INFO name …,
    /// COMMAND DOCS [name …] (an empty document per command), all from the table.
    static func command(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let table = CommandTable.commands.filter { !$0.flags.contains(.lineOnly) }
        if arguments.count == 1 {
            call.reply.arrayHeader(table.count)
            for command in table { Self.writeCommandInfo(command, &call) }
        } else if arguments.argument(1, is: "count") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("command|count")) }
            call.reply.integer(table.count)
        } else if arguments.argument(1, is: "list") {
            guard arguments.count == 2 else { return call.reply.error(.syntax) }
            call.reply.arrayHeader(table.count)
            for command in table { call.reply.bulk(command.name) }
        } else if arguments.argument(1, is: "info") {
            if arguments.count == 2 {
                call.reply.arrayHeader(table.count)
                for command in table { Self.writeCommandInfo(command, &call) }
                return
            }
            call.reply.arrayHeader(arguments.count - 2)
            for i in 2..<arguments.count {
                if let command = CommandTable.respNames.find(arguments[i]) {
                    Self.writeCommandInfo(command, &call)
                } else {
                    call.reply.null()
                }
            }
        } else if arguments.argument(1, is: "docs") {
            let named = arguments.count == 2
                ? table : (2..<arguments.count).compactMap { CommandTable.respNames.find(arguments[$0]) }
            call.reply.mapHeader(named.count)
            for command in named {
                call.reply.bulk(command.name)
                call.reply.mapHeader(0)
            }
        } else {
            call.reply.error(.unknownSubcommand(command: "COMMAND", arguments[1]))
        }
    }

    /// One command's COMMAND INFO entry, as Redis 7.0 lays it out (ten fields).
    private static func writeCommandInfo(_ command: CommandSpec, _ call: inout CommandCall) {
        call.reply.arrayHeader(10)
        call.reply.bulk(command.name)
        call.reply.integer(command.arity)
        let names: [(CommandFlags, StaticString)] = [
            (.write, "write"), (.readOnly, "readonly"), (.mayAddMemory, "denyoom"), (.allowedBeforeAuth, "no_auth"),
            (.fast, "fast"),
        ]
        let flags = names.filter { command.flags.contains($0.0) }
        call.reply.setHeader(flags.count)
        for (_, name) in flags { call.reply.status(name) }
        call.reply.integer(command.keys.first)
        call.reply.integer(command.keys.last)
        call.reply.integer(command.keys.step)
        call.reply.setHeader(0)
        call.reply.arrayHeader(0)
        call.reply.arrayHeader(0)
        call.reply.arrayHeader(0)
    }

    /// CONFIG GET pattern … (a map of the matching parameters), CONFIG RESETSTAT, CONFIG SET.
    static func config(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        if arguments.argument(1, is: "resetstat") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("config|resetstat")) }
            call.context.resetStatistics()
            return call.reply.ok()
        }
        if arguments.argument(1, is: "set") { return Self.configSet(arguments, &call) }
        guard arguments.argument(1, is: "get") else {
            return call.reply.error(.unknownSubcommand(command: "CONFIG", arguments[1]))
        }
        guard arguments.count >= 3 else { return call.reply.error(.wrongArity("config|get")) }
        let matches = call.context.configuration().filter { entry in
            (2..<arguments.count).contains { Glob.matches(pattern: arguments[$0], Array(entry.name.utf8)) }
        }
        call.reply.mapHeader(matches.count)
        for entry in matches {
            call.reply.bulk(Array(entry.name.utf8))
            call.reply.bulk(Array(entry.value.utf8))
        }
    }

    /// Parameters Redis changes at run time that this server cannot: CONFIG SET refuses them with
    /// Redis's immutable-parameter error (README lists them).
    private static let fixedParameters: [StaticString] = [
        "appendonly", "bind", "databases", "dir", "maxclients", "port", "proto-max-bulk-len", "save",
    ]

    /// The eviction policies this server has (Redis's, but for the LFU ones).
    static let evictionPolicies: [StaticString] = [
        "noeviction", "allkeys-lru", "allkeys-random", "volatile-lru", "volatile-random", "volatile-ttl",
    ]

    /// CONFIG SET name value [name value …]: all or nothing, as Redis applies them (every value is
    /// checked before any changes). `requirepass`, the slow log's settings, `appendfsync`,
    /// `timeout`, `maxmemory` (redis.conf units) and `maxmemory-policy` change at run time.
    private static func configSet(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count >= 4 && arguments.count % 2 == 0 else { return call.reply.error(.wrongArity("config|set")) }
        var password: [UInt8]??
        var slowerThan: Int64?
        var maxLength: Int64?
        var fsyncPolicy: (name: ArraySlice<UInt8>, value: String)?
        var idleTimeout: Int64?
        var maxMemory: Int?
        var policy: [UInt8]?
        for i in stride(from: 2, to: arguments.count, by: 2) {
            if arguments.argument(i, is: "appendfsync") {
                let value = String(decoding: arguments[i + 1], as: UTF8.self).lowercased()
                guard ["always", "everysec", "no"].contains(value) else {
                    return call.reply.error(.configNotOneOf(arguments[i], "everysec, always, no"))
                }
                fsyncPolicy = (arguments[i], value)
            } else if arguments.argument(i, is: "timeout") {
                guard let value = ASCII.parseInteger(arguments[i + 1]) else {
                    return call.reply.error(.configNotInteger(arguments[i]))
                }
                guard (0...Int64(Int32.max)).contains(value) else {
                    return call.reply.error(.configOutOfRange(arguments[i], minimum: 0, maximum: Int(Int32.max)))
                }
                idleTimeout = value
            } else if arguments.argument(i, is: "maxmemory") {
                guard let bytes = ASCII.parseMemory(arguments[i + 1]) else {
                    return call.reply.error(.configNotMemory(arguments[i]))
                }
                maxMemory = bytes
            } else if arguments.argument(i, is: "maxmemory-policy") {
                let name = arguments[i + 1].map(ASCII.lowercased)
                guard Self.evictionPolicies.contains(where: { ASCII.equalsIgnoringCase(name[...], $0) }) else {
                    // Redis's list names its LFU policies too; this server has none (README lists the difference).
                    return call.reply.error(.configNotOneOf(
                        arguments[i], "volatile-lru, volatile-random, volatile-ttl, allkeys-lru, allkeys-random, noeviction"))
                }
                policy = name
            } else if arguments.argument(i, is: "requirepass") {
                password = .some(arguments[i + 1].isEmpty ? nil : arguments.copy(i + 1))
            } else if arguments.argument(i, is: "slowlog-log-slower-than") || arguments.argument(i, is: "slowlog-max-len") {
                guard let value = ASCII.parseInteger(arguments[i + 1]) else {
                    return call.reply.error(.configNotInteger(arguments[i]))
                }
                if arguments.argument(i, is: "slowlog-max-len") {
                    guard value >= 0 else { return call.reply.error(.configOutOfRange(arguments[i], minimum: 0)) }
                    maxLength = value
                } else {
                    guard value >= -1 else { return call.reply.error(.configOutOfRange(arguments[i], minimum: -1)) }
                    slowerThan = value
                }
            } else if Self.fixedParameters.contains(where: { arguments.argument(i, is: $0) }) {
                return call.reply.error(.configImmutable(arguments[i]))
            } else {
                return call.reply.error(.configUnknown(arguments[i]))
            }
        }
        if let fsyncPolicy, let failure = call.context.setFsyncPolicy(fsyncPolicy.value) {
            return call.reply.error(.configFailed(fsyncPolicy.name, failure))
        }
        if let idleTimeout { call.context.setIdleTimeout(seconds: Int(idleTimeout)) }
        if maxMemory != nil || policy != nil {
            _ = call.context.setMemoryLimit(bytes: maxMemory, policy: policy)
            // The rest of this batch checks memory too (or stops checking, at 0).
            call.memoryLimited = call.context.maxMemoryBytes > 0
            call.intercepting = true
        }
        if let password { call.context.setPassword(password) }
        if let slowerThan { call.context.slowLog.thresholdMicroseconds = Int(slowerThan) }
        if let maxLength { call.context.slowLog.maxLength = Int(min(maxLength, Int64(Int32.max))) }
        call.reply.ok()
    }

    /// CLIENT ID, GETNAME, SETNAME, SETINFO, INFO, LIST, KILL, NO-EVICT, NO-TOUCH.
    static func client(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let count = arguments.count
        if arguments.argument(1, is: "setname") {
            guard count == 3 else { return call.reply.error(.wrongArity("client|setname")) }
            guard arguments[2].allSatisfy({ $0 > 32 && $0 < 127 }) else { return call.reply.error(.clientNameSpaces) }
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
        } else if arguments.argument(1, is: "info") {
            guard count == 2 else { return call.reply.error(.wrongArity("client|info")) }
            var text: [UInt8] = []
            if let record = call.context.clients.record(id: call.client.id) {
                Self.appendClientLine(record, call.client, now: call.now().seconds, to: &text)
            }
            call.reply.verbatim(text)
        } else if arguments.argument(1, is: "list") {
            var text: [UInt8] = []
            for record in call.context.clients.all {
                Self.appendClientLine(record, record.id == call.client.id ? call.client : nil, now: call.now().seconds,
                                      to: &text)
            }
            call.reply.verbatim(text)
        } else if arguments.argument(1, is: "kill") {
            Self.clientKill(arguments, &call)
        } else if arguments.argument(1, is: "no-evict") || arguments.argument(1, is: "no-touch") {
            guard count == 3 else {
                return call.reply.error(.wrongArity(arguments.argument(1, is: "no-evict") ? "client|no-evict" : "client|no-touch"))
            }
            guard arguments.argument(2, is: "on") || arguments.argument(2, is: "off") else {
                return call.reply.error(.syntax)
            }
            call.reply.ok()
        } else {
            call.reply.error(.unknownSubcommand(command: "CLIENT", arguments[1]))
        }
    }

    /// CLIENT KILL ip:port | CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no].
    private static func clientKill(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let count = arguments.count
        guard count >= 3 else { return call.reply.error(.wrongArity("client|kill")) }
        let everyone = call.context.clients.all
        if count == 3 {  // the old form: one address, an error when nobody has it
            let address = String(decoding: arguments[2], as: UTF8.self)
            guard let victim = everyone.first(where: { $0.address == address }) else {
                return call.reply.error(.noSuchClient)
            }
            if victim.id == call.client.id {
                call.closeAfterReply = true
            } else {
                _ = call.context.clients.kill(id: victim.id)
            }
            return call.reply.ok()
        }
        var id: Int64?
        var address: String?
        var localAddress: String?
        var skipMe = true
        var i = 2
        while i < count {
            guard i + 1 < count else { return call.reply.error(.syntax) }
            let value = arguments[i + 1]
            if arguments.argument(i, is: "id") {
                guard let parsed = ASCII.parseInteger(value), parsed > 0 else { return call.reply.error(.clientIDInvalid) }
                id = parsed
            } else if arguments.argument(i, is: "addr") {
                address = String(decoding: value, as: UTF8.self)
            } else if arguments.argument(i, is: "laddr") {
                localAddress = String(decoding: value, as: UTF8.self)
            } else if arguments.argument(i, is: "skipme") {
                if arguments.argument(i + 1, is: "yes") {
                    skipMe = true
                } else if arguments.argument(i + 1, is: "no") {
                    skipMe = false
                } else {
                    return call.reply.error(.syntax)
                }
            } else {
                return call.reply.error(.syntax)
            }
            i += 2
        }
        var killed = 0
        for record in everyone {
            if let id, record.id != Int(id) { continue }
            if let address, record.address != address { continue }
            if let localAddress, record.localAddress != localAddress { continue }
            if skipMe && record.id == call.client.id { continue }
            if record.id == call.client.id {
                call.closeAfterReply = true  // after this reply, by the session itself
                killed += 1
            } else if call.context.clients.kill(id: record.id) {
                killed += 1
            }
        }
        call.reply.integer(killed)
    }

    /// One CLIENT LIST line with Redis 7.0's fields (the buffer sizes this server does not track are 0).
    private static func appendClientLine(_ record: ClientRecord, _ own: ClientState?, now: Int, to text: inout [UInt8]) {
        text.append("id=")
        text.appendDecimal(record.id)
        text.append(" addr=")
        text.append(contentsOf: record.address.utf8)
        text.append(" laddr=")
        text.append(contentsOf: record.localAddress.utf8)
        text.append(" fd=")
        text.appendDecimal(record.fd)
        text.append(" name=")
        text.append(contentsOf: own?.name ?? record.name)
        text.append(" age=")
        text.appendDecimal(max(0, now - record.connectedAtSeconds))
        text.append(" idle=")
        text.appendDecimal(max(0, record.idleSeconds()))
        text.append(" flags=")
        text.append(UInt8(ascii: own?.transaction != nil ? "x" : "N"))
        text.append(" db=0 sub=0 psub=0 ssub=0 multi=")
        if let transaction = own?.transaction { text.appendDecimal(transaction.count) } else { text.append("-1") }
        // The two buffers this server has per connection; Redis's other buffer fields (its free
        // space, argv and reply-list internals) have no counterpart here.
        let (input, output) = record.bufferedBytes()
        text.append(" qbuf=")
        text.appendDecimal(input)
        text.append(" qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=")
        text.appendDecimal(output)
        text.append(" tot-mem=")
        text.appendDecimal(input + output)
        text.append(" events=")
        text.append(output > 0 ? "rw" : "r")
        text.append(" cmd=")
        text.append(record.lastCommand)
        text.append(" user=default redir=-1 resp=")
        text.appendDecimal(record.protocolVersion)
        text.append(ASCII.lf)
    }

    /// FUNCTION FLUSH [ASYNC|SYNC]: no functions are ever stored, so there is nothing to remove.
    static func function(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.argument(1, is: "flush") else {
            return call.reply.error(.unknownSubcommand(command: "FUNCTION", arguments[1]))
        }
        guard arguments.count <= 3 else { return call.reply.error(.wrongArity("function|flush")) }
        guard arguments.count == 2 || arguments.argument(2, is: "async") || arguments.argument(2, is: "sync") else {
            return call.reply.error(.functionFlushOption)
        }
        call.reply.ok()
    }

    /// LASTSAVE: Unix seconds of the last finished compaction.
    static func lastsave(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.integer(call.context.facts().lastSaveTime)
    }

    /// BGSAVE [SCHEDULE]: starts a compaction into `database.txt` and replies at once.
    static func bgsave(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 1 || (arguments.count == 2 && arguments.argument(1, is: "schedule")) else {
            return call.reply.error(.syntax)
        }
        switch call.context.requestCompaction(replyWhenDone: false) {
        case .started: call.reply.status("Background saving started")
        case .alreadyRunning:
            if arguments.count == 2 {
                call.reply.status("Background saving scheduled")
            } else {
                call.reply.error(.backgroundSaveRunning)
            }
        case .failed(let reason): call.reply.error(.storage(StorageError(reason: reason)))
        }
    }

    /// BGREWRITEAOF: the same compaction (the log is rewritten into the snapshot).
    static func bgrewriteaof(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.context.requestCompaction(replyWhenDone: false) {
        case .started, .alreadyRunning: call.reply.status("Background append only file rewriting started")
        case .failed(let reason): call.reply.error(.storage(StorageError(reason: reason)))
        }
    }

    /// SAVE: a compaction; the reply (and every later one) leaves once it has finished, while
    /// the loop keeps serving everyone else.
    static func save(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.context.requestCompaction(replyWhenDone: true) {
        case .started: call.reply.ok()
        case .alreadyRunning: call.reply.error(.backgroundSaveRunning)
        case .failed(let reason): call.reply.error(.storage(StorageError(reason: reason)))
        }
    }

    /// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: a graceful stop; the connection gets no reply.
    /// SAVE compacts on the way out whatever it takes, NOSAVE never does, neither as a signal
    /// would (when it fits in a stop's time). A stop here is immediate, so ABORT finds none in
    /// progress, as Redis answers when none is.
    static func shutdown(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var saveGiven = false, noSaveGiven = false, abort = false
        for i in 1..<arguments.count {
            if arguments.argument(i, is: "nosave") {
                noSaveGiven = true
            } else if arguments.argument(i, is: "save") {
                saveGiven = true
            } else if arguments.argument(i, is: "abort") {
                abort = true
            } else if arguments.argument(i, is: "now") || arguments.argument(i, is: "force") {
                continue
            } else {
                return call.reply.error(.syntax)
            }
        }
        if abort {
            return call.reply.error(arguments.count == 2 ? .noShutdownInProgress : .syntax)
        }
        guard !(saveGiven && noSaveGiven) else { return call.reply.error(.syntax) }
        call.context.shutdown(save: saveGiven ? true : noSaveGiven ? false : nil)
        call.closeAfterReply = true
    }

    /// SLOWLOG GET [count] | LEN | RESET.
    static func slowlog(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let log = call.context.slowLog
        if arguments.argument(1, is: "len") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("slowlog|len")) }
            call.reply.integer(log.entries.count)
        } else if arguments.argument(1, is: "reset") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("slowlog|reset")) }
            log.reset()
            call.reply.ok()
        } else if arguments.argument(1, is: "get") {
            guard arguments.count <= 3 else { return call.reply.error(.wrongArity("slowlog|get")) }
            var count = 10
            if arguments.count == 3 {
                guard let n = ASCII.parseInteger(arguments[2]), n >= -1 else {
                    return call.reply.error(.slowlogCount)
                }
                count = n == -1 ? log.entries.count : Int(min(n, Int64(Int32.max)))
            }
            let shown = log.entries.prefix(count)
            call.reply.arrayHeader(shown.count)
            for entry in shown {
                call.reply.arrayHeader(6)
                call.reply.integer(entry.id)
                call.reply.integer(entry.timestampSeconds)
                call.reply.integer(entry.microseconds)
                call.reply.arrayHeader(entry.arguments.count)
                for argument in entry.arguments { call.reply.bulk(argument) }
                call.reply.bulk(entry.client)
                call.reply.bulk(entry.name)
            }
        } else {
            call.reply.error(.unknownSubcommand(command: "SLOWLOG", arguments[1]))
        }
    }

    /// WAIT numreplicas timeout: there are no replicas, so 0 at once.
    static func wait(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard call.integerArgument(arguments, 1) != nil else { return }
        guard let timeout = ASCII.parseInteger(arguments[2]) else { return call.reply.error(.timeoutNotInteger) }
        guard timeout >= 0 else { return call.reply.error(.timeoutNegative) }
        call.reply.integer(0)
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
                guard Self.checkCredentials(user: arguments[next + 1], password: arguments[next + 2], &call) else {
                    return call.reply.error(.wrongPassword)
                }
                call.client.markAuthenticated()
                next += 3
            } else if arguments.argument(next, is: "setname") && more >= 1 {
                newName = arguments[next + 1]
                next += 2
            } else {
                return call.reply.error(.helloOption(arguments[next]))
            }
        }
        guard call.client.authenticated else { return call.reply.error(.helloNoAuth) }
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
