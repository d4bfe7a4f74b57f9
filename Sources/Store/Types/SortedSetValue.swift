// The sorted set: members (byte strings) with scores (doubles), ordered by score then member bytes.
// Small, it is one ``PackedEntries`` block of member and score alternating, in order — Redis's
// `listpack`; past `zset-max-listpack-entries` members or a member longer than
// `zset-max-listpack-value` it becomes a ``SortedSetSkiplist`` (`skiplist`) and never goes back, exactly
// when Redis 7.0 converts. Changed only through element effects: an add sets a member's score
// (inserting it, or moving it to its new place), a remove takes a member away (Value.swift).

import Glibc

/// A sorted set value (TYPE `zset`).
public final class SortedSetValue: CollectionValue {
    /// Member, score, member, score, … ascending; unused once ``list`` is set.
    // Loop thread only, never accessed re-entrantly: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var packed = PackedEntries()
    @exclusivity(unchecked) private var list: SortedSetSkiplist?

    public init() {}

    // The keyspace's compact form (KeyTable+Compact.swift): a listpack's block alone in the key's slot.

    /// What ``usedBytes`` reports for a listpack of `byteCount` bytes (the compact form keeps that account).
    static func compactBytes(byteCount: Int) -> Int { 32 + byteCount }

    /// The listpack's pairs and bytes, or nil when the set is a skiplist or empty (no compact form).
    var compactShape: (pairs: Int, byteCount: Int)? {
        guard self.list == nil, self.packed.count > 0 else { return nil }
        return (self.packed.count / 2, self.packed.byteCount)
    }

    /// Hands the listpack's block over (``compactShape`` must not be nil), leaving the object empty.
    func detachCompact() -> (block: UnsafeMutableRawPointer, byteCount: Int, count: Int) {
        self.packed.takeStorage()
    }

    /// A sorted set of the `pairs` member-score pairs in `block` (``detachCompact()``'s), taken over.
    convenience init(adopting block: UnsafeMutableRawPointer, byteCount: Int, pairs: Int) {
        self.init()
        self.packed = PackedEntries(adopting: block, byteCount: byteCount, count: pairs * 2)
    }

    public var type: ValueType { .zset }
    public var encoding: String { self.list == nil ? "listpack" : "skiplist" }
    public var count: Int { self.list?.count ?? self.packed.count / 2 }
    public var usedBytes: Int { self.list?.usedBytes ?? 32 + self.packed.byteCount }

    /// Byte order of members: memcmp, the shorter first when one is a prefix of the other.
    @inline(__always)
    public static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        if common > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, common)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    private static func score(_ bytes: UnsafeRawBufferPointer) -> Double {
        precondition(bytes.count == 8, "a sorted-set score is 8 bytes")
        return bytes.loadUnaligned(as: Double.self)
    }

    /// A score as the compact block keeps it: a whole number of magnitude below 2^53 (exact in a
    /// Double) as its zigzag form in the fewest little-endian bytes (0 to 7: 0 is no bytes), anything
    /// else as the Double's 8 bytes. Scores are mostly small integers (timestamps, counters, ranks): this
    /// is what keeps a small set near the size of Redis's listpack, which stores them as integers too.
    @inline(__always)
    static func withPackedScore<R>(_ score: Double, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard score == score.rounded(.towardZero) && abs(score) < 9_007_199_254_740_992 else {
            return withUnsafeBytes(of: score, body)
        }
        let integer = Int64(score)
        let zigzag = UInt64(bitPattern: (integer << 1) ^ (integer >> 63))
        let length = (64 - zigzag.leadingZeroBitCount + 7) / 8
        return withUnsafeBytes(of: zigzag.littleEndian) { body(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }

    /// A score read back from the compact block (``withPackedScore(_:_:)``'s form).
    @inline(__always)
    static func packedScore(_ bytes: UnsafeRawBufferPointer) -> Double {
        if bytes.count == 8 { return bytes.loadUnaligned(as: Double.self) }
        var zigzag: UInt64 = 0
        for i in 0..<bytes.count { zigzag |= UInt64(bytes[i]) << (8 * i) }
        return Double(Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1))
    }

    public func copy() -> any CollectionValue {
        let copy = SortedSetValue()
        if let list {
            let large = SortedSetSkiplist(expected: list.count)
            var node = list.first
            while let current = node {
                large.insert(current.member, score: current.score)
                node = current.forward(0)
            }
            copy.list = large
        } else {
            copy.packed = self.packed.duplicate()
        }
        return copy
    }

    public func forEachElement(_ body: (Element) -> Bool) {
        self.forEach(fromRank: 0, reverse: false) { member, score in
            withUnsafeBytes(of: score) { body(Element(member, $0)) }
        }
    }

    @discardableResult
    public func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse
    ) -> Bool {
        switch operation {
        case .add: return self.set(element.first, score: Self.score(element.second), inverse: &inverse)
        case .remove: return self.remove(element.first, inverse: &inverse)
        }
    }

    /// Records into `inverse` that `member` held `old` (nil: it was absent).
    private static func recordInverse(_ member: UnsafeRawBufferPointer, old: Double?, _ inverse: inout ElementInverse) {
        guard inverse.isRecording else { return }
        if let old {
            withUnsafeBytes(of: old) { inverse.record(.add, member, $0) }
        } else {
            inverse.record(.remove, member)
        }
    }

    // MARK: - Mutations (through apply only)

    private func set(_ member: UnsafeRawBufferPointer, score given: Double, inverse: inout ElementInverse) -> Bool {
        var score = given
        if let list {
            switch list.set(member, score: score) {
            case .unchanged: return false
            case .added: Self.recordInverse(member, old: nil, &inverse)
            case .moved(let old): Self.recordInverse(member, old: old, &inverse)
            }
            return true
        }
        // A listpack keeps a score as text, and Redis's text of -0 reads back as the integer 0: a
        // compact set never holds -0 (a skiplist does).
        if score == 0 { score = 0 }
        if let (offset, old) = self.packedFind(member) {
            guard old != score else { return false }
            Self.recordInverse(member, old: old, &inverse)
            self.packed.remove(atOffset: offset, entries: 2)
        } else {
            Self.recordInverse(member, old: nil, &inverse)
            let limits = EncodingLimits.shared
            if self.count + 1 > limits.zsetMaxListpackEntries.current || member.count > limits.zsetMaxListpackValue.current {
                self.convertToSkiplist()
                self.list!.insert(member, score: given)
                return true
            }
        }
        // The first pair that orders after the new one.
        var insertAt = self.packed.byteCount
        var offset = 0
        while offset < self.packed.byteCount {
            let (entry, scoreOffset) = self.packed.entry(atOffset: offset)
            let (scoreBytes, next) = self.packed.entry(atOffset: scoreOffset)
            let s = Self.packedScore(scoreBytes)
            if s > score || (s == score && Self.compare(entry, member) > 0) {
                insertAt = offset
                break
            }
            offset = next
        }
        Self.withPackedScore(score) { self.packed.insert($0, atOffset: insertAt) }
        self.packed.insert(member, atOffset: insertAt)
        return true
    }

    private func remove(_ member: UnsafeRawBufferPointer, inverse: inout ElementInverse) -> Bool {
        if let list {
            guard let old = list.remove(member) else { return false }
            Self.recordInverse(member, old: old, &inverse)
            return true
        }
        guard let (offset, old) = self.packedFind(member) else { return false }
        Self.recordInverse(member, old: old, &inverse)
        self.packed.remove(atOffset: offset, entries: 2)
        return true
    }

    private func convertToSkiplist() {
        let large = SortedSetSkiplist(expected: self.count + 1)
        self.forEach(fromRank: 0, reverse: false) { member, score in
            large.insert(member, score: score)
            return true
        }
        self.packed = PackedEntries()
        self.list = large
    }

    /// The member's pair offset and score in the compact block.
    private func packedFind(_ member: UnsafeRawBufferPointer) -> (Int, Double)? {
        var offset = 0
        while offset < self.packed.byteCount {
            let (entry, scoreOffset) = self.packed.entry(atOffset: offset)
            let (scoreBytes, next) = self.packed.entry(atOffset: scoreOffset)
            if entry.count == member.count && Self.compare(entry, member) == 0 {
                return (offset, Self.packedScore(scoreBytes))
            }
            offset = next
        }
        return nil
    }

    // MARK: - Reads

    /// ZSCORE: the member's score, or nil.
    public func score(of member: UnsafeRawBufferPointer) -> Double? {
        if let list { return list.node(for: member)?.score }
        return self.packedFind(member)?.1
    }

    /// ZRANK: the member's 0-based rank in ascending order, or nil.
    public func rank(of member: UnsafeRawBufferPointer) -> Int? {
        if let list {
            guard let node = list.node(for: member) else { return nil }
            return list.rank(of: node)
        }
        guard let score = self.score(of: member) else { return nil }
        return self.count { m, s in s < score || (s == score && Self.compare(m, member) < 0) }
    }

    /// How many elements come first in ascending order while `before(member, score)` holds; `before`
    /// must hold for a prefix of the order (a bound's "below the range") and not after it.
    public func count(while before: (UnsafeRawBufferPointer, Double) -> Bool) -> Int {
        if let list {
            return list.count { node in before(node.member, node.score) }
        }
        var n = 0
        self.forEach(fromRank: 0, reverse: false) { member, score in
            guard before(member, score) else { return false }
            n += 1
            return true
        }
        return n
    }

    /// Elements with scores in the bounds: the range of ascending ranks they occupy.
    public func ranks(min: Double, minExclusive: Bool, max: Double, maxExclusive: Bool) -> Range<Int> {
        let lower = self.count { _, s in minExclusive ? s <= min : s < min }
        let upper = self.count { _, s in maxExclusive ? s < max : s <= max }
        return lower..<Swift.max(lower, upper)
    }

    /// Elements with members in the bounds (nil: `-` below, `+` above everything), for a set whose
    /// scores are all equal: the range of ascending ranks they occupy.
    public func ranks(min: [UInt8]?, minExclusive: Bool, max: [UInt8]?, maxExclusive: Bool, minIsPlus: Bool = false,
                      maxIsMinus: Bool = false) -> Range<Int> {
        let lower: Int
        if minIsPlus {
            lower = self.count
        } else if let min {
            lower = min.withUnsafeBytes { bound in
                self.count { m, _ in let c = Self.compare(m, bound); return minExclusive ? c <= 0 : c < 0 }
            }
        } else {
            lower = 0
        }
        let upper: Int
        if maxIsMinus {
            upper = 0
        } else if let max {
            upper = max.withUnsafeBytes { bound in
                self.count { m, _ in let c = Self.compare(m, bound); return maxExclusive ? c < 0 : c <= 0 }
            }
        } else {
            upper = self.count
        }
        return lower..<Swift.max(lower, upper)
    }

    /// A range read (ZRANGE BYSCORE / BYLEX and their older forms): the elements after every one `below`
    /// holds for and before every one `above` holds for (each must hold for a prefix, respectively a
    /// suffix, of the order), ascending or, when `reverse`, descending; `offset` of them skipped, then at
    /// most `limit` (negative: all). `start` gets their count, then `body` each one in order. On a
    /// skiplist one descent finds the range's first element and the walk goes along level 0, as Redis's
    /// zslFirstInRange; a compact set is scanned.
    public func walkRange(
        below: (UnsafeRawBufferPointer, Double) -> Bool, above: (UnsafeRawBufferPointer, Double) -> Bool,
        reverse: Bool, offset: Int, limit: Int, start: (Int) -> Void, _ body: (UnsafeRawBufferPointer, Double) -> Void
    ) {
        guard let list else {
            let lower = self.count(while: below)
            let upper = Swift.max(lower, self.count { m, s in !above(m, s) })
            var ranks = lower..<upper
            if offset < 0 || offset >= ranks.count {
                ranks = lower..<lower
            } else if reverse {
                let top = upper - offset
                ranks = (limit < 0 ? lower : Swift.max(lower, top - Swift.min(limit, ranks.count)))..<top
            } else {
                let bottom = lower + offset
                ranks = bottom..<(limit < 0 ? upper : Swift.min(upper, bottom + Swift.min(limit, ranks.count)))
            }
            var left = ranks.count
            start(left)
            guard left > 0 else { return }
            self.forEach(fromRank: reverse ? ranks.upperBound - 1 : ranks.lowerBound, reverse: reverse) { m, s in
                body(m, s)
                left -= 1
                return left > 0
            }
            return
        }
        guard offset >= 0 else { return start(0) }
        // The range's first element in the walk's direction and its 1-based rank.
        var node: SkiplistNode?
        var rank: Int
        if reverse {
            let (last, lastRank) = list.last { !above($0.member, $0.score) }
            (node, rank) = (lastRank == 0 ? nil : last, lastRank)
        } else {
            let (last, lastRank) = list.last { below($0.member, $0.score) }
            (node, rank) = (last.forward(0), lastRank + 1)
        }
        @inline(__always) func inRange(_ node: SkiplistNode) -> Bool {
            reverse ? !below(node.member, node.score) : !above(node.member, node.score)
        }
        if offset > 0, node != nil {
            // A short offset is walked (as Redis does); a long one is a second descent by rank.
            rank += reverse ? -offset : offset
            if offset <= 32 {
                for _ in 0..<offset {
                    guard let current = node else { break }
                    node = reverse ? current.backward : current.forward(0)
                }
            } else {
                node = list.node(atRank: rank - 1)
            }
        }
        var count = 0
        if let first = node, inRange(first) {
            if limit >= 0 && limit <= 512 {
                // One walk: the nodes are kept, then answered after their count.
                withUnsafeTemporaryAllocation(of: SkiplistNode.self, capacity: limit) { nodes in
                    var current = node
                    while count < limit, let n = current, inRange(n) {
                        nodes.initializeElement(at: count, to: n)
                        count += 1
                        current = reverse ? n.backward : n.forward(0)
                    }
                    start(count)
                    for i in 0..<count { body(nodes[i].member, nodes[i].score) }
                }
                return
            } else if limit >= 0 {
                var current = node
                while count < limit, let n = current, inRange(n) {
                    count += 1
                    current = reverse ? n.backward : n.forward(0)
                }
            } else if reverse {
                count = rank - list.count { below($0.member, $0.score) }
            } else {
                count = list.count { !above($0.member, $0.score) } - rank + 1
            }
        }
        start(count)
        var current = node
        for _ in 0..<count {
            let n = current!
            body(n.member, n.score)
            current = reverse ? n.backward : n.forward(0)
        }
    }

    /// Calls `body` with each element from ascending rank `start`, going up (or down when `reverse`),
    /// until it returns false or the elements end.
    public func forEach(fromRank start: Int, reverse: Bool, _ body: (UnsafeRawBufferPointer, Double) -> Bool) {
        guard start >= 0 && start < self.count else { return }
        if let list {
            // The ends without a descent (ZRANGE 0 …, ZREVRANGE 0 …, the pops with a count).
            var node = start == 0 ? list.first : start == list.count - 1 ? list.tail : list.node(atRank: start)
            while let current = node {
                guard body(current.member, current.score) else { return }
                node = reverse ? current.backward : current.forward(0)
            }
            return
        }
        if !reverse {
            var offset = 0
            var index = 0
            while offset < self.packed.byteCount {
                let (entry, scoreOffset) = self.packed.entry(atOffset: offset)
                let (scoreBytes, next) = self.packed.entry(atOffset: scoreOffset)
                if index >= start { guard body(entry, Self.packedScore(scoreBytes)) else { return } }
                index += 1
                offset = next
            }
            return
        }
        // Backwards: the pairs' offsets first (a compact block holds few).
        var offsets: [Int] = []
        offsets.reserveCapacity(start + 1)
        var offset = 0
        while offsets.count <= start {
            offsets.append(offset)
            offset = self.packed.entry(atOffset: self.packed.entry(atOffset: offset).next).next
        }
        for pair in offsets.reversed() {
            let (entry, scoreOffset) = self.packed.entry(atOffset: pair)
            guard body(entry, Self.packedScore(self.packed.entry(atOffset: scoreOffset).bytes)) else { return }
        }
    }

    /// `body` of the lowest element (the highest when `max`), borrowed; nil when the set is empty. On a
    /// skiplist the head's first link or the tail, not a descent by rank.
    @inline(__always)
    public func withEnd<R>(max: Bool, _ body: (UnsafeRawBufferPointer, Double) -> R) -> R? {
        if let list {
            guard let node = max ? list.tail : list.first else { return nil }
            return body(node.member, node.score)
        }
        guard self.packed.count > 0 else { return nil }
        var pair = 0
        if max {
            // The last pair's offset, found walking forward (no list of offsets).
            var offset = 0
            while offset < self.packed.byteCount {
                pair = offset
                offset = self.packed.entry(atOffset: self.packed.entry(atOffset: offset).next).next
            }
        }
        let (member, scoreOffset) = self.packed.entry(atOffset: pair)
        return body(member, Self.packedScore(self.packed.entry(atOffset: scoreOffset).bytes))
    }

    /// The lowest element (the highest when `max`), borrowed: valid until the set next changes; nil
    /// when empty. ``withEnd(max:_:)`` without its generic closure, which a caller in another module
    /// would call unspecialized.
    public func end(max: Bool) -> (member: UnsafeRawBufferPointer, score: Double)? {
        self.withEnd(max: max) { ($0, $1) }
    }

    /// The element at ascending `rank` (ZRANDMEMBER), or nil past the end.
    public func element(atRank rank: Int) -> (member: [UInt8], score: Double)? {
        var found: ([UInt8], Double)?
        self.forEach(fromRank: rank, reverse: false) { member, score in
            found = ([UInt8](member), score)
            return false
        }
        return found
    }

    /// A sorted set holding `elements` (the set operations' and ZRANGESTORE's results), encoded as
    /// Redis would encode it after adding them one by one.
    public static func make(_ elements: some Sequence<([UInt8], Double)>) -> SortedSetValue {
        let value = SortedSetValue()
        for (member, score) in elements {
            member.withUnsafeBytes { m in withUnsafeBytes(of: score) { _ = value.apply(.add, position: 0, Element(m, $0)) } }
        }
        return value
    }
}
