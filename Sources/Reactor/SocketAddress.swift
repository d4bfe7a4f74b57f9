// IPv4 and IPv6 socket addresses: parsing numeric hosts, printing `host:port`, and handing a
// `sockaddr` to the system calls. No name resolution: the reactor never blocks on DNS.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address and port.
public struct SocketAddress: Sendable, CustomStringConvertible {
    private var storage: sockaddr_storage

    init(storage: sockaddr_storage) { self.storage = storage }

    /// Parses a numeric host (`127.0.0.1`, `::1`) or `localhost`, and a port.
    /// - Throws: ``SocketAddressError`` when the host is not a numeric address.
    public init(host: String, port: Int) throws(SocketAddressError) {
        guard (0...65535).contains(port) else { throw SocketAddressError(host: host, port: port) }
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = in_port_t(UInt16(port).bigEndian)
            sin.sin_addr = v4
            self.storage = Self.storage(holding: sin)
        } else if inet_pton(AF_INET6, name.trimmingBrackets, &v6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = in_port_t(UInt16(port).bigEndian)
            sin6.sin6_addr = v6
            self.storage = Self.storage(holding: sin6)
        } else {
            throw SocketAddressError(host: host, port: port)
        }
    }

    /// A sockaddr_in or sockaddr_in6 copied into the front of a zeroed sockaddr_storage.
    private static func storage<Address>(holding address: Address) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeBytes(of: address) { src in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
        }
        return storage
    }

    /// AF_INET, AF_INET6 or AF_UNIX.
    public var family: CInt { CInt(self.storage.ss_family) }

    /// The port, in host byte order (0 for a Unix domain socket).
    public var port: Int {
        if self.family == AF_UNIX { return 0 }
        return withUnsafeBytes(of: self.storage) { raw in
            // sin_port and sin6_port share offset 2.
            Int(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        }
    }

    /// The numeric host, without brackets: `127.0.0.1`, `::1`.
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafeBytes(of: self.storage) { raw in
            if self.family == AF_INET {
                var addr = raw.loadUnaligned(fromByteOffset: 0, as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
            } else {
                var addr = raw.loadUnaligned(fromByteOffset: 0, as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `127.0.0.1:9877`, or `[::1]:9877` for IPv6, or `unix:/run/tool.sock`.
    public var description: String {
        if let path = self.unixPath { return "unix:\(path)" }
        return self.family == AF_INET6 ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// Whether the address is on the loopback network, so its peer is on this machine (or in
    /// this network namespace): IPv4 127.0.0.0/8, IPv6 `::1`, and IPv4-mapped `::ffff:127.x.y.z`
    /// (what an IPv6 socket that accepts IPv4 reports for a 127/8 peer). Protected mode and
    /// the metrics port ask this of every peer.
    public var isLoopback: Bool {
        withUnsafeBytes(of: self.storage) { raw in
            switch self.family {
            case AF_INET:
                // sin_addr is in network byte order: its first byte is the first octet.
                let offset = MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr)!
                return raw[offset] == 127
            case AF_INET6:
                let offset = MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)!
                let bytes = UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 16])
                let loopback: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
                if bytes.elementsEqual(loopback) { return true }
                let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
                return bytes.prefix(12).elementsEqual(mappedPrefix) && bytes[12] == 127
            default:
                return false
            }
        }
    }

    /// The same address with another port.
    public func withPort(_ port: Int) -> SocketAddress {
        var copy = self
        withUnsafeMutableBytes(of: &copy.storage) { raw in
            raw.storeBytes(of: UInt16(port).bigEndian, toByteOffset: 2, as: UInt16.self)
        }
        return copy
    }

    /// Calls `body` with the address as a `sockaddr` and its length, for a system call the
    /// reactor does not make itself (a blocking client's `connect`, say).
    /// - Returns: what `body` returns.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        let length = switch self.family {
        case AF_INET6: MemoryLayout<sockaddr_in6>.size
        case AF_UNIX: MemoryLayout<sockaddr_un>.size
        default: MemoryLayout<sockaddr_in>.size
        }
        return withUnsafeBytes(of: self.storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(length))
        }
    }
}

/// A host that is not a numeric IPv4/IPv6 address (or `localhost`), or a port out of range.
public struct SocketAddressError: Error, CustomStringConvertible, Sendable {
    let host: String
    let port: Int
    /// What was expected instead, when not a numeric address.
    var expected = "a numeric IPv4 or IPv6 address"
    /// `invalid address 'example.org' port 80: expected a numeric IPv4 or IPv6 address`.
    public var description: String { "invalid address '\(self.host)' port \(self.port): expected \(self.expected)" }
}

extension String {
    fileprivate var trimmingBrackets: String {
        if self.hasPrefix("[") && self.hasSuffix("]") { return String(self.dropFirst().dropLast()) }
        return self
    }
}
