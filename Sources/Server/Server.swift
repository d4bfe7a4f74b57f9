// The server: binds every configured service to the event loop, accounts for connections where
// they are accepted (the limit, the live set a graceful stop closes, the close notification),
// and runs until a signal asks for a graceful stop. Wiring only: protocols live in Services,
// persistence in Store, sockets in Reactor.

#if canImport(Glibc)
import Glibc  // errno and signal numbers; the calls go through Syscalls.swift
#endif
import Dispatch
import Logging
import Reactor
import Services
import Store

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
    public private(set) var configuration: ServerConfiguration
    private var idleSweep: TimerID?
    public let loop: EventLoop
    let logger: Logger
    private var listeners: [Listener] = []
    private var datagramSockets: [DatagramSocket] = []
    /// The kv service's parts, once ``start()`` opened the store (nil while kv is off).
    private(set) var kv: KVParts?
    private var nextClientID = 1
    /// Every connection accepted and not yet closed, by its delegate: what a graceful stop closes.
    private(set) var connections: [ObjectIdentifier: any ServedConnection] = [:]
    private var shuttingDown = false
    private var signalSources: [DispatchSourceSignal] = []
    private var shutdownInbox: Inbox<CInt>?
    /// Told when the last connection of a graceful stop has closed: the stop ends from here, never
    /// from inside the close (which may come while group commit sends held replies).
    private var lastCloseInbox: Inbox<LastConnectionClosed>?
    struct LastConnectionClosed: Sendable {}
    /// systemd's notify socket, once ``announceReady(to:)`` ran (SystemdNotifier.swift).
    var notifier: SystemdNotifier?
    /// The endpoints bound by ``start()``.
    public private(set) var endpoints: [ListeningEndpoint] = []
    /// The most connections served at once (after fitting the descriptor limit).
    public private(set) var maxConnections: Int
    /// What the loop counts for the metrics port.
    let metrics = ServerMetrics()
    /// Renders /metrics off the loop; nil while the metrics port is off.
    var exporter: MetricsExporter?
    /// Scrapes waiting for the exporter, by id (see Server+Metrics.swift).
    var scrapeWaiters: [Int: ([UInt8]) -> Void] = [:]
    var nextScrapeID = 0
    var scrapeInbox: Inbox<ScrapeDone>?
    /// Whether a peer is on loopback (protected mode); tests stand in a remote peer with it.
    var peerIsLoopback: (SocketAddress) -> Bool = { $0.isLoopback }

    /// - Throws: ``ServerError`` if the loop cannot be created.
    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        let limit = EventLoop.raiseDescriptorLimit()
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
        if self.configuration.kvPort != .off || self.configuration.respPort != .off {
            try self.openStore()
        }
        do {
            try self.bindAll()
            try self.bindMetrics()
        } catch {
            self.closeListeners()
            throw error
        }
        self.startIdleSweep()
        self.shutdownInbox = self.loop.makeInbox { [unowned self] (signal: CInt) in
            self.logger.info("signal received: stopping", metadata: ["signal": "\(signal)"])
            self.beginShutdown()
        }
        self.lastCloseInbox = self.loop.makeInbox { [unowned self] (_: LastConnectionClosed) in self.finishShutdown() }
        return self.endpoints
    }

    /// The idle sweep for `configuration.idleTimeout` (none when zero), replacing any earlier one.
    private func startIdleSweep() {
        if let sweep = self.idleSweep { self.loop.cancelTimer(sweep) }
        self.idleSweep = self.configuration.idleTimeout > .zero ? self.loop.startIdleSweep(timeout: self.configuration.idleTimeout) : nil
    }

    private func bindAll() throws(ServerError) {
        let host = self.configuration.host
        let maxLine = self.configuration.maxLineBytes
        if case .port(let port) = self.configuration.kvPort, let kv = self.kv {
            try self.listen(service: .kv, host: host, port: port, denial: .afterFirstByte) { [unowned self] _, onClose in
                self.nextClientID += 1
                self.kvConnectionsReceived += 1
                let local = self.endpoints.first { $0.service == "kv" }.map { "\($0.address)" } ?? ""
                return KVConnection(kv: kv, configuration: self.configuration, clientID: self.nextClientID,
                                    localAddress: local, onClose: onClose)
            }
        }
        // Redis's protocol and nothing else: the same connections on the same store, only the
        // protocol is not sniffed (an inline first request is Redis's, not the line protocol), and
        // protected mode refuses at once, as redis-server does.
        if case .port(let port) = self.configuration.respPort, let kv = self.kv {
            try self.listen(service: .resp, host: host, port: port, denial: .atOpenRESP) { [unowned self] _, onClose in
                self.nextClientID += 1
                self.kvConnectionsReceived += 1
                let local = self.endpoints.first { $0.service == "resp" }.map { "\($0.address)" } ?? ""
                return KVConnection(kv: kv, configuration: self.configuration, clientID: self.nextClientID,
                                    localAddress: local, speaking: .resp, onClose: onClose)
            }
        }
        if case .port(let port) = self.configuration.echoPort {
            let tcp = try self.listen(service: .echo, host: host, port: port, denial: .atOpen) {
                EchoStream(maxLineBytes: maxLine)
            }
            try self.bindUDP(service: "echo", host: host, preferredPort: tcp.port, askedPort: port) { socket, bytes, peer in
                socket.send(bytes, to: peer)
            }
        }
        if case .port(let port) = self.configuration.timePort {
            let tcp = try self.listen(service: .time, host: host, port: port, denial: .atOpen) {
                TimeStream(maxLineBytes: maxLine)
            }
            try self.bindUDP(service: "time", host: host, preferredPort: tcp.port, askedPort: port) { socket, _, peer in
                var line: [UInt8] = []
                TimeService.appendTimeLine(now: SystemClock.wallClock(), to: &line)
                line.withUnsafeBytes { _ = socket.send($0, to: peer) }
            }
        }
        if case .port(let port) = self.configuration.filePort {
            let root = try Self.openFilesRoot(self.configuration.filesRoot)
            try self.listen(service: .file, host: host, port: port, denial: .atOpen) {
                FileStream(root: root, maxLineBytes: maxLine)
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
        storeConfig.initialLRUClock = Housekeeping.currentLRUClock()
        BuiltInTypes.register()  // before recovery: the log and database.txt may hold collections
        let store: DurableStore
        do {
            store = try DurableStore(configuration: storeConfig, logger: self.logger)
        } catch {
            throw ServerError("data dir \(self.configuration.dataDirectory): \(error)")
        }
        var metricsOn = false
        if case .port = self.configuration.metricsPort { metricsOn = true }
        let state = ServerState(commandStatistics: metricsOn ? self.metrics.commands : nil)
        state.password = self.configuration.requirePassword.map { Array($0.utf8) }
        state.maxMemoryBytes = self.configuration.maxMemoryBytes
        state.evictionPolicy = self.configuration.evictionPolicy
        state.pubsub.keyspaceEvents = self.configuration.keyspaceEvents
        state.pubsub.outputLimits = self.configuration.outputBufferLimits
        let housekeeping = Housekeeping(store: store, loop: self.loop, state: state)
        let compaction = CompactionSchedule(store: store, loop: self.loop, logger: self.logger)
        compaction.savePoints = { [unowned state] in state.savePoints }
        let persistence = Persistence(
            store: store, loop: self.loop, logger: self.logger, housekeeping: housekeeping, compaction: compaction)
        // BCAST invalidations leave once per iteration, before the loop sleeps (Tracking.swift).
        // Unretained: the server keeps the state for the loop's life (a retain and a release per use otherwise).
        let tracking = state.pubsub.tracking
        self.loop.addBeforeSleepHook { [unowned(unsafe) state, unowned(unsafe) tracking] in tracking.endOfIteration(state: state) }
        let control = Control(
            server: self, store: store, state: state, persistence: persistence, housekeeping: housekeeping,
            compaction: compaction)
        if metricsOn {
            persistence.metrics = self.metrics
            compaction.metrics = self.metrics
        }
        let data = StoreAdapter(store: store)
        control.noteMutation = { [unowned data] sequence in data.noteMutation(sequence) }
        state.databases = StoreDatabases(main: data, count: self.configuration.databases)
        // The function libraries the store recovered go back into the interpreter (FunctionLibraries.swift).
        for failure in state.restoreFunctionLibraries(store.functionLibraries.map(\.code), now: SystemClock.wallClock) {
            self.logger.warning("a recovered function library did not load", metadata: ["error": "\(failure)"])
        }
        // A failed write may have taken FUNCTION LOAD/DELETE back in the store: the interpreter follows.
        persistence.groupCommit.afterRollback = { [unowned state, unowned store, logger = self.logger] in
            for failure in state.reconcileFunctionLibraries(store.functionLibraries, now: SystemClock.wallClock) {
                logger.warning("a function library did not load back", metadata: ["error": "\(failure)"])
            }
        }
        self.kv = KVParts(
            data: data, state: state, control: control, persistence: persistence,
            housekeeping: housekeeping, compaction: compaction)
    }

    /// The server's part of INFO (port, uptime, connections, CPU); Control.swift adds the rest.
    func serverFacts() -> ServerFacts {
        var facts = ServerFacts()
        facts.version = ServerConfiguration.version
        facts.processID = Int(Sys.processID())
        facts.tcpPort = self.endpoints.first { $0.service == "kv" || $0.service == "resp" }?.address.port ?? 0
        facts.uptimeSeconds = max(0, SystemClock.wallClock().seconds - self.startedAtSeconds)
        facts.maxClients = self.maxConnections
        facts.totalConnectionsReceived = self.kvConnectionsReceived
        facts.rejectedConnections = self.rejectedConnections
        // INFO runs on the loop thread: the thread's figures are the loop's own time.
        if let (system, user) = Sys.cpuMicroseconds(thread: false) {
            (facts.cpuSystemMicroseconds, facts.cpuUserMicroseconds) = (system, user)
        }
        if let (system, user) = Sys.cpuMicroseconds(thread: true) {
            (facts.cpuSystemMainThreadMicroseconds, facts.cpuUserMainThreadMicroseconds) = (system, user)
        }
        return facts
    }

    /// The connection counts the line protocol's `stats` leads with.
    func connectionStatistics() -> [(name: String, value: String)] {
        [("connections", String(self.connections.count)), ("max_connections", String(self.maxConnections))]
    }

    /// Settings CONFIG GET reports that only the server knows (bind, timeout, proto-max-bulk-len).
    func extraConfiguration() -> [(name: String, value: String)] {
        [("bind", self.configuration.host), ("timeout", String(Int(self.configuration.idleTimeout.components.seconds))),
         ("proto-max-bulk-len", String(self.configuration.maxValueBytes))]
    }

    /// CONFIG SET timeout: the idle sweep restarts with the new timeout.
    func setIdleTimeout(_ timeout: Duration) {
        self.configuration.idleTimeout = timeout
        self.startIdleSweep()
    }

    /// SHUTDOWN: through the signal inbox, so the stop starts after the request's pass, never inside it.
    func requestStop() { self.shutdownInbox?.post(SIGTERM) }

    /// When ``start()`` ran (INFO uptime).
    private var startedAtSeconds = SystemClock.wallClock().seconds
    /// kv connections accepted since start (INFO total_connections_received).
    private var kvConnectionsReceived = 0

    /// Opens (creating if missing) the directory the file service serves.
    static func openFilesRoot(_ path: String) throws(ServerError) -> FileRoot {
        do {
            return try FileRoot(path: path)
        } catch where error.call == "mkdir" {
            throw ServerError("files root \(path): cannot create: \(error)")
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

    /// Listens for a stream service; every peer it accepts goes through
    /// ``accept(service:peer:denial:makeDelegate:)``.
    /// - Parameter denial: when a peer protected mode refuses hears so (nil: the session answers
    ///   the refusal itself, as the metrics port's HTTP 403).
    @discardableResult
    func listen(
        service: ServiceName, host: String, port: Int, denial: DeniedStream.Moment?,
        makeSession: @escaping () -> StreamSession
    ) throws(ServerError) -> SocketAddress {
        try self.listen(service: service, host: host, port: port, denial: denial) { (_: Bool) in makeSession() }
    }

    /// ``listen(service:host:port:denial:makeSession:)`` for a service whose session answers protected
    /// mode itself: `makeSession` hears whether the peer was admitted.
    @discardableResult
    func listen(
        service: ServiceName, host: String, port: Int, denial: DeniedStream.Moment?,
        makeSession: @escaping (_ admitted: Bool) -> StreamSession
    ) throws(ServerError) -> SocketAddress {
        try self.listen(service: service, host: host, port: port, denial: denial) { [unowned self] admitted, onClose in
            StreamHandler(session: makeSession(admitted), loop: self.loop, onClose: onClose)
        }
    }

    /// ``listen(service:host:port:denial:makeSession:)`` for a service with a delegate of its own:
    /// `makeDelegate` hears whether the peer was admitted and what to tell once it has closed.
    @discardableResult
    func listen(
        service: ServiceName, host: String, port: Int, denial: DeniedStream.Moment?,
        makeDelegate: @escaping (_ admitted: Bool, _ onClose: @escaping (any ServedConnection) -> Void) -> any ServedConnection
    ) throws(ServerError) -> SocketAddress {
        let address = try self.address(service: service.label, host: host, port: port)
        do {
            let listener = try Listener(loop: self.loop, address: address) { [unowned self] peer in
                self.accept(service: service, peer: peer, denial: denial, makeDelegate: makeDelegate)
            }
            self.listeners.append(listener)
            self.endpoints.append(ListeningEndpoint(service: service.label, transport: "tcp", address: listener.localAddress))
            return listener.localAddress
        } catch {
            throw ServerError("\(service.label): cannot listen on \(address): \(error)")
        }
    }

    /// Binds UDP on the same port number as the service's TCP listener; when TCP asked the
    /// kernel for any port (0) and that number is taken for UDP, any free UDP port is used.
    func bindUDP(
        service: String, host: String, preferredPort: Int, askedPort: Int,
        receive: @escaping (DatagramSocket, UnsafeRawBufferPointer, SocketAddress) -> Void
    ) throws(ServerError) {
        var address = try self.address(service: service, host: host, port: preferredPort)
        do {
            let socket: DatagramSocket
            // Protected mode: a datagram from a peer it refuses is dropped unanswered (UDP has
            // no connection to refuse, and an answer would make the server a reflector).
            let admitted: (DatagramSocket, UnsafeRawBufferPointer, SocketAddress) -> Void = { [unowned self] socket, bytes, peer in
                guard self.admits(peer) else {
                    self.deniedDatagrams += 1
                    return
                }
                receive(socket, bytes, peer)
            }
            do {
                socket = try DatagramSocket(loop: self.loop, address: address, receive: admitted)
            } catch where askedPort == 0 && error.errno == EADDRINUSE {
                address = address.withPort(0)
                socket = try DatagramSocket(loop: self.loop, address: address, receive: admitted)
            }
            self.datagramSockets.append(socket)
            self.endpoints.append(ListeningEndpoint(service: service, transport: "udp", address: socket.localAddress))
        } catch {
            throw ServerError("\(service): cannot bind udp \(address): \(error)")
        }
    }

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
        for sig in Sys.stopSignals {
            // Dispatch signal sources need the default disposition out of the way.
            Sys.ignoreSignal(sig)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { inbox.post(sig) }
            source.activate()
            self.signalSources.append(source)
        }
    }

    // MARK: Connections

    /// The one place connections are admitted: refused while stopping, answered with one line
    /// past the limit (existing clients never notice), answered with protected mode's DENIED
    /// line if ``admits(_:)`` refuses the peer (or, with no `denial`, by a session that answers the
    /// refusal itself), otherwise served by the service's delegate. Either delegate is in the live
    /// set until its close is reported to ``connectionClosed(_:service:)``, so a refused peer that
    /// never sends its first byte still counts against the limit and is closed by a graceful stop
    /// and the idle sweep.
    private func accept(
        service: ServiceName, peer: SocketAddress, denial: DeniedStream.Moment?,
        makeDelegate: (_ admitted: Bool, _ onClose: @escaping (any ServedConnection) -> Void) -> any ServedConnection
    ) -> ConnectionDelegate? {
        guard !self.shuttingDown else { return nil }
        guard self.connections.count < self.maxConnections else {
            self.rejectedConnections += 1
            self.metrics.refusedConnection(service)
            return RefusedConnection(line: Self.maxConnectionsReply)
        }
        let admitted = self.admits(peer)
        if !admitted {
            self.rejectedConnections += 1
            self.deniedConnections += 1
        }
        let onClose: (any ServedConnection) -> Void = { [unowned self] in self.connectionClosed($0, service: service) }
        let handler: any ServedConnection
        if !admitted, let denial {
            handler = StreamHandler(session: DeniedStream(moment: denial), loop: self.loop, onClose: onClose)
        } else {
            handler = makeDelegate(admitted, onClose)
        }
        self.connections[ObjectIdentifier(handler)] = handler
        // A peer protected mode turns away is served its refusal, but counted as refused.
        self.metrics.opened(service, refused: !admitted)
        return handler
    }

    /// Whether protected mode lets `peer` in: always from loopback; from elsewhere only with
    /// protected mode off or a password set (docs/protocol.md "Authentication"). The password
    /// is the one in force now (CONFIG SET requirepass changes it); only kv has one, so with
    /// a password set echo, time and file serve every peer, as the protected-mode rule reads.
    func admits(_ peer: SocketAddress) -> Bool {
        guard self.configuration.protectedMode, !self.peerIsLoopback(peer) else { return true }
        return self.password != nil
    }

    /// Connections refused at accept, past the limit or by protected mode (INFO rejected_connections).
    public private(set) var rejectedConnections = 0
    /// Connections protected mode refused.
    public private(set) var deniedConnections = 0
    /// UDP datagrams protected mode dropped.
    public private(set) var deniedDatagrams = 0

    private func connectionClosed(_ handler: any ServedConnection, service: ServiceName) {
        self.metrics.closed(service)
        self.connections.removeValue(forKey: ObjectIdentifier(handler))
        // The stop ends once this close is over, as Redis frees clients asynchronously: the close
        // may come while group commit sends held replies, and the end of a stop closes the store.
        if self.shuttingDown && self.connections.isEmpty { self.lastCloseInbox?.post(LastConnectionClosed()) }
    }

    static let maxConnectionsReply: [UInt8] = Array("ERR max connections reached\n".utf8)

    // MARK: Shutdown

    /// Stops accepting, lets every connection flush what it owes, then stops the loop. A
    /// connection that cannot drain in time (a peer that never reads) is cut after 3 s, so the
    /// process exits well within the 5 s README.md promises.
    func beginShutdown() {
        guard !self.shuttingDown else { return }
        self.shuttingDown = true
        self.notifier?.notify("STOPPING=1")
        self.closeListeners()
        if self.connections.isEmpty {
            self.finishShutdown()
            return
        }
        for handler in Array(self.connections.values) { handler.connection?.close() }
        if self.connections.isEmpty { return }  // finishShutdown already ran
        self.loop.scheduleTimer(after: .seconds(3)) { [unowned self] in
            for handler in Array(self.connections.values) { handler.connection?.abort() }
        }
    }

    private var finished = false

    private func finishShutdown() {
        guard !self.finished else { return }
        self.finished = true
        for source in self.signalSources { source.cancel() }
        if let persistence = self.kv?.persistence {
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

/// What the kv service runs on, built once when the store opens: the three things the commands
/// see (data store, server state, server control), and the parts behind them a kv connection
/// talks to directly (group commit, housekeeping, compaction).
struct KVParts {
    let data: StoreAdapter
    let state: ServerState
    let control: Control
    let persistence: Persistence
    let housekeeping: Housekeeping
    let compaction: CompactionSchedule
    /// What sessions run commands against.
    let context: CommandContext
    /// The one timer of every blocked client's timeout (BlockedTimeouts.swift).
    let blockedTimeouts: BlockedTimeouts

    init(
        data: StoreAdapter, state: ServerState, control: Control, persistence: Persistence, housekeeping: Housekeeping,
        compaction: CompactionSchedule
    ) {
        self.data = data
        self.state = state
        self.control = control
        self.persistence = persistence
        self.housekeeping = housekeeping
        self.compaction = compaction
        self.context = CommandContext(store: data, state: state, control: control)
        self.blockedTimeouts = BlockedTimeouts(loop: control.eventLoop) { [unowned state] id in
            _ = state.blocking.unblock(id, reason: .timeout)
        }
    }
}

/// Asks a running server for a graceful stop, from any thread.
public struct StopHandle: Sendable {
    let inbox: Inbox<CInt>
    public func stop() { self.inbox.post(SIGTERM) }
}
