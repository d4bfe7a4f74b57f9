// A kv connection: the Reactor's delegate for it, its protocol machine (KVSession, which speaks
// the line protocol or RESP as its first byte decides), and its hold. Replies to a batch that
// mutated are held (the connection is corked) until the mutation is durable: the connection
// records the sequence it waits for and GroupCommit.swift, which keeps the held connections,
// sends them when the log reaches it. Backpressure: the session stops at the output's high-water
// mark (`.outputFull`) and the connection stops reading until it drains.

import Reactor
import Services

/// One kv connection's delegate. Loop thread only.
final class KVConnection: PubSubOutput, ConnectionDelegate, ServedConnection, HeldConnection {
    // The mutable state below is touched at every event on the loop thread, never from two
    // accesses at once: no dynamic exclusivity check (a runtime call each, several per request).
    @exclusivity(unchecked) private var session: KVSession
    /// The connection, from the moment it opens until it closes (cleared then). Not `weak`: a weakly
    /// referenced object keeps its counts in a side table and every retain and release of it takes
    /// the slow path (visible in scripts/callgrind-hotpath.sh's count). The connection owns this
    /// delegate until the close.
    @exclusivity(unchecked) private(set) unowned(unsafe) var connection: Connection?
    /// The same connection for the pub/sub fan-out, used through `_withUnsafeGuaranteedRef`: binding
    /// `connection` to a local retains and releases it, once per delivery (KVConnection+PubSub.swift).
    @exclusivity(unchecked) private(set) var unmanagedConnection: Unmanaged<Connection>?
    /// What commands run against, and the parts behind it this connection reports to (group
    /// commit included). The server keeps them (KVParts) for its whole life and every connection
    /// closes before it ends: no reference counting on the way (a check-and-retain and a release
    /// per use otherwise; group commit is asked twice per durable batch).
    private unowned(unsafe) let groupCommit: GroupCommit
    private let context: CommandContext
    private unowned(unsafe) let data: StoreAdapter
    private unowned(unsafe) let housekeeping: Housekeeping
    private unowned(unsafe) let compaction: CompactionSchedule
    private unowned(unsafe) let control: Control
    unowned(unsafe) let state: ServerState
    private let onClose: (KVConnection) -> Void
    private let clientID: Int
    private let localAddress: String
    /// The received bytes this connection last added to ``Housekeeping/connectionBuffers``.
    @exclusivity(unchecked) private var reportedInput = 0
    /// The unsent bytes this connection last added to it (as the connection reported them).
    @exclusivity(unchecked) private var reportedOutput = 0
    /// Housekeeping's gauge and the state's limit flag, held here: reached through an unowned
    /// reference they cost a retain and a release at every read.
    private let buffers: ByteGauge
    private let memoryRoom: MemoryRoom
    /// The log sequence the held replies wait for (GroupCommit); 0: not held for the log.
    @exclusivity(unchecked) var heldUntil: UInt64 = 0
    /// SAVE ran: replies wait for its compaction (durability alone does not release them).
    @exclusivity(unchecked) var awaitingSave = false
    /// The timeouts of every blocked connection (the blocking command this one waits in may have one).
    private unowned(unsafe) let blockedTimeouts: BlockedTimeouts
    /// The timeout of this connection's wait, while it runs in ``blockedTimeouts``.
    @exclusivity(unchecked) private var blockedTimeout: BlockedTimeouts.Timeout?
    /// When this subscriber's output first passed the pubsub soft limit (0: it is under it).
    @exclusivity(unchecked) var pubSubSoftLimitSince: UInt64 = 0
    /// Runs while this subscriber is over the soft limit (KVConnection+PubSub.swift).
    @exclusivity(unchecked) var softLimitTimer: TimerID?

    /// - Parameter onClose: told once, when the connection has closed (connection accounting).
    init(
        kv: KVParts, configuration: ServerConfiguration, clientID: Int, localAddress: String,
        speaking wireProtocol: KVSession.WireProtocol? = nil, onClose: @escaping (KVConnection) -> Void
    ) {
        self.groupCommit = kv.persistence.groupCommit
        self.context = kv.context
        self.data = kv.data
        self.housekeeping = kv.housekeeping
        self.compaction = kv.compaction
        self.control = kv.control
        self.state = kv.state
        self.blockedTimeouts = kv.blockedTimeouts
        self.onClose = onClose
        self.clientID = clientID
        self.localAddress = localAddress
        self.buffers = kv.housekeeping.connectionBuffers
        self.memoryRoom = kv.state.memoryRoom
        self.session = KVSession(
            speaking: wireProtocol, maxLineBytes: configuration.maxLineBytes, maxValueBytes: configuration.maxValueBytes, clientID: clientID,
            now: SystemClock.wallClock, memoryRoom: kv.state.memoryRoom)
    }

    /// A frame another client published (KVConnection+PubSub.swift).
    override func deliver(_ frame: UnsafeRawBufferPointer, limit: OutputBufferLimit) -> Bool {
        self.deliverFrame(frame, limit: limit)
    }

    // MARK: ConnectionDelegate

    func connectionDidOpen(_ connection: Connection) {
        self.connection = connection
        self.unmanagedConnection = .passUnretained(connection)
        self.session.attach(self)
        var record = ClientRecord(
            id: self.clientID, address: connection.peer.map { "\($0)" } ?? "", localAddress: self.localAddress,
            fd: connection.withUnsafeDescriptor { Int($0) }, connectedAtSeconds: SystemClock.wallClock().seconds)
        // The registry drops these closures in connectionDidClose, while the connection is still
        // closing: they never outlive it (and a weak capture would put the connection's counts in
        // a side table, slowing its every retain and release).
        record.idleSeconds = { [unowned(unsafe) connection] in connection.idleSeconds }
        // Both as last reported (the memory account's figures): input between batches (0 while
        // this connection's own batch runs: its requests are being answered), output at each flush.
        record.bufferedBytes = { [unowned(unsafe) self] in
            (self.reportedInput, self.reportedOutput)
        }
        self.state.clients.register(
            record, kill: { [unowned(unsafe) connection] in connection.close() },
            send: { [unowned(unsafe) connection] bytes in
                // Another connection's command is being answered: this one gets its line at once.
                connection.write(bytes)
                connection.flush()
            })
        self.state.blocking.attach(
            clientID: self.clientID, serve: { [unowned(unsafe) self] key in self.serveBlocked(key) },
            resume: { [unowned(unsafe) self] in self.answerAfterServed() },
            cancel: { [unowned(unsafe) self] reason in self.endWait(reason) })
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.session.receive(bytes)
        self.reportInput(self.session.bufferedByteCount)
        // Buffers count: under an eviction policy, growing input makes room like a write does.
        if self.memoryRoom.isLimited { self.housekeeping.settleMemory() }
        self.answer(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) { self.answer(connection) }

    func connectionDidDrain(_ connection: Connection) {
        self.answer(connection)
        connection.flush()
    }

    /// Keeps this connection's share of the memory account's output part at `bytes` (reported
    /// after each flush, and 0 at the close).
    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {
        self.buffers.bytes += bytes - self.reportedOutput
        self.reportedOutput = bytes
    }

    func connectionDidClose(_ connection: Connection) {
        self.reportInput(0)
        self.groupCommit.drop(self)
        self.state.clients.unregister(id: self.clientID)
        self.state.blocking.detach(clientID: self.clientID)
        self.cancelBlockedTimer()
        self.cancelSoftLimitTimer()
        self.session.release(context: self.context)
        self.connection = nil
        self.unmanagedConnection = nil
        self.onClose(self)
    }

    // MARK: Requests

    /// Answers buffered requests, a batch at a time, until the session needs more input, the
    /// output backlog reaches the high-water mark (the connection then pauses reading and calls
    /// `connectionDidDrain` later), or the session asks to close. A batch that mutated is held
    /// until its last mutation is durable (corked before anything can flush). A peer that
    /// half-closed is answered in full, then closed.
    private func answer(_ connection: Connection) {
        let data = self.data
        while connection.state == .open {
            let before = data.lastMutationSequence
            // While its requests run, their bytes are not counted as input: the memory check counts
            // what each request may add instead (counting both would refuse a value that fits).
            self.reportInput(0)
            let limit = connection.highWaterMark
            // Replies are encoded straight into the connection's output buffer.
            let result = self.session.process(context: self.context, output: &connection.outputBuffer, outputLimit: limit)
            self.reportInput(self.session.bufferedByteCount)
            // As in Redis, a subscriber is never closed for being idle (it may wait long for a message).
            connection.idleTimeoutEnabled = !self.session.isSubscribed
            if self.memoryRoom.isLimited { self.housekeeping.settleMemory() }
            self.control.endCommandBatch()
            let after = data.lastMutationSequence
            if after != before && !self.groupCommit.isDurable(after) {
                connection.cork()
                self.groupCommit.hold(self, until: after)
            }
            if self.compaction.takeSaveRequest() {
                // The compaction flushes and syncs the log first: once it ends, every earlier write
                // is durable as well, so its end releases everything held.
                connection.cork()
                self.groupCommit.holdUntilSaved(self)
            }
            if let timeout = self.session.blockedTimeoutMilliseconds {
                // The last request blocked: the rest of the input waits for the wait to end. A peer
                // that closed is gone (as Redis frees a blocked client whose connection closed).
                if connection.readEOF {
                    connection.close()
                    return
                }
                if timeout > 0 && self.blockedTimeout == nil {
                    self.blockedTimeout = self.blockedTimeouts.add(self.clientID, after: timeout)
                }
                return
            }
            switch result {
            case .close:
                connection.close()
                return
            case .needMoreData:
                if connection.readEOF { connection.close() }
                return
            case .outputFull:
                connection.flush()
                if connection.pendingOutputBytes >= connection.highWaterMark { return }
            }
        }
    }

    // MARK: Blocking (Sources/Services/Blocking.swift)

    /// Serves the blocked command from `key`, which gained items. Once served, its reply goes out
    /// when its pop is durable; input that waited behind it is answered after the other ready keys'
    /// waiters are served (the registry calls ``answerAfterServed()``).
    private func serveBlocked(_ key: [UInt8]) -> BlockedServeResult {
        guard let connection = self.connection, connection.state == .open else { return .notServed }
        let before = self.data.lastMutationSequence
        let result = self.session.serveBlocked(key: key, context: self.context, output: &connection.outputBuffer)
        guard case .served = result else { return result }
        self.cancelBlockedTimer()
        self.holdIfNotDurable(connection, since: before)
        if self.session.bufferedByteCount > 0 || connection.readEOF {
            self.state.blocking.resumeAfterServing(clientID: self.clientID)
        }
        connection.flush()
        return result
    }

    /// The input that waited behind a served wait.
    private func answerAfterServed() {
        guard let connection = self.connection, connection.state == .open else { return }
        self.answer(connection)
        connection.flush()
    }

    /// Ends the wait unserved (its timeout passed, CLIENT UNBLOCK), then answers the input that waited.
    private func endWait(_ reason: UnblockReason) {
        guard let connection = self.connection, connection.state == .open else { return }
        let before = self.data.lastMutationSequence
        self.session.cancelBlocked(reason, context: self.context, output: &connection.outputBuffer)
        self.resume(connection, since: before)
    }

    private func resume(_ connection: Connection, since before: UInt64) {
        self.cancelBlockedTimer()
        self.holdIfNotDurable(connection, since: before)
        // The input that waited, if any.
        if self.session.bufferedByteCount > 0 || connection.readEOF { self.answer(connection) }
        connection.flush()
    }

    /// Holds this connection's output until the log is durable past what it wrote since `before`.
    private func holdIfNotDurable(_ connection: Connection, since before: UInt64) {
        let after = self.data.lastMutationSequence
        if after != before && !self.groupCommit.isDurable(after) {
            connection.cork()
            self.groupCommit.hold(self, until: after)
        }
    }

    private func cancelBlockedTimer() {
        guard let timeout = self.blockedTimeout else { return }
        self.blockedTimeout = nil
        self.blockedTimeouts.remove(timeout)
    }

    /// Keeps this connection's share of the memory account's input part at `bytes`.
    @inline(__always)
    private func reportInput(_ bytes: Int) {
        self.buffers.bytes += bytes - self.reportedInput
        self.reportedInput = bytes
    }

    // MARK: HeldConnection

    /// Sends the replies held back and answers the input that waited meanwhile.
    func sendHeld() {
        // Also while closing: a peer that half-closed gets its held replies before the close ends.
        guard let connection = self.connection else { return }
        connection.flush(uncorking: true)  // corked when it was held: released and written in one call
        // After a durable write nothing is usually left to answer: every reply to a client at
        // `-P 1` went through here, and an empty pass cost a whole batch's setup. Every batch
        // runs to completion unless it filled the output (bytes stay buffered then) or a framing
        // failure closed the connection.
        if connection.state == .open && (self.session.bufferedByteCount > 0 || connection.readEOF) {
            self.answer(connection)
        }
    }

    /// One error line (the protocol's form) instead of the held replies, then the close, since
    /// pipelined replies after it may have seen the rolled-back values.
    func refuseHeld(reason: String) {
        guard let connection = self.connection else { return }
        connection.discardPendingOutput()
        connection.write(self.session.errorLine(reason: reason))
        connection.uncork()
        connection.close()
    }
}
