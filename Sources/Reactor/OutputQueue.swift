// A connection's unsent output as a value: one contiguous byte buffer that producers append to
// in place, and, only when a file range is queued, the chunks that must go out before the
// buffer (bytes queued ahead of the file, then the file). Bytes go out with send(2) (the queue
// writes to sockets only). There is nothing for writev to
// gather: the only split is bytes before a file, and sendfile cannot be joined with them in one
// call. Connection owns one and decides when to write it; this type only keeps the bytes and
// their accounting straight, and is tested on its own (Tests/ReactorTests/OutputQueueTests.swift).

#if canImport(Glibc)
import Glibc
#endif

/// A byte range of an open file, queued for sending with sendfile(2). Holding the file keeps
/// its descriptor open until the range is sent or dropped.
struct FileRegion {
    let file: OpenFile
    var offset: Int
    let end: Int
}

/// Unsent output: bytes and file ranges, written in the order queued.
struct OutputQueue {
    private enum Chunk {
        case bytes([UInt8])
        case file(FileRegion)
    }

    // Invariants (``checkInvariants()``, debug builds): `outputIndex <= output.count`;
    // `queuedChunkBytes` is the unsent byte count of `chunks`, whose first element, if bytes, has
    // had `chunkOffset` bytes sent (a file region advances its own offset); `chunkOffset` is 0
    // unless the head is bytes. Bytes in `chunks` go out before those in `output`.
    // `output` and `isLent` are settable in the module for ``Connection/outputBuffer``, which
    // lends the buffer without a closure (its accessor yields it in place): it drops the sent
    // prefix first (``dropSentPrefix()``) and flags the loan as ``lend(_:)`` does.
    var output: [UInt8] = []
    private(set) var outputIndex = 0
    private var chunks: [Chunk] = []
    private var chunkOffset = 0
    private var queuedChunkBytes = 0
    /// Set while ``lend(_:)`` lends `output` out: nothing else may touch the queue until it
    /// returns (what the runtime exclusivity check would enforce on a stored property).
    var isLent = false

    /// Bytes queued and not yet written, file ranges included.
    @inline(__always)
    var pendingBytes: Int { self.queuedChunkBytes + self.output.count - self.outputIndex }

    /// Traps if the buffer is lent out: a ``lend(_:)`` body calling back into the queue would
    /// corrupt it silently otherwise, so the check stays in release builds.
    @inline(__always)
    func preconditionNotLent() {
        precondition(!self.isLent, "output queue used while withOutputBuffer lends it out")
    }

    /// Appends bytes after everything queued.
    @inline(__always)
    mutating func append<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        self.output.append(contentsOf: bytes)
    }

    /// Appends a copy of `bytes` after everything queued (a memcpy: an UnsafeBufferPointer
    /// copies its contents in one call where a raw buffer would be walked byte by byte).
    @inline(__always)
    mutating func append(copying bytes: UnsafeRawBufferPointer) {
        self.output.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Lends the byte buffer to `body`, which may append to it (never remove). On entry it
    /// holds only unsent bytes, so its count is the byte backlog after any queued file.
    @inline(__always)
    mutating func lend<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R {
        if self.outputIndex > 0 { self.dropSentPrefix() }
        self.isLent = true
        defer { self.isLent = false }
        return try body(&self.output)
    }

    /// Removes the bytes of the buffer already sent, so that it holds only unsent ones. Amortised
    /// O(1) per byte: only a partial write leaves a sent prefix behind.
    @inline(never)
    mutating func dropSentPrefix() {
        self.output.removeFirst(self.outputIndex)
        self.outputIndex = 0
    }

    /// Queues `count` bytes of `file` from `offset`, after every byte queued so far.
    mutating func append(file: OpenFile, offset: Int, count: Int) {
        if self.outputIndex < self.output.count {
            self.chunks.append(.bytes(Array(self.output[self.outputIndex...])))
            self.queuedChunkBytes += self.output.count - self.outputIndex
        }
        self.output.removeAll(keepingCapacity: true)
        self.outputIndex = 0
        self.chunks.append(.file(FileRegion(file: file, offset: offset, end: offset + count)))
        self.queuedChunkBytes += count
        self.checkInvariants()
    }

    /// Drops everything unsent, keeping the byte buffer's capacity; queued files are released.
    mutating func removeAll() {
        self.chunks = []
        self.chunkOffset = 0
        self.queuedChunkBytes = 0
        self.output.removeAll(keepingCapacity: true)
        self.outputIndex = 0
    }

    /// Drops everything and frees the buffers (the connection closed).
    mutating func release() {
        self.chunks = []
        self.chunkOffset = 0
        self.queuedChunkBytes = 0
        self.output = []
        self.outputIndex = 0
        self.checkInvariants()
    }

    /// With nothing pending, frees a byte buffer that grew past 64 KiB (one large reply must not
    /// pin its memory for the connection's life).
    mutating func releaseIfLarge() {
        if self.output.capacity > 64 * 1024 { self.output = [] }
    }

    /// Frees the buffers if nothing is pending, so an idle connection holds no heap.
    mutating func releaseIfEmpty() {
        if self.pendingBytes == 0 {
            self.output = []
            self.outputIndex = 0
            self.chunks = []
        }
    }

    /// The capacity of the byte buffer (for tests of the release rules).
    var bufferCapacity: Int { self.output.capacity }

    /// Writes to the socket `descriptor` what it takes now, in order: send(2) for bytes, sendfile(2) for
    /// file ranges, at most 16 calls (a peer that keeps the socket writable cannot hold the loop).
    /// - Returns: whether any byte was written.
    /// - Throws: ``IOError`` from the calls; `EIO` ("sendfile (file shrank)") when a file turns
    ///   out shorter than queued: the peer was told to expect bytes that will never come.
    mutating func write(to descriptor: Descriptor) throws(IOError) -> Bool {
        // Bytes alone (every reply but a file's): one send, without touching `chunks` (a mutating
        // walk of the empty array cost a uniqueness check and a buffer call per write).
        if self.chunks.isEmpty {
            guard self.outputIndex < self.output.count else { return false }
            let written = try Sys.send(descriptor, self.output, from: self.outputIndex)
            guard case .processed(let n) = written else { return false }
            self.outputIndex += n
            if self.outputIndex == self.output.count {
                self.output.removeAll(keepingCapacity: true)
                self.outputIndex = 0
                return true
            }
            // A partial send: the loop below goes on until the socket is full (as before).
            return try self.write(to: descriptor, wrote: true)
        }
        return try self.write(to: descriptor, wrote: false)
    }

    private mutating func write(to descriptor: Descriptor, wrote wroteBefore: Bool) throws(IOError) -> Bool {
        var wrote = wroteBefore
        for _ in 0..<16 {
            guard let head = self.chunks.first else {
                guard self.outputIndex < self.output.count else { return wrote }
                let written = try Sys.send(descriptor, self.output, from: self.outputIndex)
                guard case .processed(let n) = written else { return wrote }
                wrote = true
                self.outputIndex += n
                if self.outputIndex == self.output.count {
                    self.output.removeAll(keepingCapacity: true)
                    self.outputIndex = 0
                    return wrote
                }
                continue
            }
            switch head {
            case .bytes(let bytes):
                let written = try Sys.send(descriptor, bytes, from: self.chunkOffset)
                guard case .processed(let n) = written else { return wrote }
                wrote = true
                self.chunkOffset += n
                self.queuedChunkBytes -= n
                if self.chunkOffset == bytes.count {
                    self.chunks.removeFirst()
                    self.chunkOffset = 0
                }
            case .file(var region):
                var offset = region.offset
                let result = try Sys.sendfile(
                    descriptor, region.file.descriptor, offset: &offset, count: min(region.end - region.offset, 1 << 30))
                guard case .processed(let n) = result else { return wrote }
                if n == 0 { throw IOError(errno: EIO, call: "sendfile (file shrank)") }
                wrote = true
                region.offset = offset
                self.queuedChunkBytes -= n
                if region.offset >= region.end {
                    self.chunks.removeFirst()  // releases the file: closed unless the caller kept it
                } else {
                    self.chunks[0] = .file(region)
                }
            }
        }
        return wrote
    }

    /// The byte accounting invariants listed beside the stored properties. O(queued chunks),
    /// debug builds only.
    func checkInvariants() {
        #if DEBUG
        assert(self.outputIndex <= self.output.count, "outputIndex past the output buffer")
        var unsent = -self.chunkOffset
        for chunk in self.chunks {
            switch chunk {
            case .bytes(let bytes): unsent += bytes.count
            case .file(let region): unsent += region.end - region.offset
            }
        }
        assert(unsent == self.queuedChunkBytes, "queuedChunkBytes \(self.queuedChunkBytes) but chunks hold \(unsent)")
        if case .file = self.chunks.first { assert(self.chunkOffset == 0, "chunkOffset set with a file at the head") }
        #endif
    }
}
