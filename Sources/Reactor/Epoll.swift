// The poller behind the event loop: level-triggered epoll behind a small interface, with an
// interest shadow table so the loop can skip no-op epoll_ctl calls and pick ADD/MOD/DEL.
// It must not know what a connection is: it maps descriptors to 64-bit tokens and back.

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

/// One readiness event, decoded.
struct PollEvent {
    var token: UInt64
    var readable: Bool
    var writable: Bool
}

/// The interface the loop needs from a poller (epoll here; kqueue or io_uring could stand behind it).
protocol PollerBackend {
    /// Starts, changes or stops interest in `fd`; `token` comes back with its events.
    func update(_ fd: Descriptor, from old: Interest?, to new: Interest?, token: UInt64) throws(IOError)
    /// Waits for events (-1: forever, 0: not at all, else at most that many nanoseconds) and hands
    /// each to `body`, at most `maxEvents` of them (fewer if the backend holds fewer); with
    /// level-triggered readiness the rest are reported by a later wait.
    func wait(timeoutNanoseconds: Int64, maxEvents: Int, _ body: (PollEvent) -> Void) throws(IOError)
    /// The poller's own descriptor, readable while it has events to report (so one poller can
    /// watch another), or nil if it has none.
    var descriptor: Descriptor? { get }
    func close()
}

/// Level-triggered epoll, as redis's `ae_epoll.c` and swift-nio use: a handler that leaves data
/// unread (fairness budget) is simply woken again on the next wait.
final class EpollBackend: PollerBackend {
    private let epfd: Descriptor
    private let events: UnsafeMutableBufferPointer<epoll_event>

    /// The epoll instance: readable while it has ready descriptors (epoll(7): an epoll file
    /// descriptor can itself be watched by another epoll instance).
    var descriptor: Descriptor? { self.epfd }

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

    func wait(timeoutNanoseconds: Int64, maxEvents: Int, _ body: (PollEvent) -> Void) throws(IOError) {
        let buffer = UnsafeMutableBufferPointer(rebasing: self.events[0..<max(1, min(maxEvents, self.events.count))])
        let n = timeoutNanoseconds <= 0
            ? try Sys.epoll_wait(self.epfd, events: buffer, timeoutMilliseconds: timeoutNanoseconds < 0 ? -1 : 0)
            : try Sys.epoll_wait(self.epfd, events: buffer, timeoutNanoseconds: timeoutNanoseconds)
        for i in 0..<n {
            let ev = self.events[i]
            // Errors and hang-ups flow through the normal read/write paths, where the failing
            // call reports the real cause (redis ae_epoll.c maps them the same way).
            let failed = ev.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
            body(PollEvent(
                token: ev.data.u64,
                readable: failed || ev.events & EPOLLIN.rawValue != 0,
                writable: failed || ev.events & EPOLLOUT.rawValue != 0))
        }
    }

    func close() { Sys.close(self.epfd) }
}
