// The connection commands (PING, ECHO, QUIT, SELECT, TIME, HELLO and the line protocol's `bye`
// and `help`), each written once and answered through ReplyWriter. No clock reads (TIME asks the
// `now` the caller passed in), no protocol bytes.

extension Commands {
    /// PING [message]: `PONG`, or the message as a bulk string.
    static func ping(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        if call.client.subscriber != nil && call.reply.encoding == .resp2 { return Self.subscribedPing(arguments, &call) }
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

    /// SELECT index: the client's commands go to that database from now on (Commands+Databases.swift).
    static func select(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let index = call.databaseArgument(arguments, 1) else { return }
        call.selectDatabase(index)
        call.reply.ok()
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
