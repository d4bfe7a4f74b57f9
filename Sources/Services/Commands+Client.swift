// CLIENT and its subcommands (ID, GETNAME, SETNAME, SETINFO, INFO, LIST, KILL, NO-EVICT, NO-TOUCH),
// over the ServerState's client registry.

extension Commands {
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
            if let record = call.state.clients.record(id: call.client.id) {
                Self.appendClientLine(record, call.client, now: call.now().seconds, to: &text)
            }
            call.reply.verbatim(text)
        } else if arguments.argument(1, is: "list") {
            var text: [UInt8] = []
            for record in call.state.clients.all {
                Self.appendClientLine(record, record.id == call.client.id ? call.client : nil, now: call.now().seconds,
                                      blocked: call.state.blocking.isBlocked(record.id), to: &text)
            }
            call.reply.verbatim(text)
        } else if arguments.argument(1, is: "kill") {
            Self.clientKill(arguments, &call)
        } else if arguments.argument(1, is: "unblock") {
            Self.clientUnblock(arguments, &call)
        } else if arguments.argument(1, is: "reply") {
            Self.clientReply(arguments, &call)  // Commands+Tracking.swift
        } else if arguments.argument(1, is: "tracking") {
            Self.clientTracking(arguments, &call)
        } else if arguments.argument(1, is: "caching") {
            Self.clientCaching(arguments, &call)
        } else if arguments.argument(1, is: "getredir") {
            Self.clientGetRedirect(arguments, &call)
        } else if arguments.argument(1, is: "trackinginfo") {
            Self.clientTrackingInfo(arguments, &call)
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
        let everyone = call.state.clients.all
        if count == 3 {  // the old form: one address, an error when nobody has it
            let address = String(decoding: arguments[2], as: UTF8.self)
            guard let victim = everyone.first(where: { $0.address == address }) else {
                return call.reply.error(.noSuchClient)
            }
            if victim.id == call.client.id {
                call.closeAfterReply = true
            } else {
                _ = call.state.clients.kill(id: victim.id)
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
            } else if call.state.clients.kill(id: record.id) {
                killed += 1
            }
        }
        call.reply.integer(killed)
    }

    /// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends a blocked client's wait (Blocking.swift) with its
    /// timeout reply or the UNBLOCKED error; 1 if it was blocked, else 0.
    private static func clientUnblock(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 3 || arguments.count == 4 else {
            return call.reply.error(arguments.count < 3 ? .wrongArity("client|unblock") : .unknownSubcommand(command: "CLIENT", arguments[1]))
        }
        var reason = UnblockReason.timeout
        if arguments.count == 4 {
            if arguments.argument(3, is: "error") {
                reason = .error
            } else if !arguments.argument(3, is: "timeout") {
                return call.reply.error(.redis(code: "ERR", "CLIENT UNBLOCK reason should be TIMEOUT or ERROR"))
            }
        }
        guard let id = call.integerArgument(arguments, 2) else { return }
        call.reply.integer(call.state.blocking.unblock(Int(id), reason: reason) ? 1 : 0)
    }

    /// One CLIENT LIST line with Redis 7.0's fields (the buffer sizes this server does not track are 0).
    private static func appendClientLine(
        _ record: ClientRecord, _ own: ClientState?, now: Int, blocked: Bool = false, to text: inout [UInt8]
    ) {
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
        text.append(UInt8(ascii: own?.transaction != nil ? "x" : blocked ? "b" : "N"))
        text.append(" db=")
        text.appendDecimal(own?.database ?? record.database)
        text.append(" sub=0 psub=0 ssub=0 multi=")
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
}
