// Binds a protocol state machine to a reactor connection: bytes in, replies out, with the
// machine's `.outputFull` and the connection's high-water mark forming the backpressure loop,
// and a half-closed peer still answered in full before the close.

import Reactor
import Services

/// What a stream service looks like to the wiring.
protocol SessionMachine {
    mutating func receive(_ bytes: UnsafeRawBufferPointer)
    mutating func process(output: inout [UInt8], outputLimit: Int) -> ProcessResult
    /// The peer sent its last byte: answer what remains (e.g. an unterminated last line).
    mutating func finishInput(output: inout [UInt8])
}

extension EchoService: SessionMachine {}

/// One connection's delegate: feeds its machine and writes what the machine produces.
final class SessionHandler<Machine: SessionMachine>: ConnectionDelegate {
    private var machine: Machine
    private unowned let server: Server
    private var inputFinished = false

    init(machine: Machine, server: Server) {
        self.machine = machine
        self.server = server
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        self.machine.receive(bytes)
        self.pump(connection)
    }

    func connectionDidReadEOF(_ connection: Connection) {
        self.pump(connection)
    }

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
            process: { self.machine.process(output: &$0, outputLimit: $1) },
            finish: { self.machine.finishInput(output: &$0) })
    }
}

/// Processes buffered requests until the machine needs more input, the output backlog reaches
/// the high-water mark (the connection then pauses reading and calls `connectionDidDrain`
/// later), or the machine asks to close. A peer that half-closed is answered in full, then closed.
func pumpRequests(
    _ connection: Connection, inputFinished: inout Bool,
    process: (inout [UInt8], Int) -> ProcessResult, finish: (inout [UInt8]) -> Void
) {
    while connection.state == .open {
        let limit = connection.highWaterMark
        let result = connection.withOutputBuffer { process(&$0, limit) }
        switch result {
        case .close:
            connection.close()
            return
        case .needMoreData:
            if connection.readEOF && !inputFinished {
                inputFinished = true
                connection.withOutputBuffer { finish(&$0) }
                connection.close()
            }
            return
        case .outputFull:
            connection.flush()
            if connection.pendingOutputBytes >= connection.highWaterMark { return }
        }
    }
}
