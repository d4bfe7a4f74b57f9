// Wires a kv connection (line protocol or RESP, decided by its first byte) to the store through
// Persistence: replies to a batch that mutated are held until the mutation is durable.

import Reactor
import Services

/// One kv connection.
final class KVHandler: ConnectionDelegate {
    private var session: KVSession
    private unowned let server: Server
    private unowned let persistence: Persistence
    private weak var connection: Connection?
    private var inputFinished = false
    /// The mutation this connection's held replies wait for; 0 when nothing is held.
    var waitingSequence: UInt64 = 0

    init(server: Server, persistence: Persistence, clientID: Int) {
        self.server = server
        self.persistence = persistence
        let config = server.configuration
        self.session = KVSession(
            maxLineBytes: config.maxLineBytes, maxValueBytes: config.maxValueBytes, clientID: clientID,
            now: Sys.wallClock)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.connection = connection
        self.session.receive(bytes)
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

    private func pump(_ connection: Connection) {
        pumpRequests(
            connection, inputFinished: &self.inputFinished,
            process: { output, limit in
                let before = self.persistence.lastMutationSequence
                let result = self.session.process(context: self.persistence, output: &output, outputLimit: limit)
                let after = self.persistence.lastMutationSequence
                // Cork before anything can flush: the acknowledgement waits for the log.
                if after != before && !self.persistence.isDurable(after) {
                    connection.cork()
                    self.persistence.hold(self, until: after)
                }
                return result
            },
            finish: { _ in })
    }

    /// The writes these replies acknowledge are durable: send them.
    func releaseHeldReplies() {
        guard let connection = self.connection else { return }
        connection.uncork()
        // Input may have been left unprocessed while output was over the high-water mark.
        if connection.state == .open { self.pump(connection) }
    }

    /// The log refused the writes these replies acknowledge: they were rolled back. The client
    /// gets one error line (the protocol's form) instead of the held replies, then the
    /// connection closes, since pipelined replies after it may have seen the rolled-back values.
    func failHeldReplies(reason: String) {
        guard let connection = self.connection else { return }
        connection.discardPendingOutput()
        connection.write(self.session.errorLine(reason: reason))
        connection.uncork()
        connection.close()
    }
}
