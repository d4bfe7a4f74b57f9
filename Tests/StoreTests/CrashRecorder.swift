// The crash-state explorer's recorder (after ALICE, OSDI '14, and CrashMonkey, OSDI '18): a StoreIO
// that makes the real calls in a real directory and logs, in order, every operation that changes what
// a power cut could leave on disk: each write with its bytes and offset, ftruncate, fsync/fdatasync
// of a file or of the directory, and the name operations (create, rename, unlink). The test driving
// the store adds marks between them: how far the store had acknowledged writes, and how far it had
// reported the log synced. CrashStates.swift turns a prefix of this log into the files a power cut
// could leave.

import Glibc
import Synchronization

@testable import Store

/// One entry of the recorded log.
enum RecordedOperation {
    /// A new file (inode) got the name `name` (open with O_CREAT of a name that did not exist).
    case create(inode: Int, name: String)
    case rename(from: String, to: String)
    case unlink(name: String)
    /// `bytes` written at `offset` of the file (an O_APPEND write lands at its size).
    case write(inode: Int, offset: Int, bytes: [UInt8])
    case truncate(inode: Int, length: Int)
    /// A successful fsync or fdatasync of a file: everything written to it is durable.
    case sync(inode: Int)
    /// An fsync or fdatasync that failed with EIO: the kernel may have written some of the dirty data
    /// and dropped the rest (marked clean, never written again).
    case failedSync(inode: Int)
    /// A successful fsync of the directory: every name operation before it is durable.
    case syncDirectory
    /// The store had acknowledged every mutation up to this sequence (``DurableStore/durableSequence``).
    case acknowledged(UInt64)
    /// The store had reported every mutation up to this sequence synced (``Journal/Sequences/synced``).
    case synced(UInt64)

    var changesDisk: Bool {
        switch self {
        case .acknowledged, .synced: false
        default: true
        }
    }
}

/// The recording StoreIO and what it saw. Every file the store makes lives directly in `directory`.
final class CrashRecorder: Sendable {
    struct Descriptor {
        /// nil: the data directory itself.
        var inode: Int?
        var position = 0
        var append = false
    }

    struct Recorded {
        var operations: [RecordedOperation] = []
        /// The names in the directory now, and the inode each names.
        var names: [String: Int] = [:]
        /// The size of each inode now, as the process sees it.
        var sizes: [Int: Int] = [:]
        var descriptors: [CInt: Descriptor] = [:]
        var nextInode = 1
        /// File syncs (fsync or fdatasync of a file, not of the directory) so far.
        var fileSyncs = 0
        /// The file sync with this number (1 the first) fails with EIO instead of running.
        var failingSync: Int?
    }

    let directory: String
    let recorded = Mutex(Recorded())

    init(directory: String) {
        self.directory = directory
    }

    var operations: [RecordedOperation] { self.recorded.withLock { $0.operations } }

    /// Makes the `number`th file sync from now fail with EIO (1: the next one).
    func failSync(after number: Int) {
        self.recorded.withLock { $0.failingSync = $0.fileSyncs + number }
    }

    func mark(_ operation: RecordedOperation) {
        self.recorded.withLock { $0.operations.append(operation) }
    }

    private func name(of path: String) -> String? {
        guard path.hasPrefix(self.directory + "/") else { return nil }
        return String(path.dropFirst(self.directory.count + 1))
    }

    var io: StoreIO {
        var io = StoreIO.system
        let system = StoreIO.system
        io.open = { (path: String, flags: CInt, mode: mode_t) throws(Errno) -> CInt in
            let fd = try system.open(path, flags, mode)
            self.recorded.withLock { state in
                guard let name = self.name(of: path) else {
                    state.descriptors[fd] = Descriptor(inode: nil)
                    return
                }
                let inode: Int
                if let existing = state.names[name] {
                    inode = existing
                    if flags & O_TRUNC != 0, state.sizes[inode, default: 0] > 0 {
                        state.operations.append(.truncate(inode: inode, length: 0))
                        state.sizes[inode] = 0
                    }
                } else {
                    precondition(flags & O_CREAT != 0, "open of \(name), which the recorder never saw made")
                    inode = state.nextInode
                    state.nextInode += 1
                    state.names[name] = inode
                    state.sizes[inode] = 0
                    state.operations.append(.create(inode: inode, name: name))
                }
                state.descriptors[fd] = Descriptor(inode: inode, append: flags & O_APPEND != 0)
            }
            return fd
        }
        io.close = { (fd: CInt) in
            self.recorded.withLock { _ = $0.descriptors.removeValue(forKey: fd) }
            system.close(fd)
        }
        io.write = { (fd: CInt, bytes: UnsafeRawBufferPointer) throws(Errno) -> Int in
            let written = try system.write(fd, bytes)
            self.recorded.withLock { state in
                guard var descriptor = state.descriptors[fd], let inode = descriptor.inode else { return }
                let offset = descriptor.append ? state.sizes[inode, default: 0] : descriptor.position
                state.operations.append(.write(inode: inode, offset: offset,
                                               bytes: [UInt8](UnsafeRawBufferPointer(rebasing: bytes[..<written]))))
                state.sizes[inode] = max(state.sizes[inode, default: 0], offset + written)
                descriptor.position = offset + written
                state.descriptors[fd] = descriptor
            }
            return written
        }
        io.ftruncate = { (fd: CInt, length: Int) throws(Errno) in
            try system.ftruncate(fd, length)
            self.recorded.withLock { state in
                guard let inode = state.descriptors[fd]?.inode else { return }
                state.operations.append(.truncate(inode: inode, length: length))
                state.sizes[inode] = length
            }
        }
        io.fdatasync = { (fd: CInt) throws(Errno) in try self.sync(fd, system.fdatasync) }
        io.fsync = { (fd: CInt) throws(Errno) in try self.sync(fd, system.fsync) }
        io.rename = { (from: String, to: String) throws(Errno) in
            try system.rename(from, to)
            self.recorded.withLock { state in
                guard let source = self.name(of: from), let destination = self.name(of: to),
                      let inode = state.names.removeValue(forKey: source) else { return }
                state.names[destination] = inode
                state.operations.append(.rename(from: source, to: destination))
            }
        }
        io.unlink = { (path: String) throws(Errno) in
            try system.unlink(path)
            self.recorded.withLock { state in
                guard let name = self.name(of: path), state.names.removeValue(forKey: name) != nil else { return }
                state.operations.append(.unlink(name: name))
            }
        }
        return io
    }

    /// fsync or fdatasync (`call`), failing instead when it is the sync ``failSync(after:)`` chose.
    private func sync(_ fd: CInt, _ call: @Sendable (CInt) throws(Errno) -> Void) throws(Errno) {
        let failing: Bool = self.recorded.withLock { state in
            guard let inode = state.descriptors[fd]?.inode else { return false }
            state.fileSyncs += 1
            guard state.fileSyncs == state.failingSync else { return false }
            state.operations.append(.failedSync(inode: inode))
            return true
        }
        if failing { throw Errno(EIO) }
        try call(fd)
        self.recorded.withLock { state in
            guard let descriptor = state.descriptors[fd] else { return }
            if let inode = descriptor.inode {
                state.operations.append(.sync(inode: inode))
            } else {
                state.operations.append(.syncDirectory)
            }
        }
    }
}
