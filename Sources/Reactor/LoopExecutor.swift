// The event loop as a Swift concurrency executor, and a thread to run a loop on.
//
// Jobs (task slices, actor turns) run on the loop thread, between its I/O events, so an actor
// whose executor is the loop's may touch connections directly. A job enqueued from another
// thread goes through the loop's mailbox (LoopHandle.execute: one lock, and an eventfd write only
// when the mailbox was empty); a job enqueued on the loop thread itself (a continuation resumed
// by a delegate callback, a task awaiting another on the loop) joins a local queue with no lock
// and no system call, run by a before-sleep hook of the current iteration, before the
// iteration's replies are flushed. A job enqueued once that hook has run (by a job, or by the
// flush after the hooks) asks the loop not to sleep in its next wait and runs one iteration
// later, after the loop has looked at its descriptors again: a task that keeps yielding cannot
// starve I/O, and a job enqueued while events are dispatched costs no extra wait.

import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An ``EventLoop`` as a `SerialExecutor`: jobs run on the loop thread, in the order they were
/// enqueued from any one thread. Its ``taskExecutor`` is the same loop as a `TaskExecutor`.
///
/// Give an actor the loop's executor to isolate it to the loop thread:
///
/// ```swift
/// actor Registry {
///     let executor: LoopExecutor
///     nonisolated var unownedExecutor: UnownedSerialExecutor { self.executor.asUnownedSerialExecutor() }
///     var connections: [Connection] = []   // touched on the loop thread only
/// }
/// ```
///
/// A delegate callback (on the loop thread, but outside any task) reaches such an actor with
/// `registry.assumeIsolated { ... }`. A task started with
/// `Task(executorPreference: executor.taskExecutor)` runs its nonisolated code on the loop thread too.
///
/// Two objects, because a job must be run the way it was enqueued: an actor's job isolated to
/// this serial executor, a task's job on the task executor (run isolated to the serial executor
/// instead, its nonisolated code would hop off it and be enqueued a second time).
public final class LoopExecutor: SerialExecutor, @unchecked Sendable {
    // Sendable by construction: `handle` is Sendable; `loop`, `local` and `spare` are touched
    // only on the loop thread (enqueue checks which thread it is on before using them).
    private let handle: LoopHandle
    private unowned let loop: EventLoop
    private var local: [(UnownedJob, LoopTaskExecutor?)] = []
    private var spare: [(UnownedJob, LoopTaskExecutor?)] = []
    /// Weak: the task executor holds this one, and tasks hold it while they prefer it.
    private let cachedTaskExecutor = Mutex(WeakTaskExecutor())
    private struct WeakTaskExecutor: @unchecked Sendable { weak var value: LoopTaskExecutor? }
    /// The iteration (``EventLoop/iterationsCompleted``) whose before-sleep hook last ran.
    private var drainedIteration: UInt64 = .max

    fileprivate init(loop: EventLoop) {
        self.loop = loop
        self.handle = loop.handle
    }

    /// Whether the calling thread is the one running the loop (false before ``EventLoop/run()``
    /// starts and after it returns). Any thread.
    public var isOnLoopThread: Bool { self.handle.isOnLoopThread }

    /// The loop as a `TaskExecutor`, for `Task(executorPreference:)` and
    /// `withTaskExecutorPreference`. The same object while anything holds it. Any thread.
    public var taskExecutor: LoopTaskExecutor {
        self.cachedTaskExecutor.withLock { cache in
            if let executor = cache.value { return executor }
            let executor = LoopTaskExecutor(serial: self)
            cache.value = executor
            return executor
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        self.enqueue(UnownedJob(job), taskExecutor: nil)
    }

    fileprivate func enqueue(_ job: UnownedJob, taskExecutor: LoopTaskExecutor?) {
        if self.handle.isOnLoopThread {
            self.local.append((job, taskExecutor))
            // Before this iteration's hook the job runs in it; after, the next wait must not sleep.
            if self.drainedIteration == self.loop.iterationsCompleted { self.loop.wakeNoLaterThan(0) }
        } else {
            self.handle.execute { [self] _ in self.run(job, taskExecutor) }
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(complexEquality: self)
    }

    public func isSameExclusiveExecutionContext(other: LoopExecutor) -> Bool { other === self }

    /// Traps unless called on the loop thread: what `assumeIsolated` on an actor isolated to
    /// the loop relies on when called outside a task (from a delegate callback).
    public func checkIsolated() {
        precondition(self.handle.isOnLoopThread, "not on the event loop's thread")
    }

    private func run(_ job: UnownedJob, _ taskExecutor: LoopTaskExecutor?) {
        if let taskExecutor {
            job.runSynchronously(on: taskExecutor.asUnownedTaskExecutor())
        } else {
            job.runSynchronously(on: self.asUnownedSerialExecutor())
        }
    }

    /// The before-sleep hook: runs the jobs enqueued on the loop thread so far (not those they
    /// enqueue in turn: see the file header).
    fileprivate func runLocalJobs() {
        self.drainedIteration = self.loop.iterationsCompleted
        guard !self.local.isEmpty else { return }
        swap(&self.local, &self.spare)
        for (job, taskExecutor) in self.spare { self.run(job, taskExecutor) }
        self.spare.removeAll(keepingCapacity: true)
    }
}

/// The loop as a `TaskExecutor` (``LoopExecutor/taskExecutor``): a task preferring it runs its
/// nonisolated code on the loop thread, between the loop's I/O events.
public final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    /// The loop's serial executor, which queues and runs the jobs.
    public let serialExecutor: LoopExecutor

    fileprivate init(serial: LoopExecutor) { self.serialExecutor = serial }

    public func enqueue(_ job: consuming ExecutorJob) {
        self.serialExecutor.enqueue(UnownedJob(job), taskExecutor: self)
    }
}

extension LoopHandle {
    /// Whether the calling thread is inside the loop's ``EventLoop/run()``. Any thread.
    var isOnLoopThread: Bool {
        let running = self.runningThread.load(ordering: .acquiring)
        return running != 0 && running == UInt(pthread_self())
    }
}

extension EventLoop {
    /// The loop as an executor (``LoopExecutor``). The same object every time. Loop thread (or
    /// set-up) only; the executor itself may be passed to and used from any thread.
    public var executor: LoopExecutor {
        assert(self.inLoopThread)
        if let executor = self.executorStorage { return executor }
        let executor = LoopExecutor(loop: self)
        self.executorStorage = executor
        self.addBeforeSleepHook { [unowned executor] in executor.runLocalJobs() }
        return executor
    }

    /// Runs the loop on a new thread of its own, so the calling thread (the main thread, say) stays
    /// free. Set the loop up first; from here on only its ``handle`` and ``executor`` may be used
    /// from other threads, and everything else reaches the loop through them.
    /// - Returns: the thread, to stop the loop and wait for it (``LoopThread/stopAndJoin()``).
    /// - Throws: ``IOError`` if the thread cannot be created.
    public func start() throws(IOError) -> LoopThread {
        _ = self.executor  // made here, while this thread may still touch the loop
        return try LoopThread(loop: self)
    }
}

/// A thread running an ``EventLoop`` (``EventLoop/start()``).
public final class LoopThread: Sendable {
    /// The loop's thread-safe side.
    public let handle: LoopHandle
    /// The loop's executor.
    public let executor: LoopExecutor
    private let thread: Mutex<pthread_t?>
    private let outcome: Mutex<IOError?>

    private final class Context: @unchecked Sendable {
        // Handed to the new thread, which alone uses `loop` from then on.
        let loop: EventLoop
        let owner: LoopThread
        init(loop: EventLoop, owner: LoopThread) {
            self.loop = loop
            self.owner = owner
        }
    }

    fileprivate init(loop: EventLoop) throws(IOError) {
        self.handle = loop.handle
        self.executor = loop.executor
        self.thread = Mutex(nil)
        self.outcome = Mutex(nil)
        let context = Unmanaged.passRetained(Context(loop: loop, owner: self)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let context = Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue()
            do throws(IOError) {
                try context.loop.run()
            } catch {
                context.owner.outcome.withLock { $0 = error }
            }
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Context>.fromOpaque(context).release()
            throw IOError(errno: result, call: "pthread_create")
        }
        self.thread.withLock { $0 = thread }
    }

    /// Asks the loop to stop after its current iteration. Any thread.
    public func stop() { self.handle.stop() }

    /// Waits for the loop's thread to end (after ``stop()``, or after the loop failed). Any
    /// thread but the loop's own; a second call returns at once.
    /// - Throws: the ``IOError`` that ended ``EventLoop/run()``, if one did.
    public func join() throws(IOError) {
        precondition(!self.handle.isOnLoopThread, "a loop thread cannot join itself")
        if let thread = self.thread.withLock({ value -> pthread_t? in
            defer { value = nil }
            return value
        }) {
            pthread_join(thread, nil)
        }
        if let error = self.outcome.withLock({ $0 }) { throw error }
    }

    /// ``stop()`` then ``join()``.
    public func stopAndJoin() throws(IOError) {
        self.stop()
        try self.join()
    }
}
