// CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO and REPLY, as Redis 7.0's networking.c answers
// them, over the tracking registry (Tracking.swift). CLIENT REPLY OFF and SKIP silence replies by
// cutting them from the output after the command (the one check per command is a flag set only while
// this connection is silenced or some client tracks keys); subscribe-family confirmations and pushes
// still go out, as in Redis (they are sent while it flags the client as pushing).

import Store

/// CLIENT REPLY's state for one connection.
enum ReplyMode: Equatable {
    case on
    case off
    /// CLIENT REPLY SKIP just ran: the next command's reply is dropped.
    case skipNext
    /// This command's reply is dropped.
    case skipping
}

extension Commands {
    /// CLIENT REPLY ON|OFF|SKIP.
    static func clientReply(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 3 else { return call.reply.error(.wrongArity("client|reply")) }
        if arguments.argument(2, is: "on") {
            call.client.replyMode = .on
            call.reply.ok()
        } else if arguments.argument(2, is: "off") {
            call.client.replyMode = .off
        } else if arguments.argument(2, is: "skip") {
            if call.client.replyMode != .off { call.client.replyMode = .skipNext }
        } else {
            return call.reply.error(.syntax)
        }
        call.afterEachCommand = true
    }

    /// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix …] [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
    static func clientTracking(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count >= 3 else { return call.reply.error(.wrongArity("client|tracking")) }
        var redirect: Int64 = 0
        var broadcast = false, optIn = false, optOut = false, noLoop = false
        var prefixes: [[UInt8]] = []
        var j = 3
        while j < arguments.count {
            let more = j + 1 < arguments.count
            if arguments.argument(j, is: "redirect") && more {
                j += 1
                if redirect != 0 { return call.reply.error(.redis(code: "ERR", "A client can only redirect to a single other client")) }
                guard let id = call.integerArgument(arguments, j) else { return }
                guard call.state.clients.record(id: Int(truncatingIfNeeded: id)) != nil else {
                    return call.reply.error(.redis(code: "ERR", "The client ID you want redirect to does not exist"))
                }
                redirect = id
            } else if arguments.argument(j, is: "bcast") {
                broadcast = true
            } else if arguments.argument(j, is: "optin") {
                optIn = true
            } else if arguments.argument(j, is: "optout") {
                optOut = true
            } else if arguments.argument(j, is: "noloop") {
                noLoop = true
            } else if arguments.argument(j, is: "prefix") && more {
                j += 1
                prefixes.append(arguments.copy(j))
            } else {
                return call.reply.error(.syntax)
            }
            j += 1
        }
        let registry = call.state.pubsub.tracking
        let id = call.client.id
        if arguments.argument(2, is: "on") {
            if !broadcast && !prefixes.isEmpty {
                return call.reply.error(.redis(code: "ERR", "PREFIX option requires BCAST mode to be enabled"))
            }
            let current = registry.clients[id]
            if let current, current.broadcast != broadcast {
                return call.reply.error(.redis(code: "ERR",
                    "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."))
            }
            if broadcast && (optIn || optOut) {
                return call.reply.error(.redis(code: "ERR", "OPTIN and OPTOUT are not compatible with BCAST"))
            }
            if optIn && optOut {
                return call.reply.error(.redis(code: "ERR", "You can't specify both OPTIN mode and OPTOUT mode"))
            }
            if let current, (optIn && current.optOut) || (optOut && current.optIn) {
                return call.reply.error(.redis(code: "ERR",
                    "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."))
            }
            if broadcast, let (new, existing, own) = registry.prefixCollision(id, prefixes) {
                let (a, b) = (String(decoding: new, as: UTF8.self), String(decoding: existing, as: UTF8.self))
                return call.reply.error(.redis(code: "ERR", own
                    ? "Prefix '\(a)' overlaps with an existing prefix '\(b)'. Prefixes for a single client must not overlap."
                    : "Prefix '\(a)' overlaps with another provided prefix '\(b)'. Prefixes for a single client must not overlap."))
            }
            registry.enable(id, redirect: Int(truncatingIfNeeded: redirect), broadcast: broadcast, optIn: optIn, optOut: optOut,
                            noLoop: noLoop, prefixes: prefixes)
            call.afterEachCommand = true
            call.watchesActive = true
            call.intercepting = true
        } else if arguments.argument(2, is: "off") {
            registry.disable(id)
        } else {
            return call.reply.error(.syntax)
        }
        call.reply.ok()
    }

    /// CLIENT CACHING YES|NO: whether the next command's reads are tracked (OPTIN / OPTOUT).
    static func clientCaching(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 3 else { return call.reply.error(.wrongArity("client|caching")) }
        guard let client = call.state.pubsub.tracking.clients[call.client.id] else {
            return call.reply.error(.redis(code: "ERR",
                "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"))
        }
        if arguments.argument(2, is: "yes") {
            guard client.optIn else {
                return call.reply.error(.redis(code: "ERR", "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."))
            }
        } else if arguments.argument(2, is: "no") {
            guard client.optOut else {
                return call.reply.error(.redis(code: "ERR", "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."))
            }
        } else {
            return call.reply.error(.syntax)
        }
        client.caching = true
        call.reply.ok()
    }

    /// CLIENT GETREDIR: the redirect id, 0 without one, -1 when not tracking.
    static func clientGetRedirect(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 2 else { return call.reply.error(.wrongArity("client|getredir")) }
        call.reply.integer(call.state.pubsub.tracking.clients[call.client.id]?.redirect ?? -1)
    }

    /// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis lists them.
    static func clientTrackingInfo(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 2 else { return call.reply.error(.wrongArity("client|trackinginfo")) }
        let client = call.state.pubsub.tracking.clients[call.client.id]
        var flags: [StaticString] = [client == nil ? "off" : "on"]
        if let client {
            if client.broadcast { flags.append("bcast") }
            if client.optIn { flags.append("optin") }
            if client.optIn && client.caching { flags.append("caching-yes") }
            if client.optOut { flags.append("optout") }
            if client.optOut && client.caching { flags.append("caching-no") }
            if client.noLoop { flags.append("noloop") }
            if client.brokenRedirect { flags.append("broken_redirect") }
        }
        call.reply.mapHeader(3)
        call.reply.bulk("flags")
        call.reply.setHeader(flags.count)
        for flag in flags { call.reply.bulk(flag) }
        call.reply.bulk("redirect")
        call.reply.integer(client?.redirect ?? -1)
        call.reply.bulk("prefixes")
        let prefixes = client?.prefixes ?? []
        call.reply.arrayHeader(prefixes.count)
        for prefix in prefixes { call.reply.bulk(prefix) }
    }

    /// Before a command of a tracking client runs (CommandTable's gate): a read-only command's keys
    /// are remembered (default mode); CLIENT CACHING's yes/no holds for one command (not CLIENT's
    /// own, and through a MULTI), as Redis's resetClient keeps it.
    static func trackRead(_ command: CommandSpec, _ arguments: ArgumentVector, _ call: inout CommandCall) {
        let registry = call.state.pubsub.tracking
        guard let client = registry.clients[call.client.id] else { return }
        // A script's read-only commands track the keys the script declared, not their own (Redis
        // remembers the caller's keys): noted when the script starts, used by the commands it runs.
        let inScript = call.lastCommand.map { Self.scriptCommands.contains($0.description) } ?? false
        if !inScript && Self.scriptCommands.contains(command.name.description) {
            let declared = arguments.count > 2 ? Int(ASCII.parseInteger(arguments[2]) ?? 0) : 0
            registry.scriptKeys = declared > 0 && declared <= arguments.count - 3 ? (3..<3 + declared).map { arguments.copy($0) } : []
        }
        if command.flags.contains(.readOnly) && !client.broadcast && call.client.transaction == nil {
            if inScript {
                registry.remember(registry.scriptKeys, by: client, state: call.state)
            } else if command.keys.first > 0 {
                let keys = command.keys
                let last = keys.last < 0 ? arguments.count + keys.last : keys.last
                registry.remember(stride(from: keys.first, through: min(last, arguments.count - 1), by: max(keys.step, 1))
                    .map { arguments.copy($0) }, by: client, state: call.state)
            }
        }
    }

    static let scriptCommands: Set<String> = ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]

    /// After each command of a silenced or tracking connection: CLIENT REPLY's cut, then the
    /// tracking messages that follow a reply.
    @inline(never)
    static func afterCommand(_ call: inout CommandCall, replyStart: Int) {
        switch call.client.replyMode {
        case .on: break
        case .skipNext: call.client.replyMode = .skipping
        case .off, .skipping:
            if call.client.replyMode == .skipping { call.client.replyMode = .on }
            // The subscribe family's confirmations are pushes: Redis sends them regardless.
            let name = call.lastCommand?.description ?? ""
            if !["subscribe", "psubscribe", "unsubscribe", "punsubscribe"].contains(name),
               call.reply.output.count > replyStart {
                // So are the pushes the command caused for this client (SilencedReplies.swift).
                Self.dropRepliesKeepingPushes(&call.reply.output, from: replyStart)
            }
        }
        let tracking = call.state.pubsub.tracking
        // CLIENT CACHING's answer covers the next command, or the next transaction (every command
        // EXEC runs) or script whole: dropped once a command other than CLIENT ends outside MULTI,
        // as Redis's resetClient drops it.
        if let client = tracking.clients[call.client.id], client.caching, call.client.transaction == nil,
           let name = call.lastCommand, !ASCII.equalsIgnoringCase(Self.bytes(of: name), "client") {
            client.caching = false
        }
        if tracking.isActive { tracking.afterCommand(call.client.id, replyStart: replyStart, state: call.state, output: &call.reply.output) }
    }

    private static func bytes(of name: StaticString) -> ArraySlice<UInt8> {
        ArraySlice(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// FLUSHDB / FLUSHALL: tracking clients hear a null invalidation (before the reply; the
    /// flushing client's own, after it).
    static func invalidateTrackedOnFlush(_ call: inout CommandCall) {
        let tracking = call.state.pubsub.tracking
        if tracking.isActive { tracking.invalidateAll(state: call.state) }
    }

    /// RESET: tracking off, replies on.
    static func resetTracking(_ call: inout CommandCall) {
        call.state.pubsub.tracking.disable(call.client.id)
        call.client.replyMode = .on
    }

    /// INFO memory's fields about memory freed later: big values handed to the background thread
    /// and not yet freed (Sources/Store/BackgroundFree.swift); no buffer is left out of the limit.
    /// Redis's test helpers wait on them (`wait_lazyfree_done`).
    static func appendFreeingMemory(to text: inout [UInt8]) {
        text.append(contentsOf: "mem_not_counted_for_evict:0\r\nlazyfree_pending_objects:\(BackgroundFree.pendingObjects)\r\n".utf8)
    }

    /// INFO stats' tracking fields: keys remembered, (key, client) pairs, BCAST prefixes.
    static func appendTrackingStatistics(_ state: ServerState, to text: inout [UInt8]) {
        let tracking = state.pubsub.tracking
        text.append(contentsOf: "tracking_total_keys:\(tracking.keyCount)\r\ntracking_total_items:\(tracking.itemCount)\r\n".utf8)
        text.append(contentsOf: "tracking_total_prefixes:\(tracking.prefixCount)\r\n".utf8)
    }

    /// INFO clients' `tracking_clients`.
    static func appendTrackingClients(_ state: ServerState, to text: inout [UInt8]) {
        text.append(contentsOf: "tracking_clients:\(state.pubsub.tracking.clients.count)\r\n".utf8)
    }
}
