// The list type: a sequence of packed nodes (ListEntries.swift), each bounded by Redis's
// `list-max-listpack-size` (EncodingLimits.swift: positive, items per node; -1 … -5, node bytes of
// 4 to 64 KiB), as Redis's quicklist. A small list is one node, so it costs one malloc'd block and
// no object per item; a long one is many nodes, so a push or pop at either end moves at most one
// node's bytes, and an index walk starts from the nearer end and skips whole nodes by their counts.
// Redis 7.0 answers `quicklist` for every list (its small-list `listpack` encoding came in 7.2):
// so does this one, whatever the node count.
//
// Element effects address items by position (docs/file-formats.md, kind 9): an add at position p
// ≥ 0 inserts before index p (p == count appends), at p < 0 before index count + 1 + p (-1 after the
// tail); a remove at p ≥ 0 takes index p, at p < 0 index count + p (-1 the last item). A position
// out of range changes nothing.

import Glibc

public final class ListValue: CollectionValue {
    /// One node: its items packed in one block. A class because ListEntries is not copyable and
    /// an array holds copyable elements.
    final class Node {
        // Touched only by the one thread that owns the list, never from two accesses at once: no
        // dynamic exclusivity check (a runtime call per access, several per push).
        @exclusivity(unchecked) var entries = ListEntries()
        init() {}
    }

    /// The account's fixed costs: the value object, and per node its object and array slot.
    static let headerBytes = 48
    static let nodeBytes = 40
    /// Redis's node byte bounds for fills -1 … -5, and its safety bound for positive fills.
    private static let nodeByteLimits = [4096, 8192, 16384, 32768, 65536]
    private static let sizeSafetyLimit = 8192
    /// Items per node at most under a byte bound: an access in a node's middle walks half of it
    /// (from the nearer end, ListEntries.swift); this keeps that walk bounded for tiny items, while
    /// items of a few bytes and more fill nodes to the byte bound, as Redis's do (fewer nodes: less
    /// per-node memory). Invisible to clients: nodes are internal.
    private static let maxNodeItems = 1024

    // Internal, not private: the ranged effects (ListValue+Ranges.swift) change them too. Unchecked
    // for exclusivity, as the nodes' entries.
    @exclusivity(unchecked) var nodes: [Node] = []
    @exclusivity(unchecked) var itemCount = 0
    /// Computed over ``itemCount``: read from another module, the stored property itself was checked
    /// for exclusivity at run time (a runtime call per read), its attribute notwithstanding.
    public internal(set) var count: Int {
        @inline(__always) get { self.itemCount }
        @inline(__always) set { self.itemCount = newValue }
    }
    /// The sum of the nodes' allocated bytes (ListEntries.allocatedBytes: their items and spare room).
    @exclusivity(unchecked) var packedBytes = 0

    public init() {}

    public var type: ValueType { .list }
    public var encoding: String { "quicklist" }
    public var usedBytes: Int { Self.headerBytes + self.nodes.count * Self.nodeBytes + self.packedBytes }
    /// Nodes held (tests: a list past one node's bound has several).
    public var nodeCount: Int { self.nodes.count }

    public func copy() -> any CollectionValue {
        let copy = ListValue()
        copy.nodes = self.nodes.map { node in
            let duplicate = Node()
            duplicate.entries = node.entries.duplicate()
            return duplicate
        }
        copy.count = self.count
        copy.packedBytes = self.packedBytes
        return copy
    }

    public func forEachElement(_ body: (Element) -> Bool) {
        for node in self.nodes {
            var going = true
            node.entries.forEach { bytes, _ in
                going = body(Element(bytes))
                return going
            }
            guard going else { return }
        }
    }

    @discardableResult
    public func apply(
        _ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse
    ) -> Bool {
        // A `second` field (8 bytes: an item count) makes the effect a range (ListValue+Ranges.swift).
        if element.second.count == Self.rangeFieldBytes {
            return self.applyRange(operation, position: position, element, inverse: &inverse)
        }
        // 16 bytes (a count and a marker): items at scattered positions (ListValue+Scattered.swift).
        if element.second.count == Self.scatteredFieldBytes {
            return self.applyScattered(operation, element, inverse: &inverse)
        }
        // Inverses name absolute indexes: rollback undoes effects newest first, so each sees the list
        // as its effect left it.
        switch operation {
        case .add:
            let index = position >= 0 ? position : Int64(self.count) + 1 + position
            guard index >= 0 && index <= Int64(self.count) else { return false }
            inverse.record(.remove, position: index, UnsafeRawBufferPointer(start: nil, count: 0))
            self.insert(element.first, at: Int(index))
        case .remove:
            let index = position >= 0 ? position : Int64(self.count) + position
            guard index >= 0 && index < Int64(self.count) else { return false }
            // One walk to the item serves both the inverse and the removal.
            let (nodeIndex, local) = self.locate(Int(index))
            let offset = self.nodes[nodeIndex].entries.offset(of: local)
            if inverse.isRecording {
                inverse.record(.add, position: index, self.nodes[nodeIndex].entries.entry(atOffset: offset).bytes)
            }
            self.remove(node: nodeIndex, offset: offset, atListEnd: index == 0 || index == Int64(self.count) - 1)
        }
        return true
    }

    // MARK: - Reads

    /// Calls `body` with the item at `index` (0 ≤ index < count), borrowed.
    public func withItem<R>(at index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let (position, local) = self.locate(index)
        let node = self.nodes[position]
        return body(node.entries.entry(atOffset: node.entries.offset(of: local)).bytes)
    }

    /// A copy of the item at `index` (negative: from the tail, -1 the last), or nil past either end.
    public func item(at index: Int) -> [UInt8]? {
        let resolved = index < 0 ? self.count + index : index
        guard resolved >= 0 && resolved < self.count else { return nil }
        return self.withItem(at: resolved) { [UInt8]($0) }
    }

    /// Calls `body` with the items from index `start` through `end` (0 ≤ start ≤ end < count), head
    /// to tail, until it returns false.
    public func forEach(from start: Int, through end: Int, _ body: (UnsafeRawBufferPointer) -> Bool) {
        guard start <= end, start >= 0, end < self.count else { return }
        var (node, local) = self.locate(start)
        var remaining = end - start + 1
        var offset = self.nodes[node].entries.offset(of: local)
        while remaining > 0 {
            let current = self.nodes[node]
            while remaining > 0 && offset < current.entries.byteCount {
                let (bytes, next) = current.entries.entry(atOffset: offset)
                guard body(bytes) else { return }
                remaining -= 1
                offset = next
            }
            node += 1
            offset = 0
        }
    }

    /// Calls `body` with the items from index `start` down to index `end` (count > start ≥ end ≥ 0),
    /// tail to head, until it returns false.
    public func forEachReversed(from start: Int, downTo end: Int, _ body: (UnsafeRawBufferPointer) -> Bool) {
        guard start >= end, end >= 0, start < self.count else { return }
        var (node, local) = self.locate(start)
        var remaining = start - end + 1
        // From the end of item `start`, each entry read backwards by its back-length.
        var offset = self.nodes[node].entries.offset(of: local + 1)
        while remaining > 0 {
            let current = self.nodes[node]
            while remaining > 0 && offset > 0 {
                let (bytes, previous) = current.entries.entry(endingAt: offset)
                guard body(bytes) else { return }
                remaining -= 1
                offset = previous
            }
            node -= 1
            if node >= 0 { offset = self.nodes[node].entries.byteCount }
        }
    }

    // MARK: - Changes

    /// Inserts `bytes` before index `index` (0 ≤ index ≤ count).
    func insert(_ bytes: UnsafeRawBufferPointer, at index: Int) {
        defer { self.count += 1 }
        if self.nodes.isEmpty {
            self.nodes.append(self.newNode(with: bytes))
            return
        }
        if index == 0 {
            let head = self.nodes[0]
            if self.fits(head, adding: bytes.count) {
                let bound = self.nodeByteBound
                self.change(head) { $0.insert(bytes, atOffset: 0, bound: bound) }
            } else {
                // The old head is no longer at an end: it gives back its spare room.
                if self.nodes.count > 1 { self.change(head) { $0.trim() } }
                self.nodes.insert(self.newNode(with: bytes), at: 0)
            }
            return
        }
        if index == self.count {
            let tail = self.nodes[self.nodes.count - 1]
            if self.fits(tail, adding: bytes.count) {
                let bound = self.nodeByteBound
                self.change(tail) { $0.append(bytes, bound: bound) }
            } else {
                if self.nodes.count > 1 { self.change(tail) { $0.trim() } }
                self.nodes.append(self.newNode(with: bytes))
            }
            return
        }
        let (nodeIndex, local) = self.locate(index)
        let node = self.nodes[nodeIndex]
        if self.fits(node, adding: bytes.count) {
            let offset = node.entries.offset(of: local)
            self.change(node) { $0.insert(bytes, atOffset: offset) }
            self.trimUnlessAtEnd(nodeIndex)
            return
        }
        if local == 0 && nodeIndex > 0 && self.fits(self.nodes[nodeIndex - 1], adding: bytes.count) {
            self.change(self.nodes[nodeIndex - 1]) { $0.append(bytes) }
            self.trimUnlessAtEnd(nodeIndex - 1)
            return
        }
        // A full node: split it at the insertion point; the item goes at the end of the first half,
        // the start of the second, or into a node of its own between them.
        let second = self.split(node, at: local)
        if local > 0 { self.nodes.insert(second, at: nodeIndex + 1) }
        let before = local > 0 ? node : nil
        let after = local > 0 ? second : node
        if let before, self.fits(before, adding: bytes.count) {
            self.change(before) { $0.append(bytes) }
        } else if self.fits(after, adding: bytes.count) {
            self.change(after) { $0.insert(bytes, atOffset: 0) }
        } else {
            self.nodes.insert(self.newNode(with: bytes), at: local > 0 ? nodeIndex + 1 : nodeIndex)
        }
        for position in max(nodeIndex - 1, 0)...min(nodeIndex + 2, self.nodes.count - 1) { self.trimUnlessAtEnd(position) }
    }

    /// Gives back node `index`'s spare room unless it is the head or the tail: only the ends take
    /// pushes, so only they keep room for them.
    func trimUnlessAtEnd(_ index: Int) {
        guard index > 0 && index < self.nodes.count - 1 else { return }
        self.change(self.nodes[index]) { $0.trim() }
    }

    /// Removes the item starting at byte `offset` of node `nodeIndex`; a node left empty goes.
    /// `atListEnd`: the item is the list's first or last (a pop), whose node is an end node: it keeps
    /// its room and merges with nothing (a pop only shrinks the end it takes from, as Redis's
    /// quicklist deletes an item without merging nodes).
    func remove(node nodeIndex: Int, offset: Int, atListEnd: Bool) {
        let node = self.nodes[nodeIndex]
        self.change(node) { $0.remove(atOffset: offset) }
        self.count -= 1
        if node.entries.count == 0 {
            self.nodes.remove(at: nodeIndex)
        } else if !atListEnd {
            self.trimUnlessAtEnd(nodeIndex)
            self.mergeIfSmall(around: nodeIndex)
        }
    }

    /// Joins node `index` with a neighbour when both fit in one node's bound (as Redis's quicklist
    /// merges after deletions), so that removals in the middle do not leave many tiny nodes.
    func mergeIfSmall(around index: Int) {
        for left in index - 1...index where left >= 0 && left + 1 < self.nodes.count {
            let (first, second) = (self.nodes[left], self.nodes[left + 1])
            guard self.fits(first, addingPacked: second.entries.byteCount, items: second.entries.count) else { continue }
            self.change(first) { entries in
                second.entries.forEach { bytes, _ in
                    entries.append(bytes)
                    return true
                }
            }
            self.packedBytes -= second.entries.allocatedBytes
            self.nodes.remove(at: left + 1)
            self.trimUnlessAtEnd(left)
            return
        }
    }

    /// Moves node's items from local index `local` on into a new node (not inserted); with `local`
    /// 0 the new node is empty and `node` untouched.
    func split(_ node: Node, at local: Int) -> Node {
        let second = Node()
        guard local > 0 else { return second }
        let offset = node.entries.offset(of: local)
        var moved = 0
        node.entries.forEach { bytes, at in
            if at >= offset {
                second.entries.append(bytes)
                moved += 1
            }
            return true
        }
        self.packedBytes += second.entries.allocatedBytes
        let end = node.entries.byteCount
        self.change(node) { $0.remove(from: offset, to: end, entries: moved) }
        return second
    }

    func newNode(with bytes: UnsafeRawBufferPointer) -> Node {
        let node = Node()
        node.entries.append(bytes)
        self.packedBytes += node.entries.allocatedBytes
        return node
    }

    /// Runs `body` on node's entries, keeping the byte account.
    @inline(__always)
    func change(_ node: Node, _ body: (inout ListEntries) -> Void) {
        let before = node.entries.allocatedBytes
        body(&node.entries)
        self.packedBytes += node.entries.allocatedBytes - before
    }

    /// Whether `node` may take one more item of `length` bytes under the node limit. An empty node
    /// takes anything (an item larger than the bound gets a node of its own).
    func fits(_ node: Node, adding length: Int) -> Bool {
        self.fits(node, addingPacked: ListEntries.entryBytes(length), items: 1)
    }

    /// A node's byte bound under the current `list-max-listpack-size`.
    var nodeByteBound: Int {
        let fill = EncodingLimits.shared.listMaxListpackSize.current
        return fill >= 0 ? Self.sizeSafetyLimit : Self.nodeByteLimits[min(-fill, Self.nodeByteLimits.count) - 1]
    }

    private func fits(_ node: Node, addingPacked bytes: Int, items: Int) -> Bool {
        if node.entries.count == 0 { return true }
        let size = node.entries.byteCount + bytes
        let fill = EncodingLimits.shared.listMaxListpackSize.current
        if fill >= 0 { return node.entries.count + items <= max(fill, 1) && size <= Self.sizeSafetyLimit }
        return size <= Self.nodeByteLimits[min(-fill, Self.nodeByteLimits.count) - 1]
            && node.entries.count + items <= Self.maxNodeItems
    }

    /// The node holding index `index` (0 ≤ index < count) and the index within it, walking from
    /// the nearer end.
    func locate(_ index: Int) -> (node: Int, local: Int) {
        precondition(index >= 0 && index < self.count, "list index out of range")
        if index < self.count / 2 {
            var rest = index
            for (position, node) in self.nodes.enumerated() {
                let items = node.entries.count
                if rest < items { return (position, rest) }
                rest -= items
            }
        } else {
            var rest = self.count - 1 - index
            for position in stride(from: self.nodes.count - 1, through: 0, by: -1) {
                let items = self.nodes[position].entries.count
                if rest < items { return (position, items - 1 - rest) }
                rest -= items
            }
        }
        preconditionFailure("list counts disagree with its nodes")
    }
}
