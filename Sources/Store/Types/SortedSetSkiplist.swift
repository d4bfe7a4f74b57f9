// A large sorted set's structure: a skiplist ordered by (score, member) whose links carry spans (how
// many elements each link skips), so that rank, the element at a rank and "how many elements come
// before a bound" are all O(log n), as in Redis's zskiplist; plus a member → score table for ZSCORE and
// for finding a member's node. Nodes are classes linked forward by strong references; the backward link
// is unowned (the forward chain keeps every node alive), and the chain is taken apart iteratively when
// the list goes (a recursive release of a million nodes would overflow the stack).

import Glibc

/// One element: its member, score, the link back and one forward link per level.
final class SkiplistNode {
    struct Level {
        var forward: SkiplistNode?
        /// Elements between this node and `forward` at this level, `forward` counted.
        var span: Int
    }

    let member: [UInt8]
    let score: Double
    // Loop thread (or the one thread loading a snapshot) only, never accessed re-entrantly: the
    // dynamic exclusivity checks are left out of the traversals.
    @exclusivity(unchecked) unowned(unsafe) var backward: SkiplistNode?
    @exclusivity(unchecked) var levels: [Level]

    init(member: [UInt8], score: Double, height: Int) {
        self.member = member
        self.score = score
        self.levels = Array(repeating: Level(forward: nil, span: 0), count: height)
    }
}

/// The ordered structure of a sorted set past its compact limits.
final class SortedSetSkiplist {
    static let maxHeight = 32
    /// The fixed cost of one element besides its member's bytes and its levels: the node object, its
    /// level array's header, the member array's header, the table's share.
    static let nodeBytes = 48 + 32 + 32
    static let levelBytes = 16

    let head = SkiplistNode(member: [], score: 0, height: SortedSetSkiplist.maxHeight)
    unowned(unsafe) var tail: SkiplistNode?
    private var height = 1
    private(set) var count = 0
    private(set) var scores: [[UInt8]: Double] = [:]
    /// Node, level and member bytes of every element (``usedBytes`` adds the table).
    private var elementBytes = 0
    /// Node heights need no secure randomness: a SplitMix64 sequence seeded once per list.
    private var randomState = UInt64.random(in: 1...UInt64.max)

    init() {}

    deinit {
        // Unlink node by node: each node's release then drops no further node.
        var next = self.head.levels[0].forward
        self.head.levels = []
        while let node = next {
            next = node.levels[0].forward
            node.levels = []
        }
    }

    var usedBytes: Int { 128 + self.elementBytes + self.scores.capacity * 24 }

    private func randomHeight() -> Int {
        self.randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = self.randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // Each further level with probability 1/4, as Redis's ZSKIPLIST_P: two random bits a level.
        var height = 1
        while height < Self.maxHeight && z & 3 == 0 {
            height += 1
            z >>= 2
        }
        return height
    }

    /// Whether (score, member) of `node` orders before (`score`, `member`).
    @inline(__always)
    static func precedes(_ node: SkiplistNode, _ score: Double, _ member: UnsafeRawBufferPointer) -> Bool {
        if node.score != score { return node.score < score }
        return node.member.withUnsafeBytes { SortedSetValue.compare($0, member) } < 0
    }

    /// Inserts a member known to be absent.
    func insert(_ member: [UInt8], score: Double) {
        withUnsafeTemporaryAllocation(of: Unmanaged<SkiplistNode>.self, capacity: Self.maxHeight) { update in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: Self.maxHeight) { rank in
                self.insert(member, score: score, update: update, rank: rank)
            }
        }
    }

    private func insert(_ member: [UInt8], score: Double, update: UnsafeMutableBufferPointer<Unmanaged<SkiplistNode>>,
                        rank: UnsafeMutableBufferPointer<Int>) {
        var x = self.head
        member.withUnsafeBytes { bytes in
            for i in stride(from: self.height - 1, through: 0, by: -1) {
                rank[i] = i == self.height - 1 ? 0 : rank[i + 1]
                while let next = x.levels[i].forward, Self.precedes(next, score, bytes) {
                    rank[i] += x.levels[i].span
                    x = next
                }
                update[i] = Unmanaged.passUnretained(x)
            }
        }
        let level = self.randomHeight()
        if level > self.height {
            for i in self.height..<level {
                rank[i] = 0
                update[i] = Unmanaged.passUnretained(self.head)
                self.head.levels[i].span = self.count
            }
            self.height = level
        }
        let node = SkiplistNode(member: member, score: score, height: level)
        for i in 0..<level {
            let before = update[i].takeUnretainedValue()
            node.levels[i].forward = before.levels[i].forward
            before.levels[i].forward = node
            node.levels[i].span = before.levels[i].span - (rank[0] - rank[i])
            before.levels[i].span = rank[0] - rank[i] + 1
        }
        for i in level..<self.height { update[i].takeUnretainedValue().levels[i].span += 1 }
        let first = update[0].takeUnretainedValue()
        node.backward = first === self.head ? nil : first
        if let next = node.levels[0].forward { next.backward = node } else { self.tail = node }
        self.count += 1
        self.scores[member] = score
        self.elementBytes += Self.nodeBytes + level * Self.levelBytes + member.count
    }

    /// Removes the element (`member`, `score`), which must be present.
    func remove(_ member: [UInt8], score: Double) {
        withUnsafeTemporaryAllocation(of: Unmanaged<SkiplistNode>.self, capacity: Self.maxHeight) { update in
            self.remove(member, score: score, update: update)
        }
    }

    private func remove(_ member: [UInt8], score: Double, update: UnsafeMutableBufferPointer<Unmanaged<SkiplistNode>>) {
        var x = self.head
        member.withUnsafeBytes { bytes in
            for i in stride(from: self.height - 1, through: 0, by: -1) {
                while let next = x.levels[i].forward, Self.precedes(next, score, bytes) { x = next }
                update[i] = Unmanaged.passUnretained(x)
            }
        }
        guard let node = x.levels[0].forward, node.score == score, node.member == member else {
            preconditionFailure("sorted set: the member's node is not where its score says")
        }
        for i in 0..<self.height {
            let before = update[i].takeUnretainedValue()
            if before.levels[i].forward === node {
                before.levels[i].span += node.levels[i].span - 1
                before.levels[i].forward = node.levels[i].forward
            } else {
                before.levels[i].span -= 1
            }
        }
        if let next = node.levels[0].forward { next.backward = node.backward } else { self.tail = node.backward }
        while self.height > 1 && self.head.levels[self.height - 1].forward == nil { self.height -= 1 }
        self.count -= 1
        self.scores[member] = nil
        self.elementBytes -= Self.nodeBytes + node.levels.count * Self.levelBytes + member.count
        node.levels = []
    }

    /// How many elements come first in order while `before` holds (`before` must hold for a prefix
    /// of the order and not after it).
    func count(while before: (SkiplistNode) -> Bool) -> Int {
        var x = self.head
        var rank = 0
        for i in stride(from: self.height - 1, through: 0, by: -1) {
            while let next = x.levels[i].forward, before(next) {
                rank += x.levels[i].span
                x = next
            }
        }
        return rank
    }

    /// The element at 0-based `rank` (ascending), or nil past the end.
    func node(atRank rank: Int) -> SkiplistNode? {
        guard rank >= 0 && rank < self.count else { return nil }
        var x = self.head
        var traversed = 0
        for i in stride(from: self.height - 1, through: 0, by: -1) {
            while let next = x.levels[i].forward, traversed + x.levels[i].span <= rank + 1 {
                traversed += x.levels[i].span
                x = next
            }
            if traversed == rank + 1 { return x }
        }
        return nil
    }
}
