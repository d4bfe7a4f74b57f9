// The argument vector both kv framers hand to the command table, as Redis's inline and multibulk
// parsers both fill one argv: slices of the framer's own buffer, never a copy per argument.
// It must not outlive the framer call that produced it.

/// The arguments of one request, the command name first.
///
/// Each argument is a slice of the framer's buffer. Valid until the framer is next called:
/// copy (``copy(_:)``) whatever must be kept.
struct ArgumentVector {
    private let bytes: ArraySlice<UInt8>
    private let ranges: [Range<Int>]

    /// - Parameters:
    ///   - bytes: the buffer the ranges index (indices as in the buffer, not from zero).
    ///   - ranges: one range per argument, in order; at least one (the command name).
    init(bytes: ArraySlice<UInt8>, ranges: [Range<Int>]) {
        assert(!ranges.isEmpty)
        self.bytes = bytes
        self.ranges = ranges
    }

    /// The vector taken apart, without a copy: its buffer and ranges, for a caller that refills
    /// and reuses them.
    consuming func parts() -> (bytes: ArraySlice<UInt8>, ranges: [Range<Int>]) { (self.bytes, self.ranges) }

    /// The number of arguments, the command name included (Redis's `argc`).
    var count: Int { self.ranges.count }

    /// Argument `index` (0 is the command name).
    subscript(index: Int) -> ArraySlice<UInt8> { self.bytes[self.ranges[index]] }

    /// A copy of argument `index`, for a key or value that must outlive the request. Copies
    /// straight from the buffer (one allocation and a memcpy, nothing else).
    func copy(_ index: Int) -> [UInt8] {
        let range = self.ranges[index]
        let offset = self.bytes.startIndex
        return self.bytes.withUnsafeBufferPointer { buffer in
            Array(UnsafeBufferPointer(rebasing: buffer[(range.lowerBound - offset)..<(range.upperBound - offset)]))
        }
    }

    /// Calls `body` with argument `index`'s bytes, borrowed from the buffer.
    func withUnsafeBytes<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let range = self.ranges[index]
        let offset = self.bytes.startIndex
        return self.bytes.withUnsafeBytes { buffer in
            body(UnsafeRawBufferPointer(rebasing: buffer[(range.lowerBound - offset)..<(range.upperBound - offset)]))
        }
    }

    /// Whether argument `index` equals `lowercaseName`, ignoring ASCII case.
    func argument(_ index: Int, is lowercaseName: StaticString) -> Bool {
        ASCII.equalsIgnoringCase(self[index], lowercaseName)
    }
}
