// A graceful stop: stop accepting, let every connection write what it has queued, then return
// from run(). Asked for on the loop thread, through a LoopHandle from any other, or by a signal
// (SIGINT, SIGTERM) watched by a Dispatch signal source, which only posts to the loop's mailbox:
// nothing runs in a signal handler.

import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension EventLoop {
    /// Stops gracefully: closes every listener and datagram socket (no new peers), closes every
    /// connection once its queued output is written (``Connection/close()``; delegates hear
    /// ``ConnectionDelegate/connectionDidClose(_:)``), and makes ``run()`` return once the last
    /// connection is gone, or once `grace` has passed (the stragglers, a peer that never reads,
    /// are then aborted). Timers stay scheduled: cancel them in a delegate if they matter.
    /// Loop thread only.
    public func stopGracefully(within grace: Duration = .seconds(10)) {
        assert(self.inLoopThread)
        var connections: [Connection] = []
        self.forEachHandler { handler in
            switch handler {
            case let listener as Listener: listener.close()
            case let socket as DatagramSocket: socket.close()
            case let connection as Connection: connections.append(connection)
            default: break
            }
        }
        for connection in connections { connection.close() }
        let drain = GracefulDrain()
        drain.deadline = self.scheduleTimer(after: grace) { [unowned self] in
            guard !drain.done else { return }
            drain.done = true
            var stragglers: [Connection] = []
            self.forEachHandler { if let connection = $0 as? Connection { stragglers.append(connection) } }
            for connection in stragglers { connection.abort() }
            self.stop()
        }
        // Checked after every iteration until done: cheap next to the connections it waits for.
        self.addBeforeSleepHook { [unowned self] in
            guard !drain.done else { return }
            var open = false
            self.forEachHandler { if $0 is Connection { open = true } }
            guard !open else { return }
            drain.done = true
            if let deadline = drain.deadline { self.cancelTimer(deadline) }
            self.stop()
        }
        self.handle.wake()  // the hook must run even if nothing else happens
    }

    /// Stops the loop gracefully (``stopGracefully(within:)``) when the process gets one of
    /// `signals`. Their default action (ending the process) is turned off for the whole process
    /// (`SIG_IGN`), and a Dispatch signal source watches each; the stop is posted to the loop.
    /// Keep the returned watch for as long as the signals should stop the loop. Any thread.
    public func stopGracefullyOnSignals(_ signals: [CInt] = [SIGINT, SIGTERM], within grace: Duration = .seconds(10)) -> SignalWatch {
        let handle = self.handle
        return SignalWatch(signals: signals) { handle.stopGracefully(within: grace) }
    }
}

extension LoopHandle {
    /// ``EventLoop/stopGracefully(within:)`` posted to the loop. Safe from any thread.
    public func stopGracefully(within grace: Duration = .seconds(10)) {
        self.execute { loop in loop.stopGracefully(within: grace) }
    }
}

/// A graceful stop in progress: loop thread only.
private final class GracefulDrain {
    var done = false
    var deadline: TimerID?
}

/// Signals being watched (``EventLoop/stopGracefullyOnSignals(_:within:)``). The watch ends at
/// ``cancel()`` or when the last reference goes; the signals stay ignored.
public final class SignalWatch: @unchecked Sendable {
    // Written once in init, then only cancelled: Dispatch sources may be cancelled from any thread.
    private let sources: [any DispatchSourceSignal]

    init(signals: [CInt], action: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "reactor.signals")
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler(handler: action)
            source.activate()
            return source
        }
    }

    /// Stops watching.
    public func cancel() { for source in self.sources { source.cancel() } }

    deinit { self.cancel() }
}
