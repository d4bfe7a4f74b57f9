// Waiting for another thread's hand-off before polling the descriptors again. A before-sleep hook
// that knows a post is coming soon (a disk sync running on another thread, whose result comes
// back through an inbox) and that nothing this iteration served needs the loop meanwhile (its
// requests all wait for that result) may ask the next wait to wait for the post first, for a
// bounded time: what arrives on the descriptors meanwhile piles up in their sockets and is read
// in one iteration after it, instead of the loop waking for every few arrivals, as a server that
// blocks in the disk call would read them. A descriptor's event waits at most the bound.
// The wait watches the wake-up eventfd alone, through an epoll instance of its own (epoll_pwait2
// takes a timeout in nanoseconds): any post ends it (a timer, a stop request), and it never
// outlasts the deadline ``EventLoop/wakeNoLaterThan(_:)`` set.

extension EventLoop {
    /// Has the next wait first wait for a post to the mailbox alone (``Inbox/post(_:)``,
    /// ``LoopHandle/execute(_:)``, a timer), until `deadline` at the latest (CLOCK_MONOTONIC
    /// nanoseconds, as ``now``), leaving every descriptor unread meanwhile; then it polls as
    /// usual. Applies to the next wait only; the earliest deadline asked for wins. Loop thread only.
    public func waitForPostFirst(noLaterThan deadline: UInt64) {
        assert(self.inLoopThread)
        self.postWaitDeadline = self.postWaitDeadline == 0 ? deadline : min(self.postWaitDeadline, deadline)
    }

    /// The wait ``waitForPostFirst(noLaterThan:)`` asked for, bounded by the next wait's own
    /// deadline. Returns at once when a post is already pending (the eventfd stays readable for
    /// the wait after it, which then returns at once and runs the mailbox).
    func waitForPost() {
        let deadline = min(self.postWaitDeadline, self.wakeDeadline)
        self.postWaitDeadline = 0
        let now = Sys.monotonicNanoseconds()
        guard deadline > now, let poller = self.makeMailboxPoller() else { return }
        // EINTR returns 0 events: the loop's own wait follows either way.
        _ = try? poller.wait(timeoutNanoseconds: Int64(deadline - now), maxEvents: 1)
    }

    /// The mailbox's own epoll instance; nil if it cannot be made (the loop then does not wait).
    private func makeMailboxPoller() -> Epoll? {
        if let poller = self.mailboxPoller { return poller }
        guard let poller = try? Epoll(maxEventsPerWait: 1) else { return nil }
        do {
            try poller.update(self.handle.wakeFD, from: nil, to: .read, token: 0)
        } catch {
            poller.close()
            return nil
        }
        self.mailboxPoller = poller
        return poller
    }
}
