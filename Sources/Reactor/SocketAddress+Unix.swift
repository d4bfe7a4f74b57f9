// Unix domain socket addresses: a path in the file system. A Listener binds one (the socket file
// appears at the path; bind fails with EADDRINUSE while a file is there, so a tool removes a stale
// one first) and Connection.connect reaches one, as they do a TCP address.

#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// A Unix domain (AF_UNIX) stream socket at `path`.
    /// - Throws: ``SocketAddressError`` when the path is empty or longer than `sun_path` holds
    ///   (107 bytes on Linux).
    public init(unixDomainSocketPath path: String) throws(SocketAddressError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw SocketAddressError(host: path, port: 0, expected: "a non-empty path of at most \(capacity - 1) bytes without NUL")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var storage = sockaddr_storage()
        withUnsafeBytes(of: address) { src in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
        }
        self.init(storage: storage)
    }

    /// The path of a Unix domain socket address (empty for an unnamed peer), nil for IP.
    public var unixPath: String? {
        guard self.family == AF_UNIX else { return nil }
        return withUnsafeBytes(of: self) { raw in
            let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let capacity = MemoryLayout<sockaddr_un>.size - offset
            let path = UnsafeRawBufferPointer(rebasing: raw[offset..<offset + capacity])
            return String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
