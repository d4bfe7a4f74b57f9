// The file protocol's parsing and path rules, without touching a file: requests are turned into
// `FileRequest` values the wiring carries out (open beneath the root, sendfile, list). The path
// check here is the first fence; the kernel (openat2 RESOLVE_BENEATH) is the second.

import LineFraming

/// One parsed file-service request.
public enum FileRequest: Equatable, Sendable {
    /// Send `length` bytes (nil: to the end) of `path` from `offset`.
    case get(path: [UInt8], offset: Int, length: Int?)
    /// List `path` (empty: the root).
    case list(path: [UInt8])
    /// Say `Goodbye` and close.
    case bye
    /// Answer this error line (without `ERR ` and terminator).
    case error(String)
    /// The line was too long: answer and close.
    case lineTooLong
}

/// The file service's per-connection parser.
public struct FileService {
    private var framer: LineRequests

    /// - Parameter maxLineBytes: the longest request line, terminator not counted (`--max-line`).
    public init(maxLineBytes: Int = 65536) {
        self.framer = LineRequests(maxLineBytes: maxLineBytes)
    }

    /// Buffers received bytes.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        self.framer.append(bytes)
    }

    /// The next complete request, or nil when more bytes are needed. Empty lines are skipped.
    public mutating func nextRequest() -> FileRequest? {
        while true {
            switch self.framer.next() {
            case .needMoreData:
                self.framer.releaseIfIdle()
                return nil
            case .failed:
                return .lineTooLong
            case .request(let line):
                let words = WordScanner.split(line)
                guard let command = words.first else { continue }
                return Self.parse(command: command, arguments: words.dropFirst())
            }
        }
    }

    static func parse(command: ArraySlice<UInt8>, arguments: ArraySlice<ArraySlice<UInt8>>) -> FileRequest {
        if ASCII.equalsIgnoringCase(command, "get") {
            guard (1...3).contains(arguments.count) else { return .error("wrong number of arguments for 'get'") }
            let args = Array(arguments)
            if let problem = Self.pathProblem(args[0]) { return .error(problem) }
            var offset = 0
            var length: Int?
            if args.count >= 2 {
                guard let n = ASCII.parseNonNegative(args[1]) else { return .error("bad range") }
                offset = n
            }
            if args.count == 3 {
                guard let n = ASCII.parseNonNegative(args[2]) else { return .error("bad range") }
                length = n
            }
            return .get(path: Array(args[0]), offset: offset, length: length)
        }
        if ASCII.equalsIgnoringCase(command, "list") {
            guard arguments.count <= 1 else { return .error("wrong number of arguments for 'list'") }
            guard let path = arguments.first else { return .list(path: []) }
            if let problem = Self.pathProblem(path) { return .error(problem) }
            return .list(path: Array(path))
        }
        if ASCII.equalsIgnoringCase(command, "bye") {
            return arguments.isEmpty ? .bye : .error("wrong number of arguments for 'bye'")
        }
        return .error("unknown command '\(String(decoding: command, as: UTF8.self))'")
    }

    /// Why a path may not be served (`forbidden`), or nil. Absolute paths, `..` components and
    /// NUL bytes never reach the file system.
    public static func pathProblem(_ path: ArraySlice<UInt8>) -> String? {
        if path.first == UInt8(ascii: "/") || path.contains(0) { return "forbidden" }
        for component in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        where component.elementsEqual("..".utf8) {
            return "forbidden"
        }
        return nil
    }
}
