// The keyspace commands (strings and keys), each written once for every protocol: they read and
// write through the DataStore and answer through ReplyWriter, which words the reply for the
// connection's protocol. Arity is checked before they run; they never write protocol bytes.

import Store

/// The implementations the command table points at. Each runs on the event-loop thread.
enum Commands {
    /// GET key: the value, or null (`ERR not found` on the line protocol).
    static func get(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        // The value goes from the store into the reply: no copy in between.
        // One lookup tells a hit, a miss and a collection apart.
        switch call.store.withString(forKey: arguments[1], { value in call.reply.bulk(value) }) {
        case .found: return
        case .missing:
            call.notify(.keyMiss, "keymiss", arguments[1])
            call.reply.null()
        case .wrongType: call.reply.error(.wrongType)
        }
    }

    /// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL], options accepted in the
    /// combinations Redis 7.0 accepts. A plain SET clears the key's deadline.
    static func set(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count > 3 else {  // the common case, kept free of option state and copies
            let isNew = call.keyIsNew(arguments[1])
            if call.set(borrowing: arguments[2], forKey: arguments[1]) {
                call.notifyNew(arguments[1], if: isNew)
                call.notify(.string, "set", arguments[1])
                call.reply.ok()
            }
            return
        }
        Self.setWithOptions(arguments, &call)
    }

    @inline(never)
    private static func setWithOptions(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var onlyIfAbsent = false
        var onlyIfPresent = false
        var get = false
        var keepDeadline = false
        var expiry: (ArraySlice<UInt8>, ExpiryUnit)?
        var i = 3
        while i < arguments.count {
            if arguments.argument(i, is: "nx") && !onlyIfPresent {
                onlyIfAbsent = true
            } else if arguments.argument(i, is: "xx") && !onlyIfAbsent {
                onlyIfPresent = true
            } else if arguments.argument(i, is: "get") {
                get = true
            } else if arguments.argument(i, is: "keepttl") && expiry == nil {
                keepDeadline = true
            } else if let unit = Self.expiryOption(arguments, i), !keepDeadline, expiry == nil || expiry!.1 == unit,
                      i + 1 < arguments.count
            {
                expiry = (arguments[i + 1], unit)
                i += 1
            } else {
                return call.reply.error(.syntax)
            }
            i += 1
        }
        var deadline: Int64?
        let now = call.nowMilliseconds  // the deadline's base and the write's "already past" test
        if let (argument, unit) = expiry {
            guard let parsed = call.positiveDeadline(argument, unit, command: "set", now: now) else { return }
            deadline = parsed
        }
        let key = arguments.copy(1)
        if get || onlyIfAbsent || onlyIfPresent {
            var old: [UInt8]?
            if get {
                switch call.readString(key) {
                case .found(let value): old = value
                case .missing: old = nil
                case .answeredWrongType: return
                }
            } else if call.store.contains(key, now: call.nowMilliseconds) {
                old = []  // any value: NX and XX look only at whether the key exists
            }
            if get {
                if let old { call.reply.bulk(old) } else { call.reply.null() }
            }
            if (onlyIfAbsent && old != nil) || (onlyIfPresent && old == nil) {
                if !get { call.reply.null() }
                return
            }
        }
        let value = arguments.copy(2)
        let isNew = call.keyIsNew(key)
        let stored: Bool
        if keepDeadline {
            stored = call.replaceValue(value, forKey: key)
        } else if let deadline {
            stored = call.set(value, forKey: key, deadline: deadline, now: now)
        } else {
            stored = call.set(value, forKey: key)
        }
        guard stored else { return }
        call.notifyNew(key, if: isNew)
        call.notify(.string, "set", key)
        if deadline != nil { call.notify(.generic, "expire", key) }
        if !get { call.reply.ok() }
    }

    /// `put key value` (line protocol): SET that refuses an existing key with `ERR key exists`.
    static func put(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        if call.store.contains(key, now: call.nowMilliseconds) { return call.reply.error(.keyExists) }
        if call.set(arguments.copy(2), forKey: key) {
            call.notify(.new, "new", key)
            call.notify(.string, "set", key)
            call.reply.ok()
        }
    }

    /// SETNX key value: 1 if set, 0 if the key existed.
    static func setnx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        if call.store.contains(key, now: call.nowMilliseconds) { return call.reply.integer(0) }
        if call.set(arguments.copy(2), forKey: key) {
            call.notify(.new, "new", key)
            call.notify(.string, "set", key)
            call.reply.integer(1)
        }
    }

    /// DEL key [key …]: how many were removed (`OK` / `ERR not found` on the line protocol).
    static func del(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var removed = 0
        for i in 1..<arguments.count {
            // Keys before a failing one are gone; the client learns of the failure, as it would
            // of a failed write in Redis, rather than a count that hides it.
            guard let present = call.removeValue(forKey: arguments.copy(i)) else { return }
            if present {
                removed += 1
                call.notify(.generic, "del", arguments[i])
            }
        }
        call.reply.integer(removed)
    }

    /// EXISTS key [key …]: how many of the keys exist, a key named twice counted twice.
    static func exists(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var found = 0
        let now = call.nowMilliseconds
        for i in 1..<arguments.count where call.store.contains(arguments.copy(i), now: now) { found += 1 }
        call.reply.integer(found)
    }

    /// MGET key [key …]: an array of values, null for each missing key.
    static func mget(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.arrayHeader(arguments.count - 1)
        for i in 1..<arguments.count {
            if let value = call.store.value(forKey: arguments.copy(i)) {
                call.reply.bulk(value)
            } else {
                if call.notifying && !call.store.contains(arguments.copy(i), now: call.nowMilliseconds) {
                    call.notify(.keyMiss, "keymiss", arguments[i])
                }
                call.reply.null()
            }
        }
    }

    /// MSET key value [key value …].
    static func mset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count % 2 == 1 else { return call.reply.error(.wrongArity("mset")) }
        for i in stride(from: 1, to: arguments.count, by: 2) {
            let isNew = call.keyIsNew(arguments[i])
            guard call.set(arguments.copy(i + 1), forKey: arguments.copy(i)) else { return }
            call.notifyNew(arguments[i], if: isNew)
            call.notify(.string, "set", arguments[i])
        }
        call.reply.ok()
    }

    /// DBSIZE (line `count`): the number of keys.
    static func dbsize(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.integer(call.store.count)
    }

    /// FLUSHDB / FLUSHALL [ASYNC|SYNC]: both mean the same here, removal is immediate.
    static func flush(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 1
            || (arguments.count == 2 && (arguments.argument(1, is: "async") || arguments.argument(1, is: "sync")))
        else { return call.reply.error(.syntax) }
        Self.invalidateTrackedOnFlush(&call)  // Commands+Tracking.swift
        if arguments.argument(0, is: "flushall") {
            if call.removeAllDatabases() { call.reply.ok() }  // Commands+Databases.swift
        } else if call.removeAll() {
            call.reply.ok()
        }
    }
}

extension CommandCall {
    /// Stores request bytes under a request key without copying them first: SET's hot path, kept
    /// beside SET so that a durable SET's walk (docs/architecture.md) crosses no file for it.
    /// - Returns: whether it was stored; if not, the storage error has been answered.
    mutating func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) -> Bool {
        do throws(StoreError) {
            // The requirement itself, not its convenience extension: one call less on SET's path.
            try self.store.set(borrowing: value, forKey: key, deadline: .cleared, now: 0)
            if self.watchesActive { self.touchKey(Array(key)) }
            return true
        } catch {
            self.reply.error(.storage(error.description))
            return false
        }
    }
}
