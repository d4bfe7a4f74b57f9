// Protected mode against the real binary, with a real peer outside loopback: the server runs
// in one network namespace (`ip netns exec`, which execs it, so the PID is the server's) and
// the outside peer's sockets live in another, joined by a veth pair with private addresses
// and no default route (NetworkNamespaces.swift). 127.0.0.2 on the server namespace's `lo` is
// a loopback peer too. Skipped only where namespaces cannot be created (not root, no iproute2).

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: NetworkNamespacePair.available,
                "network namespaces cannot be created here (needs root and iproute2's ip): protected mode untested"))
struct ProtectedModeNetnsTests {
    static let text = "reactord is in protected mode: set a password (--requirepass) or start with --protected-mode no"
    static let respDenied = "-DENIED \(text)\r\n"
    static let lineDenied = "ERR DENIED \(text)\n"

    /// reactord on every service (kernel-chosen ports) in the server namespace, bound to 0.0.0.0.
    final class NamespacedServer {
        let process: ReactordProcess
        let ports: [String: Int]
        let net: NetworkNamespacePair
        private let directory: URL

        init(_ net: NetworkNamespacePair, _ extra: [String] = [], environment: [String: String] = [:]) throws {
            self.net = net
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("rd-protect-\(UUID().uuidString)")
            let files = self.directory.appendingPathComponent("files")
            try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
            try Data("hello\n".utf8).write(to: files.appendingPathComponent("a.txt"))
            let reactord = try reactordExecutable()
            let ip = try #require(NetworkNamespacePair.ipExecutable)
            let process = try ReactordProcess(
                launcher: ip,
                arguments: ["netns", "exec", net.server, reactord.path, "--host", "0.0.0.0",
                            "--kv-port", "0", "--echo-port", "0", "--time-port", "0", "--file-port", "0",
                            "--data-dir", self.directory.appendingPathComponent("data").path, "--files-root", files.path,
                            "--fsync", "no"] + extra,
                environment: environment)
            self.process = process
            let lines = try #require(process.waitForReady(), "no 'reactord: ready' within 20 s")
            var ports: [String: Int] = [:]
            for line in lines where line.hasPrefix("reactord: listening ") {
                let words = line.split(separator: " ")
                ports["\(words[2]) \(words[3])"] = words[4].split(separator: ":").last.flatMap { Int($0) }
            }
            self.ports = ports
            // `ip netns exec` execs reactord: the PID we hold (and stop) is the server's own.
            let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.pid)/exe")
            #expect(URL(fileURLWithPath: exe).resolvingSymlinksInPath().path == reactord.resolvingSymlinksInPath().path)
        }

        func port(_ service: String, _ transport: String = "tcp") throws -> Int {
            try #require(self.ports["\(service) \(transport)"], "no \(service) \(transport) in \(self.ports)")
        }

        /// A TCP client from the outside peer's namespace to the server's veth address.
        func outside(_ service: String) throws -> TestClient {
            try self.net.client(in: self.net.peer, to: self.net.serverAddress, port: self.port(service))
        }

        /// A TCP client from 127.0.0.2 inside the server's namespace.
        func loopback(_ service: String) throws -> TestClient {
            try self.net.client(in: self.net.server, to: "127.0.0.2", port: self.port(service), from: "127.0.0.2")
        }

        /// Stops the server by its PID (SIGTERM, then SIGKILL if it lingers) and removes its files.
        func stop() -> Int32? {
            kill(self.process.pid, SIGTERM)
            let status = self.process.waitForExit(within: 5)
            self.process.kill()
            try? FileManager.default.removeItem(at: self.directory)
            return status
        }

        deinit { _ = self.stop() }
    }

    /// Everything a refused peer receives: the bytes up to EOF, and whether EOF came.
    static func received(_ client: TestClient, after request: String? = nil) throws -> (String, Bool) {
        if let request { try client.send(request) }
        let (bytes, eof) = client.readToEOF(deadline: .now + .seconds(10))
        return (String(decoding: bytes, as: UTF8.self), eof)
    }

    /// A UDP datagram from a socket in namespace `ns`; the reply, or nil if none came by `deadline`.
    static func udpExchange(_ net: NetworkNamespacePair, from ns: String, to host: String, port: Int, source: String? = nil,
                            payload: String, deadline: ContinuousClock.Instant) throws -> String? {
        let fd = try net.socket(in: ns, type: CInt(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        if let source {
            try #require(withSocketAddress(host: source, port: 0) { sa, len, _ in bind(fd, sa, len) } == 0)
        }
        // Not connected: a reply from a wildcard-bound UDP socket carries the source address
        // routing picks (127.0.0.1 for a datagram to 127.0.0.2), which a connected socket drops.
        let sent = payload.utf8CString.withUnsafeBytes { bytes in
            withSocketAddress(host: host, port: port) { sa, len, _ in sendto(fd, bytes.baseAddress, bytes.count - 1, 0, sa, len) }
        }
        try #require(sent == payload.utf8.count)
        guard pollFor(fd, events: Int16(POLLIN), until: deadline) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    @Test func withNoPasswordAPeerOutsideLoopbackIsDeniedOnEveryService() throws {
        let net = try NetworkNamespacePair()
        defer { net.remove() }
        let server = try NamespacedServer(net)

        // kv: nothing until the first byte, then the refusal in the protocol that byte selects.
        let resp = try server.outside("kv")
        #expect(resp.readSome() == nil, "the kv port spoke before the peer's first byte")
        #expect(try Self.received(resp, after: "*1\r\n$4\r\nPING\r\n") == (Self.respDenied, true))
        #expect(try Self.received(server.outside("kv"), after: "ping\n") == (Self.lineDenied, true))
        // A command that would write is refused without running: checked from loopback below.
        #expect(try Self.received(server.outside("kv"), after: "set k outside\n") == (Self.lineDenied, true))
        // echo and time: at once, before any request.
        #expect(try Self.received(server.outside("echo")) == (Self.lineDenied, true))
        #expect(try Self.received(server.outside("time")) == (Self.lineDenied, true))
        // file: in place of the greeting.
        #expect(try Self.received(server.outside("file")) == (Self.lineDenied, true))

        // UDP from outside is ignored. The loopback datagram sent after it is answered, so the
        // server has read both by then; the outside one still has no answer.
        let outsideEcho = ContinuousClock.now
        let echoUDP = try server.port("echo", "udp")
        let timeUDP = try server.port("time", "udp")
        let fdEcho = try net.socket(in: net.peer, type: CInt(SOCK_DGRAM.rawValue))
        defer { close(fdEcho) }
        try #require(withSocketAddress(host: net.serverAddress, port: echoUDP) { sa, len, _ in connect(fdEcho, sa, len) } == 0)
        let fdTime = try net.socket(in: net.peer, type: CInt(SOCK_DGRAM.rawValue))
        defer { close(fdTime) }
        try #require(withSocketAddress(host: net.serverAddress, port: timeUDP) { sa, len, _ in connect(fdTime, sa, len) } == 0)
        #expect(send(fdEcho, "outside", 7, 0) == 7)
        #expect(send(fdTime, "now\n", 4, 0) == 4)
        #expect(try Self.udpExchange(net, from: net.server, to: "127.0.0.2", port: echoUDP, source: "127.0.0.2",
                                     payload: "inside", deadline: .now + .seconds(5)) == "inside")
        #expect(try Self.udpExchange(net, from: net.server, to: "127.0.0.2", port: timeUDP, source: "127.0.0.2",
                                     payload: "now\n", deadline: .now + .seconds(5)) != nil)
        #expect(!pollFor(fdEcho, events: Int16(POLLIN), until: outsideEcho + .milliseconds(500)), "outside UDP echo answered")
        #expect(!pollFor(fdTime, events: Int16(POLLIN), until: .now + .milliseconds(100)), "outside UDP time answered")

        // Loopback peers, 127.0.0.2 included, are served as usual.
        let kv = try server.loopback("kv")
        try kv.send("get k\nping\n")
        let expected = "ERR not found\nPONG\n"
        #expect(String(decoding: kv.read(count: expected.utf8.count), as: UTF8.self) == expected)
        let echo = try server.loopback("echo")
        try echo.send("inside\n")
        #expect(echo.readLine() == Array("inside\n".utf8))
        #expect(String(decoding: try server.loopback("file").readLine(), as: UTF8.self).hasPrefix("HELLO reactord"))
        // INFO counts the six refused connections.
        let info = try server.loopback("kv")
        try info.send("*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        let stats = String(decoding: info.read(until: { String(decoding: $0, as: UTF8.self).contains("rejected_connections:") && $0.last == 10 }).bytes,
                           as: UTF8.self)
        #expect(stats.contains("rejected_connections:6\r\n"), "\(stats)")

        #expect(server.stop() == 0)
    }

    @Test func withAPasswordAPeerOutsideLoopbackIsAdmittedAndMustAuthenticate() throws {
        let net = try NetworkNamespacePair()
        defer { net.remove() }
        let secret = "s3cret-\(getpid())-namespaced"
        // Given through the environment: never on the command line.
        let server = try NamespacedServer(net, ["--log-level", "debug"], environment: ["REACTORD_REQUIREPASS": secret])
        let cmdline = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(server.process.pid)/cmdline"))
        #expect(!String(decoding: cmdline, as: UTF8.self).contains(secret))

        let resp = try server.outside("kv")
        try resp.send("*1\r\n$4\r\nPING\r\n")
        #expect(resp.readLine() == Array("-NOAUTH Authentication required.\r\n".utf8))
        try resp.send("*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n")
        #expect(resp.readLine() == Array("-WRONGPASS invalid username-password pair or user is disabled.\r\n".utf8))
        try resp.send("*2\r\n$4\r\nAUTH\r\n$\(secret.utf8.count)\r\n\(secret)\r\n*1\r\n$4\r\nPING\r\n")
        #expect(resp.read(count: 12) == Array("+OK\r\n+PONG\r\n".utf8))

        let line = try server.outside("kv")
        try line.send("ping\nauth \(secret)\nping\n")
        let expected = "ERR authentication required\nOK\nPONG\n"
        #expect(String(decoding: line.read(count: expected.utf8.count), as: UTF8.self) == expected)

        // Echo, time and file carry no password: protected mode applies only with no password
        // set, so with one they serve the outside peer (docs/protocol.md "Authentication").
        let echo = try server.outside("echo")
        try echo.send("outside\n")
        #expect(echo.readLine() == Array("outside\n".utf8))
        #expect(try Self.udpExchange(net, from: net.peer, to: net.serverAddress, port: server.port("echo", "udp"),
                                     payload: "datagram", deadline: .now + .seconds(5)) == "datagram")

        #expect(server.stop() == 0)
        #expect(!server.process.standardError().contains(secret), "the password reached the log")
    }

    @Test func protectedModeNoServesEveryPeer() throws {
        let net = try NetworkNamespacePair()
        defer { net.remove() }
        let server = try NamespacedServer(net, ["--protected-mode", "no"])
        let kv = try server.outside("kv")
        try kv.send("*1\r\n$4\r\nPING\r\n")
        #expect(kv.readLine() == Array("+PONG\r\n".utf8))
        let time = try server.outside("time")
        try time.send("now\n")
        #expect(String(decoding: time.readLine(), as: UTF8.self).hasPrefix("20"))
        #expect(String(decoding: try server.outside("file").readLine(), as: UTF8.self).hasPrefix("HELLO reactord"))
        #expect(try Self.udpExchange(net, from: net.peer, to: net.serverAddress, port: server.port("echo", "udp"),
                                     payload: "datagram", deadline: .now + .seconds(5)) == "datagram")
        #expect(server.stop() == 0)
    }
}
