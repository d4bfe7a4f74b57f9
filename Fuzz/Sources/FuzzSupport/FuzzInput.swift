// Reading structure out of a fuzz input: small choices from its first bytes, and how to cut the
// rest into the reads a socket might deliver.

/// A cursor over the fuzz input that hands out small choices, then the rest as data.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    private var offset = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        self.bytes = UnsafeRawBufferPointer(start: data, count: size)
    }

    /// The next byte, or 0 once the input is used up.
    public mutating func byte() -> UInt8 {
        guard self.offset < self.bytes.count else { return 0 }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    /// The next two bytes as a little-endian number, or 0s once the input is used up.
    public mutating func uint16() -> Int {
        Int(self.byte()) | Int(self.byte()) << 8
    }

    /// Everything not yet handed out.
    public var rest: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self.bytes[min(self.offset, self.bytes.count)...])
    }
}

/// Cuts `bytes` into consecutive reads: `whole` when `pattern` is 0, otherwise reads of 1 to
/// `pattern` bytes in a fixed rotation, so one byte of input chooses among one-at-a-time, small
/// and uneven deliveries (a framer must give the same result for all of them).
public func chunks(of bytes: UnsafeRawBufferPointer, pattern: UInt8) -> [UnsafeRawBufferPointer] {
    guard pattern != 0 else { return [bytes] }
    var result: [UnsafeRawBufferPointer] = []
    var start = 0
    var step = 0
    while start < bytes.count {
        let size = 1 + (step * 7 + Int(pattern)) % Int(pattern)
        let end = min(bytes.count, start + size)
        result.append(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        start = end
        step += 1
    }
    return result
}
