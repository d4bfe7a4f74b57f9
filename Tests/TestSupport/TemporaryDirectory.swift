// A temporary directory that removes itself (with everything in it) when the last reference
// goes, so a test holds one for its scope and never writes `defer { remove() }`.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temp dir (mkdtemp), removed with its contents on deinit
/// (or earlier by ``remove()``).
package final class TemporaryDirectory {
    package let path: String

    package init(_ prefix: String = "reactord-kv") throws {
        // No doubled slash: tests compare this path with what /proc reports for open files.
        let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestFailure("mkdtemp failed: errno \(errno)")
        }
        self.path = String(cString: made)
    }

    /// The path of `name` inside the directory.
    package func file(_ name: String) -> String { "\(self.path)/\(name)" }

    package func remove() { try? FileManager.default.removeItem(atPath: self.path) }

    deinit { self.remove() }
}

/// Runs `body` with the path of a fresh temporary directory, removed afterwards with everything in it.
package func withTemporaryDirectory<T>(_ prefix: String = "store-tests", _ body: (String) throws -> T) throws -> T {
    let directory = try TemporaryDirectory(prefix)
    return try withExtendedLifetime(directory) { try body(directory.path) }
}

/// The size of a file, or nil if it does not exist.
package func fileSize(_ path: String) -> Int? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int(st.st_size)
}
