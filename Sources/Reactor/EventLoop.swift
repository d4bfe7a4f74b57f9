// The event loop: one thread, level-triggered epoll, every registered descriptor dispatched to
// its handler, and an eventfd through which other threads (timers, background fsync) hand work
// back. Nothing here parses bytes or knows a protocol. Loop state is touched only by the thread
// inside `run()`; the `LoopHandle` mailbox is the one thing other threads may use.
//
// Fairness: descriptors sit in one of two lanes, each its own epoll instance. The priority lane
// holds listeners, the wake-up eventfd, and connections that take little per turn (every new
// connection starts there); the bulk lane holds connections that had more to give than one
// small turn takes (a peer pipelining thousands of requests), and its epoll descriptor is itself
// watched by the priority lane. Each iteration serves every ready priority descriptor, then at
// most `bulkEventsPerIteration` (64) bulk ones within about 5 ms (epoll's level-triggered ready list
// rotates them), so a newcomer waits for one bounded slice of bulk work however many peers
// flood, never for a full round over all of them. Connections move lanes themselves
// (Connection.handleReadable).
//
// Replies produced while reading go out after the whole batch has been dispatched (both lanes),
// before the before-sleep hooks: one write per connection per iteration, and a client's replies
// arrive together.

import CLinux
import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something the loop dispatches readiness to (listeners, connections, datagram sockets).
protocol EventHandler: AnyObject {
    /// The descriptor is readable, or has an error or hang-up pending (a read will tell which).
    func handleReadable()
    /// The descriptor is writable, or has an error pending.
    func handleWritable()
}

/// A single-threaded epoll event loop.
///
/// Create it on any thread, set it up, then call ``run()`` on the thread that will own it; every
/// other method must be called on that thread (or before `run`), except through ``handle``.
///
/// ```swift
/// let loop = try EventLoop()
/// let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: 0)) { peer in
///     MyProtocolHandler()   // a ConnectionDelegate; return nil to refuse the peer
/// }
/// try loop.run()
/// ```
public final class EventLoop {
    struct Slot {
        var generation: UInt32 = 0
        var interest: Interest? = nil
        var handler: EventHandler? = nil
        var lane: Lane = .priority
    }

    /// Which epoll instance a descriptor is registered with (see the file header).
    enum Lane: Sendable {
        /// Served first, every iteration: listeners, the wake-up, connections with little to do.
        case priority
        /// Served after the priority lane, a bounded slice per iteration: connections with a backlog.
        case bulk
    }

    /// The loop's logger (discards by default).
    let logger: Logger
    /// The thread-safe side of the loop: post work or stop it from any thread.
    public let handle: LoopHandle
    /// A buffer every read on this loop may use for the duration of one handler call: reads go
    /// here first, so an idle connection owns no read buffer at all.
    let readBuffer: UnsafeMutableRawBufferPointer

    let poller: Epoll
    /// The next wait's latest wake-up (``wakeNoLaterThan(_:)``), or `.max`.
    @exclusivity(unchecked) var wakeDeadline: UInt64 = .max
    /// Until when the next wait first waits for a post alone (EventLoop+PostWait.swift); 0: it does not.
    @exclusivity(unchecked) var postWaitDeadline: UInt64 = 0
    /// An epoll instance holding only the wake-up eventfd, made on first use (EventLoop+PostWait.swift).
    var mailboxPoller: Epoll?
    /// Whether this iteration's dispatch wrote output (replies) that no cork held back: its
    /// end-of-dispatch flush sent some (``Connection/cork()``).
    @exclusivity(unchecked) public internal(set) var dispatchWroteOutput = false
    /// The bulk lane's epoll instance, registered in `poller` for reading.
    let bulkPoller: Epoll
    /// Most bulk-lane events served per iteration, after the priority lane's. Together with the
    /// bulk read budget (``Connection``) and the time budget below it bounds how long a newcomer
    /// waits behind a flood.
    var bulkEventsPerIteration = 64
    /// Once the bulk slice of an iteration has run this long, its remaining events wait for the
    /// next iteration (at least one is served each time, so the bulk lane always progresses).
    var bulkNanosecondsPerIteration: UInt64 = 5_000_000
    /// The bulk lane reported readiness during the priority wait of this iteration.
    @exclusivity(unchecked) private var bulkLaneReady = false
    // Registrations indexed by descriptor number. The generation is bumped on every register so
    // an event for a descriptor closed and reused within one epoll_wait batch is recognised as
    // stale and dropped (swift-nio's registration ID, redis's mask re-check).
    @exclusivity(unchecked) private var slots: [Slot] = []
    private var nextGeneration: UInt32 = 1
    private var beforeSleepHooks: [() -> Void] = []
    /// Connections whose replies wait for the end of this iteration's dispatch
    /// (``flushAfterDispatch(_:)``), and the list being flushed: two, swapped, so neither allocates.
    @exclusivity(unchecked) var pendingFlushes: [Connection] = []
    @exclusivity(unchecked) private var flushing: [Connection] = []
    let fanOut = FanOutPacer()  // FanOutPacing.swift
    @exclusivity(unchecked) private var stopRequested = false
    /// The monotonic clock in nanoseconds, read once per loop iteration after waking: cheap
    /// enough to stamp every read with (idle timeouts), precise to one iteration.
    public var now: UInt64 { self.nowStorage.pointee }
    /// Behind a pointer: read at every event from other modules, where a stored property paid a
    /// dynamic exclusivity check per read (`@exclusivity(unchecked)` holds only in this module).
    let nowStorage: UnsafeMutablePointer<UInt64> = {
        let pointer = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        pointer.initialize(to: Sys.monotonicNanoseconds())
        return pointer
    }()
    /// What the loop counted of its own work, returned by ``metrics`` (one field per counter, so
    /// the iteration updates them in place).
    @exclusivity(unchecked) private var measured = Metrics()
    /// Whether the loop measures its iterations' time for ``metrics`` (busy time, slow and
    /// longest iterations). Off by default: it costs a clock read per iteration. Loop thread only.
    public var measuresBusyTime = false
    /// What the loop has counted so far: a copy, filled when asked. Loop thread only.
    public var metrics: Metrics { self.measured }
    /// Iterations completed so far (the count ``metrics`` reports, without copying the rest).
    var iterationsCompleted: UInt64 { self.measured.iterations }
    private var loopThread: pthread_t?
    var timerCallbacks: [UInt64: TimerEntry] = [:]
    /// Every inbox not removed, by id: the loop releases their handlers when it ends.
    var inboxHandlers: [UInt64: any InboxHandlerSlot] = [:]
    var nextTimerID: UInt64 = 1
    let timerQueue = DispatchQueue(label: "reactor.timers")
    /// The loop as a Swift concurrency executor, made on first use (LoopExecutor.swift).
    var executorStorage: LoopExecutor?
    /// Set by a test harness that turns the loop's time by hand (EmbeddedConnection.swift):
    /// timers then never start their Dispatch sources.
    var timersRunByHand = false

    /// Creates a loop with its epoll instance and wake-up eventfd.
    /// - Parameter logger: where the loop reports what it cannot hand to a caller.
    /// - Throws: ``IOError`` if epoll or eventfd cannot be created (descriptor limit).
    public init(logger: Logger = Logger(label: "reactor.loop", factory: { _ in SwiftLogNoOpLogHandler() })) throws(IOError) {
        self.logger = logger
        self.poller = try Epoll()
        do {
            self.bulkPoller = try Epoll()
        } catch {
            self.poller.close()
            throw error
        }
        let wakeFD: Descriptor
        do {
            wakeFD = try Sys.eventfd()
        } catch {
            self.poller.close()
            self.bulkPoller.close()
            throw error
        }
        self.handle = LoopHandle(wakeFD: wakeFD)
        self.readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        try self.register(WakeHandler(loop: self), descriptor: wakeFD, interest: .read)
        // An epoll descriptor never sits in the bulk lane itself: the priority lane watches it.
        try self.register(BulkLaneHandler(loop: self), descriptor: self.bulkPoller.descriptor, interest: .read)
    }

    deinit {
        for (_, entry) in self.timerCallbacks { entry.source.cancel() }
        // Inboxes may outlive the loop (held by other threads): their handlers' captures may not.
        for (_, slot) in self.inboxHandlers { slot.clear() }
        self.poller.close()
        self.bulkPoller.close()
        self.mailboxPoller?.close()
        // The wake-up eventfd is closed by the LoopHandle's deinit: inboxes, stop handles and
        // Dispatch timer handlers may still hold the handle and post after the loop is gone.
        self.readBuffer.deallocate()
        self.nowStorage.deallocate()
    }

    /// Whether the caller is on the loop's thread (true before `run()` starts, for set-up).
    var inLoopThread: Bool {
        guard let thread = self.loopThread else { return true }
        return pthread_equal(thread, pthread_self()) != 0
    }

    // MARK: Registration

    /// Registers `handler` for readiness of `descriptor`, in the priority lane.
    /// - Throws: ``IOError`` from epoll_ctl.
    func register(_ handler: EventHandler, descriptor: Descriptor, interest: Interest) throws(IOError) {
        assert(self.inLoopThread)
        let fd = Int(descriptor.rawValue)
        if fd >= self.slots.count {
            self.slots.append(contentsOf: repeatElement(Slot(), count: max(fd + 1 - self.slots.count, self.slots.count)))
        }
        precondition(self.slots[fd].handler == nil, "descriptor \(fd) registered twice")
        let generation = self.nextGeneration
        self.nextGeneration &+= 1
        try self.poller.update(descriptor, from: nil, to: interest, token: Self.token(fd: descriptor, generation: generation))
        self.slots[fd] = Slot(generation: generation, interest: interest, handler: handler)
    }

    /// Registers a descriptor the caller just made, closing it if that fails, so a failed
    /// set-up leaves nothing open.
    /// - Throws: ``IOError`` from epoll_ctl.
    func registerOrClose(_ handler: EventHandler, descriptor: Descriptor, interest: Interest) throws(IOError) {
        do {
            try self.register(handler, descriptor: descriptor, interest: interest)
        } catch {
            Sys.close(descriptor)
            throw error
        }
    }

    /// Deregisters and closes a descriptor.
    func deregisterAndClose(_ descriptor: Descriptor) {
        self.deregister(descriptor)
        Sys.close(descriptor)
    }

    /// Changes the interest of a registered descriptor; a no-op change makes no system call.
    func setInterest(_ interest: Interest, for descriptor: Descriptor) throws(IOError) {
        assert(self.inLoopThread)
        let fd = Int(descriptor.rawValue)
        precondition(fd < self.slots.count && self.slots[fd].handler != nil, "descriptor \(fd) not registered")
        let slot = self.slots[fd]
        guard slot.interest != interest else { return }
        try self.poller(for: slot.lane).update(descriptor, from: slot.interest, to: interest,
                                               token: Self.token(fd: descriptor, generation: slot.generation))
        self.slots[fd].interest = interest
    }

    /// Moves a registered descriptor to `lane` (see the file header), keeping its interest and
    /// its generation, so events already fetched for it stay valid. Two epoll_ctl calls when
    /// the lane changes, none otherwise.
    /// - Throws: ``IOError`` from epoll_ctl; the descriptor is then in neither lane and the
    ///   caller must close it.
    func move(_ descriptor: Descriptor, to lane: Lane) throws(IOError) {
        assert(self.inLoopThread)
        let fd = Int(descriptor.rawValue)
        precondition(fd < self.slots.count && self.slots[fd].handler != nil, "descriptor \(fd) not registered")
        let slot = self.slots[fd]
        guard slot.lane != lane else { return }
        try self.poller(for: slot.lane).update(descriptor, from: slot.interest, to: nil, token: 0)
        // Deregistered from the old lane: the slot says so until the new lane has it, so a
        // failure leaves a slot that deregister() treats as already gone from epoll.
        self.slots[fd].lane = lane
        do {
            try self.poller(for: lane).update(descriptor, from: nil, to: slot.interest,
                                              token: Self.token(fd: descriptor, generation: slot.generation))
        } catch {
            self.slots[fd].interest = nil
            throw error
        }
    }

    /// The lane `descriptor` is registered in, nil if it is not registered.
    func lane(of descriptor: Descriptor) -> Lane? {
        let fd = Int(descriptor.rawValue)
        return fd < self.slots.count && self.slots[fd].handler != nil ? self.slots[fd].lane : nil
    }

    private func poller(for lane: Lane) -> Epoll {
        switch lane {
        case .priority: return self.poller
        case .bulk: return self.bulkPoller
        }
    }

    /// Stops dispatching to `descriptor`. Call before closing it. Events already fetched for it in
    /// the current batch are dropped.
    func deregister(_ descriptor: Descriptor) {
        assert(self.inLoopThread)
        let fd = Int(descriptor.rawValue)
        guard fd < self.slots.count, self.slots[fd].handler != nil else { return }
        // Failure here means the descriptor is already gone from the epoll set; nothing to undo.
        try? self.poller(for: self.slots[fd].lane).update(descriptor, from: self.slots[fd].interest, to: nil, token: 0)
        self.slots[fd] = Slot(generation: 0, interest: nil, handler: nil)
    }

    /// The interest the shadow table holds for `descriptor`, nil if it is not registered.
    func registeredInterest(_ descriptor: Descriptor) -> Interest? {
        let fd = Int(descriptor.rawValue)
        return fd < self.slots.count ? self.slots[fd].interest : nil
    }

    /// Every registered handler (for sweeps such as idle timeouts). O(registrations).
    func forEachHandler(_ body: (EventHandler) -> Void) {
        for slot in self.slots { if let h = slot.handler { body(h) } }
    }

    /// Adds work run once per loop iteration after the ready events are dispatched and before the
    /// loop sleeps: the place to batch what one iteration produced (a log write, flushes).
    /// Loop thread only.
    public func addBeforeSleepHook(_ hook: @escaping () -> Void) {
        assert(self.inLoopThread)
        self.beforeSleepHooks.append(hook)
    }

    // MARK: Running

    /// Runs until ``stop()`` (or ``LoopHandle/stop()``). Call on the thread that owns the loop.
    /// - Throws: ``IOError`` if epoll_wait fails for a reason other than EINTR.
    public func run() throws(IOError) {
        self.loopThread = pthread_self()
        self.handle.runningThread.store(UInt(pthread_self()), ordering: .releasing)
        defer {
            self.loopThread = nil
            self.handle.runningThread.store(0, ordering: .releasing)
        }
        self.stopRequested = false
        // The slow-iteration report is debug output: without it (and without busy-time metrics)
        // an iteration reads the clock only for the bulk lane's time budget.
        let reportsSlowIterations = self.logger.logLevel <= .debug
        while !self.stopRequested {
            // Blocks only when the bulk lane is idle too: while it has ready descriptors its
            // epoll descriptor is readable, so this returns at once.
            var priorityEvents = 0
            var bulkEvents = 0
            var woke: UInt64 = 0
            var wokeCPU: UInt64 = 0
            let tracksTime = reportsSlowIterations || self.measuresBusyTime
            if self.postWaitDeadline != 0 { self.waitForPost() }
            var timeout: Int64 = -1
            if self.wakeDeadline != .max {
                let now = Sys.monotonicNanoseconds()
                timeout = self.wakeDeadline > now ? Int64(self.wakeDeadline - now) : 0
                self.wakeDeadline = .max
            }
            let ready = try self.poller.wait(timeoutNanoseconds: timeout, maxEvents: .max)
            if ready > 0 && tracksTime {
                woke = Sys.monotonicNanoseconds()
                if self.measuresBusyTime { wokeCPU = Sys.threadCPUNanoseconds() }
            }
            // A wait that ended at its deadline with nothing ready still moves `now` on (hooks use it).
            if ready == 0 { self.nowStorage.pointee = Sys.monotonicNanoseconds() }
            priorityEvents = self.dispatch(self.poller, ready, until: .max)
            let bulkStart = tracksTime || self.bulkLaneReady ? Sys.monotonicNanoseconds() : 0
            if self.bulkLaneReady {
                self.bulkLaneReady = false
                let bulkReady = try self.bulkPoller.wait(timeoutNanoseconds: 0, maxEvents: self.bulkEventsPerIteration)
                bulkEvents = self.dispatch(self.bulkPoller, bulkReady, until: bulkStart &+ self.bulkNanosecondsPerIteration)
            }
            self.dispatchWroteOutput = false
            self.flushPending()
            let hooksStart = tracksTime ? Sys.monotonicNanoseconds() : 0
            for hook in self.beforeSleepHooks { hook() }
            // What the hooks queued for others (expiry's notifications) goes out before the sleep.
            self.flushPending()
            self.wakeDeadline = min(self.wakeDeadline, self.releaseFanOut())
            // Output queued by those flushes' own callbacks must not wait for an unrelated wake-up.
            if !self.pendingFlushes.isEmpty { self.wakeDeadline = 0 }
            self.measured.iterations &+= 1
            guard tracksTime else { continue }
            let end = Sys.monotonicNanoseconds()
            if self.measuresBusyTime && woke != 0 {
                let busy = end &- woke
                self.measured.busyNanoseconds &+= busy
                if busy > Metrics.slowIterationBounds[0] {
                    // Read after `end`, the CPU clock can run past the wall clock by the read's own
                    // cost; the thread cannot have run longer than the iteration lasted.
                    let onCPU = min(Sys.threadCPUNanoseconds() &- wokeCPU, busy)
                    for (i, bound) in Metrics.slowIterationBounds.enumerated() {
                        if busy > bound { self.measured.slowIterations[i] &+= 1 }
                        if onCPU > bound { self.measured.slowIterationsOnCPU[i] &+= 1 }
                    }
                    if busy > self.measured.longestIteration.nanoseconds || onCPU > self.measured.costliestIteration.cpuNanoseconds {
                        let timing = Metrics.IterationTiming(
                            nanoseconds: busy, cpuNanoseconds: onCPU, priorityNanoseconds: bulkStart &- woke,
                            bulkNanoseconds: hooksStart &- bulkStart, hooksNanoseconds: end &- hooksStart,
                            priorityEvents: priorityEvents, bulkEvents: bulkEvents)
                        if busy > self.measured.longestIteration.nanoseconds { self.measured.longestIteration = timing }
                        if onCPU > self.measured.costliestIteration.cpuNanoseconds { self.measured.costliestIteration = timing }
                    }
                }
            }
            if reportsSlowIterations && priorityEvents > 0 && end &- woke > Self.slowIterationNanoseconds {
                self.logger.debug("slow loop iteration", metadata: [
                    "loop.priority_events": "\(priorityEvents)", "loop.bulk_events": "\(bulkEvents)",
                    "loop.priority_ms": "\((bulkStart &- woke) / 1_000_000)",
                    "loop.bulk_ms": "\((hooksStart &- bulkStart) / 1_000_000)",
                    "loop.hooks_ms": "\((end &- hooksStart) / 1_000_000)"])
            }
        }
    }

    /// Bounds the loop's next sleep: it wakes no later than `deadline` (CLOCK_MONOTONIC nanoseconds,
    /// as ``now``) and runs its before-sleep hooks then. Not a second kind of timer: a deadline
    /// for the hooks (``addBeforeSleepHook(_:)``), for holds shorter than a timer is worth (arming
    /// and firing a DispatchSource timer wakes Dispatch's timer thread and a worker, a cost a
    /// server pays for each of its sub-millisecond holds). Applies to the next wait
    /// only (a hook that still needs it asks again); the earliest deadline asked for wins. Loop
    /// thread only.
    public func wakeNoLaterThan(_ deadline: UInt64) {
        assert(self.inLoopThread)
        self.wakeDeadline = min(self.wakeDeadline, deadline)
    }

    /// An iteration longer than this is logged at debug level with where the time went.
    static let slowIterationNanoseconds: UInt64 = 50_000_000

    /// Hands each of the first `count` events `poller` fetched to its descriptor's handler, as
    /// long as the clock is short of `deadline` (the first is always served; level-triggered epoll
    /// reports a descriptor left over again). - Returns: how many were served.
    private func dispatch(_ poller: Epoll, _ count: Int, until deadline: UInt64) -> Int {
        // Without a deadline (the priority lane) the clock is read once for the whole batch: `now`
        // is precise to one iteration, as documented, and a read per event was a vDSO call per
        // request at `-P 1`, where most iterations carry one or two.
        let timed = deadline != .max
        if count > 0 && !timed { self.nowStorage.pointee = Sys.monotonicNanoseconds() }
        for i in 0..<count {
            if timed {
                let now = Sys.monotonicNanoseconds()
                if i > 0 && now >= deadline { return i }
                self.nowStorage.pointee = now
            }
            let event = poller.events[i]
            let fd = Int(truncatingIfNeeded: event.data.u64 & 0xFFFF_FFFF)
            let generation = UInt32(truncatingIfNeeded: event.data.u64 >> 32)
            // Errors and hang-ups flow through the normal read/write paths, where the failing
            // call reports the real cause (redis ae_epoll.c maps them the same way).
            let failed = event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
            // Re-checked before each call: the write handler may close the descriptor.
            if failed || event.events & EPOLLOUT.rawValue != 0, let h = self.liveHandler(fd: fd, generation: generation) {
                h.handleWritable()
            }
            if failed || event.events & EPOLLIN.rawValue != 0, let h = self.liveHandler(fd: fd, generation: generation) {
                h.handleReadable()
            }
        }
        return count
    }

    func bulkLaneReadable() { self.bulkLaneReady = true }

    /// Writes `connection`'s output once this iteration's events are dispatched, as Redis writes
    /// its replies in `beforeSleep`: the replies of one batch reach their clients together, so a
    /// client woken by the first finds the rest ready instead of sleeping and being woken again
    /// for each. The connection says it is queued (it asks once per iteration).
    func flushAfterDispatch(_ connection: Connection) {
        self.pendingFlushes.append(connection)
    }

    func flushPending() {
        guard !self.pendingFlushes.isEmpty else { return }
        swap(&self.pendingFlushes, &self.flushing)
        for connection in self.flushing where connection.flushAfterDispatch() { self.dispatchWroteOutput = true }
        // One removeLast per connection: `removeAll(keepingCapacity:)` went through the generic
        // replaceSubrange, a fixed cost per iteration that a `-P 1` iteration of one or two
        // requests felt.
        while !self.flushing.isEmpty { self.flushing.removeLast() }
    }

    /// Asks ``run()`` to return after the current iteration. Loop thread only.
    public func stop() {
        assert(self.inLoopThread)
        self.stopRequested = true
        self.handle.wake()
    }

    /// Runs one pass over the mailbox: the tasks posted since the last pass, in order (timers
    /// firing, inbox messages, stop requests and ``LoopHandle/execute(_:)`` alike).
    func drainMailbox() {
        for task in self.handle.take() { task(self) }
    }

    /// ``LoopHandle/stop()`` arriving on the loop thread.
    fileprivate func stopFromMailbox() { self.stopRequested = true }

    func liveHandler(fd: Int, generation: UInt32) -> EventHandler? {
        guard fd < self.slots.count else { return nil }
        let slot = self.slots[fd]
        guard slot.generation == generation else { return nil }
        return slot.handler
    }

    private static func token(fd: Descriptor, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd.rawValue))
    }

    /// Raises the process's soft descriptor limit (RLIMIT_NOFILE) to the hard limit, so one loop
    /// can hold as many connections as the system allows. Any thread.
    /// - Returns: the soft limit now in force.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int { Sys.raiseDescriptorLimit() }

    // MARK: Inboxes

    /// Creates a typed channel into the loop: ``Inbox/post(_:)`` may be called from any thread and
    /// `handler` then runs on the loop thread with the message. The handler may capture loop state.
    /// Loop thread only.
    public func makeInbox<Message: Sendable>(_ handler: @escaping (Message) -> Void) -> Inbox<Message> {
        assert(self.inLoopThread)
        let id = self.nextTimerID
        self.nextTimerID += 1
        let slot = InboxHandler(handler)
        self.inboxHandlers[id] = slot
        return Inbox(id: id, handle: self.handle, slot: slot)
    }
}

/// The loop's side of an inbox: a removable handler.
protocol InboxHandlerSlot: AnyObject {
    /// Drops the handler (and what it captured): messages delivered later are dropped.
    func clear()
}

/// An inbox's handler, typed: a message posted reaches it with no lookup and no cast. Each
/// ``Inbox`` holds it for its posts, but only the loop thread reads or clears the handler (a post
/// runs as a mailbox task there), hence unchecked.
final class InboxHandler<Message>: InboxHandlerSlot, @unchecked Sendable {
    /// Called by the inbox's posted task, on the loop thread.
    private(set) var handler: ((Message) -> Void)?

    init(_ handler: @escaping (Message) -> Void) { self.handler = handler }

    func clear() { self.handler = nil }
}

/// A typed, thread-safe channel into an ``EventLoop`` (see ``EventLoop/makeInbox(_:)``).
public struct Inbox<Message: Sendable>: Sendable {
    let id: UInt64
    let handle: LoopHandle
    let slot: InboxHandler<Message>

    /// Delivers `message` to the inbox's handler on the loop thread. Safe from any thread.
    public func post(_ message: Message) {
        let slot = self.slot
        self.handle.execute { _ in slot.handler?(message) }
    }
}

/// The thread-safe side of an ``EventLoop``: a mailbox of tasks guarded by a mutex and an eventfd
/// that wakes the loop. This is the loop's one hand-off boundary and the one way work reaches the
/// loop from elsewhere: timers firing (``EventLoop/scheduleTimer(after:repeating:leeway:_:)``),
/// inbox messages (``Inbox/post(_:)``) and stop requests are tasks posted here too.
public final class LoopHandle: Sendable {
    typealias Task = @Sendable (EventLoop) -> Void

    let wakeFD: Descriptor
    private let mailbox = Mutex<[Task]>([])
    /// The thread inside ``EventLoop/run()`` (its pthread_t), 0 while none is: what lets any
    /// thread ask whether it is the loop's (LoopExecutor.swift).
    let runningThread = Atomic<UInt>(0)

    init(wakeFD: Descriptor) { self.wakeFD = wakeFD }

    deinit { Sys.close(self.wakeFD) }

    /// Runs `task` on the loop thread, with the loop, in the order posted: at the loop's next
    /// iteration (also when called on the loop thread). Safe from any thread.
    public func execute(_ task: @escaping @Sendable (EventLoop) -> Void) {
        let wasEmpty = self.mailbox.withLock { box in
            box.append(task)
            return box.count == 1
        }
        // A non-empty mailbox already has a wake-up pending: the loop drains the eventfd before
        // taking the messages, so the post that made the box non-empty is always seen.
        if wasEmpty { self.wake() }
    }

    func wake() { Sys.eventfdSignal(self.wakeFD) }

    /// Asks the loop to stop after its current iteration. Safe from any thread.
    public func stop() {
        self.execute { loop in loop.stopFromMailbox() }
    }

    func take() -> [Task] {
        Sys.eventfdDrain(self.wakeFD)
        return self.mailbox.withLock { box in
            let taken = box
            box.removeAll()
            return taken
        }
    }
}

/// The bulk lane's epoll descriptor, watched by the priority lane: its readiness lets the
/// iteration serve a slice of the bulk lane once the priority lane's events are done.
private final class BulkLaneHandler: EventHandler {
    unowned let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func handleReadable() { self.loop.bulkLaneReadable() }
    func handleWritable() {}
}

/// The eventfd is registered like any descriptor; its readiness drains the mailbox (the tasks
/// run right here, as ``EventLoop/drainMailbox()`` runs them).
private final class WakeHandler: EventHandler {
    unowned let loop: EventLoop
    init(loop: EventLoop) { self.loop = loop }
    func handleReadable() { for task in self.loop.handle.take() { task(self.loop) } }
    func handleWritable() {}
}
