// Removing an inbox: a loop that makes a channel per task (a name lookup, a job handed to a
// worker) must be able to drop it again, or its handlers pile up for the loop's lifetime.

extension EventLoop {
    /// Removes `inbox`: its handler, and everything the handler captured, is released at once,
    /// and messages posted to it afterwards (or posted before and not yet delivered) are
    /// dropped. Removing it twice does nothing. Loop thread only.
    public func removeInbox<Message>(_ inbox: Inbox<Message>) {
        assert(self.inLoopThread)
        self.inboxHandlers.removeValue(forKey: inbox.id)?.clear()
    }

    /// The number of inboxes not removed (for leak checks).
    var inboxCount: Int { self.inboxHandlers.count }
}
