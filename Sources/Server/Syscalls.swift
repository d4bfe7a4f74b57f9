// The server's own system calls, in one place (the reactor has its own for sockets, epoll and
// clocks: Sources/Reactor/Syscalls.swift; the store has StoreIO): for the file service, opening
// beneath a root with the kernel's help (openat2 RESOLVE_BENEATH), stat and directory listing;
// the process facts INFO and /metrics report; the sd_notify datagram; threads and their
// priority; signal dispositions. The reactor's errno policy: errno is read right after the
// call, EINTR is retried (except by close), and a failure throws an IOError naming the call
// (or, where the caller only logs it, comes back as the errno).

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

    // MARK: The process

    /// The wall clock (CLOCK_REALTIME): seconds and microseconds since the epoch.
    static func wallClock() -> (seconds: Int, microseconds: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int(ts.tv_sec), Int(ts.tv_nsec) / 1000)
    }

    /// getpid(2).
    static func processID() -> Int32 { getpid() }

    /// CPU time used, in microseconds (system, user): of the process, or of the calling thread
    /// (RUSAGE_THREAD, Linux's, not exported without _GNU_SOURCE). nil if getrusage fails.
    static func cpuMicroseconds(thread: Bool) -> (system: Int, user: Int)? {
        var usage = rusage()
        let who = thread ? __rusage_who_t(1) : __rusage_who_t(RUSAGE_SELF.rawValue)
        guard getrusage(who, &usage) == 0 else { return nil }
        return (Int(usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_stime.tv_usec),
                Int(usage.ru_utime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec))
    }

    /// sysconf(_SC_CLK_TCK) and sysconf(_SC_PAGESIZE): the units of /proc's figures.
    static func clockTicksAndPageSize() -> (ticksPerSecond: Int, pageBytes: Int) {
        (sysconf(CInt(_SC_CLK_TCK)), sysconf(CInt(_SC_PAGESIZE)))
    }

    /// Ignores `signal` (signal(2) with SIG_IGN), so a Dispatch signal source can take it.
    static func ignoreSignal(_ signal: CInt) { _ = Glibc.signal(signal, SIG_IGN) }

    /// SIGINT and SIGTERM, the signals a graceful stop answers.
    static let stopSignals: [CInt] = [SIGINT, SIGTERM]

    // MARK: Files read whole

    /// The whole of a small file (/proc's), read with open(2)/read(2). nil if it cannot be read.
    static func readWholeFile(_ path: String) -> [UInt8]? {
        guard let fd = try? check("open", { Glibc.open(path, O_RDONLY | O_CLOEXEC) }) else { return nil }
        defer { Sys.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            guard let n = try? check("read", { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }) else {
                return nil
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// The entries of a directory other than those starting with a dot, counted (opendir(3)).
    /// nil if it cannot be opened.
    static func countEntries(ofDirectory path: String) -> Int? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var entries = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { entries += 1 }
        }
        return entries
    }

    // MARK: Threads

    /// Runs `body` once on a new detached thread (pthread_create(3)). - Returns: false if none
    /// could be created.
    static func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            return false
        }
        return true
    }

    private final class ThreadBody {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// setpriority(2) of the calling thread (with 0 it names the calling thread on Linux, not the
    /// whole process). Failure is ignored: the thread runs at the priority it had.
    static func setThreadNiceness(_ niceness: Int32) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
    }

    /// sched_setscheduler(2) of the calling thread to `policy` (priority 0). - Returns: whether
    /// the kernel took it.
    static func setThreadSchedulingPolicy(_ policy: Int32) -> Bool {
        var parameters = sched_param(sched_priority: 0)
        return sched_setscheduler(0, policy, &parameters) == 0
    }

    // MARK: sd_notify

    /// A non-blocking, close-on-exec AF_UNIX datagram socket.
    static func unixDatagramSocket() throws(IOError) -> CInt {
        try check("socket") {
            socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
        }
    }

    /// sendto(2) of one datagram to an AF_UNIX address. Retries EINTR. - Returns: 0, or the
    /// errno of the failure.
    static func send(_ message: [UInt8], on fd: CInt, to address: sockaddr_un, length: socklen_t) -> CInt {
        var address = address
        while true {
            let n = message.withUnsafeBytes { bytes in
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            if n >= 0 { return 0 }
            let err = Glibc.errno
            if err != EINTR { return err }
        }
    }
}

extension SystemClock {
    /// CLOCK_REALTIME: seconds and microseconds since the Unix epoch (the server's dates: TIME,
    /// INFO, CLIENT LIST, the last save). The reactor's own clock is monotonic only.
    static func wallClock() -> (seconds: Int, microseconds: Int) { Sys.wallClock() }
}
