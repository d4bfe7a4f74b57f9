// Serving the other connections from inside a long computation on the loop thread: Redis's
// processEventsWhileBlocked. A Lua script that runs past its time limit calls
// ``EventLoop/serveWhileBusy(skipping:)`` from its interpreter hook, every so many instructions,
// until it ends: each call is one pass over the descriptors ready now, in both lanes, without
// waiting.
//
// What a pass does not do, so that nothing re-enters what is on the stack below it:
// - the connection the computation runs for (`skipping`) is neither read nor flushed: its
//   protocol machine is in the middle of a request, and its output buffer is borrowed;
// - the mailbox (timers, other threads' hand-offs), the before-sleep hooks and datagram sockets
//   wait for the computation to end: they change state (expiry, the log) the computation may be
//   in the middle of;
// - only connections and listeners are dispatched, so new peers are accepted and every other
//   connection is read and answered (what its commands may do then is the server's business:
//   the kv commands answer `-BUSY`), and their replies are written before the pass returns.
// The epoll events go to a buffer of the pass's own: the iteration that is running the
// computation is still walking the pollers' buffers.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

extension EventLoop {
    /// Most events one pass takes from each lane.
    static let busyPassEvents = 64

    /// Reads and answers every other connection that is ready now, accepts new peers, writes the
    /// replies that produced, and returns without waiting (see the file header). Loop thread
    /// only, from inside a handler.
    /// - Parameter skipping: the descriptor of the connection whose handler is running the
    ///   computation: left alone (its events stay pending; level-triggered epoll reports them again).
    public func serveWhileBusy(skipping: CInt) {
        assert(self.inLoopThread)
        var bulkReady = false
        let bulkDescriptor = Int(self.bulkPoller.descriptor.rawValue)
        withUnsafeTemporaryAllocation(of: epoll_event.self, capacity: Self.busyPassEvents) { events in
            for (poller, isBulk) in [(self.poller, false), (self.bulkPoller, true)] {
                guard !isBulk || bulkReady else { continue }
                let epfd = poller.descriptor
                let count = (try? Sys.epoll_wait(epfd, events: events, timeoutMilliseconds: 0)) ?? 0
                for i in 0..<count {
                    let event = events[i]
                    let fd = Int(truncatingIfNeeded: event.data.u64 & 0xFFFF_FFFF)
                    if fd == bulkDescriptor {
                        bulkReady = true
                        continue
                    }
                    guard fd != Int(skipping) else { continue }
                    self.dispatchWhileBusy(event, fd: fd)
                }
            }
        }
        // Replies out, except the skipped connection's (its output is borrowed by its handler).
        let queued = self.pendingFlushes
        self.pendingFlushes.removeAll(keepingCapacity: true)
        for connection in queued {
            if connection.descriptor.rawValue == skipping {
                self.pendingFlushes.append(connection)
            } else {
                connection.flushAfterDispatch()
            }
        }
    }

    private func dispatchWhileBusy(_ event: epoll_event, fd: Int) {
        let generation = UInt32(truncatingIfNeeded: event.data.u64 >> 32)
        let failed = event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        guard let handler = self.liveHandler(fd: fd, generation: generation), handler is Connection || handler is Listener else {
            return
        }
        self.nowStorage.pointee = Sys.monotonicNanoseconds()
        // Re-checked before each call, as the loop's own dispatch does: the first may close it.
        if failed || event.events & EPOLLOUT.rawValue != 0 {
            self.liveHandler(fd: fd, generation: generation)?.handleWritable()
        }
        if failed || event.events & EPOLLIN.rawValue != 0 {
            self.liveHandler(fd: fd, generation: generation)?.handleReadable()
        }
    }
}
