// The sorted set's range commands: ZRANGE in its unified form (by rank, BYSCORE, BYLEX, REV, LIMIT,
// WITHSCORES) and the older forms that are fixed cases of it, ZRANGESTORE, ZCOUNT, ZLEXCOUNT, the three
// ZREMRANGEBY commands and ZSCAN, as Redis 7.0's zrangeGenericCommand and friends answer them. A score
// or lex range read finds its first element in one descent and walks on from there (SortedSetValue's
// walkRange); counts and removals find a range as a span of ranks (O(log n) on a skiplist).

import Store

extension Commands {
    enum SortedSetRangeKind {
        case rank, score, lex
    }

    static func zrange(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: nil, reverse: nil, &call)
    }

    static func zrangestore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 2, destination: arguments.copy(1), kind: nil, reverse: nil, &call)
    }

    static func zrevrange(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: .rank, reverse: true, &call)
    }

    static func zrangebyscore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: .score, reverse: false, &call)
    }

    static func zrevrangebyscore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: .score, reverse: true, &call)
    }

    static func zrangebylex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: .lex, reverse: false, &call)
    }

    static func zrevrangebylex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zrangeGeneric(arguments, keyIndex: 1, destination: nil, kind: .lex, reverse: true, &call)
    }

    /// The span of ascending ranks a score range covers in `value`, or nil once the error is answered.
    static func scoreRanks(_ minArgument: ArraySlice<UInt8>, _ maxArgument: ArraySlice<UInt8>) -> ((SortedSetValue) -> Range<Int>)? {
        guard let min = ScoreText.bound(minArgument), let max = ScoreText.bound(maxArgument) else { return nil }
        return { $0.ranks(min: min.value, minExclusive: min.exclusive, max: max.value, maxExclusive: max.exclusive) }
    }

    static func lexRanks(_ minArgument: ArraySlice<UInt8>, _ maxArgument: ArraySlice<UInt8>) -> ((SortedSetValue) -> Range<Int>)? {
        guard let min = ScoreText.lexBound(minArgument), let max = ScoreText.lexBound(maxArgument) else { return nil }
        return { value in
            var minMember: [UInt8]?, minExclusive = false, minIsPlus = false
            var maxMember: [UInt8]?, maxExclusive = false, maxIsMinus = false
            switch min {
            case .minusInfinity: break
            case .plusInfinity: minIsPlus = true
            case .member(let m, let exclusive): (minMember, minExclusive) = (m, exclusive)
            }
            switch max {
            case .plusInfinity: break
            case .minusInfinity: maxIsMinus = true
            case .member(let m, let exclusive): (maxMember, maxExclusive) = (m, exclusive)
            }
            return value.ranks(min: minMember, minExclusive: minExclusive, max: maxMember, maxExclusive: maxExclusive,
                               minIsPlus: minIsPlus, maxIsMinus: maxIsMinus)
        }
    }

    /// A BYSCORE or BYLEX range's bounds, as the two tests a range walk takes.
    enum SortedSetBounds {
        case score(min: Double, minExclusive: Bool, max: Double, maxExclusive: Bool)
        case lex(min: ScoreText.LexBound, max: ScoreText.LexBound)

        /// Whether an element orders before the range.
        func below(_ member: UnsafeRawBufferPointer, _ score: Double) -> Bool {
            switch self {
            case .score(let min, let exclusive, _, _): return exclusive ? score <= min : score < min
            case .lex(let min, _):
                switch min {
                case .minusInfinity: return false
                case .plusInfinity: return true
                case .member(let bound, let exclusive):
                    let c = bound.withUnsafeBytes { SortedSetValue.compare(member, $0) }
                    return exclusive ? c <= 0 : c < 0
                }
            }
        }

        /// Whether an element orders after the range.
        func above(_ member: UnsafeRawBufferPointer, _ score: Double) -> Bool {
            switch self {
            case .score(_, _, let max, let exclusive): return exclusive ? score >= max : score > max
            case .lex(_, let max):
                switch max {
                case .plusInfinity: return false
                case .minusInfinity: return true
                case .member(let bound, let exclusive):
                    let c = bound.withUnsafeBytes { SortedSetValue.compare(member, $0) }
                    return exclusive ? c >= 0 : c > 0
                }
            }
        }
    }

    static let notFloatRange = CommandError.redis(code: "ERR", "min or max is not a float")
    static let notLexRange = CommandError.redis(code: "ERR", "min or max not valid string range item")

    /// Redis's zrangeGenericCommand: `kind` and `reverse` nil where the arguments choose them.
    private static func zrangeGeneric(_ arguments: ArgumentVector, keyIndex: Int, destination: [UInt8]?,
                                      kind fixedKind: SortedSetRangeKind?, reverse fixedReverse: Bool?,
                                      _ call: inout CommandCall) {
        var kind = fixedKind, reverse = fixedReverse
        var withScores = false
        var offset: Int64 = 0, limit: Int64 = -1
        var j = keyIndex + 3
        while j < arguments.count {
            let left = arguments.count - j - 1
            if destination == nil && arguments.argument(j, is: "withscores") {
                withScores = true
            } else if arguments.argument(j, is: "limit") && left >= 2 {
                guard let o = call.integerArgument(arguments, j + 1), let l = call.integerArgument(arguments, j + 2) else { return }
                (offset, limit) = (o, l)
                j += 2
            } else if fixedReverse == nil && reverse == nil && arguments.argument(j, is: "rev") {
                reverse = true
            } else if fixedKind == nil && kind == nil && arguments.argument(j, is: "bylex") {
                kind = .lex
            } else if fixedKind == nil && kind == nil && arguments.argument(j, is: "byscore") {
                kind = .score
            } else {
                return call.reply.error(.syntax)
            }
            j += 1
        }
        let isReverse = reverse ?? false
        let rangeKind = kind ?? .rank
        if limit != -1 && rangeKind == .rank {
            return call.reply.error(.redis(code: "ERR",
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"))
        }
        if withScores && rangeKind == .lex {
            return call.reply.error(.redis(code: "ERR", "syntax error, WITHSCORES not supported in combination with BYLEX"))
        }
        var minIndex = keyIndex + 1, maxIndex = keyIndex + 2
        if isReverse && rangeKind != .rank { swap(&minIndex, &maxIndex) }
        var bounds: SortedSetBounds?
        var rankStart: Int64 = 0, rankEnd: Int64 = 0
        switch rangeKind {
        case .rank:
            guard let start = call.integerArgument(arguments, minIndex), let end = call.integerArgument(arguments, maxIndex) else {
                return
            }
            (rankStart, rankEnd) = (start, end)
        case .score:
            guard let min = ScoreText.bound(arguments[minIndex]), let max = ScoreText.bound(arguments[maxIndex]) else {
                return call.reply.error(Self.notFloatRange)
            }
            bounds = .score(min: min.value, minExclusive: min.exclusive, max: max.value, maxExclusive: max.exclusive)
        case .lex:
            guard let min = ScoreText.lexBound(arguments[minIndex]), let max = ScoreText.lexBound(arguments[maxIndex]) else {
                return call.reply.error(Self.notLexRange)
            }
            bounds = .lex(min: min, max: max)
        }
        let value: SortedSetValue
        switch call.readSortedSet(arguments.copy(keyIndex)) {
        case .answered: return
        case .missing:
            guard let destination else { return call.reply.arrayHeader(0) }
            let existed = call.existsForNotification(destination)
            guard call.setCollection(SortedSetValue(), forKey: destination) else { return }
            call.notifyStored(.zset, "zrangestore", destination, count: 0, existed: existed)
            return call.reply.integer(0)
        case .found(let found): value = found
        }
        // Where the range starts in the walk's direction, how many it holds, then each element.
        func walk(_ start: (Int) -> Void, _ body: (UnsafeRawBufferPointer, Double) -> Void) {
            if let bounds {
                // LIMIT: a negative offset finds nothing, a negative count takes everything.
                let skip = offset < 0 ? -1 : Int(Swift.min(offset, Int64(Int32.max)))
                let most = limit < 0 ? -1 : Int(Swift.min(limit, Int64(Int32.max)))
                value.walkRange(below: bounds.below, above: bounds.above, reverse: isReverse, offset: skip, limit: most,
                                start: start, body)
                return
            }
            let length = Int64(value.count)
            var (s, e) = (rankStart < 0 ? length + rankStart : rankStart, rankEnd < 0 ? length + rankEnd : rankEnd)
            if s < 0 { s = 0 }
            if e >= length { e = length - 1 }
            guard s <= e && s < length else { return start(0) }
            // Ranks counted from the end when reversed.
            let ranks = isReverse ? Int(length - 1 - e)..<Int(length - s) : Int(s)..<Int(e + 1)
            var left = ranks.count
            start(left)
            value.forEach(fromRank: isReverse ? ranks.upperBound - 1 : ranks.lowerBound, reverse: isReverse) { m, s in
                body(m, s)
                left -= 1
                return left > 0
            }
        }
        if let destination {
            var elements: [([UInt8], Double)] = []
            walk({ elements.reserveCapacity($0) }, { m, s in elements.append(([UInt8](m), s)) })
            let existed = call.existsForNotification(destination)
            guard call.setCollection(SortedSetValue.make(elements), forKey: destination) else { return }
            call.notifyStored(.zset, "zrangestore", destination, count: elements.count, existed: existed)
            return call.reply.integer(elements.count)
        }
        call.reply.sortedSetRun(withScores: withScores) { header, element in walk(header, element) }
    }

    /// ZCOUNT key min max.
    static func zcount(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let span = Self.scoreRanks(arguments[2], arguments[3]) else { return call.reply.error(Self.notFloatRange) }
        Self.countSpan(arguments, span, &call)
    }

    /// ZLEXCOUNT key min max.
    static func zlexcount(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let span = Self.lexRanks(arguments[2], arguments[3]) else { return call.reply.error(Self.notLexRange) }
        Self.countSpan(arguments, span, &call)
    }

    private static func countSpan(_ arguments: ArgumentVector, _ span: (SortedSetValue) -> Range<Int>, _ call: inout CommandCall) {
        switch call.readSortedSet(arguments.copy(1)) {
        case .answered: return
        case .missing: call.reply.integer(0)
        case .found(let value): call.reply.integer(span(value).count)
        }
    }

    /// ZREMRANGEBYSCORE key min max.
    static func zremrangebyscore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let span = Self.scoreRanks(arguments[2], arguments[3]) else { return call.reply.error(Self.notFloatRange) }
        Self.removeSpan(arguments, span, &call, event: "zremrangebyscore")
    }

    /// ZREMRANGEBYLEX key min max.
    static func zremrangebylex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let span = Self.lexRanks(arguments[2], arguments[3]) else { return call.reply.error(Self.notLexRange) }
        Self.removeSpan(arguments, span, &call, event: "zremrangebylex")
    }

    /// ZREMRANGEBYRANK key start stop.
    static func zremrangebyrank(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let start = call.integerArgument(arguments, 2), let end = call.integerArgument(arguments, 3) else { return }
        Self.removeSpan(arguments, { value in
            let length = Int64(value.count)
            var (s, e) = (start < 0 ? length + start : start, end < 0 ? length + end : end)
            if s < 0 { s = 0 }
            guard s <= e && s < length else { return 0..<0 }
            if e >= length { e = length - 1 }
            return Int(s)..<Int(e + 1)
        }, &call, event: "zremrangebyrank")
    }

    private static func removeSpan(_ arguments: ArgumentVector, _ span: (SortedSetValue) -> Range<Int>, _ call: inout CommandCall,
                                   event: StaticString) {
        let key = arguments.copy(1)
        let value: SortedSetValue
        switch call.readSortedSet(key) {
        case .answered: return
        case .missing: return call.reply.integer(0)
        case .found(let found): value = found
        }
        let ranks = span(value)
        var removals: [([UInt8], Double)] = []
        removals.reserveCapacity(ranks.count)
        if !ranks.isEmpty {
            value.forEach(fromRank: ranks.lowerBound, reverse: false) { m, s in
                removals.append(([UInt8](m), s))
                return removals.count < ranks.count
            }
        }
        guard call.removeMembers(removals, from: key) else { return }
        call.notify(.zset, event, key, ifChanged: !removals.isEmpty)
        call.reply.integer(removals.count)
    }

    /// ZSCAN key cursor [MATCH pattern] [COUNT count]. A compact set answers whole (cursor 0), as
    /// Redis's listpack does. A skiplist is walked in order; the cursor is the next score to visit
    /// (its bits, ordered), and a batch never ends inside a run of equal scores, so a member present
    /// for the whole scan comes back at least once whatever is added or removed meanwhile.
    static func zscan(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let cursor = Self.parseCursor(arguments[2]) else { return call.reply.error(.invalidCursor) }
        let value: SortedSetValue
        switch call.readSortedSet(arguments.copy(1)) {
        case .answered: return
        case .missing:
            call.reply.arrayHeader(2)
            call.reply.bulk("0")
            return call.reply.arrayHeader(0)
        case .found(let found): value = found
        }
        guard let (count, pattern) = Self.scanOptions(arguments, from: 3, &call) else { return }
        var batch: [([UInt8], Double)] = []
        var next: UInt64 = 0
        let compact = value.encoding == "listpack"
        if compact {
            value.forEach(fromRank: 0, reverse: false) { m, s in
                batch.append(([UInt8](m), s))
                return true
            }
        } else {
            let start = cursor == 0 ? 0 : { let from = Self.score(cursor: cursor); return value.count { _, s in s < from } }()
            var lastScore = 0.0
            value.forEach(fromRank: start, reverse: false) { m, s in
                if batch.count >= count && s != lastScore {
                    next = Self.cursor(score: s)
                    return false
                }
                batch.append(([UInt8](m), s))
                lastScore = s
                return true
            }
        }
        if let pattern {
            batch.removeAll { !Glob.matches(pattern: pattern, $0.0) }
        }
        call.reply.arrayHeader(2)
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        call.reply.bulk(digits)
        call.reply.arrayHeader(2 * batch.count)
        for (member, score) in batch {
            call.reply.bulk(member)
            call.reply.bulk(ScoreText.stored(score))
        }
    }

    /// A score's bits, ordered as the scores are, never 0 (0 starts a scan).
    static func cursor(score: Double) -> UInt64 {
        let bits = (score == 0 ? 0.0 : score).bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }

    static func score(cursor: UInt64) -> Double {
        Double(bitPattern: cursor & (1 << 63) != 0 ? cursor & ~(1 << 63) : ~cursor)
    }
}
