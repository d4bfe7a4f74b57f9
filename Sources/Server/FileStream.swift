// The file service as a stream session: greeting, `get` streamed with sendfile from a file the
// kernel opened beneath the root (FileRoot), `list`, `bye`. A file's bytes never pass through
// user space and never sit whole in memory; a pipeline of huge gets queues one file at a time,
// because each request waits until the backlog (file bytes included) is under the limit.

#if canImport(Glibc)
import Glibc  // errno and signal numbers; the calls go through Syscalls.swift
#endif
import Reactor
import Services

/// One file-service connection.
final class FileStream: StreamSession {
    private var service: FileService
    private let root: FileRoot

    init(root: FileRoot, maxLineBytes: Int) {
        self.root = root
        self.service = FileService(maxLineBytes: maxLineBytes)
    }

    func open(_ connection: Connection, handler: StreamHandler) {
        let peer = connection.peer.map { "\($0)" } ?? "unknown"
        connection.write("HELLO reactord pid=\(Sys.processID()) peer=\(peer)\n".utf8)
    }

    func receive(_ bytes: UnsafeRawBufferPointer) { self.service.receive(bytes) }

    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult {
        while connection.pendingOutputBytes < outputLimit {
            guard let request = self.service.nextRequest() else { return .needMoreData }
            switch request {
            case .get(let path, let offset, let length):
                self.get(path, offset: offset, length: length, on: connection)
            case .list(let path):
                self.list(path, on: connection)
            case .bye:
                connection.write("Goodbye\n".utf8)
                return .close
            case .error(let reason):
                connection.write("ERR \(reason)\n".utf8)
            case .lineTooLong:
                connection.write("ERR line too long\n".utf8)
                return .close
            }
        }
        return .outputFull
    }

    private func get(_ path: [UInt8], offset: Int, length: Int?, on connection: Connection) {
        let file: OpenFile
        do {
            file = try self.root.open(path)
        } catch {
            connection.write("ERR \(Self.reason(error))\n".utf8)
            return
        }
        guard offset <= file.size else {
            connection.write("ERR bad range\n".utf8)
            return
        }
        let count = min(length ?? Int.max, file.size - offset)
        connection.write("OK \(count)\n".utf8)
        connection.write(file: file, offset: offset, count: count)
    }

    private func list(_ path: [UInt8], on connection: Connection) {
        let entries: [DirectoryEntry]
        do {
            entries = try self.root.list(path)
        } catch {
            connection.write("ERR \(error.errno == ENOTDIR ? "not a directory" : Self.reason(error))\n".utf8)
            return
        }
        // Names holding a line break cannot be listed one per line: they are left out.
        let listable = entries.filter { !$0.name.contains(10) && !$0.name.contains(13) }
        var out: [UInt8] = Array("OK \(listable.count)\n".utf8)
        for entry in listable {
            out.append(contentsOf: "\(entry.isDirectory ? "d" : "f") \(entry.size) ".utf8)
            out.append(contentsOf: entry.name)
            out.append(10)
        }
        connection.write(out)
    }

    /// The error words of docs/protocol.md "file service" for what opening a path can say.
    static func reason(_ error: IOError) -> String {
        switch error.errno {
        case ENOENT, ENOTDIR: return "not found"
        case EXDEV, ELOOP, EACCES, EPERM: return "forbidden"
        case EISDIR: return "is a directory"
        default: return "\(error)"
        }
    }
}
