// What an event loop counts of its own work, handed out as one value (EventLoop.metrics): an
// embedder exports what it wants from it (reactord: Sources/Server/Server+Metrics.swift). The
// loop keeps one of these and updates its fields in place as iterations end.

extension EventLoop {
    /// A snapshot of the loop's own counters (``EventLoop/metrics``). The time-based fields are
    /// kept only while ``EventLoop/measuresBusyTime`` is on.
    public struct Metrics: Sendable, Equatable {
        /// The thresholds ``slowIterations`` and ``slowIterationsOnCPU`` count against: 1, 2, 5 and 10 ms.
        public static let slowIterationBounds: [UInt64] = [1_000_000, 2_000_000, 5_000_000, 10_000_000]

        /// Iterations run: one per return from epoll_wait.
        public var iterations: UInt64 = 0
        /// Time spent between waking and going back to sleep, summed (the wake time is the
        /// first event's).
        public var busyNanoseconds: UInt64 = 0
        /// Iterations (waking to going back to sleep) longer than each of ``slowIterationBounds``:
        /// how often, and how long, a client that became ready meanwhile waited for the loop.
        public var slowIterations: [UInt64] = Array(repeating: 0, count: Metrics.slowIterationBounds.count)
        /// The same count by the loop thread's own CPU time in the iteration: what its work took,
        /// without the time the scheduler gave its core to another thread or process or it slept
        /// outside epoll_wait (blocking I/O, a lock).
        public var slowIterationsOnCPU: [UInt64] = Array(repeating: 0, count: Metrics.slowIterationBounds.count)
        /// The longest iteration by the wall clock, with where its time went.
        public var longestIteration = IterationTiming()
        /// The iteration that used the most of the loop thread's CPU (the longest by the wall
        /// clock is often one the scheduler interrupted).
        public var costliestIteration = IterationTiming()

        /// All counters zero.
        public init() {}

        /// Where one loop iteration's time went (``longestIteration``, ``costliestIteration``).
        public struct IterationTiming: Sendable, Equatable {
            /// From the first event after waking to the end of the before-sleep hooks.
            public var nanoseconds: UInt64 = 0
            /// The loop thread's CPU time in that span.
            public var cpuNanoseconds: UInt64 = 0
            /// Serving the priority lane's events (the first of them included).
            public var priorityNanoseconds: UInt64 = 0
            /// Serving the bulk lane's slice.
            public var bulkNanoseconds: UInt64 = 0
            /// The before-sleep hooks.
            public var hooksNanoseconds: UInt64 = 0
            /// Events served from the priority lane.
            public var priorityEvents = 0
            /// Events served from the bulk lane.
            public var bulkEvents = 0

            init() {}

            init(nanoseconds: UInt64, cpuNanoseconds: UInt64, priorityNanoseconds: UInt64, bulkNanoseconds: UInt64,
                 hooksNanoseconds: UInt64, priorityEvents: Int, bulkEvents: Int) {
                self.nanoseconds = nanoseconds
                self.cpuNanoseconds = cpuNanoseconds
                self.priorityNanoseconds = priorityNanoseconds
                self.bulkNanoseconds = bulkNanoseconds
                self.hooksNanoseconds = hooksNanoseconds
                self.priorityEvents = priorityEvents
                self.bulkEvents = bulkEvents
            }
        }
    }
}
