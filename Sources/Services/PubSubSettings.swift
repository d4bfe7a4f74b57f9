// Pub/sub's settings: `client-output-buffer-limit` (Redis's three classes, of which this server
// enforces the pubsub class: a subscriber's output is the only output another client's command
// can grow; a normal client's replies stop at its own backpressure) and, with keyspace
// notifications, `notify-keyspace-events`. Parsed and printed as Redis does, for CONFIG GET/SET.

/// One class's limits: closed at once past `hard`, or after `softSeconds` past `soft` (0: none).
public struct OutputBufferLimit: Equatable, Sendable {
    public var hard: Int
    public var soft: Int
    public var softSeconds: Int

    public init(hard: Int, soft: Int, softSeconds: Int) {
        self.hard = hard
        self.soft = soft
        self.softSeconds = softSeconds
    }
}

/// `client-output-buffer-limit` as Redis keeps it: normal, replica (Redis prints `slave`), pubsub.
public struct OutputBufferLimits: Equatable, Sendable {
    public var normal = OutputBufferLimit(hard: 0, soft: 0, softSeconds: 0)
    public var replica = OutputBufferLimit(hard: 256 << 20, soft: 64 << 20, softSeconds: 60)
    public var pubsub = OutputBufferLimit(hard: 32 << 20, soft: 8 << 20, softSeconds: 60)

    public init() {}

    /// CONFIG GET's value: `normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60`.
    public var description: String {
        [("normal", self.normal), ("slave", self.replica), ("pubsub", self.pubsub)].map { name, limit in
            "\(name) \(limit.hard) \(limit.soft) \(limit.softSeconds)"
        }.joined(separator: " ")
    }

    /// Applies `<class> <hard> <soft> <seconds>` groups (sizes in redis.conf units) to a copy;
    /// nothing changes unless every group is valid. - Returns: Redis's reason when one is not.
    private static let badLimit = OutputBufferLimitError(
        "Error in hard, soft or soft_seconds setting in buffer limit configuration.")

    public func applying(_ text: String) -> Result<OutputBufferLimits, OutputBufferLimitError> {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count % 4 == 0 else { return .failure(.init("Wrong number of arguments in buffer limit configuration.")) }
        var result = self
        for group in stride(from: 0, to: words.count, by: 4) {
            let name = words[group].lowercased()
            guard ["normal", "slave", "replica", "pubsub"].contains(name) else {
                return .failure(.init("Invalid client class specified in buffer limit configuration."))
            }
            guard let hard = ASCII.parseMemory(ArraySlice(words[group + 1].utf8)) else {
                return .failure(Self.badLimit)
            }
            guard let soft = ASCII.parseMemory(ArraySlice(words[group + 2].utf8)) else {
                return .failure(Self.badLimit)
            }
            guard let seconds = Int(words[group + 3]), seconds >= 0 else {
                return .failure(Self.badLimit)
            }
            let limit = OutputBufferLimit(hard: hard, soft: soft, softSeconds: seconds)
            switch name {
            case "normal": result.normal = limit
            case "pubsub": result.pubsub = limit
            default: result.replica = limit
            }
        }
        return .success(result)
    }
}

public struct OutputBufferLimitError: Error, Equatable, Sendable {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
}

extension OutputBufferLimit {
    /// Whether a client holding `bytes` of output must be closed now; keeps the time the soft
    /// limit was first passed in `softSince` (nanoseconds, 0: under it), as Redis does.
    public func exceeded(bytes: Int, now: @autoclosure () -> UInt64, softSince: inout UInt64) -> Bool {
        if self.hard > 0 && bytes >= self.hard { return true }
        guard self.soft > 0 && bytes >= self.soft else {
            softSince = 0
            return false
        }
        let now = now()
        if softSince == 0 {
            softSince = max(now, 1)
            return false
        }
        return now &- softSince > UInt64(self.softSeconds) * 1_000_000_000
    }
}

extension Commands {
    /// Pub/sub's parameters for CONFIG GET.
    static func pubSubConfiguration(_ state: ServerState) -> [(name: String, value: String)] {
        [
            ("client-output-buffer-limit", state.pubsub.outputLimits.description),
            ("notify-keyspace-events", state.pubsub.keyspaceEvents.letters),
            ("tracking-table-max-keys", String(state.pubsub.tracking.maxKeys)),
        ]
    }

    /// Checks one of pub/sub's parameters for CONFIG SET. - Returns: nil when `arguments[i]` is
    /// not one of them; otherwise the change to make once every parameter has been checked, or
    /// the error to answer.
    static func parsePubSubParameter(
        _ arguments: ArgumentVector, _ i: Int, _ state: ServerState
    ) -> Result<(ServerState) -> Void, CommandError>? {
        if arguments.argument(i, is: "client-output-buffer-limit") {
            switch state.pubsub.outputLimits.applying(String(decoding: arguments[i + 1], as: UTF8.self)) {
            case .success(let limits): return .success { $0.pubsub.outputLimits = limits }
            case .failure(let error): return .failure(.configFailed(arguments[i], error.reason))
            }
        }
        if arguments.argument(i, is: "notify-keyspace-events") {
            guard let events = KeyspaceEvents(letters: arguments[i + 1]) else {
                return .failure(.configFailed(arguments[i], "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."))
            }
            return .success { $0.pubsub.keyspaceEvents = events }
        }
        if arguments.argument(i, is: "tracking-table-max-keys") {
            guard let keys = ASCII.parseInteger(arguments[i + 1]), keys >= 0 else {
                return .failure(.configFailed(arguments[i], "argument couldn't be parsed into an integer"))
            }
            return .success {
                $0.pubsub.tracking.maxKeys = Int(keys)
                $0.pubsub.tracking.enforceLimit(state: $0)
            }
        }
        return nil
    }
}
