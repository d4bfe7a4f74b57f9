// Timers for the event loop, built on DispatchSourceTimer.
//
// Mechanism (hand-off): a DispatchSourceTimer fires on a private serial Dispatch queue, never on
// the loop thread, so its handler touches no loop state. It only posts a task firing the timer's
// ID to the loop's mailbox (LoopHandle.execute, the one way into the loop from elsewhere). The loop
// drains the mailbox on its own thread and runs the callback there if that ID is still live: a
// timer cancelled after its source fired but before the loop got to it is silently skipped
// (cf. redis AE_DELETED_EVENT_ID). Many idle timeouts are not many sources: see IdleSweeper.

import Dispatch

/// Identifies a scheduled timer for ``EventLoop/cancelTimer(_:)``.
public struct TimerID: Hashable, Sendable {
    let raw: UInt64
}

struct TimerEntry {
    let source: DispatchSourceTimer
    let repeats: Bool
    let callback: () -> Void
    /// When it is next due on the loop's clock (``EventLoop/now``), and its period if it repeats:
    /// what a test harness turning time by hand fires by (EmbeddedConnection.swift).
    var deadline: UInt64 = 0
    var interval: UInt64 = 0
}

extension EventLoop {
    /// Schedules `callback` to run on the loop thread after `delay`, and then every `interval`
    /// if one is given, until cancelled. Loop thread only.
    /// - Parameters:
    ///   - delay: time until the first run.
    ///   - interval: period of later runs, or nil for a one-shot timer.
    ///   - leeway: how late Dispatch may fire it (coalescing saves wake-ups).
    ///   - callback: what runs, on the loop thread.
    /// - Returns: an ID for ``cancelTimer(_:)``.
    @discardableResult
    public func scheduleTimer(
        after delay: Duration, repeating interval: Duration? = nil, leeway: Duration = .milliseconds(1),
        _ callback: @escaping () -> Void
    ) -> TimerID {
        assert(self.inLoopThread)
        let id = self.nextTimerID
        self.nextTimerID += 1
        let source = DispatchSource.makeTimerSource(queue: self.timerQueue)
        let handle = self.handle
        source.setEventHandler { handle.execute { loop in loop.fireTimer(id) } }
        // A loop whose time is turned by hand fires its timers itself: their sources never fire.
        source.schedule(
            deadline: self.timersRunByHand ? .distantFuture : .now() + delay.dispatchInterval,
            repeating: self.timersRunByHand ? .never : interval.map { $0.dispatchInterval } ?? .never,
            leeway: leeway.dispatchInterval)
        self.timerCallbacks[id] = TimerEntry(
            source: source, repeats: interval != nil, callback: callback,
            deadline: self.now &+ UInt64(max(delay.nanoseconds, 0)), interval: UInt64(max(interval?.nanoseconds ?? 0, 0)))
        source.activate()
        return TimerID(raw: id)
    }

    /// Cancels a timer. Its callback will not run after this returns, even if its source has
    /// already fired. Cancelling twice, or a finished one-shot timer, does nothing. Loop thread only.
    public func cancelTimer(_ id: TimerID) {
        assert(self.inLoopThread)
        if let entry = self.timerCallbacks.removeValue(forKey: id.raw) {
            entry.source.cancel()
        }
    }

    /// The number of live timers (for leak checks).
    var activeTimerCount: Int { self.timerCallbacks.count }

    func fireTimer(_ id: UInt64) {
        guard let entry = self.timerCallbacks[id] else { return }  // cancelled meanwhile
        if !entry.repeats {
            self.timerCallbacks.removeValue(forKey: id)
            entry.source.cancel()
        }
        entry.callback()
    }
}

extension Duration {
    var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = self.components
        let ns = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return .nanoseconds(Int(clamping: max(0, ns)))
    }

    /// Whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product + attoseconds / 1_000_000_000
    }
}
