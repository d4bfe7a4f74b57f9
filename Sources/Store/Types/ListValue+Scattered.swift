// A list's scattered element effects: items at many positions removed, or put back, by one effect, so
// that LREM of many matches is one log record and one undo entry, not one per item (docs/file-formats.md,
// kind 9). A list effect whose `second` field is 16 bytes (a little-endian item count n ≥ 1, then a
// little-endian 1) is scattered:
// - a remove takes the n items whose indexes `first` lists (each a LEB128 integer, strictly ascending,
//   all as the list stood before the effect); `position` is the first of them;
// - an add inserts n items, `first` holding for each its index once inserted (LEB128, strictly
//   ascending), its length (LEB128) and its bytes: inserted in order, each lands at its index. It is
//   what a scattered remove's inverse is: the items it took, where they were.
// Either is malformed, and changes nothing, unless its indexes are strictly ascending, in range and
// exactly n.

extension ListValue {
    /// The size of a scattered effect's `second` field.
    static let scatteredFieldBytes = 16

    /// The `second` field of a scattered effect of `count` items.
    public static func scatteredField(count: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt64(count).littleEndian) { [UInt8]($0) }
            + withUnsafeBytes(of: UInt64(1).littleEndian) { [UInt8]($0) }
    }

    /// `indexes` (strictly ascending) packed as a scattered remove's `first` field.
    public static func packedIndexes(_ indexes: [Int]) -> [UInt8] {
        var packed: [UInt8] = []
        packed.reserveCapacity(indexes.count * 2)
        for index in indexes { Self.appendNumber(index, to: &packed) }
        return packed
    }

    static func appendNumber(_ value: Int, to packed: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            packed.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        packed.append(UInt8(rest))
    }

    /// Reads a LEB128 number at `offset`, advancing it; nil if it runs past the end or overflows.
    private static func readNumber(_ bytes: UnsafeRawBufferPointer, _ offset: inout Int) -> Int? {
        var value = 0
        var shift = 0
        while true {
            guard offset < bytes.count, shift < 63 else { return nil }
            let byte = bytes[offset]
            offset += 1
            value |= Int(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    /// Applies a scattered effect (``apply(_:position:_:)`` found a 16-byte `second`). - Returns:
    /// whether it changed anything.
    func applyScattered(_ operation: ElementOperation, _ element: Element, inverse: inout ElementInverse) -> Bool {
        let wanted = UInt64(littleEndian: element.second.loadUnaligned(as: UInt64.self))
        let marker = UInt64(littleEndian: element.second.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard marker == 1, wanted >= 1, wanted <= UInt64(operation == .remove ? self.count : element.first.count)
        else { return false }
        let count = Int(wanted)
        switch operation {
        case .remove:
            var indexes: [Int] = []
            indexes.reserveCapacity(count)
            var offset = 0
            while offset < element.first.count {
                guard let index = Self.readNumber(element.first, &offset), index < self.count,
                      index > (indexes.last ?? -1), indexes.count < count
                else { return false }
                indexes.append(index)
            }
            guard indexes.count == count else { return false }
            if inverse.isRecording {
                var packed: [UInt8] = []
                for index in indexes {
                    Self.appendNumber(index, to: &packed)
                    self.withItem(at: index) { item in
                        Self.appendNumber(item.count, to: &packed)
                        packed.append(contentsOf: item)
                    }
                }
                let field = Self.scatteredField(count: count)
                packed.withUnsafeBytes { p in
                    field.withUnsafeBytes { f in inverse.record(.add, position: Int64(indexes[0]), p, f) }
                }
            }
            self.removeScattered(indexes)
        case .add:
            var items: [(index: Int, bytes: UnsafeRawBufferPointer)] = []
            items.reserveCapacity(count)
            var offset = 0
            while offset < element.first.count {
                guard let index = Self.readNumber(element.first, &offset), index > (items.last?.index ?? -1),
                      index <= self.count + items.count, items.count < count,
                      let length = Self.readNumber(element.first, &offset), length <= element.first.count - offset
                else { return false }
                items.append((index, UnsafeRawBufferPointer(rebasing: element.first[offset..<(offset + length)])))
                offset += length
            }
            guard items.count == count else { return false }
            if inverse.isRecording {
                let packed = Self.packedIndexes(items.map(\.index))
                let field = Self.scatteredField(count: count)
                packed.withUnsafeBytes { p in
                    field.withUnsafeBytes { f in inverse.record(.remove, position: Int64(items[0].index), p, f) }
                }
            }
            for item in items { self.insert(item.bytes, at: item.index) }
        }
        return true
    }

    /// Removes the items at `indexes` (strictly ascending, in range): runs of neighbours as one range
    /// each, the highest first so the lower indexes stay where they are.
    func removeScattered(_ indexes: [Int]) {
        var end = indexes.count
        while end > 0 {
            var start = end - 1
            while start > 0 && indexes[start - 1] == indexes[start] - 1 { start -= 1 }
            self.removeItems(from: indexes[start], count: end - start)
            end = start
        }
    }
}
