// Errors the store reports: environment failures (tier 2 in docs/architecture.md "Errors"), each a one-line description naming
// what failed, the path, and the kernel's errno text. Programmer errors trap instead and never appear here.

import Glibc

/// An errno value captured right after a failing call, before anything else could overwrite it.
public struct Errno: Error, Sendable, Hashable, CustomStringConvertible {
    /// The raw `errno` code, e.g. `ENOSPC`.
    public let code: CInt

    public init(_ code: CInt) {
        self.code = code
    }

    /// `strerror(3)` text, e.g. "No space left on device". glibc returns a pointer into its constant
    /// message table for known codes, so calling it from the compaction thread is safe.
    public var description: String {
        String(cString: strerror(self.code))
    }
}

/// A failed store operation: a log write, an fsync, a snapshot that does not parse, a corrupt log.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done, e.g. `"write"`, `"fdatasync"`, `"corrupt log record"`.
    public var operation: String
    /// The file or directory concerned.
    public var path: String
    /// The errno of the failing call, when a syscall failed.
    public var errno: Errno?
    /// Extra context (a line number, a byte offset), when there is some.
    public var detail: String?

    public init(operation: String, path: String, errno: Errno? = nil, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    /// One line: `<operation> <path>[: <detail>][: <strerror> (errno N)]`.
    public var description: String {
        var text = "\(self.operation) \(self.path)"
        if let detail = self.detail {
            text += ": \(detail)"
        }
        if let errno = self.errno {
            text += ": \(errno) (errno \(errno.code))"
        }
        return text
    }
}
