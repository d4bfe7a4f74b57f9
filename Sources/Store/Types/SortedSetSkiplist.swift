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
    unowned(unsafe) var backward: SkiplistNode?
    var levels: [Level]

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
    private var random = SystemRandomNumberGenerator()

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
        var height = 1
        // Each further level with probability 1/4, as Redis's ZSKIPLIST_P.
        while height < Self.maxHeight && self.random.next() & 3 == 0 { height += 1 }
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
        var update = [SkiplistNode](repeating: self.head, count: Self.maxHeight)
        var rank = [Int](repeating: 0, count: Self.maxHeight)
        var x = self.head
        member.withUnsafeBytes { bytes in
            for i in stride(from: self.height - 1, through: 0, by: -1) {
                rank[i] = i == self.height - 1 ? 0 : rank[i + 1]
                while let next = x.levels[i].forward, Self.precedes(next, score, bytes) {
                    rank[i] += x.levels[i].span
                    x = next
                }
                update[i] = x
            }
        }
        let level = self.randomHeight()
        if level > self.height {
            for i in self.height..<level {
                rank[i] = 0
                update[i] = self.head
                self.head.levels[i].span = self.count
            }
            self.height = level
        }
        let node = SkiplistNode(member: member, score: score, height: level)
        for i in 0..<level {
            node.levels[i].forward = update[i].levels[i].forward
            update[i].levels[i].forward = node
            node.levels[i].span = update[i].levels[i].span - (rank[0] - rank[i])
            update[i].levels[i].span = rank[0] - rank[i] + 1
        }
        for i in level..<self.height { update[i].levels[i].span += 1 }
        node.backward = update[0] === self.head ? nil : update[0]
        if let next = node.levels[0].forward { next.backward = node } else { self.tail = node }
        self.count += 1
        self.scores[member] = score
        self.elementBytes += Self.nodeBytes + level * Self.levelBytes + member.count
    }

    /// Removes the element (`member`, `score`), which must be present.
    func remove(_ member: [UInt8], score: Double) {
        var update = [SkiplistNode](repeating: self.head, count: Self.maxHeight)
        var x = self.head
        member.withUnsafeBytes { bytes in
            for i in stride(from: self.height - 1, through: 0, by: -1) {
                while let next = x.levels[i].forward, Self.precedes(next, score, bytes) { x = next }
                update[i] = x
            }
        }
        guard let node = x.levels[0].forward, node.score == score, node.member == member else {
            preconditionFailure("sorted set: the member's node is not where its score says")
        }
        for i in 0..<self.height {
            if update[i].levels[i].forward === node {
                update[i].levels[i].span += node.levels[i].span - 1
                update[i].levels[i].forward = node.levels[i].forward
            } else {
                update[i].levels[i].span -= 1
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
