// Two network namespaces joined by a veth pair, for tests that need a peer outside loopback
// without any packet able to leave the machine: private addresses 10.200.X.1/24 (namespace
// `a`, where the server runs) and 10.200.X.2/24 (namespace `b`, the outside peer), neither
// with a default route. Names carry this process's PID, so leftovers of a run that died are
// recognised and swept. Clients join a namespace on a thread of their own (setns(2) moves one
// thread); a socket belongs to the namespace it was made in, so the root namespace never
// sends to 10.200.X: every socket is made after the thread is checked to be inside.

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

final class NetworkNamespacePair {
    static let prefix = "rd-test-"
    private static let counter = Mutex(0)

    /// `rd-test-<pid>-<n>a`, where the server runs.
    let server: String
    /// `rd-test-<pid>-<n>b`, the peer outside the server's loopback.
    let peer: String
    /// The server namespace's veth address.
    let serverAddress: String
    /// The peer namespace's veth address.
    let peerAddress: String
    private var removed = false

    /// Creates both namespaces, the veth pair and the addresses, after sweeping leftovers of
    /// earlier runs whose PID is dead. On failure whatever was made is removed.
    /// - Throws: ``TestFailure`` naming the `ip` command that failed.
    init() throws {
        Self.sweepLeftovers()
        let n = Self.counter.withLock { value in
            value += 1
            return value
        }
        let pid = getpid()
        let tag = "\(pid)-\(n)"
        self.server = "\(Self.prefix)\(tag)a"
        self.peer = "\(Self.prefix)\(tag)b"
        // The subnet only exists inside the two namespaces; X from the PID keeps runs apart in
        // any capture a person might take.
        let x = Int(pid) % 250 + 1
        self.serverAddress = "10.200.\(x).1"
        self.peerAddress = "10.200.\(x).2"
        // Interface names are at most 15 bytes.
        let vethA = "rdv\(Int(pid) % 100_000)x\(n)a"
        let vethB = "rdv\(Int(pid) % 100_000)x\(n)b"
        do {
            try Self.ip(["netns", "add", self.server])
            try Self.ip(["netns", "add", self.peer])
            try Self.ip(["link", "add", vethA, "netns", self.server, "type", "veth", "peer", "name", vethB, "netns", self.peer])
            for (ns, dev, address) in [(self.server, vethA, self.serverAddress), (self.peer, vethB, self.peerAddress)] {
                try Self.ip(["-n", ns, "link", "set", "lo", "up"])
                try Self.ip(["-n", ns, "addr", "add", "\(address)/24", "dev", dev])
                try Self.ip(["-n", ns, "link", "set", dev, "up"])
                // The only routes are the connected /24 and loopback: nothing can leave.
                let routes = try Self.ip(["-n", ns, "route", "show", "default"])
                guard routes.isEmpty else { throw TestFailure("namespace \(ns) has a default route: \(routes)") }
            }
        } catch {
            self.remove()
            throw error
        }
    }

    deinit { self.remove() }

    /// Deletes both namespaces (the veth pair goes with them). Idempotent.
    func remove() {
        guard !self.removed else { return }
        self.removed = true
        _ = try? Self.ip(["netns", "del", self.server])
        _ = try? Self.ip(["netns", "del", self.peer])
    }

    /// A new non-blocking, close-on-exec socket in namespace `name`, made on a thread that
    /// joined it: the socket stays in that namespace whichever thread then uses it.
    /// - Parameters:
    ///   - family: AF_INET (the only family these tests use).
    ///   - type: SOCK_STREAM or SOCK_DGRAM.
    /// - Throws: ``TestFailure`` if the thread cannot join the namespace (then no socket is
    ///   made, so nothing is sent from the wrong namespace).
    func socket(in name: String, type: Int32) throws -> CInt {
        let outcome = Shared<Result<CInt, TestFailure>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let result: Result<CInt, TestFailure>
            do {
                try Self.joinThread(namespace: name)
                let fd = Glibc.socket(AF_INET, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
                result = fd >= 0 ? .success(fd) : .failure(TestFailure("socket: errno \(errno)"))
            } catch let error as TestFailure {
                result = .failure(error)
            } catch {
                result = .failure(TestFailure("\(error)"))
            }
            outcome.with { $0 = result }
            done.signal()
        }
        thread.start()
        guard done.wait(timeout: .now() + 10) == .success, let result = outcome.current else {
            throw TestFailure("no socket from namespace \(name) within 10 s")
        }
        return try result.get()
    }

    /// A connected TCP client whose socket lives in namespace `name`, optionally bound to
    /// `source` first (127.0.0.2 as a loopback peer other than 127.0.0.1).
    func client(in name: String, to host: String, port: Int, from source: String? = nil) throws -> TestClient {
        try TestClient(socket: self.socket(in: name, type: CInt(SOCK_STREAM.rawValue)), host: host, port: port, bindTo: source)
    }

    /// setns(2) for the calling thread, then a check that the thread's network namespace is
    /// now the named one (same inode as /run/netns/NAME).
    private static func joinThread(namespace name: String) throws {
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        defer { close(fd) }
        // Glibc's module map hides setns (it needs _GNU_SOURCE); the symbol is in libc.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else {
            throw TestFailure("setns not found in libc")
        }
        typealias SetNS = @convention(c) (CInt, CInt) -> CInt
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let cloneNewNet: CInt = 0x4000_0000
        guard setns(fd, cloneNewNet) == 0 else { throw TestFailure("setns \(name): errno \(errno)") }
        var want = stat()
        var have = stat()
        guard stat(path, &want) == 0, stat("/proc/thread-self/ns/net", &have) == 0,
              want.st_ino == have.st_ino, want.st_dev == have.st_dev
        else { throw TestFailure("thread is not inside namespace \(name) after setns") }
    }

    /// Whether namespaces can be made here (root and iproute2): tries one and removes it.
    static let available: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = "\(prefix)\(getpid())-probe"
        guard (try? ip(["netns", "add", probe])) != nil else { return false }
        _ = try? ip(["netns", "del", probe])
        return true
    }()

    /// Deletes `rd-test-<pid>-…` namespaces whose PID no longer runs.
    static func sweepLeftovers() {
        guard let list = try? ip(["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(Self.prefix) else { continue }
            let rest = name.dropFirst(Self.prefix.count)
            guard let pid = Int32(rest.prefix { $0.isNumber }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { _ = try? ip(["netns", "del", name]) }
        }
    }

    /// Runs `ip` with `arguments`. - Returns: its stdout. - Throws: on a non-zero exit.
    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let process = Process()
        let candidates = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("ip (iproute2) not installed")
        }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("ip \(arguments.joined(separator: " ")): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The `ip` executable, for `ip netns exec`.
    static var ipExecutable: URL? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
            .map { URL(fileURLWithPath: $0) }
    }
}
