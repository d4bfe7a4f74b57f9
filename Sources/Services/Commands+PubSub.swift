// SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB, as Redis 7.0 answers them.
// A client with subscriptions is in subscribed mode: over RESP2 it may only run the subscribe
// family, PING, QUIT and RESET (CommandTable's gate asks `refusesWhileSubscribed`); over RESP3
// anything goes, and messages arrive as push frames between replies. The registry
// (PubSub.swift) does the fan-out.

import Store

extension Commands {
    /// SUBSCRIBE channel [channel …]: one `subscribe` frame per channel with the client's count.
    static func subscribe(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let subscriber = call.subscriber()
        for i in 1..<arguments.count {
            let channel = Array(arguments[i])
            _ = call.state.pubsub.subscribe(subscriber, channel: channel)
            Self.writeSubscription("$9\r\nsubscribe\r\n", channel, subscriber.count, &call.reply)
        }
    }

    /// PSUBSCRIBE pattern [pattern …]: one `psubscribe` frame per pattern.
    static func psubscribe(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let subscriber = call.subscriber()
        for i in 1..<arguments.count {
            let pattern = Array(arguments[i])
            _ = call.state.pubsub.subscribe(subscriber, pattern: pattern)
            Self.writeSubscription("$10\r\npsubscribe\r\n", pattern, subscriber.count, &call.reply)
        }
    }

    /// UNSUBSCRIBE [channel …]: without channels, from every channel (one frame each, or one
    /// frame with a null channel when there was none).
    static func unsubscribe(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let registry = call.state.pubsub
        let subscriber = call.client.subscriber
        if arguments.count == 1 {
            let channels = subscriber?.channels ?? []
            if channels.isEmpty {
                Self.writeSubscription("$11\r\nunsubscribe\r\n", nil, subscriber?.count ?? 0, &call.reply)
            }
            for channel in channels {
                _ = registry.unsubscribe(subscriber!, channel: channel)
                Self.writeSubscription("$11\r\nunsubscribe\r\n", channel, subscriber!.count, &call.reply)
            }
        } else {
            for i in 1..<arguments.count {
                let channel = Array(arguments[i])
                if let subscriber { _ = registry.unsubscribe(subscriber, channel: channel) }
                Self.writeSubscription("$11\r\nunsubscribe\r\n", channel, subscriber?.count ?? 0, &call.reply)
            }
        }
        call.dropSubscriberIfIdle()
    }

    /// PUNSUBSCRIBE [pattern …]: as UNSUBSCRIBE, for patterns.
    static func punsubscribe(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let registry = call.state.pubsub
        let subscriber = call.client.subscriber
        if arguments.count == 1 {
            let patterns = subscriber?.patterns ?? []
            if patterns.isEmpty {
                Self.writeSubscription("$12\r\npunsubscribe\r\n", nil, subscriber?.count ?? 0, &call.reply)
            }
            for pattern in patterns {
                _ = registry.unsubscribe(subscriber!, pattern: pattern)
                Self.writeSubscription("$12\r\npunsubscribe\r\n", pattern, subscriber!.count, &call.reply)
            }
        } else {
            for i in 1..<arguments.count {
                let pattern = Array(arguments[i])
                if let subscriber { _ = registry.unsubscribe(subscriber, pattern: pattern) }
                Self.writeSubscription("$12\r\npunsubscribe\r\n", pattern, subscriber?.count ?? 0, &call.reply)
            }
        }
        call.dropSubscriberIfIdle()
    }

    /// PUBLISH channel message: how many clients received it.
    static func publish(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let receivers = call.state.pubsub.publish(
            channel: arguments[1], message: arguments[2], publisher: call.client.id, own: &call.reply.output)
        call.reply.integer(receivers)
    }

    /// PUBSUB CHANNELS [pattern] | NUMSUB [channel …] | NUMPAT | HELP.
    static func pubsub(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let registry = call.state.pubsub
        let count = arguments.count
        if arguments.argument(1, is: "channels") && (count == 2 || count == 3) {
            var matching: [[UInt8]] = []
            for channel in registry.activeChannels {
                if count == 3 {
                    let matched = arguments[2].withUnsafeBytes { pattern in
                        channel.withUnsafeBytes { Glob.matches(pattern: pattern, $0) }
                    }
                    guard matched else { continue }
                }
                matching.append(channel)
            }
            call.reply.arrayHeader(matching.count)
            for channel in matching { call.reply.bulk(channel) }
        } else if arguments.argument(1, is: "numsub") {
            call.reply.arrayHeader((count - 2) * 2)
            for i in 2..<max(2, count) {
                call.reply.bulk(arguments[i])
                call.reply.integer(registry.subscriberCount(Array(arguments[i])))
            }
        } else if arguments.argument(1, is: "numpat") {
            guard count == 2 else { return call.reply.error(.wrongArity("pubsub|numpat")) }
            call.reply.integer(registry.patternCount)
        } else if arguments.argument(1, is: "help") && count == 2 {
            let lines: [StaticString] = [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ]
            call.reply.arrayHeader(lines.count)
            for line in lines { call.reply.status(line) }
        } else if arguments.argument(1, is: "channels") {
            call.reply.error(.subcommandSyntax(command: "PUBSUB", arguments[1]))
        } else {
            call.reply.error(.unknownSubcommand(command: "PUBSUB", arguments[1]))
        }
    }

    /// One subscribe-family frame: `[kind, name or null, count]`, as a push in RESP3.
    private static func writeSubscription(
        _ kind: StaticString, _ name: [UInt8]?, _ count: Int, _ reply: inout ReplyWriter
    ) {
        reply.output.append(reply.encoding == .resp3 ? ">3\r\n" : "*3\r\n")
        reply.output.append(kind)
        if let name {
            reply.output.appendBulk(name)
        } else {
            reply.null()
        }
        reply.integer(count)
    }

    /// Whether a RESP2 client in subscribed mode may not run `command` (Redis allows only the
    /// subscribe family, PING, QUIT and RESET there).
    static func refusesWhileSubscribed(_ command: CommandSpec) -> Bool {
        let allowed: [StaticString] = ["subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ping", "quit", "reset"]
        let name = ArraySlice(UnsafeBufferPointer(start: command.name.utf8Start, count: command.name.utf8CodeUnitCount))
        return !allowed.contains { ASCII.equalsIgnoringCase(name, $0) }
    }
}

extension CommandCall {
    /// The client's subscriber record, made on its first subscription; subscribed mode from now
    /// on (the gate needs the intercepting path).
    mutating func subscriber() -> Subscriber {
        self.intercepting = true
        if let subscriber = self.client.subscriber {
            subscriber.encoding = self.reply.encoding
            return subscriber
        }
        let subscriber = Subscriber(id: self.client.id, output: self.client.pubSubOutput, encoding: self.reply.encoding)
        self.client.subscriber = subscriber
        return subscriber
    }

    /// Leaves subscribed mode once the last subscription is gone.
    mutating func dropSubscriberIfIdle() {
        if let subscriber = self.client.subscriber, subscriber.count == 0 { self.client.subscriber = nil }
    }

    /// Drops every subscription without replying (RESET, and the connection's close).
    mutating func unsubscribeAll() {
        guard let subscriber = self.client.subscriber else { return }
        self.state.pubsub.removeAll(subscriber)
        self.client.subscriber = nil
    }
}

extension Commands {
    /// Whether Redis names `name` with its subcommand (`config|get`) in errors.
    static func hasSubcommands(_ name: StaticString) -> Bool {
        let containers: [StaticString] = [
            "config", "client", "command", "object", "memory", "slowlog", "function", "pubsub", "script", "latency",
            "acl", "module", "xinfo", "xgroup", "cluster",
        ]
        let bytes = ArraySlice(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        return containers.contains { ASCII.equalsIgnoringCase(bytes, $0) }
    }
}

extension CommandTable {
    /// Pub/sub's rows (Redis's arities; the subscribe family and PUBLISH are never refused for
    /// memory, as in Redis).
    static let pubSubCommands: [CommandSpec] = [
        CommandSpec("subscribe", arity: -2, flags: [], run: Commands.subscribe),
        CommandSpec("psubscribe", arity: -2, flags: [], run: Commands.psubscribe),
        CommandSpec("unsubscribe", arity: -1, flags: [], run: Commands.unsubscribe),
        CommandSpec("punsubscribe", arity: -1, flags: [], run: Commands.punsubscribe),
        CommandSpec("publish", arity: 3, flags: [.fast], run: Commands.publish),
        CommandSpec("pubsub", arity: -2, flags: [], run: Commands.pubsub),
    ]
}

extension Commands {
    /// PING in RESP2 subscribed mode: `["pong", message or ""]`, as Redis answers there.
    static func subscribedPing(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count <= 2 else { return call.reply.error(.wrongArity("ping")) }
        call.reply.arrayHeader(2)
        call.reply.bulk("pong")
        if arguments.count == 2 { call.reply.bulk(arguments[1]) } else { call.reply.bulk("") }
    }
}
