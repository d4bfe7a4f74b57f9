// The crash-state explorer's model of a power cut: from a prefix of what CrashRecorder.swift logged, the
// files a power cut at that point could leave, under one of two models of the file system.
//
// - ext4 data=ordered: per file, data written since its last fsync/fdatasync persists as a prefix of
//   those writes (nothing, some of them, the next one cut at any byte, or all). Name operations
//   (create, rename, unlink) persist in order, as a prefix of those since the last fsync of the
//   directory: a rename is durable only once the directory is synced.
// - the weaker POSIX model: per file, any size the file had since its last sync; every 4 KiB page
//   holding unsynced data persisted or not, independently; and a page may be torn, each of its 512-byte
//   sectors new or old. What was never written reads as zeros (holes). Names as above.
//
// A failed fsync (EIO) is modelled as the kernel writing some of the dirty data (as a crash would leave
// it) and dropping the rest: it never reaches the disk, whatever later syncs report.
// Choices are drawn from a seeded generator, so a run is repeatable.

import TestSupport
@testable import Store

enum CrashModel: String, CaseIterable, CustomStringConvertible {
    case ext4Ordered = "ext4 data=ordered"
    case posixWeak = "POSIX (pages in any subset, torn sectors, zero holes)"

    var description: String { self.rawValue }
}

/// What a crash state persists of the unsynced data and names.
enum CrashChoice {
    /// Nothing unsynced.
    case nothing
    /// Everything written (a crash of the process alone).
    case everything
    /// Drawn from the generator.
    case random
}

/// SplitMix64 (TestSupport): the same sequence for the same seed on every platform.
typealias SeededRandom = SplitMix

enum CrashStates {
    static let pageBytes = 4096
    static let sectorBytes = 512

    private enum DataOperation {
        case write(offset: Int, bytes: [UInt8])
        case truncate(length: Int)

        func apply(to content: inout [UInt8]) {
            switch self {
            case .write(let offset, let bytes):
                if content.count < offset + bytes.count {
                    content.append(contentsOf: repeatElement(0, count: offset + bytes.count - content.count))
                }
                content.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            case .truncate(let length):
                if length < content.count {
                    content.removeLast(content.count - length)
                } else {
                    content.append(contentsOf: repeatElement(0, count: length - content.count))
                }
            }
        }
    }

    private enum NameOperation {
        case create(inode: Int, name: String)
        case rename(from: String, to: String)
        case unlink(name: String)

        func apply(to names: inout [String: Int]) {
            switch self {
            case .create(let inode, let name): names[name] = inode
            case .rename(let from, let to): if let inode = names.removeValue(forKey: from) { names[to] = inode }
            case .unlink(let name): names.removeValue(forKey: name)
            }
        }
    }

    private struct Inode {
        /// What the disk holds for sure: the content as of the last sync.
        var disk: [UInt8] = []
        /// Writes and truncations since.
        var pending: [DataOperation] = []
    }

    /// The files (name to content) a power cut right after `operations` could leave.
    static func build(
        _ operations: ArraySlice<RecordedOperation>, model: CrashModel, choice: CrashChoice,
        random: inout SeededRandom
    ) -> [String: [UInt8]] {
        var durableNames: [String: Int] = [:]
        var pendingNames: [NameOperation] = []
        var inodes: [Int: Inode] = [:]
        for operation in operations {
            switch operation {
            case .create(let inode, let name):
                inodes[inode] = Inode()
                pendingNames.append(.create(inode: inode, name: name))
            case .rename(let from, let to):
                pendingNames.append(.rename(from: from, to: to))
            case .unlink(let name):
                pendingNames.append(.unlink(name: name))
            case .write(let inode, let offset, let bytes):
                inodes[inode]!.pending.append(.write(offset: offset, bytes: bytes))
            case .truncate(let inode, let length):
                inodes[inode]!.pending.append(.truncate(length: length))
            case .sync(let inode):
                var content = inodes[inode]!.disk
                for pending in inodes[inode]!.pending { pending.apply(to: &content) }
                inodes[inode] = Inode(disk: content)
            case .failedSync(let inode):
                // Some of the dirty data reached the disk; the rest is gone for good.
                let persisted = Self.persisted(inodes[inode]!, model: model, choice: .random, random: &random)
                inodes[inode] = Inode(disk: persisted)
            case .syncDirectory:
                for pending in pendingNames { pending.apply(to: &durableNames) }
                pendingNames = []
            case .acknowledged, .synced:
                break
            }
        }
        let namesKept = switch choice {
        case .nothing: 0
        case .everything: pendingNames.count
        case .random: Int.random(in: 0...pendingNames.count, using: &random)
        }
        for pending in pendingNames.prefix(namesKept) { pending.apply(to: &durableNames) }
        return durableNames.mapValues { inode in
            Self.persisted(inodes[inode]!, model: model, choice: choice, random: &random)
        }
    }

    /// The content a file could have after a power cut.
    private static func persisted(
        _ inode: Inode, model: CrashModel, choice: CrashChoice, random: inout SeededRandom
    ) -> [UInt8] {
        var content = inode.disk
        switch (choice, model) {
        case (.nothing, _):
            return content
        case (.everything, _):
            for pending in inode.pending { pending.apply(to: &content) }
            return content
        case (.random, .ext4Ordered):
            let whole = Int.random(in: 0...inode.pending.count, using: &random)
            for pending in inode.pending.prefix(whole) { pending.apply(to: &content) }
            if whole < inode.pending.count, case .write(let offset, let bytes) = inode.pending[whole], bytes.count > 1,
               Bool.random(using: &random)
            {
                // The next write cut short.
                let kept = Int.random(in: 1..<bytes.count, using: &random)
                DataOperation.write(offset: offset, bytes: Array(bytes.prefix(kept))).apply(to: &content)
            }
            return content
        case (.random, .posixWeak):
            var live = inode.disk
            var sizes = [live.count]
            for pending in inode.pending {
                pending.apply(to: &live)
                sizes.append(live.count)
            }
            // The file's final size more often than not: it is the one that exposes the most holes.
            let size = Bool.random(using: &random) ? live.count : sizes.randomElement(using: &random)!
            var result = [UInt8](repeating: 0, count: size)
            let old = inode.disk
            var page = 0
            while page < size {
                let pageEnd = min(page + Self.pageBytes, size)
                let persisted = Bool.random(using: &random)
                let torn = Int.random(in: 0..<4, using: &random) == 0
                var sector = page
                while sector < pageEnd {
                    let sectorEnd = min(sector + Self.sectorBytes, pageEnd)
                    let new = torn ? Bool.random(using: &random) : persisted
                    for offset in sector..<sectorEnd {
                        if new {
                            result[offset] = offset < live.count ? live[offset] : 0
                        } else {
                            result[offset] = offset < old.count ? old[offset] : 0
                        }
                    }
                    sector = sectorEnd
                }
                page = pageEnd
            }
            return result
        }
    }
}
