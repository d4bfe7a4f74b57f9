// Every syscall the store makes, as a struct of closures so tests can substitute failing ones (ENOSPC on
// write, EIO on fdatasync) and "crash" between compaction steps. The errno policy lives only here: errno
// is read in the statement right after the call, EINTR is retried inside, `close` is never retried.

import CLinux
import Glibc

/// A point between two steps of compaction, reported to ``StoreIO/compactionStep`` just after the step.
public enum CompactionStep: String, Sendable, CaseIterable {
    /// `database.wal` was renamed to a segment and a new empty `database.wal` opened (loop thread).
    case rotated
    /// The temporary snapshot file was written (compaction thread).
    case wroteTemporary
    /// The temporary snapshot file was fsynced (compaction thread).
    case syncedTemporary
    /// The temporary file was renamed over `database.txt` (compaction thread).
    case renamed
    /// The directory was fsynced, making the rename durable (compaction thread).
    case syncedDirectory
    /// The rotated segments were deleted (compaction thread).
    case deletedSegment
}

/// The store's window on the kernel. ``system`` makes the real calls; every closure may be called from the
/// loop thread or a compaction/sync thread, hence `@Sendable`.
public struct StoreIO: Sendable {
    /// open(2). Returns the descriptor.
    public var open: @Sendable (_ path: String, _ flags: CInt, _ mode: mode_t) throws(Errno) -> CInt
    /// close(2), never retried: after EINTR the descriptor is already gone on Linux, and a retry could close
    /// a descriptor another thread just opened. Errors are ignored: data that matters is fsynced first.
    public var close: @Sendable (_ fd: CInt) -> Void
    /// One read(2) into `buffer`. Returns the byte count, 0 at end of file.
    public var read: @Sendable (_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    /// One write(2). Returns the byte count, which may be short; callers loop.
    public var write: @Sendable (_ fd: CInt, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int
    /// pread(2): reads at `offset` without moving the file position. Returns the byte count (0 at EOF).
    public var pread: @Sendable (_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int) throws(Errno) -> Int
    /// fdatasync(2).
    public var fdatasync: @Sendable (_ fd: CInt) throws(Errno) -> Void
    /// fsync(2) (used on directories and the snapshot, whose size changes must reach the disk too).
    public var fsync: @Sendable (_ fd: CInt) throws(Errno) -> Void
    /// ftruncate(2).
    public var ftruncate: @Sendable (_ fd: CInt, _ length: Int) throws(Errno) -> Void
    /// fstat(2)'s `st_size`.
    public var fileSize: @Sendable (_ fd: CInt) throws(Errno) -> Int
    /// rename(2).
    public var rename: @Sendable (_ from: String, _ to: String) throws(Errno) -> Void
    /// unlink(2).
    public var unlink: @Sendable (_ path: String) throws(Errno) -> Void
    /// mkdir(2) of one directory.
    public var mkdir: @Sendable (_ path: String, _ mode: mode_t) throws(Errno) -> Void
    /// The entry names of a directory, without `.` and `..` (opendir/readdir).
    public var listDirectory: @Sendable (_ path: String) throws(Errno) -> [String]
    /// flock(2) with `LOCK_EX | LOCK_NB`: one store per data directory.
    public var lockExclusive: @Sendable (_ fd: CInt) throws(Errno) -> Void
    /// flock(2) with `LOCK_UN`, before the locked descriptor is closed: the lock belongs to the open
    /// file description, which a child process being spawned (fork to exec) may share for a moment;
    /// unlocking releases it for every copy, closing only for the last one. Failures are ignored.
    public var unlock: @Sendable (_ fd: CInt) -> Void
    /// Starts writing back the dirty pages of `count` bytes at `offset` (sync_file_range(2) with
    /// `SYNC_FILE_RANGE_WRITE`), without waiting for them. A hint: failures are ignored, the fsync
    /// that follows reports them.
    public var startWriteback: @Sendable (_ fd: CInt, _ offset: Int, _ count: Int) -> Void
    /// Drops the cached pages of `count` bytes at `offset` (posix_fadvise(2) `POSIX_FADV_DONTNEED`).
    /// A hint: failures are ignored.
    public var dropCache: @Sendable (_ fd: CInt, _ offset: Int, _ count: Int) -> Void
    /// Called after each step of compaction; tests throw from it to simulate a crash at that point.
    public var compactionStep: @Sendable (_ step: CompactionStep) throws(StoreError) -> Void

    public init(
        open: @escaping @Sendable (_ path: String, _ flags: CInt, _ mode: mode_t) throws(Errno) -> CInt,
        close: @escaping @Sendable (_ fd: CInt) -> Void,
        read: @escaping @Sendable (_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int,
        write: @escaping @Sendable (_ fd: CInt, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int,
        fdatasync: @escaping @Sendable (_ fd: CInt) throws(Errno) -> Void,
        fsync: @escaping @Sendable (_ fd: CInt) throws(Errno) -> Void,
        ftruncate: @escaping @Sendable (_ fd: CInt, _ length: Int) throws(Errno) -> Void,
        fileSize: @escaping @Sendable (_ fd: CInt) throws(Errno) -> Int,
        rename: @escaping @Sendable (_ from: String, _ to: String) throws(Errno) -> Void,
        unlink: @escaping @Sendable (_ path: String) throws(Errno) -> Void,
        mkdir: @escaping @Sendable (_ path: String, _ mode: mode_t) throws(Errno) -> Void,
        listDirectory: @escaping @Sendable (_ path: String) throws(Errno) -> [String],
        lockExclusive: @escaping @Sendable (_ fd: CInt) throws(Errno) -> Void,
        compactionStep: @escaping @Sendable (_ step: CompactionStep) throws(StoreError) -> Void,
        pread: @escaping @Sendable (_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int) throws(Errno) -> Int
            = StoreIO.systemPread,
        startWriteback: @escaping @Sendable (_ fd: CInt, _ offset: Int, _ count: Int) -> Void
            = StoreIO.systemStartWriteback,
        dropCache: @escaping @Sendable (_ fd: CInt, _ offset: Int, _ count: Int) -> Void = StoreIO.systemDropCache,
        unlock: @escaping @Sendable (_ fd: CInt) -> Void = StoreIO.systemUnlock
    ) {
        self.unlock = unlock
        self.pread = pread
        self.startWriteback = startWriteback
        self.dropCache = dropCache
        self.open = open
        self.close = close
        self.read = read
        self.write = write
        self.fdatasync = fdatasync
        self.fsync = fsync
        self.ftruncate = ftruncate
        self.fileSize = fileSize
        self.rename = rename
        self.unlink = unlink
        self.mkdir = mkdir
        self.listDirectory = listDirectory
        self.lockExclusive = lockExclusive
        self.compactionStep = compactionStep
    }

    /// The real flock(2) `LOCK_UN`.
    public static let systemUnlock: @Sendable (CInt) -> Void = { (fd: CInt) in
        let flockCall: (CInt, CInt) -> CInt = Glibc.flock(_:_:)
        _ = flockCall(fd, LOCK_UN)
    }

    /// The real pread(2), EINTR retried.
    public static let systemPread: @Sendable (CInt, UnsafeMutableRawBufferPointer, Int) throws(Errno) -> Int = {
        (fd: CInt, buffer: UnsafeMutableRawBufferPointer, offset: Int) throws(Errno) -> Int in
        while true {
            let n = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            let err = Glibc.errno
            if err != EINTR { throw Errno(err) }
        }
    }

    /// The real sync_file_range(2) with `SYNC_FILE_RANGE_WRITE` (2 in <linux/fs.h>).
    public static let systemStartWriteback: @Sendable (CInt, Int, Int) -> Void = { fd, offset, count in
        _ = CLinux.sync_file_range(fd, Int64(offset), Int64(count), 2)
    }

    /// The real posix_fadvise(2) with `POSIX_FADV_DONTNEED`.
    public static let systemDropCache: @Sendable (CInt, Int, Int) -> Void = { fd, offset, count in
        _ = Glibc.posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_DONTNEED)
    }

    /// The real syscalls.
    public static let system = StoreIO(
        open: { (path: String, flags: CInt, mode: mode_t) throws(Errno) -> CInt in
            while true {
                let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
                if fd >= 0 { return fd }
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        close: { (fd: CInt) in
            _ = Glibc.close(fd)
        },
        read: { (fd: CInt, buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int in
            while true {
                let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if n >= 0 { return n }
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        write: { (fd: CInt, bytes: UnsafeRawBufferPointer) throws(Errno) -> Int in
            while true {
                let n = Glibc.write(fd, bytes.baseAddress, bytes.count)
                if n >= 0 { return n }
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        fdatasync: { (fd: CInt) throws(Errno) in
            while Glibc.fdatasync(fd) != 0 {
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        fsync: { (fd: CInt) throws(Errno) in
            while Glibc.fsync(fd) != 0 {
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        ftruncate: { (fd: CInt, length: Int) throws(Errno) in
            while Glibc.ftruncate(fd, off_t(length)) != 0 {
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        fileSize: { (fd: CInt) throws(Errno) -> Int in
            var info = stat()
            if Glibc.fstat(fd, &info) != 0 {
                throw Errno(Glibc.errno)
            }
            return Int(info.st_size)
        },
        rename: { (from: String, to: String) throws(Errno) in
            if Glibc.rename(from, to) != 0 {
                throw Errno(Glibc.errno)
            }
        },
        unlink: { (path: String) throws(Errno) in
            if Glibc.unlink(path) != 0 {
                throw Errno(Glibc.errno)
            }
        },
        mkdir: { (path: String, mode: mode_t) throws(Errno) in
            if Glibc.mkdir(path, mode) != 0 {
                throw Errno(Glibc.errno)
            }
        },
        listDirectory: { (path: String) throws(Errno) -> [String] in
            guard let directory = Glibc.opendir(path) else {
                throw Errno(Glibc.errno)
            }
            defer { Glibc.closedir(directory) }
            var names: [String] = []
            while let entry = Glibc.readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." {
                    names.append(name)
                }
            }
            return names
        },
        lockExclusive: { (fd: CInt) throws(Errno) in
            // Glibc also imports `struct flock`; the annotated type picks the function.
            let flockCall: (CInt, CInt) -> CInt = Glibc.flock(_:_:)
            while flockCall(fd, LOCK_EX | LOCK_NB) != 0 {
                let err = Glibc.errno
                if err != EINTR { throw Errno(err) }
            }
        },
        compactionStep: { (_: CompactionStep) throws(StoreError) in }
    )
}
