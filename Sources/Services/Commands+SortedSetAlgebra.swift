// The sorted set operations: ZUNION, ZINTER, ZDIFF (and their STORE forms) and ZINTERCARD, with
// WEIGHTS and AGGREGATE SUM|MIN|MAX, as Redis 7.0's zunionInterDiffGenericCommand computes them (inputs
// taken smallest first for union and intersection, NaN sums made 0). A plain set is an input whose
// members all score 1, read through the store's typed read of sets.

import Store

extension Commands {
    enum SetOperation {
        case union, inter, diff
    }

    enum Aggregate {
        case sum, min, max

        func combine(_ target: inout Double, _ value: Double) {
            switch self {
            case .sum:
                target += value
                if target.isNaN { target = 0 }
            case .min: target = value < target ? value : target
            case .max: target = value > target ? value : target
            }
        }
    }

    /// One input of a set operation.
    struct OperationSource {
        var sorted: SortedSetValue?
        var members: [[UInt8]] = []
        var memberSet: Set<[UInt8]> = []
        var weight = 1.0

        var count: Int { self.sorted?.count ?? self.members.count }

        func forEach(_ body: ([UInt8], Double) -> Void) {
            if let sorted {
                sorted.forEach(fromRank: 0, reverse: false) { m, s in
                    body([UInt8](m), s)
                    return true
                }
            } else {
                for member in self.members { body(member, 1) }
            }
        }

        func score(of member: [UInt8]) -> Double? {
            if let sorted { return member.withUnsafeBytes { sorted.score(of: $0) } }
            return self.memberSet.contains(member) ? 1 : nil
        }
    }

    static func zunion(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 1, destination: nil, .union, cardinalityOnly: false, name: "zunion", &call)
    }

    static func zinter(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 1, destination: nil, .inter, cardinalityOnly: false, name: "zinter", &call)
    }

    static func zdiff(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 1, destination: nil, .diff, cardinalityOnly: false, name: "zdiff", &call)
    }

    static func zunionstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 2, destination: arguments.copy(1), .union, cardinalityOnly: false,
                          name: "zunionstore", &call)
    }

    static func zinterstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 2, destination: arguments.copy(1), .inter, cardinalityOnly: false,
                          name: "zinterstore", &call)
    }

    static func zdiffstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 2, destination: arguments.copy(1), .diff, cardinalityOnly: false,
                          name: "zdiffstore", &call)
    }

    static func zintercard(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setOperation(arguments, numkeysIndex: 1, destination: nil, .inter, cardinalityOnly: true, name: "zintercard", &call)
    }

    private static func setOperation(_ arguments: ArgumentVector, numkeysIndex: Int, destination: [UInt8]?,
                                     _ operation: SetOperation, cardinalityOnly: Bool, name: String,
                                     _ call: inout CommandCall) {
        guard let numkeys = call.integerArgument(arguments, numkeysIndex) else { return }
        guard numkeys >= 1 else {
            return call.reply.error(.redis(code: "ERR", "at least 1 input key is needed for '\(name)' command"))
        }
        guard numkeys <= Int64(arguments.count - numkeysIndex - 1) else { return call.reply.error(.syntax) }
        var sources: [OperationSource] = []
        var j = numkeysIndex + 1
        for _ in 0..<Int(numkeys) {
            let key = arguments.copy(j)
            j += 1
            let now = call.nowMilliseconds
            switch call.store.withCollection(forKey: key, type: .zset, now: now, { $0 as! SortedSetValue }) {
            case .missing: sources.append(OperationSource())
            case .found(let value): sources.append(OperationSource(sorted: value))
            case .wrongType(.set):
                var members: [[UInt8]] = []
                _ = call.store.withCollection(forKey: key, type: .set, now: now) { set in
                    set.forEachElement { element in
                        members.append([UInt8](element.first))
                        return true
                    }
                }
                sources.append(OperationSource(members: members, memberSet: Set(members)))
            case .wrongType:
                return call.reply.error(.wrongType)
            }
        }
        var aggregate = Aggregate.sum
        var withScores = false
        var limit: Int64 = 0
        while j < arguments.count {
            let remaining = arguments.count - j
            if operation != .diff && !cardinalityOnly && remaining >= sources.count + 1 && arguments.argument(j, is: "weights") {
                j += 1
                for i in sources.indices {
                    guard let weight = ScoreText.value(arguments[j]) else {
                        return call.reply.error(.redis(code: "ERR", "weight value is not a float"))
                    }
                    sources[i].weight = weight
                    j += 1
                }
            } else if operation != .diff && !cardinalityOnly && remaining >= 2 && arguments.argument(j, is: "aggregate") {
                if arguments.argument(j + 1, is: "sum") { aggregate = .sum }
                else if arguments.argument(j + 1, is: "min") { aggregate = .min }
                else if arguments.argument(j + 1, is: "max") { aggregate = .max }
                else { return call.reply.error(.syntax) }
                j += 2
            } else if destination == nil && !cardinalityOnly && arguments.argument(j, is: "withscores") {
                withScores = true
                j += 1
            } else if cardinalityOnly && remaining >= 2 && arguments.argument(j, is: "limit") {
                guard let n = ASCII.parseInteger(arguments[j + 1]), n >= 0 else {
                    return call.reply.error(.redis(code: "ERR", "LIMIT can't be negative"))
                }
                limit = n
                j += 2
            } else {
                return call.reply.error(.syntax)
            }
        }

        var result: [[UInt8]: Double] = [:]
        var order: [[UInt8]] = []
        var cardinality = 0
        switch operation {
        case .union:
            let ordered = sources.enumerated().sorted { ($0.element.count, $0.offset) < ($1.element.count, $1.offset) }.map(\.element)
            for source in ordered {
                source.forEach { member, score in
                    var value = source.weight * score
                    if value.isNaN { value = 0 }
                    if let index = result.index(forKey: member) {
                        aggregate.combine(&result.values[index], value)
                    } else {
                        result[member] = value
                        order.append(member)
                    }
                }
            }
        case .inter:
            let ordered = sources.enumerated().sorted { ($0.element.count, $0.offset) < ($1.element.count, $1.offset) }.map(\.element)
            let first = ordered[0]
            var done = false
            first.forEach { member, score in
                guard !done else { return }
                var value = first.weight * score
                if value.isNaN { value = 0 }
                for other in ordered.dropFirst() {
                    guard let found = other.score(of: member) else { return }
                    aggregate.combine(&value, found * other.weight)
                }
                if cardinalityOnly {
                    cardinality += 1
                    if limit > 0 && cardinality >= limit { done = true }
                } else {
                    result[member] = value
                    order.append(member)
                }
            }
        case .diff:
            let first = sources[0]
            first.forEach { member, score in
                for other in sources.dropFirst() where other.score(of: member) != nil { return }
                result[member] = score
                order.append(member)
            }
        }
        if cardinalityOnly { return call.reply.integer(cardinality) }
        let elements = order.map { ($0, result[$0]!) }
        let value = SortedSetValue.make(elements)
        if let destination {
            let existed = call.existsForNotification(destination)
            guard call.setCollection(value, forKey: destination) else { return }
            call.notifyStored(.zset, operation == .union ? "zunionstore" : operation == .inter ? "zinterstore" : "zdiffstore",
                              destination, count: value.count, existed: existed)
            return call.reply.integer(value.count)
        }
        call.reply.sortedSetHeader(value.count, withScores: withScores)
        value.forEach(fromRank: 0, reverse: false) { m, s in
            call.reply.sortedSetElement(m, s, withScores: withScores)
            return true
        }
    }
}
