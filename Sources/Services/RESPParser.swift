// Incremental RESP2 request parser: multibulk frames (`*<n>\r\n` then n × `$<len>\r\n<bytes>\r\n`)
// cut from a growing byte buffer. It resumes where it stopped, so a frame may arrive one byte at a
// time at no more than constant cost per byte, and it never reserves memory from a length the
// client merely claims: only bytes that have arrived are stored. A request that does not begin
// with `*` is a Redis inline command, decided per request as redis-server decides it
// (InlineRequest.swift). Requests come out as an ArgumentVector over the parser's own buffer, the
// same shape the line protocol's framer yields.

/// Parses RESP2 multibulk requests. Arguments are byte ranges into the parser's own buffer.
struct RESPParser: RequestFramer {
    /// Why a stream is not RESP; the reply is `-ERR Protocol error: <text>` and the connection closes.
    enum ProtocolError: Equatable {
        case invalidMultibulkLength
        case expectedBulk(got: UInt8)
        case invalidBulkLength
        case missingBulkTerminator
        case requestTooLarge
        case unauthenticatedMultibulkLength
        case unauthenticatedBulkLength
        case inlineTooBig
        case unbalancedQuotes
        /// A bulk announced longer than the room left under `--max-memory`: refused before its
        /// body is buffered (answered as an OOM error, not a protocol error).
        case bulkPastMemoryLimit

        /// The reply text after `Protocol error: `; Redis's wording where Redis has one.
        func write(to output: inout [UInt8]) {
            switch self {
            case .invalidMultibulkLength: output.append("invalid multibulk length")
            case .expectedBulk(let byte):
                output.append("expected '$', got '")
                output.appendSingleLine(CollectionOfOne(byte))
                output.append("'")
            case .invalidBulkLength: output.append("invalid bulk length")
            case .missingBulkTerminator: output.append("expected CRLF after bulk data")
            case .requestTooLarge: output.append("request too large")
            case .unauthenticatedMultibulkLength: output.append("unauthenticated multibulk length")
            case .unauthenticatedBulkLength: output.append("unauthenticated bulk length")
            case .inlineTooBig: output.append("too big inline request")
            case .unbalancedQuotes: output.append("unbalanced quotes in request")
            case .bulkPastMemoryLimit: output.append("bulk length past the memory limit")
            }
        }
    }

    private enum Step: Equatable {
        case command
        case needMoreData
        case protocolError(ProtocolError)
    }

    /// The most arguments one request may claim (Redis allows up to INT_MAX; 1,048,576 is plenty).
    static let maxArgumentCount = 1 << 20

    /// The longest bulk string accepted (Redis's `proto-max-bulk-len`).
    let maxBulkBytes: Int
    /// The most bytes one incomplete request may hold buffered (Redis's `client-query-buffer-limit`).
    let maxRequestBytes: Int
    /// Bulks up to this length pass every limit, authenticated or not: min(16 KiB, maxBulkBytes).
    private let smallBulkBytes: Int

    private enum State {
        /// Expecting `*` at `cursor`.
        case array
        /// Expecting `$` at `cursor`, `remaining` arguments still to come.
        case bulkHeader(remaining: Int)
        /// Expecting `length` bytes and CRLF at `cursor`.
        case bulkData(length: Int, remaining: Int)
        /// A request was handed out; it is consumed on the next call.
        case complete
    }

    // Invariant: 0 <= requestStart <= cursor <= buffer.count. Bytes before requestStart belong to
    // requests already answered; requestStart..<cursor is the parsed part of the current one, and
    // every range in `arguments` lies inside it.
    private var buffer: [UInt8] = []
    private var requestStart = 0
    private var cursor = 0
    private var state = State.array
    private var arguments: [Range<Int>] = []
    /// How many bytes after `cursor` an incomplete inline request has been searched for its LF.
    private var inlineSearched = 0
    /// Until it says the connection authenticated, Redis's unauthenticated limits apply: at most
    /// 10 arguments, bulks of at most 16 KiB. Read only when a claim passes those limits.
    /// Unowned: the session's client state owns it and outlives the parser (both live in the
    /// session), and the parser stays a trivially copyable value.
    private unowned(unsafe) var authentication: AuthenticationState?

    /// The room left under the memory limit, asked only for bulks over 16 KiB (nil: no limit).
    private var memoryRoom: MemoryRoom?

    /// Refuses bulks announced longer than `room` says is left.
    mutating func attach(_ room: MemoryRoom?) { self.memoryRoom = room }

    /// Applies the unauthenticated limits until `authentication` is set.
    mutating func attach(_ authentication: AuthenticationState) { self.authentication = authentication }

    init(maxBulkBytes: Int, maxRequestBytes: Int) {
        precondition(maxBulkBytes >= 0 && maxRequestBytes > 0)
        self.maxBulkBytes = maxBulkBytes
        self.maxRequestBytes = maxRequestBytes
        self.smallBulkBytes = min(16384, maxBulkBytes)
    }

    /// Bytes received and not yet handed out as part of a request.
    var bufferedByteCount: Int {
        if case .complete = self.state { return self.buffer.count - self.cursor }
        return self.buffer.count - self.requestStart
    }

    /// The input buffer's capacity (tests check that claims reserve nothing).
    var capacity: Int { self.buffer.capacity }

    /// Appends received bytes, first dropping the bytes of answered requests.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        self.compact()
        let count = self.buffer.count + bytes.count
        if count > self.buffer.capacity, case .bulkData(let length, _) = self.state {
            // A large bulk arriving: grow to exactly what it needs once that is within the doubling
            // the append would do anyway (never more than twice what has arrived), so the buffer
            // ends without slack and without one more copy.
            let needed = self.cursor + length + 2
            if needed >= count && needed <= 2 * count { self.buffer.reserveCapacity(needed) }
        }
        self.buffer.append(contentsOf: bytes)
    }

    /// Gives back large buffers once everything received has been answered, so an idle
    /// connection costs at most `retainedCapacity` bytes; a small buffer is kept for the next read.
    mutating func releaseIfIdle() {
        self.consumeCompleted()
        guard case .array = self.state, self.requestStart == self.buffer.count else { return }
        self.compact()
        if self.arguments.capacity > 1024 { self.arguments = [] }
    }

    /// Input buffer capacity kept across requests.
    static let retainedCapacity = 4096

    /// Drops the bytes of answered requests, moving the current one to the front.
    private mutating func compact() {
        self.consumeCompleted()
        guard self.requestStart > 0 else { return }
        let shift = self.requestStart
        if shift == self.buffer.count {
            if self.buffer.capacity > Self.retainedCapacity {
                self.buffer = []
            } else {
                self.buffer.removeAll(keepingCapacity: true)
            }
        } else {
            self.buffer.removeFirst(shift)
        }
        self.cursor -= shift
        self.requestStart = 0
        for i in self.arguments.indices {
            self.arguments[i] = (self.arguments[i].lowerBound - shift)..<(self.arguments[i].upperBound - shift)
        }
    }

    /// The next complete request, parsing on from where the last call stopped. Its arguments
    /// are slices of the buffer, valid until the next call to ``next()`` or ``append(_:)``.
    mutating func next() -> Framed<ArgumentVector> {
        switch self.step() {
        case .command: .request(ArgumentVector(bytes: self.buffer[...], ranges: self.arguments))
        case .needMoreData: .needMoreData
        case .protocolError(let error): .failed(.protocolError(error))
        }
    }

    private mutating func step() -> Step {
        self.consumeCompleted()
        assert(0 <= self.requestStart && self.requestStart <= self.cursor && self.cursor <= self.buffer.count)
        while true {
            switch self.state {
            case .complete:
                preconditionFailure("consumed above")
            case .array:
                guard self.cursor < self.buffer.count else { return self.waitForMore() }
                if self.parseWhole() {
                    self.state = .complete
                    return .command
                }
                let first = self.buffer[self.cursor]
                if first != UInt8(ascii: "*") {
                    // Redis decides per request: anything else is an inline request, one line.
                    switch self.parseInline() {
                    case nil: continue
                    case .needMoreData: return self.waitForMore()
                    case let step?: return step
                    }
                }
                switch self.parseLength(at: self.cursor + 1) {
                case .needMoreData: return self.waitForMore()
                case .invalid: return .protocolError(.invalidMultibulkLength)
                case .length(let count, let next):
                    if count > 10 {  // one comparison on the common path; both limits behind it
                        guard count <= Self.maxArgumentCount else { return .protocolError(.invalidMultibulkLength) }
                        if let authentication = self.authentication, !authentication.isAuthenticated {
                            return .protocolError(.unauthenticatedMultibulkLength)
                        }
                    }
                    self.cursor = next
                    if count <= 0 {
                        // `*0` and `*-1` carry no command; Redis skips them without a reply.
                        self.requestStart = next
                    } else {
                        self.state = .bulkHeader(remaining: count)
                    }
                }
            case .bulkHeader(let remaining):
                if remaining == 0 {
                    self.state = .complete
                    return .command
                }
                guard self.cursor < self.buffer.count else { return self.waitForMore() }
                let first = self.buffer[self.cursor]
                guard first == UInt8(ascii: "$") else { return .protocolError(.expectedBulk(got: first)) }
                switch self.parseLength(at: self.cursor + 1) {
                case .needMoreData: return self.waitForMore()
                case .invalid: return .protocolError(.invalidBulkLength)
                case .length(let length, let next):
                    guard length >= 0 else { return .protocolError(.invalidBulkLength) }
                    if length > self.smallBulkBytes {  // one comparison on the common path, both limits behind it
                        guard length <= self.maxBulkBytes else { return .protocolError(.invalidBulkLength) }
                        if length > 16384, let authentication = self.authentication, !authentication.isAuthenticated {
                            return .protocolError(.unauthenticatedBulkLength)
                        }
                        if let room = self.memoryRoom, length > room.bytesLeft() {
                            return .protocolError(.bulkPastMemoryLimit)
                        }
                    }
                    self.cursor = next
                    self.state = .bulkData(length: length, remaining: remaining)
                }
            case .bulkData(let length, let remaining):
                // Only the terminator is inspected: data bytes are never scanned.
                let available = self.buffer.count - self.cursor
                let end = self.cursor + length
                if available > length && self.buffer[end] != ASCII.cr {
                    return .protocolError(.missingBulkTerminator)
                }
                if available > length + 1 && self.buffer[end + 1] != ASCII.lf {
                    return .protocolError(.missingBulkTerminator)
                }
                guard available >= length + 2 else { return self.waitForMore() }
                self.arguments.append(self.cursor..<end)
                self.cursor = end + 2
                self.state = .bulkHeader(remaining: remaining - 1)
            }
        }
    }

    /// The common case in one pass: a whole multibulk request of at most 10 arguments, each at most
    /// ``smallBulkBytes`` long (so that no limit needs asking), already buffered at `cursor`. Its
    /// arguments are recorded and `cursor` moves past it. Anything else (a request not all here, an
    /// inline one, one past a limit, a malformed one) returns false having changed nothing: the
    /// state machine below takes it from the start, byte by byte as it arrives, with every check.
    private mutating func parseWhole() -> Bool {
        let start = self.cursor
        let limit = self.smallBulkBytes
        let parsed = self.buffer.withUnsafeBufferPointer { buffer -> Int in
            let bytes = buffer.baseAddress!
            let end = buffer.count
            // `*` and 1 to 10 arguments: one digit, or `10`.
            guard end - start >= 4, bytes[start] == UInt8(ascii: "*") else { return -1 }
            var at = start + 1
            var count = Int(bytes[at] &- ASCII.zero)
            guard count >= 1 && count <= 9 else { return -1 }
            at += 1
            if bytes[at] == ASCII.zero && count == 1 {
                count = 10
                at += 1
            }
            guard at + 1 < end, bytes[at] == ASCII.cr, bytes[at + 1] == ASCII.lf else { return -1 }
            at += 2
            for _ in 0..<count {
                // `$`, 1 to 5 digits without a leading zero (0 itself allowed), CRLF, the bytes, CRLF.
                guard at + 3 < end, bytes[at] == UInt8(ascii: "$") else { return -1 }
                at += 1
                var length = 0
                var digits = 0
                while at < end {
                    let digit = bytes[at] &- ASCII.zero
                    guard digit <= 9 else { break }
                    length = length &* 10 &+ Int(digit)
                    digits += 1
                    at += 1
                }
                guard digits >= 1 && digits <= 5 && length <= limit, at + 1 < end, bytes[at] == ASCII.cr,
                    bytes[at + 1] == ASCII.lf
                else { return -1 }
                at += 2
                let dataEnd = at + length
                guard dataEnd + 1 < end, bytes[dataEnd] == ASCII.cr, bytes[dataEnd + 1] == ASCII.lf else { return -1 }
                self.arguments.append(at..<dataEnd)
                at = dataEnd + 2
            }
            return at
        }
        guard parsed >= 0 else {
            if !self.arguments.isEmpty { self.arguments.removeAll(keepingCapacity: true) }
            return false
        }
        self.cursor = parsed
        return true
    }

    /// One inline request at `cursor`: its words become the request's arguments. An empty line
    /// (or one of blanks) is a request with no words, which Redis skips without a reply;
    /// `redis-cli --pipe` sends one before its closing ECHO. Returns nil after skipping such a
    /// line (the caller's loop goes on).
    private mutating func parseInline() -> Step? {
        let count = self.buffer.count
        // Redis finds the end of the line with strchr: a NUL before the LF hides the LF, and the
        // request waits for more bytes until it is too big.
        // The bytes already searched are not searched again, so a line arriving a byte at a time
        // costs constant time per byte.
        let found = self.buffer[(self.cursor + self.inlineSearched)...].firstIndex { $0 == ASCII.lf || $0 == 0 }
        guard let newline = found, self.buffer[newline] == ASCII.lf else {
            if count - self.cursor > InlineRequest.maxLineBytes { return .protocolError(.inlineTooBig) }
            self.inlineSearched = (found ?? count) - self.cursor
            return .needMoreData
        }
        self.inlineSearched = 0
        var end = newline
        if end > self.cursor && self.buffer[end - 1] == ASCII.cr { end -= 1 }
        let start = self.cursor
        let balanced = self.buffer.withUnsafeMutableBufferPointer { bytes in
            InlineRequest.split(bytes, from: start, to: end, into: &self.arguments)
        }
        guard balanced else {
            self.arguments.removeAll(keepingCapacity: true)
            return .protocolError(.unbalancedQuotes)
        }
        self.cursor = newline + 1
        if self.arguments.isEmpty {
            self.requestStart = self.cursor
            return nil
        }
        self.state = .complete
        return .command
    }

    private mutating func consumeCompleted() {
        if case .complete = self.state {
            self.requestStart = self.cursor
            self.arguments.removeAll(keepingCapacity: true)
            self.state = .array
        }
    }

    private func waitForMore() -> Step {
        self.buffer.count - self.requestStart > self.maxRequestBytes ? .protocolError(.requestTooLarge) : .needMoreData
    }

    private enum Length {
        case length(Int, next: Int)
        case needMoreData
        case invalid
    }

    /// Parses `[-]digits\r\n` at `start`. Fails as soon as a byte cannot belong to a length, so a
    /// header never grows past 21 bytes and garbage is refused without waiting for a CRLF.
    private func parseLength(at start: Int) -> Length {
        // Through one unsafe view: four length headers a SET, each byte checked against the
        // buffer's bounds and the array's storage reloaded per access was a cost on every header.
        self.buffer.withUnsafeBufferPointer { bytes in
            let end = bytes.count
            var i = start
            var negative = false
            if i < end && bytes[i] == ASCII.minus {
                negative = true
                i += 1
            }
            var value = 0
            var digits = 0
            while i < end {
                let byte = bytes[i]
                if byte >= ASCII.zero && byte <= ASCII.nine {
                    // 18 digits cannot overflow Int; anything longer exceeds every limit anyway.
                    guard digits < 18 else { return .invalid }
                    value = value &* 10 &+ Int(byte &- ASCII.zero)
                    digits += 1
                    i += 1
                } else if byte == ASCII.cr {
                    guard digits > 0 else { return .invalid }
                    guard i + 1 < end else { return .needMoreData }
                    guard bytes[i + 1] == ASCII.lf else { return .invalid }
                    return .length(negative ? -value : value, next: i + 2)
                } else {
                    return .invalid
                }
            }
            return .needMoreData
        }
    }
}
