// The server's own system calls, in one place (the reactor has its own for sockets, epoll and
// clocks: Sources/Reactor/Syscalls.swift): for the file service, opening beneath a root with the
// kernel's help (openat2 RESOLVE_BENEATH), stat and directory listing. The reactor's errno
// policy: errno is read right after the call, EINTR is retried (except by close), and a failure
// throws an IOError naming the call.

import CLinux
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// What `fstat` says about an open file.
struct FileStatus: Sendable {
    let size: Int
    let isDirectory: Bool
    let isRegular: Bool
}

/// One entry of a directory listed with ``FileRoot/list(_:)``.
struct DirectoryEntry: Sendable {
    /// The entry's name, as the file system spells it (not necessarily UTF-8).
    let name: [UInt8]
    /// Whether it is a directory (for a symlink: whether its target is).
    let isDirectory: Bool
    /// Its size in bytes (for a symlink: its target's).
    let size: Int
    /// The entry is a symbolic link; `isDirectory` and `size` describe its target. A caller
    /// that confines paths to a root must check where it leads before showing it.
    let isSymlink: Bool
}

/// The system calls, named as in their man pages. Descriptors are plain numbers here: each is
/// owned by one object that closes it (FileRoot, Reactor's OpenFile).
enum Sys {
    @inline(__always)
    static func check<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(IOError) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw IOError(errno: err, call: call)
        }
    }

    /// close(2). Never retried, even on EINTR: on Linux the descriptor is released either way.
    static func close(_ fd: CInt) {
        let r = Glibc.close(fd)
        precondition(r == 0 || Glibc.errno != EBADF, "close(\(fd)): EBADF, descriptor closed twice")
    }

    /// mkdir(2). An existing entry of that name is not an error (opening it says what it is).
    static func mkdirUnlessExists(_ path: String, mode: mode_t) throws(IOError) {
        if Glibc.mkdir(path, mode) == 0 { return }
        let err = Glibc.errno
        if err != EEXIST { throw IOError(errno: err, call: "mkdir") }
    }

    /// open(2) of a directory, read-only, close-on-exec.
    static func openDirectory(_ path: String) throws(IOError) -> CInt {
        try check("open") { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }

    /// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: the kernel refuses (EXDEV) any
    /// resolution that leaves `directory`, through `..` or a symlink, however it is spelled.
    static func openBeneath(_ directory: CInt, _ path: [UInt8], directoryOnly: Bool = false) throws(IOError) -> CInt {
        var how = open_how()
        // O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a writer
        // and stall the whole loop; for regular files and directories it changes nothing.
        how.flags = UInt64(O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (directoryOnly ? O_DIRECTORY : 0))
        how.resolve = UInt64(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        let cPath = path.isEmpty ? Array(".".utf8CString) : path.map { CChar(bitPattern: $0) } + [0]
        let fd = try check("openat2") {
            cPath.withUnsafeBufferPointer { p in
                withUnsafeMutablePointer(to: &how) { h in
                    CLinux.reactord_syscall4(Int(SYS_openat2), Int(directory), p.baseAddress!, h, UInt(MemoryLayout<open_how>.size))
                }
            }
        }
        return CInt(fd)
    }

    /// fstat(2).
    static func fstat(_ fd: CInt) throws(IOError) -> FileStatus {
        var st = stat()
        _ = try check("fstat") { Glibc.fstat(fd, &st) }
        let type = st.st_mode & S_IFMT
        return FileStatus(size: Int(st.st_size), isDirectory: type == S_IFDIR, isRegular: type == S_IFREG)
    }

    /// Lists a directory opened with ``openBeneath(_:_:directoryOnly:)``, which it consumes
    /// (closes). Entries are sorted by name; `.` and `..` are left out; a symlink is described
    /// by what it points to, or skipped if that is gone.
    static func listDirectory(_ fd: CInt) throws(IOError) -> [DirectoryEntry] {
        guard let dir = fdopendir(fd) else {
            let err = Glibc.errno
            Sys.close(fd)
            throw IOError(errno: err, call: "fdopendir")
        }
        defer { closedir(dir) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(dir) {
            let name: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [46] || name == [46, 46] { continue }
            let cName = name.map { CChar(bitPattern: $0) } + [0]
            var st = stat()
            guard fstatat(dirfd(dir), cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            let isSymlink = st.st_mode & S_IFMT == S_IFLNK
            if isSymlink && fstatat(dirfd(dir), cName, &st, 0) != 0 { continue }  // dangling
            let type = st.st_mode & S_IFMT
            entries.append(DirectoryEntry(name: name, isDirectory: type == S_IFDIR, size: Int(st.st_size), isSymlink: isSymlink))
        }
        entries.sort { $0.name.lexicographicallyPrecedes($1.name) }
        return entries
    }
}
