// The generic key commands beyond DEL/EXISTS (UNLINK, TOUCH, TYPE, RENAME, RENAMENX, COPY), as
// Redis 7.0 answers them, for a value of any type: the store moves or copies it whole.

extension Commands {
    /// TOUCH key [key …]: how many of the keys exist (access times are not tracked).
    static func touch(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.exists(arguments, &call)
    }

    /// TYPE key: `string`, `hash`, `list`, `set`, `zset`, or `none` for a missing key (a status reply
    /// in both RESP versions). Not an access, as in Redis.
    static func type(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let facts = call.store.inspect(arguments.copy(1), now: call.nowMilliseconds)
        let name: StaticString =
            switch facts?.type {
            case nil: "none"
            case .string: "string"
            case .hash: "hash"
            case .list: "list"
            case .set: "set"
            case .zset: "zset"
            }
        call.reply.status(name)
    }

    /// RENAME key newkey: `OK`, or `no such key`.
    static func rename(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.rename(arguments, &call, onlyIfAbsent: false)
    }

    /// RENAMENX key newkey: 1 when renamed, 0 when `newkey` exists.
    static func renamenx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.rename(arguments, &call, onlyIfAbsent: true)
    }

    private static func rename(_ arguments: ArgumentVector, _ call: inout CommandCall, onlyIfAbsent: Bool) {
        let source = arguments.copy(1)
        let destination = arguments.copy(2)
        let now = call.nowMilliseconds
        guard call.store.contains(source, now: now) else { return call.reply.error(.noSuchKey) }
        if source == destination {
            return onlyIfAbsent ? call.reply.integer(0) : call.reply.ok()
        }
        if onlyIfAbsent && call.store.contains(destination, now: now) { return call.reply.integer(0) }
        guard call.relocate(source, to: destination, copying: false) else { return }
        call.notify(.new, "new", destination)
        call.notify(.generic, "rename_from", source)
        call.notify(.generic, "rename_to", destination)
        if onlyIfAbsent { call.reply.integer(1) } else { call.reply.ok() }
    }

    /// COPY source destination [DB index] [REPLACE]: 1 when copied, 0 when the source is
    /// missing or the destination exists without REPLACE. Only database 0 exists here.
    static func copy(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var replace = false
        var database = call.client.database
        var i = 3
        while i < arguments.count {
            if arguments.argument(i, is: "replace") {
                replace = true
            } else if arguments.argument(i, is: "db") && i + 1 < arguments.count {
                guard let index = call.integerArgument(arguments, i + 1) else { return }
                guard index >= 0 && index < call.databaseCount else {
                    return call.reply.error(index < Int64(Int32.min) || index > Int64(Int32.max) ? .intOutOfRange : .dbIndexOutOfRange)
                }
                database = Int(index)
                i += 1
            } else {
                return call.reply.error(.syntax)
            }
            i += 1
        }
        let source = arguments.copy(1)
        let destination = arguments.copy(2)
        if database != call.client.database {
            return call.transfer(source, as: destination, to: database, copying: true, replacing: replace)  // Commands+Databases.swift
        }
        if source == destination { return call.reply.error(.sameObject) }
        let now = call.nowMilliseconds
        guard call.store.contains(source, now: now) else { return call.reply.integer(0) }
        if !replace && call.store.contains(destination, now: now) { return call.reply.integer(0) }
        guard call.relocate(source, to: destination, copying: true) else { return }
        call.notify(.new, "new", destination)
        call.notify(.generic, "copy_to", destination)
        call.reply.integer(1)
    }
}
