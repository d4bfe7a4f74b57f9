// Copies without an allocation: a key or an item a command must own for a moment (the store's typed
// calls take keys as arrays; a popped item outlives its removal from the list) goes into a buffer the
// connection reuses. The copy is an ordinary array: whoever keeps it (a WATCH, a blocked client's
// wake-up) keeps its own, as the next copy into the buffer then writes into a fresh one.

extension ClientState {
    /// Keys and items up to this length go through the buffers; longer ones are copied as before, so
    /// an idle connection holds at most this much in each.
    static let scratchLimit = 256

    /// A copy of argument `index` (a key), in the key buffer when short.
    func copyKey(_ arguments: ArgumentVector, _ index: Int) -> [UInt8] {
        arguments.withUnsafeBytes(index) { bytes in
            guard bytes.count <= Self.scratchLimit else { return [UInt8](bytes) }
            Self.fill(&self.scratchKey, bytes)
            return self.scratchKey
        }
    }

    /// A copy of `bytes` (an item read from the store), in the item buffer when short.
    func copyItem(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        guard bytes.count <= Self.scratchLimit else { return [UInt8](bytes) }
        Self.fill(&self.scratchItem, bytes)
        return self.scratchItem
    }

    /// Makes `buffer` a copy of `bytes`: in place when the length is the same (a queue's keys and
    /// items often are), else emptied and refilled, keeping its capacity.
    @inline(__always)
    private static func fill(_ buffer: inout [UInt8], _ bytes: UnsafeRawBufferPointer) {
        if buffer.count == bytes.count {
            // A buffer still shared with an earlier copy is made unique first: that copy keeps its bytes.
            if !bytes.isEmpty { buffer.withUnsafeMutableBytes { $0.copyMemory(from: bytes) } }
        } else {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: bytes)
        }
    }
}

extension CommandCall {
    /// A copy of argument `index` (a key) without an allocation when short (``ClientState/copyKey(_:_:)``).
    func key(_ arguments: ArgumentVector, _ index: Int) -> [UInt8] {
        self.client.copyKey(arguments, index)
    }
}
