// The string commands beyond GET/SET (GETSET, GETDEL, MSETNX, APPEND, STRLEN, GETRANGE, SETRANGE,
// the INCR/DECR family, INCRBYFLOAT, LCS), as Redis 7.0 answers them: the same argument checks in
// the same order, so the same error wins when several apply. Each is written once for every
// protocol; they read and write through CommandCall and never write protocol bytes.

import Store

extension Commands {
    /// GETSET key value: the old value (or null), and the new one stored.
    static func getset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        let old: [UInt8]?
        switch call.readString(key) {
        case .found(let value): old = value
        case .missing: old = nil
        case .answeredWrongType: return
        }
        guard call.set(arguments.copy(2), forKey: key) else { return }
        call.notifyNew(key, if: old == nil)
        call.notify(.string, "set", key)
        if let old { call.reply.bulk(old) } else { call.reply.null() }
    }

    /// GETDEL key: the value (or null), and the key removed.
    static func getdel(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        let old: [UInt8]
        switch call.readString(key) {
        case .found(let value): old = value
        case .missing: return call.reply.null()
        case .answeredWrongType: return
        }
        guard call.removeValue(forKey: key) != nil else { return }
        call.notify(.generic, "del", key)
        call.reply.bulk(old)
    }

    /// MSETNX key value [key value …]: all set (1) or, when any key exists, none (0).
    static func msetnx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count % 2 == 1 else { return call.reply.error(.wrongArity("msetnx")) }
        let now = call.nowMilliseconds
        for i in stride(from: 1, to: arguments.count, by: 2) where call.store.contains(arguments.copy(i), now: now) {
            return call.reply.integer(0)
        }
        for i in stride(from: 1, to: arguments.count, by: 2) {
            guard call.set(arguments.copy(i + 1), forKey: arguments.copy(i)) else { return }
            call.notify(.new, "new", arguments[i])
            call.notify(.string, "set", arguments[i])
        }
        call.reply.integer(1)
    }

    /// APPEND key value: the new length.
    static func append(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        var value: [UInt8] = []
        var existed = false
        switch call.readString(key) {
        case .found(let stored): (value, existed) = (stored, true)
        case .missing: break
        case .answeredWrongType: return
        }
        guard value.count + arguments[2].count <= call.maxValueBytes else { return call.reply.error(.stringTooLong) }
        value.append(contentsOf: arguments[2])
        // Redis appends in place to a value the key holds (a `raw` string); a new key is stored as SET stores it.
        guard call.set(borrowing: value[...], forKey: key[...], deadline: existed ? .keptEdited : .kept) else { return }
        call.notifyNew(key, if: !existed)
        call.notify(.string, "append", key)
        call.reply.integer(value.count)
    }

    /// STRLEN key: the value's length, 0 for a missing key.
    static func strlen(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var length = 0
        if case .wrongType = call.store.withString(forKey: arguments[1], { length = $0.count }) {
            return call.reply.error(.wrongType)
        }
        call.reply.integer(length)
    }

    /// GETRANGE key start end (and its old name SUBSTR): the bytes between two inclusive
    /// offsets, negative ones counted from the end, clamped as Redis clamps them.
    static func getrange(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard var start = call.integerArgument(arguments, 2), var end = call.integerArgument(arguments, 3) else { return }
        if start < 0 && end < 0 && start > end { return call.reply.bulk([UInt8]()) }
        // The range goes from the store into the reply: a large value is not copied whole.
        let lookup = call.store.withString(forKey: arguments[1]) { value in
            let length = Int64(value.count)
            if start < 0 { start += length }
            if end < 0 { end += length }
            start = max(start, 0)
            end = max(end, 0)
            if end >= length { end = length - 1 }
            if start > end || length == 0 { return call.reply.bulk([UInt8]()) }
            call.reply.bulk(UnsafeRawBufferPointer(rebasing: value[Int(start)...Int(end)]))
        }
        switch lookup {
        case .found: return
        case .missing: call.reply.bulk([UInt8]())
        case .wrongType: call.reply.error(.wrongType)
        }
    }

    /// SETRANGE key offset value: overwrites from `offset`, zero-padding a shorter value; the
    /// new length.
    static func setrange(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let offset = call.integerArgument(arguments, 2) else { return }
        guard offset >= 0 else { return call.reply.error(.offsetOutOfRange) }
        let key = arguments.copy(1)
        let patch = arguments[3]
        let existing: [UInt8]?
        switch call.readString(key) {
        case .found(let stored): existing = stored
        case .missing: existing = nil
        case .answeredWrongType: return
        }
        if patch.isEmpty { return call.reply.integer(existing?.count ?? 0) }
        guard offset <= Int64(call.maxValueBytes) - Int64(patch.count) else { return call.reply.error(.stringTooLong) }
        var value = existing ?? []
        let start = Int(offset)
        if value.count < start + patch.count {
            value.append(contentsOf: repeatElement(0, count: start + patch.count - value.count))
        }
        value.replaceSubrange(start..<(start + patch.count), with: patch)
        guard call.set(borrowing: value[...], forKey: key[...], deadline: .keptEdited) else { return }
        call.notifyNew(key, if: existing == nil)
        call.notify(.string, "setrange", key)
        call.reply.integer(value.count)
    }

    /// INCR key.
    static func incr(_ arguments: ArgumentVector, _ call: inout CommandCall) { Self.add(1, arguments, &call) }

    /// DECR key.
    static func decr(_ arguments: ArgumentVector, _ call: inout CommandCall) { Self.add(-1, arguments, &call) }

    /// INCRBY key increment.
    static func incrby(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let increment = call.integerArgument(arguments, 2) else { return }
        Self.add(increment, arguments, &call)
    }

    /// DECRBY key decrement.
    static func decrby(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let decrement = call.integerArgument(arguments, 2) else { return }
        guard decrement != .min else { return call.reply.error(.decrementOverflow) }
        Self.add(-decrement, arguments, &call)
    }

    /// The INCR family: the value as a canonical 64-bit integer (a missing key counts as 0) plus
    /// `increment`, stored as its decimal text and answered as an integer.
    private static func add(_ increment: Int64, _ arguments: ArgumentVector, _ call: inout CommandCall) {
        // Read in place (no copy of the key or the value), written back keeping the deadline in the
        // write's own lookup: two lookups and one small allocation per INCR.
        let key = arguments[1]
        var current: Int64? = 0
        let lookup = call.store.withString(forKey: key) { current = ASCII.parseInteger($0) }
        if case .wrongType = lookup { return call.reply.error(.wrongType) }
        guard let current else { return call.reply.error(.notInteger) }
        let (next, overflow) = current.addingReportingOverflow(increment)
        guard !overflow else { return call.reply.error(.overflow) }
        if !call.notifying && !call.watchesActive && Self.storeAndAnswer(next, forKey: key, &call) { return }
        var digits: [UInt8] = []
        digits.reserveCapacity(20)
        digits.appendDecimal(next)
        guard call.set(borrowing: digits[...], forKey: key, deadline: .kept) else { return }
        if case .missing = lookup { call.notifyNew(key, if: true) }
        call.notify(.string, "incrby", key)
        call.reply.integer(next)
    }

    /// The INCR family's write on a RESP connection with nothing watching or listening: the number is
    /// formatted once, as the reply, and the store copies its digits from there (no array allocated,
    /// nothing formatted twice). Events, WATCH and tracking (whose frames Redis sends before the reply)
    /// take the general path. - Returns: false on the line protocol (nothing done).
    private static func storeAndAnswer(_ next: Int64, forKey key: ArraySlice<UInt8>, _ call: inout CommandCall) -> Bool {
        guard let digits = call.reply.integerGivingDigits(next) else { return false }
        do throws(StoreError) {
            try call.store.set(borrowing: call.reply.output[digits], forKey: key, deadline: .kept, now: call.nowMilliseconds)
        } catch {
            call.reply.withdrawInteger(at: digits)
            call.reply.error(.storage(error.description))
        }
        return true
    }

    /// INCRBYFLOAT key increment: computed in 80-bit long double and written as Redis writes it
    /// (`%.17Lf`, trailing zeros cut), stored as that text, answered as a bulk string.
    static func incrbyfloat(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        var current: LongDouble.Value = 0
        var existed = false
        switch call.readString(key) {
        case .found(let stored):
            existed = true
            guard let parsed = LongDouble.parse(stored[...]) else { return call.reply.error(.notFloat) }
            current = parsed
        case .missing: break
        case .answeredWrongType: return
        }
        guard let increment = LongDouble.parse(arguments[2]) else { return call.reply.error(.notFloat) }
        let sum = current + increment
        guard sum.isFinite else { return call.reply.error(.nanOrInfinity) }
        let text = LongDouble.format(sum)
        guard call.replaceValue(text, forKey: key) else { return }
        call.notifyNew(key, if: !existed)
        call.notify(.string, "incrbyfloat", key)
        call.reply.bulk(text)
    }

    /// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence,
    /// its length, or its matching ranges, by the dynamic-programming table Redis uses.
    static func lcs(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let now = call.nowMilliseconds
        let types = [call.store.inspect(arguments.copy(1), now: now)?.type, call.store.inspect(arguments.copy(2), now: now)?.type]
        if types.contains(where: { $0 != nil && $0 != .string }) {
            return call.reply.error(.redis(code: "ERR", "The specified keys must contain string values"))
        }
        let a = call.store.value(forKey: arguments.copy(1)) ?? []
        let b = call.store.value(forKey: arguments.copy(2)) ?? []
        var wantsLength = false
        var wantsRanges = false
        var withMatchLength = false
        var minimumMatch: Int64 = 0
        var i = 3
        while i < arguments.count {
            if arguments.argument(i, is: "idx") {
                wantsRanges = true
            } else if arguments.argument(i, is: "len") {
                wantsLength = true
            } else if arguments.argument(i, is: "withmatchlen") {
                withMatchLength = true
            } else if arguments.argument(i, is: "minmatchlen") && i + 1 < arguments.count {
                guard let n = call.integerArgument(arguments, i + 1) else { return }
                minimumMatch = max(n, 0)
                i += 1
            } else {
                return call.reply.error(.syntax)
            }
            i += 1
        }
        if wantsRanges && wantsLength { return call.reply.error(.lcsLengthAndRanges) }
        guard (a.count + 1) * (b.count + 1) * 4 <= call.maxValueBytes else { return call.reply.error(.lcsTooLarge) }
        let table = LCSTable(a, b)
        let total = table.length(a.count, b.count)
        if wantsLength && !wantsRanges { return call.reply.integer(total) }
        let (common, ranges) = table.walk(minimumMatch: Int(minimumMatch))
        guard wantsRanges else { return call.reply.bulk(common) }
        call.reply.mapHeader(2)
        call.reply.bulk("matches")
        call.reply.arrayHeader(ranges.count)
        for range in ranges {
            call.reply.arrayHeader(withMatchLength ? 3 : 2)
            call.reply.arrayHeader(2)
            call.reply.integer(range.a.lowerBound)
            call.reply.integer(range.a.upperBound)
            call.reply.arrayHeader(2)
            call.reply.integer(range.b.lowerBound)
            call.reply.integer(range.b.upperBound)
            if withMatchLength { call.reply.integer(range.a.count) }
        }
        call.reply.bulk("len")
        call.reply.integer(total)
    }
}

/// The LCS length table of two strings: entry (i, j) is the LCS length of `a[..<i]` and `b[..<j]`.
private struct LCSTable {
    let a: [UInt8]
    let b: [UInt8]
    private var cells: [UInt32]

    init(_ a: [UInt8], _ b: [UInt8]) {
        self.a = a
        self.b = b
        let width = b.count + 1
        self.cells = [UInt32](repeating: 0, count: (a.count + 1) * width)
        for i in stride(from: 1, through: a.count, by: 1) {
            for j in stride(from: 1, through: b.count, by: 1) {
                self.cells[i * width + j] = a[i - 1] == b[j - 1]
                    ? self.cells[(i - 1) * width + j - 1] + 1
                    : max(self.cells[(i - 1) * width + j], self.cells[i * width + j - 1])
            }
        }
    }

    func length(_ i: Int, _ j: Int) -> Int { Int(self.cells[i * (self.b.count + 1) + j]) }

    /// Walks back from the end: the common subsequence, and its runs of adjacent matches (last
    /// first, as Redis lists them) of at least `minimumMatch` bytes.
    func walk(minimumMatch: Int) -> (common: [UInt8], ranges: [(a: ClosedRange<Int>, b: ClosedRange<Int>)]) {
        var common = [UInt8](repeating: 0, count: self.length(self.a.count, self.b.count))
        var ranges: [(a: ClosedRange<Int>, b: ClosedRange<Int>)] = []
        var next = common.count
        var i = self.a.count
        var j = self.b.count
        // The run being built: start and end in a and in b, nil between runs.
        var run: (aStart: Int, aEnd: Int, bStart: Int, bEnd: Int)?
        while i > 0 && j > 0 {
            var emit = false
            if self.a[i - 1] == self.b[j - 1] {
                next -= 1
                common[next] = self.a[i - 1]
                if let current = run {
                    if current.aStart == i && current.bStart == j {
                        run = (i - 1, current.aEnd, j - 1, current.bEnd)
                    } else {
                        emit = true
                    }
                } else {
                    run = (i - 1, i - 1, j - 1, j - 1)
                }
                if let current = run, current.aStart == 0 || current.bStart == 0 { emit = true }
                i -= 1
                j -= 1
            } else {
                if self.length(i - 1, j) > self.length(i, j - 1) { i -= 1 } else { j -= 1 }
                if run != nil { emit = true }
            }
            if emit, let current = run {
                if minimumMatch == 0 || current.aEnd - current.aStart + 1 >= minimumMatch {
                    ranges.append((current.aStart...current.aEnd, current.bStart...current.bEnd))
                }
                run = nil
            }
        }
        return (common, ranges)
    }
}
