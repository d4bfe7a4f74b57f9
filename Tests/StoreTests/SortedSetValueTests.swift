// The sorted set against a model (a dictionary sorted on demand): random adds, score changes and
// removals agree at every step, across the listpack → skiplist conversion, copy, and a rebuild from
// forEachElement; ranks, range counts and walks in both directions agree with the sorted model.

import Testing
@testable import Store

@Suite struct SortedSetValueTests {
    typealias Model = [[UInt8]: Double]

    static func sorted(_ model: Model) -> [([UInt8], Double)] {
        model.map { ($0.key, $0.value) }.sorted { a, b in
            a.1 != b.1 ? a.1 < b.1 : a.0.lexicographicallyPrecedes(b.0)
        }
    }

    static func add(_ value: SortedSetValue, _ member: [UInt8], _ score: Double) -> Bool {
        member.withUnsafeBytes { m in withUnsafeBytes(of: score) { value.apply(.add, position: -1, Element(m, $0)) } }
    }

    static func remove(_ value: SortedSetValue, _ member: [UInt8]) -> Bool {
        member.withUnsafeBytes { value.apply(.remove, position: 0, Element($0)) }
    }

    static func elements(_ value: SortedSetValue) -> [([UInt8], Double)] {
        var out: [([UInt8], Double)] = []
        value.forEachElement { element in
            out.append(([UInt8](element.first), element.second.loadUnaligned(as: Double.self)))
            return true
        }
        return out
    }

    static func check(_ value: SortedSetValue, _ model: Model, _ g: inout SortedSetTestGenerator) {
        let expected = Self.sorted(model)
        let actual = Self.elements(value)
        #expect(actual.map(\.0) == expected.map(\.0) && actual.map(\.1) == expected.map(\.1))
        #expect(value.count == model.count)
        guard !expected.isEmpty else { return }
        for _ in 0..<4 {
            let r = Int.random(in: 0..<expected.count, using: &g)
            let (member, score) = expected[r]
            #expect(member.withUnsafeBytes { value.rank(of: $0) } == r)
            #expect(member.withUnsafeBytes { value.score(of: $0) } == score)
            #expect(value.element(atRank: r)?.member == member)
            var walked: [[UInt8]] = []
            value.forEach(fromRank: r, reverse: true) { m, _ in
                walked.append([UInt8](m))
                return walked.count < 5
            }
            #expect(walked == expected[max(0, r - 4)...r].reversed().map(\.0))
            let low = Double(Int.random(in: -3...3, using: &g)), high = Double(Int.random(in: -3...3, using: &g))
            let ranks = value.ranks(min: low, minExclusive: r % 2 == 0, max: high, maxExclusive: r % 3 == 0)
            let inRange = expected.filter { (r % 2 == 0 ? $0.1 > low : $0.1 >= low) && (r % 3 == 0 ? $0.1 < high : $0.1 <= high) }
            #expect(ranks.count == inRange.count)
            if let first = inRange.first { #expect(value.element(atRank: ranks.lowerBound)?.member == first.0) }
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsAgreeWithAModel(seed: UInt64) {
        var g = SortedSetTestGenerator(seed: seed)
        let value = SortedSetValue()
        var model: Model = [:]
        let universe = seed % 2 == 0 ? 40 : 400
        var sawSkiplist = false
        for step in 0..<3000 {
            let member = Array("m\(Int.random(in: 0..<universe, using: &g))".utf8)
                + (Int.random(in: 0..<500, using: &g) == 0 ? [UInt8](repeating: 7, count: 70) : [])
            let score = [0.0, -0.0, 1.5, -2, .infinity, -.infinity, 3, Double(Int.random(in: -3...3, using: &g)),
                         9_007_199_254_740_991, -9_007_199_254_740_991, 9_007_199_254_740_992, -1e300, 255, 256, -129,
                         Double(Int.random(in: -1_000_000...1_000_000, using: &g))]
                .randomElement(using: &g)!
            if Int.random(in: 0..<3, using: &g) == 0 {
                #expect(Self.remove(value, member) == (model.removeValue(forKey: member) != nil))
            } else {
                let changed = model[member] != score
                #expect(Self.add(value, member, score) == changed)
                if changed { model[member] = score }
            }
            if value.encoding == "skiplist" { sawSkiplist = true }
            if step % 50 == 0 {
                Self.check(value, model, &g)
                let copy = value.copy() as! SortedSetValue
                #expect(copy.encoding == value.encoding)
                // A skiplist's bytes depend on its random node heights; a listpack's are its content.
                if value.encoding == "listpack" { #expect(copy.usedBytes == value.usedBytes) }
                Self.check(copy, model, &g)
                let rebuilt = SortedSetValue()
                value.forEachElement { rebuilt.apply(.add, position: -1, $0) }
                Self.check(rebuilt, model, &g)
            }
        }
        Self.check(value, model, &g)
        #expect(sawSkiplist)
    }

    /// A compact set keeps whole scores below 2^53 as zigzag integers in the fewest bytes and any
    /// other as its 8 bytes: every kind reads back exactly, and small integers take less room.
    @Test func compactScoresReadBackExactly() {
        let scores: [Double] = [0, 1, -1, 63, -64, 64, 127, 128, -128, 255, 256, 65_535, -65_536, 1_000_000, 1.5, -0.25,
                                9_007_199_254_740_991, -9_007_199_254_740_991, 9_007_199_254_740_992, -9_007_199_254_740_992,
                                4.5e15 + 0.5, 1e300, -1e-300, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for score in scores {
            var read: Double?
            SortedSetValue.withPackedScore(score) { read = SortedSetValue.packedScore($0) }
            #expect(read?.bitPattern == score.bitPattern, "\(score)")
        }
        let integers = SortedSetValue(), fractions = SortedSetValue()
        for (i, score) in scores.enumerated() {
            _ = Self.add(integers, Array("m\(i)".utf8), score)
            _ = Self.add(fractions, Array("m\(i)".utf8), Double(i) + 0.5)
        }
        #expect(integers.encoding == "listpack")
        var model: Model = [:]
        for (i, score) in scores.enumerated() { model[Array("m\(i)".utf8)] = score }
        #expect(Self.elements(integers).map(\.1) == Self.sorted(model).map(\.1))
        #expect(integers.usedBytes < fractions.usedBytes)
    }

    /// Redis's thresholds: 128 members of at most 64 bytes stay a listpack; one more member, or one
    /// longer member, makes a skiplist that stays one when members go.
    @Test func convertsExactlyWhereRedisDoes() {
        let value = SortedSetValue()
        for i in 0..<128 { _ = Self.add(value, Array("m\(i)".utf8), Double(i)) }
        #expect(value.encoding == "listpack")
        _ = Self.add(value, Array("m5".utf8), 99)
        #expect(value.encoding == "listpack")
        _ = Self.add(value, Array("x".utf8), 1)
        #expect(value.encoding == "skiplist")
        for i in 0..<120 { _ = Self.remove(value, Array("m\(i)".utf8)) }
        #expect(value.encoding == "skiplist" && value.count == 9)
        let long = SortedSetValue()
        _ = Self.add(long, [UInt8](repeating: 65, count: 64), 1)
        #expect(long.encoding == "listpack")
        _ = Self.add(long, [UInt8](repeating: 66, count: 65), 1)
        #expect(long.encoding == "skiplist")
    }

    /// A skiplist thousands of members large under random score changes (continuous scores, so some
    /// moves stay in place between their neighbours and others relink the node), removals that shrink
    /// its member table and adds that grow it: every rank, score and walk agrees with the model, and
    /// its byte account returns to an empty list's when every member is gone.
    @Test(arguments: [5, 6])
    func aLargeSkiplistAgreesWithAModelThroughMovesAndShrinking(seed: UInt64) {
        var g = SortedSetTestGenerator(seed: seed)
        let value = SortedSetValue()
        for i in 0..<200 { _ = Self.add(value, Array("seed\(i)".utf8), Double(i)) }
        for i in 0..<200 { _ = Self.remove(value, Array("seed\(i)".utf8)) }
        #expect(value.encoding == "skiplist" && value.count == 0)
        let emptyBytes = value.usedBytes
        var model: Model = [:]
        for round in 0..<3 {
            for _ in 0..<6000 {
                let member = Array("member:\(Int.random(in: 0..<3000, using: &g))".utf8)
                let score = round == 1 ? Double(Int.random(in: 0..<4, using: &g)) : Double.random(in: -1000...1000, using: &g)
                if Int.random(in: 0..<4, using: &g) == 0 {
                    #expect(Self.remove(value, member) == (model.removeValue(forKey: member) != nil))
                } else {
                    let changed = model[member] != score
                    #expect(Self.add(value, member, score) == changed)
                    if changed { model[member] = score }
                }
            }
            let expected = Self.sorted(model)
            #expect(Self.elements(value).map(\.0) == expected.map(\.0))
            for (rank, (member, score)) in expected.enumerated() where rank % 7 == 0 {
                #expect(member.withUnsafeBytes { value.rank(of: $0) } == rank)
                #expect(member.withUnsafeBytes { value.score(of: $0) } == score)
                #expect(value.element(atRank: rank)?.member == member)
            }
            Self.check(value, model, &g)
        }
        for member in model.keys { #expect(Self.remove(value, member)) }
        #expect(value.count == 0 && value.usedBytes == emptyBytes)
    }

    /// Score-range walks (ZRANGEBYSCORE's) with offsets and limits, in both directions, on both encodings
    /// (a compact set, then the same members past the conversion), against the sorted model.
    @Test(arguments: [7, 8])
    func rangeWalksAgreeWithTheModel(seed: UInt64) {
        var g = SortedSetTestGenerator(seed: seed)
        let value = SortedSetValue()
        var model: Model = [:]
        for size in [60, 2000] {
            while model.count < size {
                let member = Array("m\(Int.random(in: 0..<100_000, using: &g))".utf8)
                let score = Double(Int.random(in: 0..<(size / 3), using: &g))
                _ = Self.add(value, member, score)
                model[member] = score
            }
            #expect(value.encoding == (size <= 128 ? "listpack" : "skiplist"))
            let expected = Self.sorted(model)
            for _ in 0..<300 {
                let low = Double(Int.random(in: -2...(size / 3 + 2), using: &g))
                let high = Double(Int.random(in: -2...(size / 3 + 2), using: &g))
                let (lowOpen, highOpen) = (Bool.random(using: &g), Bool.random(using: &g))
                let reverse = Bool.random(using: &g)
                let offset = [0, 1, 5, 31, 33, 100, -1].randomElement(using: &g)!
                let limit = [-1, 0, 1, 10, 1000].randomElement(using: &g)!
                var inRange = expected.filter { (lowOpen ? $0.1 > low : $0.1 >= low) && (highOpen ? $0.1 < high : $0.1 <= high) }
                if reverse { inRange.reverse() }
                let wanted = offset < 0 ? [] : Array(inRange.dropFirst(offset).prefix(limit < 0 ? Int.max : limit))
                var announced = -1
                var walked: [([UInt8], Double)] = []
                value.walkRange(below: { _, s in lowOpen ? s <= low : s < low }, above: { _, s in highOpen ? s >= high : s > high },
                                reverse: reverse, offset: offset, limit: limit, start: { announced = $0 }) { m, s in
                    walked.append(([UInt8](m), s))
                }
                #expect(announced == wanted.count)
                #expect(walked.map(\.0) == wanted.map(\.0) && walked.map(\.1) == wanted.map(\.1))
            }
        }
    }

    /// A large set goes away without recursing through its nodes.
    @Test func aLargeSetIsReleasedIteratively() {
        var value: SortedSetValue? = SortedSetValue()
        for i in 0..<300_000 { _ = Self.add(value!, Array("member\(i)".utf8), Double(i % 1000)) }
        #expect(value!.count == 300_000)
        value = nil
    }
}

/// SortedSetTestGenerator64: a seeded generator, so a failure replays from its seed.
struct SortedSetTestGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
