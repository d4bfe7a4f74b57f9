// Serving files from one directory without ever leaving it: the kernel resolves every path
// beneath the root (openat2 RESOLVE_BENEATH), and an open file travels to a connection's output
// by reference (Reactor's OpenFile), to be sent with sendfile(2). The file service's
// (FileStream.swift) view of the file system: a root, open regular files with their size, and
// directory entries.

import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A directory files are served from. Nothing outside it can be opened through it: absolute
/// paths, `..` and symlinks that lead out are refused by the kernel (`EXDEV`), however spelled.
/// Any thread; the descriptor is closed when the root is released.
final class FileRoot {
    let descriptor: CInt

    /// Opens the directory at `path`, creating it (mode 0755) if it is missing.
    /// - Throws: ``IOError`` from `mkdir` or `open` (e.g. `ENOTDIR` when it is a file).
    init(path: String) throws(IOError) {
        try Sys.mkdirUnlessExists(path, mode: 0o755)
        self.descriptor = try Sys.openDirectory(path)
    }

    deinit { Sys.close(self.descriptor) }

    /// Opens a regular file beneath the root, read-only.
    /// - Parameter path: relative to the root; empty is the root itself.
    /// - Returns: the open file; queue it with ``Connection/write(file:offset:count:)``.
    /// - Throws: ``IOError``: `ENOENT`/`ENOTDIR` when missing, `EXDEV` (or `ELOOP`) when the path
    ///   leads outside the root, `EISDIR` for a directory, and `EPERM` (call `open (not a regular
    ///   file)`) for a device, FIFO or socket, which are never served.
    func open(_ path: [UInt8]) throws(IOError) -> OpenFile {
        let fd = try Sys.openBeneath(self.descriptor, path)
        let status: FileStatus
        do {
            status = try Sys.fstat(fd)
        } catch {
            Sys.close(fd)
            throw error
        }
        guard status.isRegular else {
            Sys.close(fd)
            if status.isDirectory { throw IOError(errno: EISDIR, call: "open") }
            throw IOError(errno: EPERM, call: "open (not a regular file)")
        }
        return OpenFile(adopting: fd, size: status.size)
    }

    /// Lists a directory beneath the root, sorted by name, without `.` and `..`. A symlink is
    /// described by its target; one whose target is gone or outside the root is left out.
    /// - Parameter path: relative to the root; empty is the root itself.
    /// - Throws: ``IOError`` as ``open(_:)`` does (`ENOTDIR` when `path` is not a directory).
    func list(_ path: [UInt8]) throws(IOError) -> [DirectoryEntry] {
        let entries = try Sys.listDirectory(try Sys.openBeneath(self.descriptor, path, directoryOnly: true))
        let prefix = path.isEmpty ? [] : path + [UInt8(ascii: "/")]
        return entries.filter { entry in
            guard entry.isSymlink else { return true }
            guard let fd = try? Sys.openBeneath(self.descriptor, prefix + entry.name) else { return false }
            Sys.close(fd)
            return true
        }
    }
}
