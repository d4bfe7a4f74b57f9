// Every error a kv connection can be answered with, and its wording in each protocol: one table,
// so a command names the error and never spells it. RESP texts are Redis's own where Redis has the
// error; the line protocol says `ERR <reason>` (docs/protocol.md "kv service").

/// Why a request failed; ``write(to:encoding:)`` words it for the connection's protocol.
enum CommandError: Error {
    // Framing: the connection closes after these.
    /// A line-protocol request longer than `--max-line`.
    case lineTooLong
    /// A RESP stream that cannot be parsed.
    case protocolError(RESPParser.ProtocolError)

    // Dispatch.
    /// No such command (in this protocol); the request is shown as Redis shows it.
    case unknownCommand(ArgumentVector)
    /// The argument count does not match the command's arity; `name` as the client wrote it
    /// to the table (`get`, `config|get`).
    case wrongArity(StaticString)
    /// No such subcommand of `command`.
    case unknownSubcommand(command: StaticString, ArraySlice<UInt8>)
    /// A known subcommand with the wrong argument count, where Redis's implementation checks it.
    case subcommandSyntax(command: StaticString, ArraySlice<UInt8>)
    /// A RESP2 client in subscribed mode ran something other than the subscribe family, PING,
    /// QUIT or RESET.
    case notInSubscribedMode(StaticString, ArgumentVector)

    // Arguments.
    case syntax
    case notInteger
    case overflow
    case dbIndexOutOfRange
    case protocolVersionNotInteger
    case unsupportedProtocolVersion
    /// HELLO got an option it does not know (or one missing its arguments).
    case helloOption(ArraySlice<UInt8>)

    /// A 32-bit argument (a database index) outside Int32.
    case intOutOfRange
    case notFloat
    case nanOrInfinity
    case decrementOverflow
    case offsetOutOfRange
    /// A write would make a value longer than `--max-value` (Redis's `proto-max-bulk-len`).
    case stringTooLong
    case lcsLengthAndRanges
    case lcsTooLarge
    case sameObject

    case clientNameSpaces
    case slowlogCount
    case invalidCursor
    case objectFreqWithoutLFU
    case invalidExpireTime(StaticString)
    case lineInvalidExpireTime
    case unsupportedOption(ArraySlice<UInt8>)
    case expireNXIncompatible
    case expireGTLTIncompatible
    case configUnknown(ArraySlice<UInt8>)
    case configImmutable(ArraySlice<UInt8>)
    case configNotInteger(ArraySlice<UInt8>)
    case configOutOfRange(ArraySlice<UInt8>, minimum: Int, maximum: Int = Int.max)
    case configNotOneOf(ArraySlice<UInt8>, StaticString)
    case configFailed(ArraySlice<UInt8>, String)
    case configNotMemory(ArraySlice<UInt8>)
    case functionFlushOption
    case noSuchClient
    case clientIDInvalid
    case backgroundSaveRunning
    case noShutdownInProgress
    case timeoutNotInteger
    case timeoutNegative

    // Authentication.
    case noAuth
    case helloNoAuth
    case wrongPassword
    case noPasswordSet

    // Transactions.
    case multiNested
    case execWithoutMulti
    case discardWithoutMulti
    case watchInMulti
    case execAbort
    /// EXEC itself had the wrong arity inside MULTI: the transaction is discarded.
    case execAbortWrongArity(StaticString)

    // Keyspace.
    case noSuchKey
    /// A command for one type on a key holding another (Redis's `-WRONGTYPE`).
    case wrongType
    /// Any other error as Redis words it: its code (`ERR`, `BUSY`, `NOSCRIPT`, …) and text. For the
    /// data types' many one-off texts, so that each family's errors live beside its commands.
    case redis(code: StaticString, String)
    case notFound
    case keyExists
    /// The log could not take a write.
    case storage(String)
    /// Used memory is past `--max-memory` and no key could be evicted to make room.
    case outOfMemory
    /// EXEC with a queued command that may add memory, while used memory is past the limit: the
    /// transaction is discarded.
    case execAbortOutOfMemory

    // The line protocol's own limits (docs/protocol.md "kv service").
    case keyTooLong
    case valueTooLarge
    case valueBeginsWithERR
    case valueNotRepresentable

    /// The error code RESP puts after `-`.
    var code: StaticString {
        switch self {
        case .unsupportedProtocolVersion: "NOPROTO"
        case .execAbort, .execAbortWrongArity, .execAbortOutOfMemory: "EXECABORT"
        case .outOfMemory: "OOM"
        case .noAuth, .helloNoAuth: "NOAUTH"
        case .wrongPassword: "WRONGPASS"
        case .wrongType: "WRONGTYPE"
        case .redis(let code, _): code
        default: "ERR"
        }
    }

    /// Appends the error reply: `-<CODE> <text>\r\n` (RESP2 and RESP3), `ERR <text>\n` (line).
    func write(to output: inout [UInt8], encoding: ReplyEncoding) {
        let line = encoding == .line
        if line {
            output.append("ERR ")
        } else {
            output.append(UInt8(ascii: "-"))
            output.append(self.code)
            output.append(ASCII.space)
        }
        switch self {
        case .lineTooLong: output.append("line too long")
        case .protocolError(let error):
            output.append("Protocol error: ")
            error.write(to: &output)
        case .unknownCommand(let arguments):
            if line {
                output.append("unknown command '")
                output.appendSingleLine(arguments[0])
                output.append("'")
            } else {
                Self.writeRedisUnknownCommand(arguments, to: &output)
            }
        case .wrongArity(let name):
            output.append("wrong number of arguments for '")
            output.append(name)
            output.append(line ? "'" : "' command")
        case .unknownSubcommand(let command, let subcommand):
            output.append("unknown subcommand '")
            output.appendSingleLine(Self.cString(subcommand, max: 128))
            output.append("'. Try ")
            output.append(command)
            output.append(" HELP.")
        case .subcommandSyntax(let command, let subcommand):
            output.append("unknown subcommand or wrong number of arguments for '")
            output.appendSingleLine(Self.cString(subcommand, max: 128))
            output.append("'. Try ")
            output.append(command)
            output.append(" HELP.")
        case .notInSubscribedMode(let name, let arguments):
            output.append("Can't execute '")
            output.append(name)
            if arguments.count > 1 && Commands.hasSubcommands(name) {
                output.append(UInt8(ascii: "|"))
                output.append(contentsOf: arguments[1].map(ASCII.lowercased))
            }
            output.append("': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
        case .syntax: output.append("syntax error")
        case .notInteger: output.append("value is not an integer or out of range")
        case .overflow: output.append("increment or decrement would overflow")
        case .dbIndexOutOfRange: output.append("DB index is out of range")
        case .protocolVersionNotInteger: output.append("Protocol version is not an integer or out of range")
        case .unsupportedProtocolVersion: output.append("unsupported protocol version")
        case .helloOption(let option):
            output.append("Syntax error in HELLO option '")
            output.appendSingleLine(option)
            output.append("'")
        case .intOutOfRange: output.append("value is out of range, value must between -2147483648 and 2147483647")
        case .notFloat: output.append("value is not a valid float")
        case .nanOrInfinity: output.append("increment would produce NaN or Infinity")
        case .decrementOverflow: output.append("decrement would overflow")
        case .offsetOutOfRange: output.append("offset is out of range")
        case .stringTooLong: output.append("string exceeds maximum allowed size (proto-max-bulk-len)")
        case .lcsLengthAndRanges: output.append("If you want both the length and indexes, please just use IDX.")
        case .lcsTooLarge: output.append("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        case .sameObject: output.append("source and destination objects are the same")
        case .clientNameSpaces: output.append("Client names cannot contain spaces, newlines or special characters.")
        case .invalidExpireTime(let command):
            output.append("invalid expire time in '")
            output.append(command)
            output.append("' command")
        case .lineInvalidExpireTime: output.append("invalid expire time")
        case .unsupportedOption(let option):
            output.append("Unsupported option ")
            output.appendSingleLine(option)
        case .expireNXIncompatible: output.append("NX and XX, GT or LT options at the same time are not compatible")
        case .expireGTLTIncompatible: output.append("GT and LT options at the same time are not compatible")
        case .invalidCursor: output.append("invalid cursor")
        case .objectFreqWithoutLFU:
            output.append("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that ")
            output.append("when switching between policies at runtime LRU and LFU data will take some time to adjust.")
        case .configUnknown(let name):
            output.append("Unknown option or number of arguments for CONFIG SET - '")
            output.appendSingleLine(name)
            output.append("'")
        case .configImmutable(let name):
            Self.writeConfigFailure(name, "can't set immutable config", to: &output)
        case .slowlogCount: output.append("count should be greater than or equal to -1")
        case .configNotMemory(let name):
            Self.writeConfigFailure(name, "argument must be a memory value", to: &output)
        case .configNotInteger(let name):
            Self.writeConfigFailure(name, "argument couldn't be parsed into an integer", to: &output)
        case .configOutOfRange(let name, let minimum, let maximum):
            Self.writeConfigFailure(name, "argument must be between ", to: &output)
            output.appendDecimal(minimum)
            output.append(" and ")
            output.appendDecimal(maximum)
            output.append(" inclusive")
        case .configNotOneOf(let name, let values):
            Self.writeConfigFailure(name, "argument(s) must be one of the following: ", to: &output)
            output.append(values)
        case .configFailed(let name, let reason):
            Self.writeConfigFailure(name, "", to: &output)
            output.appendSingleLine(reason.utf8)
        case .functionFlushOption: output.append("FUNCTION FLUSH only supports SYNC|ASYNC option")
        case .noSuchClient: output.append("No such client")
        case .clientIDInvalid: output.append("client-id should be greater than 0")
        case .backgroundSaveRunning: output.append("Background save already in progress")
        case .noShutdownInProgress: output.append("No shutdown in progress.")
        case .timeoutNotInteger: output.append("timeout is not an integer or out of range")
        case .timeoutNegative: output.append("timeout is negative")
        case .noAuth: output.append(line ? "authentication required" : "Authentication required.")
        case .helloNoAuth:
            output.append("HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH ")
            output.append("<user> <pass> option can be used to authenticate the client and select the RESP protocol ")
            output.append("version at the same time")
        case .wrongPassword:
            output.append(line ? "invalid password" : "invalid username-password pair or user is disabled.")
        case .noPasswordSet:
            output.append(line ? "no password is set" : "AUTH <password> called without any password configured ")
            if !line { output.append("for the default user. Are you sure your configuration is correct?") }
        case .multiNested: output.append("MULTI calls can not be nested")
        case .execWithoutMulti: output.append("EXEC without MULTI")
        case .discardWithoutMulti: output.append("DISCARD without MULTI")
        case .watchInMulti: output.append("WATCH inside MULTI is not allowed")
        case .execAbort: output.append("Transaction discarded because of previous errors.")
        case .execAbortWrongArity(let name):
            output.append("Transaction discarded because of: wrong number of arguments for '")
            output.append(name)
            output.append("' command")
        case .noSuchKey: output.append("no such key")
        case .wrongType: output.append("Operation against a key holding the wrong kind of value")
        case .redis(_, let text): output.appendSingleLine(text.utf8)
        case .notFound: output.append("not found")
        case .keyExists: output.append("key exists")
        case .storage(let reason): output.appendSingleLine(reason.utf8)
        case .outOfMemory: output.append(line ? "out of memory" : "command not allowed when used memory > 'maxmemory'.")
        case .execAbortOutOfMemory:
            output.append("Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.")
        case .keyTooLong: output.append("key too long")
        case .valueTooLarge: output.append("value too large")
        case .valueBeginsWithERR: output.append("value may not begin with ERR")
        case .valueNotRepresentable: output.append("value not representable; use RESP")
        }
        if line { output.append(ASCII.lf) } else { output.append("\r\n") }
    }

    /// Redis's CONFIG SET failure: `CONFIG SET failed (possibly related to argument 'NAME') - REASON`.
    private static func writeConfigFailure(_ name: ArraySlice<UInt8>, _ reason: StaticString, to output: inout [UInt8]) {
        output.append("CONFIG SET failed (possibly related to argument '")
        output.appendSingleLine(name)
        output.append("') - ")
        output.append(reason)
    }

    /// Redis's wording: the name and the first arguments, each cut so the list stays near 128
    /// bytes, and cut at a NUL as Redis's C formatting does.
    private static func writeRedisUnknownCommand(_ arguments: ArgumentVector, to output: inout [UInt8]) {
        output.append("unknown command '")
        output.appendSingleLine(Self.cString(arguments[0], max: 128))
        output.append("', with args beginning with: ")
        var written = 0
        var i = 1
        while i < arguments.count && written < 128 {
            let shown = Self.cString(arguments[i], max: 128 - written)
            output.append(UInt8(ascii: "'"))
            output.appendSingleLine(shown)
            output.append("' ")
            written += shown.count + 3
            i += 1
        }
    }

    private static func cString(_ bytes: ArraySlice<UInt8>, max: Int) -> ArraySlice<UInt8> {
        bytes.prefix(max).prefix(while: { $0 != 0 })
    }
}
