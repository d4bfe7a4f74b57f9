// The server: binds every configured service to the event loop, counts connections against the
// limit, and runs until a signal asks for a graceful stop. Wiring only: protocols live in
// Services, persistence in Store, sockets in Reactor.

import Dispatch
import Logging
import Reactor
import Services
import Store
#if canImport(Glibc)
import Glibc
#endif

/// One bound listener, as printed at start-up.
public struct ListeningEndpoint: Sendable, CustomStringConvertible {
    public let service: String
    public let transport: String
    public let address: SocketAddress
    /// `reactord: listening echo tcp 127.0.0.1:9878`
    public var description: String { "reactord: listening \(self.service) \(self.transport) \(self.address)" }
}

/// A start-up failure: one line for stderr.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// reactord's services on one event loop. Create, ``start()``, then ``run()`` on the loop thread.
public final class Server {
    public let configuration: ServerConfiguration
    public let loop: EventLoop
    let logger: Logger
    private var listeners: [Listener] = []
    private var datagramSockets: [DatagramSocket] = []
    private var udpEcho: UDPEcho?
    private var udpTime: UDPTime?
    private var filesRoot: Descriptor?
    private var persistence: Persistence?
    private var nextClientID = 1
    private(set) var connections: [ObjectIdentifier: Connection] = [:]
    private var shuttingDown = false
    private var signalSources: [DispatchSourceSignal] = []
    private var shutdownInbox: Inbox<CInt>?
    /// The endpoints bound by ``start()``.
    public private(set) var endpoints: [ListeningEndpoint] = []
    /// The most connections served at once (after fitting the descriptor limit).
    public private(set) var maxConnections: Int

    /// - Throws: ``ServerError`` if the loop cannot be created.
    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        Sys.ignoreSIGPIPE()
        let limit = Sys.raiseDescriptorLimit()
        // Leave room for listeners, the log, epoll, eventfd, files being sent and stdio.
        let fitting = max(1, limit - 64)
        self.maxConnections = min(configuration.maxConnections, fitting)
        if configuration.maxConnections > fitting {
            logger.warning("--max-connections lowered to fit the descriptor limit",
                           metadata: ["asked": "\(configuration.maxConnections)", "limit": "\(limit)", "using": "\(fitting)"])
        }
        do {
            self.loop = try EventLoop(logger: logger)
        } catch {
            throw ServerError("cannot create the event loop: \(error)")
        }
    }

    /// Binds every enabled listener. On failure nothing stays bound.
    /// - Throws: ``ServerError`` naming the service, address and cause (e.g. a port in use).
    @discardableResult
    public func start() throws(ServerError) -> [ListeningEndpoint] {
        if self.configuration.kvPort != .off {
            try self.openStore()
        }
        do {
            try self.bindAll()
        } catch {
            self.closeListeners()
            throw error
        }
        if self.configuration.idleTimeout > .zero {
            self.loop.startIdleSweep(timeout: self.configuration.idleTimeout)
        }
        self.shutdownInbox = self.loop.makeInbox { [unowned self] (signal: CInt) in
            self.logger.info("signal received: stopping", metadata: ["signal": "\(signal)"])
            self.beginShutdown()
        }
        return self.endpoints
    }

    private func bindAll() throws(ServerError) {
        let host = self.configuration.host
        let maxLine = self.configuration.maxLineBytes
        if case .port(let port) = self.configuration.kvPort, let persistence = self.persistence {
            try self.listen(service: "kv", host: host, port: port) { [unowned self] in
                self.nextClientID += 1
                return KVHandler(server: self, persistence: persistence, clientID: self.nextClientID)
            }
        }
        if case .port(let port) = self.configuration.echoPort {
            let tcp = try self.listen(service: "echo", host: host, port: port) { [unowned self] in
                SessionHandler(machine: EchoService(maxLineBytes: self.configuration.maxLineBytes), server: self)
            }
            let echo = UDPEcho()
            self.udpEcho = echo
            try self.bindUDP(service: "echo", host: host, preferredPort: tcp.port, askedPort: port, delegate: echo)
        }
        if case .port(let port) = self.configuration.timePort {
            let tcp = try self.listen(service: "time", host: host, port: port) { [unowned self] in
                TimeHandler(server: self, maxLineBytes: maxLine)
            }
            let time = UDPTime()
            self.udpTime = time
            try self.bindUDP(service: "time", host: host, preferredPort: tcp.port, askedPort: port, delegate: time)
        }
        if case .port(let port) = self.configuration.filePort {
            let root = try Self.openFilesRoot(self.configuration.filesRoot)
            self.filesRoot = root
            try self.listen(service: "file", host: host, port: port) { [unowned self] in
                FileHandler(server: self, root: root, maxLineBytes: maxLine)
            }
        }
    }

    /// Recovers the database (snapshot, then log) before anything listens.
    private func openStore() throws(ServerError) {
        guard let policy = FsyncPolicy(rawValue: self.configuration.fsync) else {
            throw ServerError("unknown fsync policy '\(self.configuration.fsync)' (always, everysec or no)")
        }
        var storeConfig = DurableStore.Configuration(directory: self.configuration.dataDirectory, fsync: policy)
        if let threshold = self.configuration.compactionThresholdBytes { storeConfig.compactionThresholdBytes = threshold }
        let store: DurableStore
        do {
            store = try DurableStore(configuration: storeConfig, logger: self.logger)
        } catch {
            throw ServerError("data dir \(self.configuration.dataDirectory): \(error)")
        }
        self.persistence = Persistence(store: store, loop: self.loop, logger: self.logger) { [unowned self] in
            [("connections", String(self.connections.count)), ("max_connections", String(self.maxConnections))]
        }
    }

    /// Opens (creating if missing) the directory the file service serves.
    static func openFilesRoot(_ path: String) throws(ServerError) -> Descriptor {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw ServerError("files root \(path): cannot create: \(IOError(errno: errno, call: "mkdir"))")
        }
        do {
            return try Sys.openDirectory(path)
        } catch {
            throw ServerError("files root \(path): \(error)")
        }
    }

    private func address(service: String, host: String, port: Int) throws(ServerError) -> SocketAddress {
        do {
            return try SocketAddress(host: host, port: port)
        } catch {
            throw ServerError("\(service): \(error)")
        }
    }

    @discardableResult
    func listen(
        service: String, host: String, port: Int, makeDelegate: @escaping () -> ConnectionDelegate
    ) throws(ServerError) -> SocketAddress {
        let address = try self.address(service: service, host: host, port: port)
        let acceptor = Acceptor(server: self, makeDelegate: makeDelegate)
        do {
            let listener = try Listener(loop: self.loop, address: address, delegate: acceptor)
            acceptor.listener = listener
            self.listeners.append(listener)
            self.acceptors.append(acceptor)
            self.endpoints.append(ListeningEndpoint(service: service, transport: "tcp", address: listener.localAddress))
            return listener.localAddress
        } catch {
            throw ServerError("\(service): cannot listen on \(address): \(error)")
        }
    }

    /// Binds UDP on the same port number as the service's TCP listener; when TCP asked the
    /// kernel for any port (0) and that number is taken for UDP, any free UDP port is used.
    func bindUDP(service: String, host: String, preferredPort: Int, askedPort: Int, delegate: DatagramDelegate) throws(ServerError) {
        var address = try self.address(service: service, host: host, port: preferredPort)
        do {
            let socket: DatagramSocket
            do {
                socket = try DatagramSocket(loop: self.loop, address: address, delegate: delegate)
            } catch where askedPort == 0 && error.errno == EADDRINUSE {
                address = address.withPort(0)
                socket = try DatagramSocket(loop: self.loop, address: address, delegate: delegate)
            }
            self.datagramSockets.append(socket)
            self.endpoints.append(ListeningEndpoint(service: service, transport: "udp", address: socket.localAddress))
        } catch {
            throw ServerError("\(service): cannot bind udp \(address): \(error)")
        }
    }

    private var acceptors: [Acceptor] = []

    /// Routes SIGINT and SIGTERM to a graceful stop (call after ``start()``, before announcing
    /// readiness, so a signal sent right after `ready` is never lost). Tests that run the server
    /// in-process use ``stopHandle`` instead.
    public func handleSignals() {
        self.installSignalHandlers()
    }

    /// Runs the loop until a graceful stop completes.
    /// - Throws: ``ServerError`` if the loop fails.
    public func run() throws(ServerError) {
        do {
            try self.loop.run()
        } catch {
            throw ServerError("event loop failed: \(error)")
        }
    }

    /// A thread-safe way to ask for the same graceful stop as SIGTERM.
    public var stopHandle: StopHandle { StopHandle(inbox: self.shutdownInbox!) }

    private func installSignalHandlers() {
        guard let inbox = self.shutdownInbox else { return }
        for sig in [SIGINT, SIGTERM] {
            // Dispatch signal sources need the default disposition out of the way.
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { inbox.post(sig) }
            source.activate()
            self.signalSources.append(source)
        }
    }

    // MARK: Connections

    func accepted(_ descriptor: Descriptor, from peer: SocketAddress, makeDelegate: () -> ConnectionDelegate) {
        guard !self.shuttingDown else {
            Sys.close(descriptor)
            return
        }
        if self.connections.count >= self.maxConnections {
            // One line, best effort, then close: existing clients never notice.
            _ = Self.maxConnectionsReply.withUnsafeBytes { try? Sys.write(descriptor, $0) }
            Sys.close(descriptor)
            return
        }
        do {
            let connection = try Connection(loop: self.loop, descriptor: descriptor, peer: peer, delegate: nil)
            let delegate = makeDelegate()
            connection.delegate = delegate
            self.connections[ObjectIdentifier(connection)] = connection
            (delegate as? ConnectionGreeter)?.greet(connection)
        } catch {
            self.logger.warning("cannot register a connection", metadata: ["error": "\(error)"])
        }
    }

    func connectionClosed(_ connection: Connection) {
        self.connections.removeValue(forKey: ObjectIdentifier(connection))
        if self.shuttingDown && self.connections.isEmpty { self.finishShutdown() }
    }

    static let maxConnectionsReply: [UInt8] = Array("ERR max connections reached\n".utf8)

    // MARK: Shutdown

    /// Stops accepting, lets every connection flush what it owes, then stops the loop. A
    /// connection that cannot drain in time (a peer that never reads) is cut after 3 s, so the
    /// process exits well within SPEC's 5 s.
    func beginShutdown() {
        guard !self.shuttingDown else { return }
        self.shuttingDown = true
        self.closeListeners()
        if self.connections.isEmpty {
            self.finishShutdown()
            return
        }
        for connection in Array(self.connections.values) { connection.close() }
        if self.connections.isEmpty { return }  // finishShutdown already ran
        self.loop.scheduleTimer(after: .seconds(3)) { [unowned self] in
            for connection in Array(self.connections.values) { connection.abort() }
        }
    }

    private var finished = false

    private func finishShutdown() {
        guard !self.finished else { return }
        self.finished = true
        for source in self.signalSources { source.cancel() }
        if let persistence = self.persistence {
            // Flush, fsync and compact before the loop stops (the log is already durable for
            // everything acknowledged; compaction leaves a fresh database.txt and an empty log).
            persistence.close { [unowned self] in self.loop.stop() }
        } else {
            self.loop.stop()
        }
    }

    private func closeListeners() {
        for listener in self.listeners { listener.close() }
        for socket in self.datagramSockets { socket.close() }
        self.listeners = []
        self.datagramSockets = []
    }
}

/// Asks a running server for a graceful stop, from any thread.
public struct StopHandle: Sendable {
    let inbox: Inbox<CInt>
    public func stop() { self.inbox.post(SIGTERM) }
}

/// Hands a listener's accepted sockets to the server with the service's delegate factory.
final class Acceptor: ListenerDelegate {
    unowned let server: Server
    let makeDelegate: () -> ConnectionDelegate
    weak var listener: Listener?

    init(server: Server, makeDelegate: @escaping () -> ConnectionDelegate) {
        self.server = server
        self.makeDelegate = makeDelegate
    }

    func listener(_ listener: Listener, didAccept descriptor: Descriptor, from peer: SocketAddress) {
        self.server.accepted(descriptor, from: peer, makeDelegate: self.makeDelegate)
    }
}

/// UDP echo: every datagram goes back unchanged.
final class UDPEcho: DatagramDelegate {
    func socket(_ socket: DatagramSocket, didReceive bytes: UnsafeRawBufferPointer, from peer: SocketAddress) {
        socket.send(bytes, to: peer)
    }
}
