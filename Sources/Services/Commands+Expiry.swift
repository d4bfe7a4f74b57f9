// Keys with a time to live, as Redis 7.0 handles them: EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with
// NX|XX|GT|LT, TTL/PTTL/EXPIRETIME/PEXPIRETIME, PERSIST, SET's EX|PX|EXAT|PXAT|KEEPTTL|GET,
// SETEX/PSETEX, GETEX, and the line protocol's setex/expire/ttl/persist. Every deadline handed to
// the data store is absolute (Unix milliseconds from the `now` passed in), so the log never holds a
// relative time and replay never depends on the clock.

import Store

/// The unit and base of an expiry argument.
enum ExpiryUnit {
    case relativeSeconds, relativeMilliseconds, absoluteSeconds, absoluteMilliseconds

    var isRelative: Bool { self == .relativeSeconds || self == .relativeMilliseconds }
}

extension CommandCall {
    /// The wall clock in Unix milliseconds.
    var nowMilliseconds: Int64 {
        let now = self.now()
        return Int64(now.seconds) * 1000 + Int64(now.microseconds / 1000)
    }

    /// Stores `value` under `key` with `deadline` (nil: none). - Returns: whether it was stored;
    /// if not, the storage error has been answered.
    /// `now`: the time the deadline was computed from (a second reading of the clock could pass a
    /// relative deadline of 1 ms, and the key would be dropped unannounced instead of expiring).
    mutating func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64? = nil) -> Bool {
        self.set(borrowing: value[...], forKey: key[...], deadline: deadline.map { .at($0) } ?? .cleared, now: now)
    }

    /// Stores `value` under `key`, doing `deadline` to its deadline. - Returns: whether it was
    /// stored; if not, the storage error has been answered.
    mutating func set(
        borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64? = nil
    ) -> Bool {
        do throws(StoreError) {
            try self.store.set(borrowing: value, forKey: key, deadline: deadline, now: now ?? self.nowMilliseconds)
            if self.watchesActive { self.touchKey(Array(key)) }
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }

    /// Stores `value` under `key` keeping the key's deadline (INCR, INCRBYFLOAT, SET KEEPTTL), in the
    /// one lookup of the write. Writes that edit the value in place pass ``WriteDeadline/keptEdited``.
    mutating func replaceValue(_ value: [UInt8], forKey key: [UInt8]) -> Bool {
        self.set(borrowing: value[...], forKey: key[...], deadline: .kept)
    }

    /// Gives `key` the deadline, or removes it when the deadline has passed. - Returns: whether
    /// the key was present, nil once a storage error has been answered.
    mutating func expire(_ key: [UInt8], at deadline: Int64, now: Int64? = nil) -> Bool? {
        do throws(StoreError) {
            let changed = try self.store.expire(key, at: deadline, now: now ?? self.nowMilliseconds)
            if changed && self.watchesActive { self.touchKey(key) }
            return changed
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// Clears `key`'s deadline. - Returns: whether it had one, nil once an error was answered.
    mutating func persist(_ key: [UInt8]) -> Bool? {
        do throws(StoreError) {
            let changed = try self.store.expire(key, at: nil, now: self.nowMilliseconds)
            if changed && self.watchesActive { self.touchKey(key) }
            return changed
        } catch {
            self.reply.error(.storage(error.description))
            return nil
        }
    }

    /// An expiry argument as an absolute deadline, checked as Redis's
    /// getExpireMillisecondsOrReply checks SET's (positive, no overflow). - Returns: nil once
    /// the error has been answered. A relative one counts from `now`, which the caller passes on to
    /// the write: one reading of the clock per command, as the write's "already past" test needs.
    mutating func positiveDeadline(
        _ argument: ArraySlice<UInt8>, _ unit: ExpiryUnit, command: StaticString, now: Int64
    ) -> Int64? {
        guard var value = ASCII.parseInteger(argument) else {
            self.reply.error(.notInteger)
            return nil
        }
        let seconds = unit == .relativeSeconds || unit == .absoluteSeconds
        guard value > 0, !seconds || value <= Int64.max / 1000 else {
            self.reply.error(.invalidExpireTime(command))
            return nil
        }
        if seconds { value *= 1000 }
        if unit.isRelative {
            let (sum, overflow) = value.addingReportingOverflow(now)
            guard !overflow else {
                self.reply.error(.invalidExpireTime(command))
                return nil
            }
            value = sum
        }
        return value
    }
}

extension Commands {
    static func expire(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.expireGeneric(arguments, &call, unit: .relativeSeconds, command: "expire")
    }

    static func pexpire(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.expireGeneric(arguments, &call, unit: .relativeMilliseconds, command: "pexpire")
    }

    static func expireat(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.expireGeneric(arguments, &call, unit: .absoluteSeconds, command: "expireat")
    }

    static func pexpireat(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.expireGeneric(arguments, &call, unit: .absoluteMilliseconds, command: "pexpireat")
    }

    /// The EXPIRE family: options first, then the time (any integer: zero or negative deadlines
    /// delete the key), then the key, then NX|XX|GT|LT against its current deadline.
    private static func expireGeneric(
        _ arguments: ArgumentVector, _ call: inout CommandCall, unit: ExpiryUnit, command: StaticString
    ) {
        var nx = false, xx = false, gt = false, lt = false
        for i in 3..<max(3, arguments.count) {
            if arguments.argument(i, is: "nx") {
                nx = true
            } else if arguments.argument(i, is: "xx") {
                xx = true
            } else if arguments.argument(i, is: "gt") {
                gt = true
            } else if arguments.argument(i, is: "lt") {
                lt = true
            } else {
                return call.reply.error(.unsupportedOption(arguments[i]))
            }
        }
        if nx && (xx || gt || lt) { return call.reply.error(.expireNXIncompatible) }
        if gt && lt { return call.reply.error(.expireGTLTIncompatible) }
        guard var when = call.integerArgument(arguments, 2) else { return }
        if unit == .relativeSeconds || unit == .absoluteSeconds {
            guard when <= Int64.max / 1000 && when >= Int64.min / 1000 else {
                return call.reply.error(.invalidExpireTime(command))
            }
            when *= 1000
        }
        if unit.isRelative {
            let (sum, overflow) = when.addingReportingOverflow(call.nowMilliseconds)
            guard !overflow else { return call.reply.error(.invalidExpireTime(command)) }
            when = sum
        }
        let key = arguments.copy(1)
        let current = call.store.expiry(forKey: key, now: call.nowMilliseconds)
        if current == .missing { return call.reply.integer(0) }
        let deadline = current.milliseconds
        if nx && deadline != nil { return call.reply.integer(0) }
        if xx && deadline == nil { return call.reply.integer(0) }
        if gt && (deadline == nil || when <= deadline!) { return call.reply.integer(0) }
        if lt, let deadline, when >= deadline { return call.reply.integer(0) }
        guard let present = call.expire(key, at: when) else { return }
        // As Redis: a deadline already past deletes the key (`del` before the reply); otherwise
        // `expire` follows the reply.
        if when <= call.nowMilliseconds {
            call.notify(.generic, "del", key)
            return call.reply.integer(present ? 1 : 0)
        }
        call.reply.integer(present ? 1 : 0)
        call.notify(.generic, "expire", key)
    }

    /// TTL key: seconds left, rounded to the nearest second as Redis does; -1 without a deadline,
    /// -2 for a missing key (line protocol: `ERR not found`).
    static func ttl(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.timeToLive(arguments, &call, milliseconds: false, absolute: false)
    }

    static func pttl(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.timeToLive(arguments, &call, milliseconds: true, absolute: false)
    }

    static func expiretime(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.timeToLive(arguments, &call, milliseconds: false, absolute: true)
    }

    static func pexpiretime(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.timeToLive(arguments, &call, milliseconds: true, absolute: true)
    }

    private static func timeToLive(_ arguments: ArgumentVector, _ call: inout CommandCall, milliseconds: Bool, absolute: Bool) {
        let now = call.nowMilliseconds
        switch call.store.expiry(forKey: arguments.copy(1), now: now) {
        case .missing:
            if call.reply.encoding == .line { return call.reply.error(.notFound) }
            call.reply.integer(-2)
        case .never: call.reply.integer(-1)
        case .at(let deadline):
            let left = max(0, absolute ? deadline : deadline - now)
            call.reply.integer(milliseconds ? left : (left + 500) / 1000)
        }
    }

    /// PERSIST key: 1 when a deadline was removed (line protocol: `OK`, or `ERR not found`).
    static func persist(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        if call.reply.encoding == .line {
            guard call.store.expiry(forKey: key, now: call.nowMilliseconds) != .missing else {
                return call.reply.error(.notFound)
            }
            guard let changed = call.persist(key) else { return }
            if changed { call.notify(.generic, "persist", key) }
            return call.reply.ok()
        }
        guard let changed = call.persist(key) else { return }
        if changed { call.notify(.generic, "persist", key) }
        call.reply.integer(changed ? 1 : 0)
    }

    /// SETEX key seconds value.
    static func setex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setWithTimeToLive(arguments, &call, unit: .relativeSeconds, command: "setex")
    }

    /// PSETEX key milliseconds value.
    static func psetex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setWithTimeToLive(arguments, &call, unit: .relativeMilliseconds, command: "psetex")
    }

    private static func setWithTimeToLive(
        _ arguments: ArgumentVector, _ call: inout CommandCall, unit: ExpiryUnit, command: StaticString
    ) {
        let isLine = call.reply.encoding == .line
        if isLine && (ASCII.parseInteger(arguments[2]).map { $0 <= 0 } ?? true) {
            return call.reply.error(.lineInvalidExpireTime)
        }
        let now = call.nowMilliseconds
        guard let deadline = call.positiveDeadline(arguments[2], unit, command: command, now: now) else { return }
        let isNew = call.keyIsNew(arguments[1])
        guard call.set(arguments.copy(3), forKey: arguments.copy(1), deadline: deadline, now: now) else { return }
        call.notifyNew(arguments[1], if: isNew)
        call.notify(.string, "set", arguments[1])
        call.notify(.generic, "expire", arguments[1])
        call.reply.ok()
    }

    /// `expire key seconds` (line protocol): `OK`; zero or negative seconds delete the key.
    static func lineExpire(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let seconds = ASCII.parseInteger(arguments[2]), seconds <= Int64.max / 1000, seconds >= Int64.min / 1000 else {
            return call.reply.error(.lineInvalidExpireTime)
        }
        let (deadline, overflow) = (seconds * 1000).addingReportingOverflow(call.nowMilliseconds)
        guard !overflow else { return call.reply.error(.lineInvalidExpireTime) }
        guard let present = call.expire(arguments.copy(1), at: deadline) else { return }
        if present { call.notify(.generic, deadline <= call.nowMilliseconds ? "del" : "expire", arguments[1]) }
        if present { call.reply.ok() } else { call.reply.error(.notFound) }
    }

    /// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]: the value, and its deadline changed.
    static func getex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var expiry: (ArraySlice<UInt8>, ExpiryUnit)?
        var persist = false
        var i = 2
        while i < arguments.count {
            let hasNext = i + 1 < arguments.count
            if arguments.argument(i, is: "persist") && expiry == nil {
                persist = true
            } else if let unit = Self.expiryOption(arguments, i), !persist, expiry == nil || expiry!.1 == unit, hasNext {
                expiry = (arguments[i + 1], unit)
                i += 1
            } else {
                return call.reply.error(.syntax)
            }
            i += 1
        }
        let key = arguments.copy(1)
        let value: [UInt8]
        switch call.readString(key) {
        case .found(let stored): value = stored
        case .missing: return call.reply.null()
        case .answeredWrongType: return
        }
        var deadline: Int64?
        let now = call.nowMilliseconds
        if let (argument, unit) = expiry {
            guard let parsed = call.positiveDeadline(argument, unit, command: "getex", now: now) else { return }
            deadline = parsed
        }
        if let deadline {
            guard call.expire(key, at: deadline, now: now) != nil else { return }
            call.notify(.generic, deadline <= now ? "del" : "expire", key)
        } else if persist {
            guard let changed = call.persist(key) else { return }
            if changed { call.notify(.generic, "persist", key) }
        }
        call.reply.bulk(value)
    }

    /// Which of EX, PX, EXAT, PXAT argument `i` is.
    static func expiryOption(_ arguments: ArgumentVector, _ i: Int) -> ExpiryUnit? {
        if arguments.argument(i, is: "ex") { return .relativeSeconds }
        if arguments.argument(i, is: "px") { return .relativeMilliseconds }
        if arguments.argument(i, is: "exat") { return .absoluteSeconds }
        if arguments.argument(i, is: "pxat") { return .absoluteMilliseconds }
        return nil
    }
}
