// Wires the time service to connections and UDP: request lines answered with the wall clock,
// and `watch` ticks driven by a loop timer owned by the connection and cancelled with it.

import Reactor
import Services

/// One time-service connection.
final class TimeHandler: ConnectionDelegate {
    private var service: TimeService
    private unowned let server: Server
    private var timer: TimerID?
    private var inputFinished = false

    init(server: Server, maxLineBytes: Int) {
        self.server = server
        self.service = TimeService(maxLineBytes: maxLineBytes)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.service.receive(bytes)
        self.pump(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) { self.pump(connection) }

    func connectionDidDrain(_ connection: Connection) {
        self.pump(connection)
        connection.flush()
    }

    func connectionDidClose(_ connection: Connection) {
        self.cancelTimer(connection.loop)
        self.server.connectionClosed(connection)
    }

    private func pump(_ connection: Connection) {
        pumpRequests(
            connection, inputFinished: &self.inputFinished,
            process: { self.service.process(now: Sys.wallClock, output: &$0, outputLimit: $1) },
            finish: { _ in })
        switch self.service.takeWatchChange() {
        case .none:
            break
        case .stop:
            self.cancelTimer(connection.loop)
        case .start(let ms):
            self.cancelTimer(connection.loop)
            guard connection.state == .open else { return }
            let interval = Duration.milliseconds(ms)
            self.timer = connection.loop.scheduleTimer(after: interval, repeating: interval) { [weak connection] in
                guard let connection, connection.state == .open else { return }
                // A watcher that stopped reading gets no more ticks than fit under the high-water
                // mark: ticks are dropped, memory stays bounded.
                guard connection.pendingOutputBytes < connection.highWaterMark else { return }
                connection.withOutputBuffer { TimeService.appendTimeLine(now: Sys.wallClock(), to: &$0) }
                connection.flush()
            }
        }
    }

    private func cancelTimer(_ loop: EventLoop) {
        if let timer = self.timer {
            loop.cancelTimer(timer)
            self.timer = nil
        }
    }
}

/// UDP time: any datagram gets one datagram back with the time line.
final class UDPTime: DatagramDelegate {
    func socket(_ socket: DatagramSocket, didReceive bytes: UnsafeRawBufferPointer, from peer: SocketAddress) {
        var line: [UInt8] = []
        TimeService.appendTimeLine(now: Sys.wallClock(), to: &line)
        socket.send(line, to: peer)
    }
}
