// CONFIG GET, SET and RESETSTAT: parameters are checked here, plain state (password, slow log)
// is set on ServerState, the rest applied through ServerControl (ConfigChange).

import Store

extension Commands {
    /// CONFIG GET pattern … (a map of the matching parameters), CONFIG RESETSTAT, CONFIG SET.
    static func config(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        if arguments.argument(1, is: "resetstat") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("config|resetstat")) }
            call.control.resetStatistics()
            BackgroundFree.resetFreedObjects()
            return call.reply.ok()
        }
        if arguments.argument(1, is: "set") { return Self.configSet(arguments, &call) }
        guard arguments.argument(1, is: "get") else {
            return call.reply.error(.unknownSubcommand(command: "CONFIG", arguments[1]))
        }
        guard arguments.count >= 3 else { return call.reply.error(.wrongArity("config|get")) }
        let limits = EncodingLimits.parameters.flatMap { parameter in
            parameter.names.map { (name: $0, value: String(parameter.limit.current)) }
        }
        let matches = (call.control.configuration() + limits + Self.pubSubConfiguration(call.state)
            + Self.scriptingConfiguration(call.state)).filter { entry in
            (2..<arguments.count).contains {
                Glob.matches(pattern: arguments.copy($0), Array(entry.name.utf8), ignoringCase: true)
            }
        }
        call.reply.mapHeader(matches.count)
        for entry in matches {
            call.reply.bulk(Array(entry.name.utf8))
            call.reply.bulk(Array(entry.value.utf8))
        }
    }

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
        var policy: KeyEviction?
        var limits: [(EncodingLimits.Parameter, Int)] = []
        var savePoints: [SavePoint]?
        var pubSubChanges: [(ServerState) -> Void] = []
        for i in stride(from: 2, to: arguments.count, by: 2) {
            if let parsed = Self.parsePubSubParameter(arguments, i, call.state) ?? Self.parseScriptingParameter(arguments, i, call.state) {
                switch parsed {
                case .success(let change): pubSubChanges.append(change)
                case .failure(let error): return call.reply.error(error)
                }
            } else if arguments.argument(i, is: "appendfsync") {
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
                let name = String(decoding: arguments[i + 1].map(ASCII.lowercased), as: UTF8.self)
                guard let named = KeyEviction(rawValue: name) else {
                    // Redis's list names its LFU policies too; this server has none (README lists the difference).
                    return call.reply.error(.configNotOneOf(
                        arguments[i], "volatile-lru, volatile-random, volatile-ttl, allkeys-lru, allkeys-random, noeviction"))
                }
                policy = named
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
            } else if let parameter = EncodingLimits.parameter(named: String(decoding: arguments[i], as: UTF8.self)) {
                let parsed = parameter.isMemory ? ASCII.parseMemory(arguments[i + 1]) : ASCII.parseInteger(arguments[i + 1]).map(Int.init)
                guard let value = parsed else {
                    return call.reply.error(parameter.isMemory ? .configNotMemory(arguments[i]) : .configNotInteger(arguments[i]))
                }
                guard parameter.range.contains(value) else {
                    return call.reply.error(.configOutOfRange(
                        arguments[i], minimum: parameter.range.lowerBound, maximum: parameter.range.upperBound))
                }
                limits.append((parameter, value))
            } else if arguments.argument(i, is: "save") {
                guard let points = ConfigParameters.savePoints(arguments[i + 1]) else {
                    return call.reply.error(.configFailed(arguments[i], "Invalid save parameters"))
                }
                savePoints = points
            } else if (ConfigParameters.immutable + ConfigParameters.fixedHere).contains(where: { arguments.argument(i, is: $0) }) {
                return call.reply.error(.configImmutable(arguments[i]))
            } else if ConfigParameters.protected.contains(where: { arguments.argument(i, is: $0) }) {
                return call.reply.error(.configFailed(arguments[i], "can't set protected config"))
            } else {
                return call.reply.error(.configUnknown(arguments[i]))
            }
        }
        if let fsyncPolicy, let failure = call.control.apply(.fsyncPolicy(fsyncPolicy.value)) {
            return call.reply.error(.configFailed(fsyncPolicy.name, failure))
        }
        if let idleTimeout { _ = call.control.apply(.idleTimeout(seconds: Int(idleTimeout))) }
        if maxMemory != nil || policy != nil {
            _ = call.control.apply(.memoryLimit(bytes: maxMemory, policy: policy))
            // The rest of this batch checks memory too (or stops checking, at 0).
            call.memoryLimited = call.state.maxMemoryBytes > 0
            call.intercepting = true
        }
        for (parameter, value) in limits { parameter.limit.set(value) }
        if let password { call.state.password = password }
        if let savePoints { call.state.savePoints = savePoints }
        if let slowerThan { call.state.slowLog.thresholdMicroseconds = Int(slowerThan) }
        if let maxLength { call.state.slowLog.maxLength = Int(min(maxLength, Int64(Int32.max))) }
        for change in pubSubChanges { change(call.state) }
        call.notifying = call.state.pubsub.notifying
        call.reply.ok()
    }
}
