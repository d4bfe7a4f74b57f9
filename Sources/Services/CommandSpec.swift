// One row of the command table and what it declares: Redis's arity, flags and key positions,
// and how the line protocol writes the command where it has it. Declarations only: dispatch is
// in CommandTable, implementations in Commands.

/// What a command is, for dispatch and for the checks the later limits need (Redis's flags).
struct CommandFlags: OptionSet, Sendable {
    let rawValue: UInt16

    /// Changes the keyspace (logged; replies wait for durability).
    static let write = CommandFlags(rawValue: 1 << 0)
    /// Only reads the keyspace.
    static let readOnly = CommandFlags(rawValue: 1 << 1)
    /// May add memory: refused past `--max-memory` under `noeviction` (Redis's `denyoom`).
    static let mayAddMemory = CommandFlags(rawValue: 1 << 2)
    /// Allowed before a connection has authenticated (Redis's `no-auth`).
    static let allowedBeforeAuth = CommandFlags(rawValue: 1 << 3)
    /// Runs at once inside MULTI instead of being queued (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    static let runsInMulti = CommandFlags(rawValue: 1 << 4)
    /// O(1) or O(log n) (Redis's `fast`).
    static let fast = CommandFlags(rawValue: 1 << 5)
    /// Exists on the line protocol only (`put`, `stats`, `help`, `bye`); RESP does not know it.
    static let lineOnly = CommandFlags(rawValue: 1 << 6)
    /// Refused inside MULTI, which it then aborts (Redis's `no-multi`: SAVE, SHUTDOWN; SYNC and
    /// PSYNC, which this server does not have).
    static let noMulti = CommandFlags(rawValue: 1 << 7)
}

/// Where a command's keys are in its arguments, as Redis's first key, last key and step
/// (`last` -1: up to the last argument).
struct KeyPositions: Sendable {
    let first: Int
    let last: Int
    let step: Int

    static let none = KeyPositions(first: 0, last: 0, step: 0)
    /// One key, argument 1.
    static let one = KeyPositions(first: 1, last: 1, step: 1)
    /// Every argument from 1 is a key.
    static let all = KeyPositions(first: 1, last: -1, step: 1)
    /// Key, value, key, value, … from argument 1.
    static let pairs = KeyPositions(first: 1, last: -1, step: 2)
}

/// How the line protocol writes a command (docs/protocol.md "kv service"), where that differs from RESP.
struct LineSyntax: Sendable {
    /// The line protocol's name, when it is not the command's (`count` for DBSIZE).
    var name: StaticString?
    /// The line protocol's arity, when it is not the command's (Redis convention).
    var arity: Int?
    /// From this argument on, the rest of the line is one argument: what follows the previous
    /// word and exactly one separator, internal blanks kept (`set`/`put` value: 2; `setex`: 3).
    var restFrom: Int?
    /// Whether that rest may be empty (`set <key>` stores the empty value; `put` needs one).
    var emptyRest = false
    /// How an integer reply is shown.
    var integers = LineIntegerReply.number
    /// The synopsis `help` lists.
    var usage: StaticString
}

/// One row of the command table. A class so that dispatch reads a row's fields in place
/// instead of copying the row (with its closure and line syntax) per request.
final class CommandSpec: Sendable {
    /// The lower-case name, as RESP clients send it in any case.
    let name: StaticString
    /// Redis's arity: positive is exact, negative a minimum, the name included.
    let arity: Int
    let flags: CommandFlags
    let keys: KeyPositions
    /// Nil when the line protocol does not have the command.
    let line: LineSyntax?
    /// The implementation. Arity (and the line protocol's limits) are checked before it runs.
    let run: @Sendable (ArgumentVector, inout CommandCall) -> Void

    init(
        _ name: StaticString, arity: Int, flags: CommandFlags, keys: KeyPositions = .none, line: LineSyntax? = nil,
        run: @escaping @Sendable (ArgumentVector, inout CommandCall) -> Void
    ) {
        self.name = name
        self.arity = arity
        self.flags = flags
        self.keys = keys
        self.line = line
        self.run = run
    }

    /// Whether `count` arguments satisfy `arity` (Redis's convention).
    static func accepts(arity: Int, _ count: Int) -> Bool {
        arity > 0 ? count == arity : count >= -arity
    }
}
