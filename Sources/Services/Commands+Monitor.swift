// MONITOR: every command any client runs, shown to the monitoring clients as Redis formats it
// (`+<seconds>.<microseconds> [0 <address>] "arg" …`, arguments quoted with C escapes), with the
// passwords of AUTH and HELLO … AUTH redacted. Costs one check per batch while nobody monitors.

extension Commands {
    /// MONITOR: `OK`, then this connection receives every other client's commands.
    static func monitor(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.state.clients.startMonitoring(id: call.client.id)
        call.monitoring = true
        call.intercepting = true
        call.reply.ok()
    }

    /// Shows one command to the monitors.
    static func feedMonitors(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let now = call.now()
        var line: [UInt8] = [UInt8(ascii: "+")]
        line.appendDecimal(now.seconds)
        line.append(UInt8(ascii: "."))
        var micro: [UInt8] = []
        micro.appendDecimal(now.microseconds)
        line.append(contentsOf: repeatElement(ASCII.zero, count: max(0, 6 - micro.count)))
        line.append(contentsOf: micro)
        line.append(" [0 ")
        line.append(contentsOf: (call.state.clients.record(id: call.client.id)?.address ?? "").utf8)
        line.append("]")
        let hidden = Self.secretArguments(arguments)
        for i in 0..<arguments.count {
            line.append(" \"")
            if hidden.contains(i) {
                line.append("(redacted)")
            } else {
                Self.appendQuoted(arguments[i], to: &line)
            }
            line.append(UInt8(ascii: "\""))
        }
        line.append("\r\n")
        call.state.clients.feedMonitors(line, except: call.client.id)
    }

    /// The arguments MONITOR and SLOWLOG show as `(redacted)`, as Redis hides them: AUTH's
    /// credentials, HELLO … AUTH's user and password, CONFIG SET requirepass's value.
    static func secretArguments(_ arguments: ArgumentVector) -> Set<Int> {
        var hidden: Set<Int> = []
        if arguments.argument(0, is: "auth") {
            for i in 1..<arguments.count { hidden.insert(i) }
        } else if arguments.argument(0, is: "hello") {
            var i = 2
            while i < arguments.count {
                if arguments.argument(i, is: "auth") {
                    hidden.formUnion([i + 1, i + 2].filter { $0 < arguments.count })
                    i += 3
                } else {
                    i += 1
                }
            }
        } else if arguments.argument(0, is: "config") && arguments.count > 1 && arguments.argument(1, is: "set") {
            for i in stride(from: 2, to: arguments.count - 1, by: 2) where arguments.argument(i, is: "requirepass") {
                hidden.insert(i + 1)
            }
        }
        return hidden
    }

    /// The bytes as Redis's sdscatrepr writes them between quotes.
    private static func appendQuoted(_ bytes: ArraySlice<UInt8>, to line: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"), UInt8(ascii: "\""):
                line.append(UInt8(ascii: "\\"))
                line.append(byte)
            case ASCII.lf: line.append("\\n")
            case ASCII.cr: line.append("\\r")
            case ASCII.tab: line.append("\\t")
            case 7: line.append("\\a")
            case 8: line.append("\\b")
            case 32...126: line.append(byte)
            default:
                line.append("\\x")
                line.append(hex[Int(byte >> 4)])
                line.append(hex[Int(byte & 15)])
            }
        }
    }
}
