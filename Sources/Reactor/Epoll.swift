// The poller behind the event loop: level-triggered epoll, with an interest shadow table so the
// loop can skip no-op epoll_ctl calls and pick ADD/MOD/DEL. It must not know what a connection
// is: it maps descriptors to 64-bit tokens and back. The loop reads the events a wait fetched
// straight from its buffer (EventLoop.dispatch): no callback per event.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// What a registration wants to hear about.
struct Interest: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    init(rawValue: UInt8) { self.rawValue = rawValue }
    static let read = Interest(rawValue: 1)
    static let write = Interest(rawValue: 2)

    /// The one place interest maps to EPOLL* bits. EPOLLRDHUP is not asked for: a half-close is
    /// seen as `read` returning 0, which the read path handles in order with the data before it.
    var epollEvents: UInt32 {
        var bits: UInt32 = 0
        if self.contains(.read) { bits |= EPOLLIN.rawValue }
        if self.contains(.write) { bits |= EPOLLOUT.rawValue }
        return bits
    }
}

/// Level-triggered epoll, as redis's `ae_epoll.c` and swift-nio use: a handler that leaves data
/// unread (fairness budget) is simply woken again on the next wait.
final class Epoll {
    private let epfd: Descriptor
    /// What the last ``wait(timeoutNanoseconds:maxEvents:)`` fetched, valid until the next.
    let events: UnsafeMutableBufferPointer<epoll_event>

    /// The epoll instance: readable while it has ready descriptors (epoll(7): an epoll file
    /// descriptor can itself be watched by another epoll instance).
    var descriptor: Descriptor { self.epfd }

    init(maxEventsPerWait: Int = 1024) throws(IOError) {
        self.epfd = try Sys.epoll_create1()
        self.events = .allocate(capacity: maxEventsPerWait)
        self.events.initialize(repeating: epoll_event())
    }

    deinit { self.events.deallocate() }

    func update(_ fd: Descriptor, from old: Interest?, to new: Interest?, token: UInt64) throws(IOError) {
        switch (old, new) {
        case (nil, nil):
            return
        case (nil, let new?):
            try Sys.epoll_ctl(self.epfd, op: EPOLL_CTL_ADD, fd: fd, events: new.epollEvents, data: token)
        case (_?, nil):
            // Since Linux 2.6.9 the event argument of EPOLL_CTL_DEL may be anything.
            try Sys.epoll_ctl(self.epfd, op: EPOLL_CTL_DEL, fd: fd, events: 0, data: 0)
        case (let old?, let new?):
            if old == new { return }
            try Sys.epoll_ctl(self.epfd, op: EPOLL_CTL_MOD, fd: fd, events: new.epollEvents, data: token)
        }
    }

    /// Waits for events (-1: forever, 0: not at all, else at most that many nanoseconds) and
    /// fetches at most `maxEvents` of them into ``events`` (fewer if the buffer holds fewer);
    /// with level-triggered readiness the rest are reported by a later wait.
    /// - Returns: how many were fetched (0 on EINTR).
    func wait(timeoutNanoseconds: Int64, maxEvents: Int) throws(IOError) -> Int {
        let buffer = UnsafeMutableBufferPointer(rebasing: self.events[0..<max(1, min(maxEvents, self.events.count))])
        return timeoutNanoseconds <= 0
            ? try Sys.epoll_wait(self.epfd, events: buffer, timeoutMilliseconds: timeoutNanoseconds < 0 ? -1 : 0)
            : try Sys.epoll_wait(self.epfd, events: buffer, timeoutNanoseconds: timeoutNanoseconds)
    }

    func close() { Sys.close(self.epfd) }
}
