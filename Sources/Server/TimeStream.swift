// The time service as a stream session: request lines answered with the wall clock, and
// `watch` ticks on the stream handler's timer, which is cancelled with the connection.

import Reactor
import Services

/// One time-service connection.
final class TimeStream: StreamSession {
    private var service: TimeService
    private weak var handler: StreamHandler?

    init(maxLineBytes: Int) { self.service = TimeService(maxLineBytes: maxLineBytes) }

    func open(_ connection: Connection, handler: StreamHandler) { self.handler = handler }

    func receive(_ bytes: UnsafeRawBufferPointer) { self.service.receive(bytes) }

    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult {
        let result = connection.withOutputBuffer {
            self.service.process(now: SystemClock.wallClock, output: &$0, outputLimit: outputLimit)
        }
        switch self.service.takeWatchChange() {
        case .none: break
        case .stop: self.handler?.stopTimer()
        case .start(let ms): self.handler?.startTimer(every: .milliseconds(ms))
        }
        return result
    }

    func timerFired(_ connection: Connection) {
        // A watcher that stopped reading gets no more ticks than fit under the high-water mark:
        // ticks are dropped, memory stays bounded.
        guard connection.pendingOutputBytes < connection.highWaterMark else { return }
        connection.withOutputBuffer { TimeService.appendTimeLine(now: SystemClock.wallClock(), to: &$0) }
        connection.flush()
    }
}
