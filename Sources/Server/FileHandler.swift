// Wires the file service to connections: greeting, `get` streamed with sendfile from a
// descriptor opened beneath the root by the kernel's rules (openat2 RESOLVE_BENEATH), `list`,
// `bye`. A file's bytes never pass through user space and never sit whole in memory.

import Reactor
import Services
#if canImport(Glibc)
import Glibc
#endif

/// A delegate that has something to say as soon as its connection opens.
protocol ConnectionGreeter: ConnectionDelegate {
    func greet(_ connection: Connection)
}

/// One file-service connection.
final class FileHandler: ConnectionGreeter {
    private var service: FileService
    private unowned let server: Server
    private let root: Descriptor
    private var closing = false

    init(server: Server, root: Descriptor, maxLineBytes: Int) {
        self.server = server
        self.root = root
        self.service = FileService(maxLineBytes: maxLineBytes)
    }

    func greet(_ connection: Connection) {
        let peer = connection.peer.map { "\($0)" } ?? "unknown"
        connection.write("HELLO reactord pid=\(getpid()) peer=\(peer)\n".utf8)
        connection.flush()
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.service.receive(bytes)
        self.pump(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) { self.pump(connection) }

    func connectionDidDrain(_ connection: Connection) {
        self.pump(connection)
        connection.flush()
    }

    func connectionDidClose(_ connection: Connection) {
        self.server.connectionClosed(connection)
    }

    /// Handles requests in order while the backlog (file bytes included) is under the
    /// high-water mark: a pipeline of huge gets queues one file at a time, not all of them.
    private func pump(_ connection: Connection) {
        while connection.state == .open && !self.closing {
            if connection.pendingOutputBytes >= connection.highWaterMark {
                connection.flush()
                if connection.pendingOutputBytes >= connection.highWaterMark { return }
            }
            guard let request = self.service.nextRequest() else {
                if connection.readEOF {
                    self.closing = true
                    connection.close()
                }
                return
            }
            switch request {
            case .get(let path, let offset, let length):
                self.get(path, offset: offset, length: length, on: connection)
            case .list(let path):
                self.list(path, on: connection)
            case .bye:
                connection.write("Goodbye\n".utf8)
                self.closing = true
                connection.close()
            case .error(let reason):
                connection.write("ERR \(reason)\n".utf8)
            case .lineTooLong:
                connection.write("ERR line too long\n".utf8)
                self.closing = true
                connection.close()
            }
        }
    }

    private func get(_ path: [UInt8], offset: Int, length: Int?, on connection: Connection) {
        let fd: Descriptor
        do {
            fd = try Sys.openBeneath(self.root, path)
        } catch {
            connection.write("ERR \(Self.reason(error))\n".utf8)
            return
        }
        let status: FileStatus
        do {
            status = try Sys.fstat(fd)
        } catch {
            Sys.close(fd)
            connection.write("ERR \(Self.reason(error))\n".utf8)
            return
        }
        if status.isDirectory {
            Sys.close(fd)
            connection.write("ERR is a directory\n".utf8)
            return
        }
        guard status.isRegular else {
            Sys.close(fd)
            connection.write("ERR forbidden\n".utf8)
            return
        }
        guard offset <= status.size else {
            Sys.close(fd)
            connection.write("ERR bad range\n".utf8)
            return
        }
        let count = min(length ?? Int.max, status.size - offset)
        connection.write("OK \(count)\n".utf8)
        if count > 0 {
            connection.write(file: FileRegion(descriptor: fd, offset: offset, count: count, closeWhenDone: true))
        } else {
            Sys.close(fd)
        }
    }

    private func list(_ path: [UInt8], on connection: Connection) {
        let entries: [DirectoryEntry]
        do {
            let fd = try Sys.openBeneath(self.root, path, directoryOnly: true)
            entries = try Sys.listDirectory(fd)
        } catch {
            connection.write("ERR \(error.errno == ENOTDIR ? "not a directory" : Self.reason(error))\n".utf8)
            return
        }
        // Names holding a line break cannot be listed one per line, and a symlink that leads
        // outside the root is not ours to describe: both are left out.
        let prefix = path.isEmpty ? [] : path + [UInt8(ascii: "/")]
        let listable = entries.filter { entry in
            guard !entry.name.contains(10) && !entry.name.contains(13) else { return false }
            guard entry.isSymlink else { return true }
            guard let fd = try? Sys.openBeneath(self.root, prefix + entry.name) else { return false }
            Sys.close(fd)
            return true
        }
        var out: [UInt8] = Array("OK \(listable.count)\n".utf8)
        for entry in listable {
            out.append(contentsOf: "\(entry.isDirectory ? "d" : "f") \(entry.size) ".utf8)
            out.append(contentsOf: entry.name)
            out.append(10)
        }
        connection.write(out)
    }

    /// SPEC's error words for what open and stat can say.
    static func reason(_ error: IOError) -> String {
        switch error.errno {
        case ENOENT, ENOTDIR: return "not found"
        case EXDEV, ELOOP, EACCES, EPERM: return "forbidden"
        case EISDIR: return "is a directory"
        default: return "\(error)"
        }
    }
}
