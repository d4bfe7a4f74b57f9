// The echo service as a stream session: lines back as sent, and an unterminated last line
// echoed when the peer half-closes.

import Reactor
import Services

/// One echo connection.
final class EchoStream: StreamSession {
    private var service: EchoService

    init(maxLineBytes: Int) { self.service = EchoService(maxLineBytes: maxLineBytes) }

    func receive(_ bytes: UnsafeRawBufferPointer) { self.service.receive(bytes) }

    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult {
        connection.withOutputBuffer { self.service.process(output: &$0, outputLimit: outputLimit) }
    }

    func finishInput(_ connection: Connection) {
        connection.withOutputBuffer { self.service.finishInput(output: &$0) }
    }
}
