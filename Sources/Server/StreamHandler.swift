// The connection delegate the simple stream services share (echo, time, file, the metrics
// port's HTTP, protected mode's refusal): reads go to the session, its replies go out, with the
// session's `.outputFull` and the connection's high-water mark forming the backpressure loop, a
// half-closed peer answered in full before the close, and the one timer a session may ask for
// cancelled when the connection closes. What differs between them (file's sendfile, time's
// ticks, a scrape rendered off the loop) lives in their StreamSession. kv connections have a
// delegate of their own (KVConnection.swift).

import Reactor
import Services

/// A connection's delegate as the server keeps it until the close (what a graceful stop closes).
protocol ServedConnection: ConnectionDelegate {
    /// The connection, from its open until its close.
    var connection: Connection? { get }
}

/// A service as the stream handler drives it. Loop thread only.
protocol StreamSession: AnyObject {
    /// The connection is open: say a greeting, or keep `handler` to call back later (a session
    /// that waits for work off the loop calls ``StreamHandler/resume()``). Default: nothing.
    func open(_ connection: Connection, handler: StreamHandler)
    /// Buffers received bytes.
    func receive(_ bytes: UnsafeRawBufferPointer)
    /// Answers buffered requests into `connection` until more input is needed, its backlog
    /// (``Connection/pendingOutputBytes``) reaches `outputLimit`, or the session is over.
    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult
    /// The peer sent its last byte and every complete request is answered: answer what
    /// remains (an unterminated last line). Default: nothing.
    func finishInput(_ connection: Connection)
    /// The timer asked for with ``StreamHandler/startTimer(every:)`` fired. Default: nothing.
    func timerFired(_ connection: Connection)
    /// The connection's unsent output is now `bytes` (the connection reports changes after
    /// each flush, and 0 at the close). Default: nothing.
    func outputBacklogChanged(_ bytes: Int)
    /// The connection closed: let go of what waits for it. Default: nothing.
    func closed()
    /// The session waits for work off the loop before it can answer the rest (a scrape being
    /// rendered): a peer's EOF is not acted on until it calls ``StreamHandler/resume()``. Default: false.
    var isWaiting: Bool { get }
}

extension StreamSession {
    func open(_ connection: Connection, handler: StreamHandler) {}
    func finishInput(_ connection: Connection) {}
    func timerFired(_ connection: Connection) {}
    func outputBacklogChanged(_ bytes: Int) {}
    func closed() {}
    var isWaiting: Bool { false }
}

/// One stream connection's delegate, whatever its service.
final class StreamHandler: ServedConnection {
    let session: StreamSession
    /// The connection, from the moment it opens until it closes (cleared then). Not `weak`: a weakly
    /// referenced object keeps its counts in a side table and every retain and release of it takes
    /// the slow path. The connection owns this handler (its delegate) until the close.
    @exclusivity(unchecked) private(set) unowned(unsafe) var connection: Connection?
    private unowned let loop: EventLoop
    private let onClose: (StreamHandler) -> Void
    // Loop thread only, read at every event: no dynamic exclusivity check (a runtime call each).
    @exclusivity(unchecked) private var inputFinished = false
    @exclusivity(unchecked) private var timer: TimerID?

    /// - Parameters:
    ///   - session: the service's state for this connection.
    ///   - loop: where the session's timer runs.
    ///   - onClose: told once, when the connection has closed (connection accounting).
    init(session: StreamSession, loop: EventLoop, onClose: @escaping (StreamHandler) -> Void) {
        self.session = session
        self.loop = loop
        self.onClose = onClose
    }

    func connectionDidOpen(_ connection: Connection) {
        self.connection = connection
        self.session.open(connection, handler: self)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.session.receive(bytes)
        self.pump(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) { self.pump(connection) }

    func connectionDidDrain(_ connection: Connection) {
        self.pump(connection)
        connection.flush()
    }

    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {
        self.session.outputBacklogChanged(bytes)
    }

    func connectionDidClose(_ connection: Connection) {
        self.stopTimer()
        self.session.closed()
        self.connection = nil
        self.onClose(self)
    }

    /// Sends output the session held back (``Connection/uncork()``) and carries on with input
    /// left waiting meanwhile.
    func resume() {
        guard let connection = self.connection else { return }
        connection.uncork()
        if connection.state == .open { self.pump(connection) }
    }

    /// Calls the session's ``StreamSession/timerFired(_:)`` every `interval` until
    /// ``stopTimer()`` or the close, replacing any timer started before.
    func startTimer(every interval: Duration) {
        self.stopTimer()
        guard self.connection?.state == .open else { return }
        self.timer = self.loop.scheduleTimer(after: interval, repeating: interval) { [weak self] in
            guard let self, let connection = self.connection, connection.state == .open else { return }
            self.session.timerFired(connection)
        }
    }

    /// Cancels the session's timer, if any.
    func stopTimer() {
        if let timer = self.timer {
            self.loop.cancelTimer(timer)
            self.timer = nil
        }
    }

    /// Processes buffered requests until the session needs more input, the output backlog
    /// reaches the high-water mark (the connection then pauses reading and calls
    /// `connectionDidDrain` later), or the session asks to close. A peer that half-closed is
    /// answered in full, then closed.
    private func pump(_ connection: Connection) {
        while connection.state == .open {
            switch self.session.process(connection, outputLimit: connection.highWaterMark) {
            case .close:
                connection.close()
                return
            case .needMoreData:
                if connection.readEOF && !self.inputFinished && !self.session.isWaiting {
                    self.inputFinished = true
                    self.session.finishInput(connection)
                    connection.close()
                }
                return
            case .outputFull:
                connection.flush()
                if connection.pendingOutputBytes >= connection.highWaterMark { return }
            }
        }
    }
}

/// Answers a peer over the connection limit with one line, then closes.
final class RefusedConnection: ConnectionDelegate {
    private let line: [UInt8]

    init(line: [UInt8]) { self.line = line }

    func connectionDidOpen(_ connection: Connection) {
        connection.write(self.line)
        connection.close()
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
}
