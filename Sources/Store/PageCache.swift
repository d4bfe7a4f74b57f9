// Kernel work of the compaction thread, divided so that it never keeps the loop's core for long.
// That thread runs under SCHED_IDLE, yet the scheduler now and then runs it while the loop thread
// waits for the same core, until the next timer tick (CPUYield.swift); a system call it is in then
// runs on for as long as that. Two kinds of call are long. An fsync of tens of MiB written without
// a sync spends milliseconds of CPU submitting the writeback before it sleeps on the disk, with the
// loop waiting (seen with `perf record -a -e sched:sched_switch` during a growth run; the figure is
// in Benchmarks/README.md, where it is kept current). And the call that drops a large file's last reference (unlinking a 64 MiB
// log segment, closing the database.txt a rename replaced) frees every cached page of it at once.
// Here both are done a piece at a time with a sched_yield(2) between pieces: the writeback is
// started in 4 MiB ranges as the file is written or before the sync (sync_file_range(2)), and
// the cache is dropped in 4 MiB ranges before the last reference goes (posix_fadvise(2)). With
// nobody waiting for the core, the yields return at once; the fsync that follows still makes
// everything durable, and reports any error the hints met.

#if canImport(Glibc)
import Glibc
#endif

enum PageCache {
    /// The largest range handed to the kernel in one call.
    static let pieceBytes = 4 << 20

    /// Starts writing back bytes `start..<end` of `fd`, a piece at a time.
    static func startWriteback(_ fd: CInt, from start: Int, to end: Int, io: StoreIO) {
        Self.inPieces(from: start, to: end) { offset, count in io.startWriteback(fd, offset, count) }
    }

    /// Drops the cached pages of the whole file open as `fd`, a piece at a time.
    static func drop(_ fd: CInt, io: StoreIO) {
        Self.inPieces(from: 0, to: (try? io.fileSize(fd)) ?? 0) { offset, count in io.dropCache(fd, offset, count) }
    }

    /// Drops the cached pages of the file at `path`, then unlinks it. The file's data must be on
    /// disk or no longer needed (dropping dirty pages writes them first).
    static func dropAndUnlink(_ path: String, io: StoreIO) throws(Errno) {
        if let fd = try? io.open(path, O_RDONLY, 0) {
            Self.drop(fd, io: io)
            io.close(fd)
        }
        try io.unlink(path)
    }

    /// Calls `body` with each piece of `start..<end` (offset, count), yielding the CPU after each.
    private static func inPieces(from start: Int, to end: Int, _ body: (Int, Int) -> Void) {
        var offset = start
        while offset < end {
            let count = min(Self.pieceBytes, end - offset)
            body(offset, count)
            offset += count
            sched_yield()
        }
    }

    /// Tracks how much of a file being written has had its writeback started, and starts it
    /// whenever another ``pieceBytes`` have been written.
    struct WriteBehind {
        private var written = 0
        private var started = 0

        mutating func wrote(_ count: Int, to fd: CInt, io: StoreIO) {
            self.written += count
            if self.written - self.started >= PageCache.pieceBytes {
                PageCache.startWriteback(fd, from: self.started, to: self.written, io: io)
                self.started = self.written
            }
        }
    }
}
