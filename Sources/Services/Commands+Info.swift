// What the server reports about itself: INFO, COMMAND and the line protocol's `stats`, from the
// facts ServerControl hands over (ServerFacts) and the command table.

import Store

extension Commands {
    /// `stats` (line protocol): the context's statistics as `name=value` pairs on one line.
    static func stats(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var text: [UInt8] = []
        for (name, value) in call.control.statistics() {
            if !text.isEmpty { text.append(ASCII.space) }
            text.append(contentsOf: name.utf8)
            text.append(UInt8(ascii: "="))
            text.append(contentsOf: value.utf8)
        }
        call.reply.status(bytes: text)
    }

    /// Every section, in the order Redis 7.0 writes them, and whether `default` includes it
    /// (`all` and `everything` take every one). `reactord` is this server's own.
    private static let infoSections: [(name: StaticString, isDefault: Bool)] = [
        ("server", true), ("clients", true), ("memory", true), ("persistence", true), ("stats", true),
        ("replication", true), ("cpu", true), ("modules", true), ("commandstats", false), ("errorstats", true),
        ("latencystats", false), ("cluster", true), ("keyspace", true), ("reactord", true),
    ]

    /// INFO [section …]: Redis's sections and field names, filled from the server's facts;
    /// `default`/no argument gives the default sections, `all`/`everything` every section, a
    /// name Redis does not know nothing.
    static func info(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        func wants(_ section: (name: StaticString, isDefault: Bool)) -> Bool {
            if arguments.count == 1 { return section.isDefault }
            for i in 1..<arguments.count {
                if arguments.argument(i, is: section.name) || arguments.argument(i, is: "all")
                    || arguments.argument(i, is: "everything") || (section.isDefault && arguments.argument(i, is: "default"))
                {
                    return true
                }
            }
            return false
        }
        var facts = call.control.facts()
        facts.blockedClients = call.state.blocking.blockedCount
        facts.pubsubChannels = call.state.pubsub.channelCount
        facts.pubsubPatterns = call.state.pubsub.patternCount
        facts.outputLimitDisconnections = call.state.pubsub.outputLimitDisconnections
        var text: [UInt8] = []
        for section in Self.infoSections where wants(section) {
            if !text.isEmpty { text.append("\r\n") }
            switch section.name.description {
            case "modules": text.append("# Modules\r\n")
            case "commandstats":
                text.append("# Commandstats\r\n")
                call.state.infoStatistics.appendCommandStats(to: &text)
            case "errorstats":
                text.append("# Errorstats\r\n")
                call.state.infoStatistics.appendErrorStats(to: &text)
            case "latencystats":
                text.append("# Latencystats\r\n")
                call.state.infoStatistics.appendLatencyStats(to: &text)
            case "cluster": text.append("# Cluster\r\ncluster_enabled:0\r\n")
            default: Self.appendInfo(section.name, facts, call.now(), to: &text)
            }
            if section.name.description == "memory" { Self.appendScriptingMemory(call.state, to: &text) }
            if section.name.description == "memory" { Self.appendFreeingMemory(to: &text) }  // Commands+Tracking.swift
            if section.name.description == "stats" { Self.appendTrackingStatistics(call.state, to: &text) }
            if section.name.description == "clients" { Self.appendTrackingClients(call.state, to: &text) }
        }
        call.reply.verbatim(text)
    }

    /// Redis's `bytesToHuman`: bytes below 1 KiB as `123B`, larger figures with two decimals and the
    /// unit (`1.50K`, `64.00M`, `2.00G`).
    static func humanBytes(_ bytes: Int) -> String {
        let units: [(shift: Int, unit: String)] = [(50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K")]
        for (shift, unit) in units where bytes >= 1 << shift {
            return Self.twoDecimals(Double(bytes) / Double(1 << shift)) + unit
        }
        return "\(bytes)B"
    }

    /// `%.2f`.
    static func twoDecimals(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let sign = hundredths < 0 ? "-" : ""
        let magnitude = abs(hundredths)
        let fraction = magnitude % 100
        return "\(sign)\(magnitude / 100).\(fraction < 10 ? "0" : "")\(fraction)"
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
            field("blocked_clients", String(facts.blockedClients))
        case "memory":
            text.append("# Memory\r\n")
            // Redis's fields, in its order, for what this server measures (its allocator's own
            // figures have no counterpart here).
            let used = facts.usedMemoryBytes
            let peak = max(facts.usedMemoryPeakBytes, used)
            field("used_memory", String(used))
            field("used_memory_human", Self.humanBytes(used))
            field("used_memory_rss", String(facts.residentBytes))
            field("used_memory_rss_human", Self.humanBytes(facts.residentBytes))
            field("used_memory_peak", String(peak))
            field("used_memory_peak_human", Self.humanBytes(peak))
            field("used_memory_peak_perc", Self.twoDecimals(peak > 0 ? Double(used) * 100 / Double(peak) : 0) + "%")
            field("maxmemory", String(facts.maxMemoryBytes))
            field("maxmemory_human", Self.humanBytes(facts.maxMemoryBytes))
            field("maxmemory_policy", facts.maxMemoryPolicy)
            field("mem_fragmentation_ratio", Self.twoDecimals(used > 0 ? Double(facts.residentBytes) / Double(used) : 0))
            field("mem_fragmentation_bytes", String(facts.residentBytes - used))
            field("mem_allocator", "libc")
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
            field("pubsub_channels", String(facts.pubsubChannels))
            field("pubsub_patterns", String(facts.pubsubPatterns))
            field("client_output_buffer_limit_disconnections", String(facts.outputLimitDisconnections))
            field("lazyfreed_objects", String(BackgroundFree.freedObjects))
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
            if let sizes = facts.databaseSizes {  // Redis lists only databases that hold keys
                for size in sizes {
                    text.appendSingleLine("db\(size.index):keys=\(size.keys),expires=\(size.withDeadline),avg_ttl=0".utf8)
                    text.append("\r\n")
                }
            } else if facts.keys > 0 {
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
            (.fast, "fast"), (.noMulti, "no_multi"),
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
}
