// The echo protocol as a state machine: each line goes back exactly as received, terminator
// included (CRLF stays CRLF, empty lines too); the line `:exit` closes without a reply. No
// sockets here: the caller feeds bytes and writes out what is appended to `output`.

/// The echo service's per-connection state.
public struct EchoService {
    private var framer: LineFramer

    public init(maxLineBytes: Int = 65536) {
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
    }

    /// Buffers received bytes.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        self.framer.append(bytes)
    }

    /// Echoes every complete buffered line, stopping at `outputLimit` bytes of output.
    public mutating func process(output: inout [UInt8], outputLimit: Int) -> ProcessResult {
        while output.count < outputLimit {
            switch self.framer.next() {
            case .needMoreData:
                self.framer.releaseIfEmpty()
                return .needMoreData
            case .tooLong:
                output.append(contentsOf: Self.lineTooLong)
                return .close
            case .line(let line):
                if line.content.elementsEqual(Self.exitCommand) { return .close }
                output.append(contentsOf: line.raw)
            }
        }
        return .outputFull
    }

    /// The peer stopped sending: a last line without its terminator is echoed as it is.
    public mutating func finishInput(output: inout [UInt8]) {
        guard self.framer.bufferedByteCount > 0 else { return }
        self.framer.append(contentsOf: [UInt8(ascii: "\n")])
        if case .line(let line) = self.framer.next(), !line.content.elementsEqual(Self.exitCommand) {
            output.append(contentsOf: line.raw.dropLast())
        }
    }

    static let exitCommand: [UInt8] = Array(":exit".utf8)
    static let lineTooLong: [UInt8] = Array("ERR line too long\n".utf8)
}
