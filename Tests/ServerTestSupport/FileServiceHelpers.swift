// The file service's test helpers, shared with the reactor-cli tests: files written into a
// temporary directory (a 1 MiB checkable pattern among them), a file-service client that reads
// lines and exact byte counts, and the local port of a connected socket.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// File-making helpers for the file service tests.
extension TemporaryDirectory {
    package func url(_ name: String) -> String { self.path + "/" + name }

    /// Writes `bytes` to `name` (relative), creating parent directories.
    package func write(_ name: String, _ bytes: [UInt8]) throws {
        let full = self.url(name)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(bytes)) else { throw TestFailure("cannot write \(full)") }
    }

    package func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(atPath: self.url(name), withIntermediateDirectories: true)
    }

    package func symlink(_ name: String, to target: String) throws {
        guard Glibc.symlink(target, self.url(name)) == 0 else { throw TestFailure("symlink \(name): errno \(errno)") }
    }

    /// Writes `count` bytes of a repeating 1 MiB pattern (fast, and every block is checkable).
    package func writePattern(_ name: String, count: Int) throws {
        let fd = open(self.url(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(name): errno \(errno)") }
        defer { Glibc.close(fd) }
        let block = patternBlock
        var written = 0
        while written < count {
            let n = block.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, min($0.count, count - written)) }
            guard n > 0 else { throw TestFailure("write \(name): errno \(errno)") }
            written += n
        }
    }

}

/// 1 MiB of a pattern that differs at every offset within the block (so a shifted or repeated
/// chunk shows), repeated by ``TemporaryDirectory/writePattern(_:count:)``.
package let patternBlock: [UInt8] = (0..<(1 << 20)).map { i in UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8 &+ i >> 16) }

package func randomBytes(_ count: Int) -> [UInt8] {
    var g = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
}

/// A file-service client: lines and exact byte counts over one ``TestClient``.
package final class FileClient {
    package let client: TestClient
    package var pending: [UInt8] = []

    package init(port: Int) throws { self.client = try TestClient(port: port) }

    package func send(_ text: String) throws { try self.client.send(text) }
    package func send(_ bytes: [UInt8]) throws { try self.client.send(bytes) }

    /// The next line without its terminator, or nil at EOF or the deadline.
    package func line(deadline: ContinuousClock.Instant = .now + .seconds(10)) -> String? {
        self.client.nextLine(&self.pending, deadline: deadline)
    }

    /// Exactly `count` bytes (fewer at EOF or the deadline).
    package func bytes(_ count: Int, deadline: ContinuousClock.Instant = .now + .seconds(20)) -> [UInt8] {
        while self.pending.count < count {
            guard let chunk = self.client.readSome(max: max(65536, min(1 << 20, count - self.pending.count))) else {
                guard pollFor(self.client.fd, events: Int16(POLLIN), until: deadline) else { break }
                continue
            }
            if chunk.isEmpty { break }
            self.pending += chunk
        }
        let taken = Array(self.pending.prefix(count))
        self.pending.removeFirst(taken.count)
        return taken
    }

    /// `get` → the `OK <n>` body, or the error line.
    package func get(_ request: String) throws -> Result<[UInt8], FileReplyError> {
        try self.send(request + "\n")
        return self.readGetReply()
    }

    package func readGetReply() -> Result<[UInt8], FileReplyError> {
        guard let header = self.line() else { return .failure(FileReplyError(line: "<no reply>")) }
        guard header.hasPrefix("OK "), let n = Int(header.dropFirst(3)) else { return .failure(FileReplyError(line: header)) }
        return .success(self.bytes(n))
    }

    /// `list` → the entry lines, or the error line.
    package func list(_ request: String = "list") throws -> Result<[String], FileReplyError> {
        try self.send(request + "\n")
        guard let header = self.line() else { return .failure(FileReplyError(line: "<no reply>")) }
        guard header.hasPrefix("OK "), let n = Int(header.dropFirst(3)) else { return .failure(FileReplyError(line: header)) }
        return .success((0..<n).compactMap { _ in self.line() })
    }

    /// True if the peer ends the stream (EOF or reset) before the deadline with nothing more.
    package func endsWithoutMore(deadline: ContinuousClock.Instant = .now + .seconds(5)) -> Bool {
        let rest = self.client.read(deadline: deadline)
        return rest.eof && rest.bytes.isEmpty && self.pending.isEmpty
    }
}

/// Whether a reply is `OK` with exactly `expected`; a Bool, so a failure does not print megabytes.
package func bodyMatches(_ reply: Result<[UInt8], FileReplyError>, _ expected: [UInt8]) -> Bool {
    guard case .success(let body) = reply else { return false }
    return body == expected
}

package struct FileReplyError: Error, Equatable, CustomStringConvertible {
    package let line: String
    package init(line: String) { self.line = line }
    package var description: String { self.line }
}

/// The ephemeral local port of a connected socket.
package func localPort(_ fd: CInt) -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
