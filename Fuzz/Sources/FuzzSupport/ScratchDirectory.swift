// A fresh directory per fuzz input for the targets that go through files (recovery, snapshot,
// the kv command path's store), in /dev/shm when there is one so that no input waits on a disk.

import Glibc

/// A temporary directory, removed with its files by ``remove()``.
public struct ScratchDirectory {
    public let path: String

    /// Creates an empty directory. Traps if it cannot: a fuzz run without a writable temporary
    /// directory has nothing to test.
    public init() {
        var isDirectory = stat()
        let base = stat("/dev/shm", &isDirectory) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(base)/reactord-fuzz-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("mkdtemp in \(base) failed: errno \(errno)")
        }
        self.path = String(cString: made)
    }

    /// `name` inside the directory.
    public func file(_ name: String) -> String { self.path + "/" + name }

    /// Writes `bytes` to `name` (created or truncated).
    public func write(_ bytes: UnsafeRawBufferPointer, to name: String) {
        let fd = open(self.file(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "open \(self.file(name)): errno \(errno)")
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            precondition(n > 0 || errno == EINTR, "write \(self.file(name)): errno \(errno)")
            if n > 0 { offset += n }
        }
    }

    /// The whole content of `name`, or nil when it does not exist.
    public func read(_ name: String) -> [UInt8]? {
        let fd = open(self.file(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return result }
            result += chunk[0..<n]
        }
    }

    /// Removes every file in the directory, then the directory (it holds no subdirectories).
    public func remove() {
        if let dir = opendir(self.path) {
            while let entry = readdir(dir) {
                // The name in place, up to its NUL: copying the whole 256-byte d_name field can
                // read past the end of the directory buffer for the last, short entry.
                let name = String(cString: (UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \.d_name)!)
                    .assumingMemoryBound(to: CChar.self))
                if name != "." && name != ".." { unlink(self.file(name)) }
            }
            closedir(dir)
        }
        rmdir(self.path)
    }
}
