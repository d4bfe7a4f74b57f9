// A kv connection (line protocol or RESP, decided by its first byte) as a stream session, wired
// to the store through Persistence: replies to a batch that mutated are held (the connection
// is corked) until the mutation is durable, and this session is the DurabilityWaiter told when.

import Reactor
import Services

/// One kv connection.
final class KVStream: StreamSession, DurabilityWaiter {
    // The mutable state below is touched at every event on the loop thread, never from two
    // accesses at once: no dynamic exclusivity check (~100 instructions each, several per request).
    @exclusivity(unchecked) private var session: KVSession
    private unowned let persistence: Persistence
    /// The handler owning this session, from open to close (cleared in ``closed()``). Not `weak`: a
    /// weakly referenced object keeps its counts in a side table, and every retain and release of it
    /// then takes the slow path (~6% of the instructions per request at -P 1). The handler owns
    /// this session, so it outlives every call that reaches it through here.
    @exclusivity(unchecked) private unowned(unsafe) var handler: StreamHandler?
    private let clientID: Int
    /// SAVE ran: replies wait for its compaction (durability alone does not release them).
    @exclusivity(unchecked) private var awaitingSave = false
    private let localAddress: String
    /// The received bytes this connection last added to ``Persistence/connectionBuffers``.
    @exclusivity(unchecked) private var reportedInput = 0
    /// The unsent bytes this connection last added to it (as the connection reported them).
    @exclusivity(unchecked) private var reportedOutput = 0
    /// Persistence's gauge and limit flag, held here: reached through the unowned `persistence`
    /// they cost a retain and a release at every read.
    private let buffers: ByteGauge
    private let memoryRoom: MemoryRoom

    init(persistence: Persistence, configuration: ServerConfiguration, clientID: Int, localAddress: String) {
        self.persistence = persistence
        self.clientID = clientID
        self.localAddress = localAddress
        self.buffers = persistence.connectionBuffers
        self.memoryRoom = persistence.memoryRoom
        self.session = KVSession(
            maxLineBytes: configuration.maxLineBytes, maxValueBytes: configuration.maxValueBytes, clientID: clientID,
            now: SystemClock.wallClock, memoryRoom: persistence.memoryRoom)
    }

    func open(_ connection: Connection, handler: StreamHandler) {
        self.handler = handler
        var record = ClientRecord(
            id: self.clientID, address: connection.peer.map { "\($0)" } ?? "", localAddress: self.localAddress,
            fd: connection.withUnsafeDescriptor { Int($0) }, connectedAtSeconds: SystemClock.wallClock().seconds)
        // The registry drops these closures in ``closed()``, while the connection is still closing:
        // they never outlive it (and a weak capture would put the connection's counts in a side
        // table, slowing its every retain and release).
        record.idleSeconds = { [unowned(unsafe) connection] in connection.idleSeconds }
        // Both as last reported (the memory account's figures): input between batches (0 while
        // this connection's own batch runs: its requests are being answered), output at each flush.
        record.bufferedBytes = { [unowned(unsafe) self] in
            (self.reportedInput, self.reportedOutput)
        }
        self.persistence.clients.register(
            record, kill: { [unowned(unsafe) connection] in connection.close() },
            send: { [unowned(unsafe) connection] bytes in
                // Another connection's command is being answered: this one gets its line at once.
                connection.write(bytes)
                connection.flush()
            })
    }

    func receive(_ bytes: UnsafeRawBufferPointer) {
        self.session.receive(bytes)
        self.reportInput(self.session.bufferedByteCount)
        // Buffers count: under an eviction policy, growing input makes room like a write does.
        if self.memoryRoom.isLimited { self.persistence.settleMemory() }
    }

    /// Keeps this connection's share of the memory account's output part at `bytes`.
    func outputBacklogChanged(_ bytes: Int) {
        self.buffers.bytes += bytes - self.reportedOutput
        self.reportedOutput = bytes
    }

    /// Keeps this connection's share of the memory account's input part at `bytes`.
    private func reportInput(_ bytes: Int) {
        self.buffers.bytes += bytes - self.reportedInput
        self.reportedInput = bytes
    }

    func process(_ connection: Connection, outputLimit limit: Int) -> ProcessResult {
        // One strong reference for the whole batch: each use of the unowned property costs a
        // check-and-retain and a release (seven of them per batch).
        let persistence = self.persistence
        let before = persistence.lastMutationSequence
        // While its requests run, their bytes are not counted as input: the memory check counts
        // what each request may add instead (counting both would refuse a value that fits).
        self.reportInput(0)
        let result = connection.withOutputBuffer { output in
            self.session.process(context: persistence, output: &output, outputLimit: limit)
        }
        self.reportInput(self.session.bufferedByteCount)
        if self.memoryRoom.isLimited { persistence.settleMemory() }
        persistence.endCommandBatch()
        let after = persistence.lastMutationSequence
        // Cork before anything can flush: the acknowledgement waits for the log.
        if after != before && !persistence.isDurable(after) {
            connection.cork()
            persistence.hold(self, until: after)
        }
        if persistence.takeSaveRequest() {
            // The compaction flushes and syncs the log first: once it ends, every earlier write is
            // durable as well, so its end releases everything held.
            connection.cork()
            self.awaitingSave = true
            persistence.holdUntilSaved(self)
        }
        return result
    }

    /// Every batch runs to completion in ``process(_:outputLimit:)`` unless it filled the output
    /// (bytes stay buffered then) or a framing failure closes the connection there: with nothing
    /// buffered, a pass has nothing to do.
    var hasUnansweredInput: Bool { self.session.bufferedByteCount > 0 }

    func closed() {
        self.reportInput(0)
        self.persistence.forget(self)
        self.persistence.clients.unregister(id: self.clientID)
        self.session.release(context: self.persistence)
        self.handler = nil
    }

    // MARK: DurabilityWaiter

    /// The writes these replies acknowledge are durable: send them.
    func durable() {
        guard !self.awaitingSave else { return }
        self.handler?.resume()
    }

    /// The compaction SAVE started has finished: send its reply and what follows.
    func saved() {
        self.awaitingSave = false
        self.handler?.resume()
    }

    /// The log refused the writes these replies acknowledge: they were rolled back. The client
    /// gets one error line (the protocol's form) instead of the held replies, then the
    /// connection closes, since pipelined replies after it may have seen the rolled-back values.
    func failed(reason: String) {
        guard let connection = self.handler?.connection else { return }
        connection.discardPendingOutput()
        connection.write(self.session.errorLine(reason: reason))
        connection.uncork()
        connection.close()
    }
}
