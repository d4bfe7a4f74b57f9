// A list's ranged element effects: many items added or removed by one effect, so that LTRIM of a
// million items, LPOP with a count or a multi-item RPUSH is one log record and one undo entry, not
// one per item (docs/file-formats.md, kind 9). A list effect whose `second` field is 8 bytes (a
// little-endian item count n ≥ 1) is a range:
// - a remove takes n items from `position` on (the first as a single remove's position names it;
//   fewer if the list ends first), and its `first` is empty;
// - an add inserts n items, packed in `first` (each a LEB128 length then its bytes), in that order,
//   the first where a single add at `position` would go.
// A single item's effects leave `second` empty, as before. Ranges touch whole nodes at once: the
// nodes a removal covers are dropped together, an add at either end fills nodes in turn.

extension ListValue {
    /// The size of a range's `second` field.
    static let rangeFieldBytes = 8

    /// The `second` field of a range of `count` items.
    public static func rangeField(count: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt64(count).littleEndian) { [UInt8]($0) }
    }

    /// `items` packed as a ranged add's `first` field.
    public static func packedItems<Items: Sequence>(_ items: Items) -> [UInt8]
    where Items.Element: Collection, Items.Element.Element == UInt8 {
        var packed: [UInt8] = []
        for item in items { Self.appendPacked(item, to: &packed) }
        return packed
    }

    /// The items from index `start` through `end` (0 ≤ start ≤ end < count), packed as a ranged
    /// add's `first` field (the inverse of removing them), head to tail.
    public func packedItems(from start: Int, through end: Int) -> [UInt8] {
        var packed: [UInt8] = []
        self.forEach(from: start, through: end) { item in
            Self.appendPacked(item, to: &packed)
            return true
        }
        return packed
    }

    private static func appendPacked<Item: Collection>(_ item: Item, to packed: inout [UInt8]) where Item.Element == UInt8 {
        var rest = item.count
        while rest >= 0x80 {
            packed.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        packed.append(UInt8(rest))
        packed.append(contentsOf: item)
    }

    /// The items packed in `bytes` (``packedItems(_:)``), borrowed; nil unless exactly `count` whole items.
    static func unpackedItems(_ bytes: UnsafeRawBufferPointer, count: Int) -> [UnsafeRawBufferPointer]? {
        var items: [UnsafeRawBufferPointer] = []
        items.reserveCapacity(min(count, bytes.count + 1))
        var offset = 0
        while offset < bytes.count {
            var length = 0
            var shift = 0
            while true {
                guard offset < bytes.count, shift < 63 else { return nil }
                let byte = bytes[offset]
                offset += 1
                length |= Int(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            guard length <= bytes.count - offset else { return nil }
            items.append(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
            offset += length
        }
        return items.count == count ? items : nil
    }

    /// Applies a ranged effect (``apply(_:position:_:)`` found an 8-byte `second`). - Returns: whether
    /// it changed anything.
    /// Its inverse names the absolute index: removing the items added, or adding back, packed, the
    /// items removed.
    func applyRange(_ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse) -> Bool {
        let raw = element.second.loadUnaligned(as: UInt64.self)
        let wanted = UInt64(littleEndian: raw)
        guard wanted >= 1 && wanted <= UInt64(Int.max) else { return false }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        switch operation {
        case .add:
            let index = position >= 0 ? position : Int64(self.count) + 1 + position
            guard index >= 0 && index <= Int64(self.count),
                let items = Self.unpackedItems(element.first, count: Int(wanted))
            else { return false }
            inverse.record(.remove, position: index, empty, element.second)
            self.insertItems(items, at: Int(index))
        case .remove:
            let index = position >= 0 ? position : Int64(self.count) + position
            guard index >= 0 && index < Int64(self.count) else { return false }
            let taken = min(Int(wanted), self.count - Int(index))
            if inverse.isRecording {
                let packed = self.packedItems(from: Int(index), through: Int(index) + taken - 1)
                let field = Self.rangeField(count: taken)
                packed.withUnsafeBytes { p in field.withUnsafeBytes { f in inverse.record(.add, position: index, p, f) } }
            }
            self.removeItems(from: Int(index), count: taken)
        }
        return true
    }

    /// Inserts `items` in order before index `index` (0 ≤ index ≤ count).
    func insertItems(_ items: [UnsafeRawBufferPointer], at index: Int) {
        if index == self.count {
            for item in items { self.insert(item, at: self.count) }
        } else if index == 0 {
            for item in items.reversed() { self.insert(item, at: 0) }
        } else {
            for (offset, item) in items.enumerated() { self.insert(item, at: index + offset) }
        }
    }

    /// Removes `count` items from index `index` on (0 ≤ index, index + count ≤ self.count, count ≥ 1):
    /// the nodes wholly inside the range go together, the two at its ends are cut.
    func removeItems(from index: Int, count: Int) {
        let (firstNode, firstLocal) = self.locate(index)
        let (lastNode, lastLocal) = self.locate(index + count - 1)
        self.count -= count
        if firstNode == lastNode {
            let node = self.nodes[firstNode]
            if lastLocal - firstLocal + 1 == node.entries.count {
                self.packedBytes -= node.entries.allocatedBytes
                self.nodes.remove(at: firstNode)
                self.mergeIfSmall(around: min(firstNode, self.nodes.count - 1))
            } else {
                let start = node.entries.offset(of: firstLocal)
                let end = node.entries.offset(of: lastLocal + 1)
                self.change(node) { $0.remove(from: start, to: end, entries: lastLocal - firstLocal + 1) }
                self.mergeIfSmall(around: firstNode)
            }
            return
        }
        // Cut the last node's head and the first node's tail; drop what lies wholly between.
        var dropFrom = firstNode + 1
        var dropTo = lastNode  // exclusive
        let last = self.nodes[lastNode]
        if lastLocal == last.entries.count - 1 {
            dropTo = lastNode + 1
        } else {
            let end = last.entries.offset(of: lastLocal + 1)
            self.change(last) { $0.remove(from: 0, to: end, entries: lastLocal + 1) }
        }
        let first = self.nodes[firstNode]
        if firstLocal == 0 {
            dropFrom = firstNode
        } else {
            let start = first.entries.offset(of: firstLocal)
            let end = first.entries.byteCount
            let removed = first.entries.count - firstLocal
            self.change(first) { $0.remove(from: start, to: end, entries: removed) }
        }
        if dropFrom < dropTo {
            for position in dropFrom..<dropTo { self.packedBytes -= self.nodes[position].entries.allocatedBytes }
            self.nodes.removeSubrange(dropFrom..<dropTo)
        }
        if !self.nodes.isEmpty { self.mergeIfSmall(around: min(dropFrom, self.nodes.count - 1)) }
    }
}
