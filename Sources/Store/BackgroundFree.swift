// Freeing big collections off the loop. Releasing a collection frees every block it holds: a
// 10,000,000-item list is tens of thousands of nodes, a 1,000,000-member sorted set or hash a
// million blocks, and freeing them all where the last reference goes (a DEL, an overwrite, an
// expiry, a flushed keyspace, an undo entry becoming durable) would stall the loop for as long.
// So that last reference, when the value is big, goes to one background thread that drops it,
// as Redis's lazy free does (lazyfree.c: UNLINK, `lazyfree-lazy-*`); here every drop of a big
// collection takes that path, since freeing on the loop is never what a client wants.
//
// Safety: the object goes only when its reference is the only one (the keyspace's or an undo
// entry's, taken over here), so nothing on the loop can reach it afterwards; its blocks come from
// malloc (thread-safe), and Swift's reference counts are atomic. The account of the keyspace
// drops at once (KeyTable.swift takes the value out of it before the release); the process's
// memory follows once the thread has run.

import Dispatch
import Glibc
import Synchronization

/// The background release of big collections. Any thread may hand values over (the loop, the
/// compaction thread freeing a keyspace it built).
public enum BackgroundFree {
    /// The free effort past which a value is released in the background: Redis's
    /// LAZYFREE_THRESHOLD, with its measure of effort (``effort(of:)``).
    public static let threshold = 64

    /// The thread's work: references to release (bit patterns of `Unmanaged` retains), or a fence
    /// to signal once everything before it is released.
    private enum Job: Sendable {
        case release(UInt)
        case fence(DispatchSemaphore)
    }

    private static let jobs = Mutex<[Job]>([])
    private static let ready = DispatchSemaphore(value: 0)
    /// Started on first use; false if no thread could be made (then values are released at once).
    private static let started: Bool = Self.startThread()
    private static let pending = Atomic<Int>(0)
    private static let freed = Atomic<Int>(0)

    /// Values handed over and not yet released (INFO `lazyfree_pending_objects`).
    public static var pendingObjects: Int { Self.pending.load(ordering: .relaxed) }
    /// Values released in the background since start (INFO `lazyfreed_objects`).
    public static var freedObjects: Int { Self.freed.load(ordering: .relaxed) }

    /// Sets ``freedObjects`` back to 0 (CONFIG RESETSTAT).
    public static func resetFreedObjects() {
        Self.freed.store(0, ordering: .relaxed)
    }

    /// About how many blocks releasing `value` frees, as Redis's lazyfreeGetFreeEffort counts: a
    /// list's nodes; a hash's, sorted set's or set's members once it has left its compact block
    /// (each is an allocation of its own); 1 for a value in one block.
    public static func effort(of value: any CollectionValue) -> Int {
        if let list = value as? ListValue { return list.nodeCount }
        let encoding = value.encoding
        return encoding == "listpack" || encoding == "intset" ? 1 : value.count
    }

    /// Releases the reference `opaque` holds (an `Unmanaged` retain of a collection, taken over):
    /// in the background when the value is big and this is its last reference, else at once.
    @inline(__always)
    static func release(_ opaque: UnsafeMutableRawPointer) {
        guard Self.isBig(opaque) else {
            Unmanaged<AnyObject>.fromOpaque(opaque).release()
            return
        }
        Self.releaseBig(opaque)
    }

    /// Whether the value is past ``threshold`` (no strong reference outlives this call, so the
    /// uniqueness check after it sees only the one being released).
    @inline(never)
    private static func isBig(_ opaque: UnsafeMutableRawPointer) -> Bool {
        let object = Unmanaged<AnyObject>.fromOpaque(opaque).takeUnretainedValue()
        // The built-in types by their class: a cast to the protocol searches the conformance cache.
        let type = ObjectIdentifier(Swift.type(of: object))
        if type == ObjectIdentifier(ListValue.self) {
            return unsafeDowncast(object, to: ListValue.self).nodeCount > Self.threshold
        }
        let value: any CollectionValue
        if type == ObjectIdentifier(SortedSetValue.self) {
            value = unsafeDowncast(object, to: SortedSetValue.self)
        } else if type == ObjectIdentifier(HashValue.self) {
            value = unsafeDowncast(object, to: HashValue.self)
        } else if type == ObjectIdentifier(SetValue.self) {
            value = unsafeDowncast(object, to: SetValue.self)
        } else if let other = object as? any CollectionValue {
            value = other
        } else {
            return false
        }
        return value.count > Self.threshold && Self.effort(of: value) > Self.threshold
    }

    @inline(never)
    private static func releaseBig(_ opaque: UnsafeMutableRawPointer) {
        // Another holder (an undo entry, a snapshot being written) keeps the value alive: dropping
        // this reference frees nothing, and the last holder's release comes back here.
        guard Self.isLastReference(opaque), Self.started else {
            Unmanaged<AnyObject>.fromOpaque(opaque).release()
            return
        }
        // The reference itself goes to the thread: no strong reference is left on this one to race
        // the thread's release.
        Self.pending.add(1, ordering: .relaxed)
        Self.jobs.withLock { $0.append(.release(UInt(bitPattern: opaque))) }
        Self.ready.signal()
    }

    /// Stands for any object in the uniqueness check, which reads only the object's reference count,
    /// kept alike by every Swift class (on Linux every object is a native Swift object). Through
    /// `AnyObject` the check can see a temporary copy of the reference and answer false.
    private final class AnyNative {}

    /// Whether the reference `opaque` holds is the only one (it keeps it).
    @inline(never)
    private static func isLastReference(_ opaque: UnsafeMutableRawPointer) -> Bool {
        var object = Unmanaged<AnyNative>.fromOpaque(opaque).takeRetainedValue()
        let unique = isKnownUniquelyReferenced(&object)
        _ = Unmanaged.passRetained(object)  // the reference stays with `opaque`
        return unique
    }

    /// Releases `value`, the caller's last reference to it, as ``release(_:)`` does (tests; a
    /// caller holding a value outside the keyspace).
    public static func release(_ value: consuming any CollectionValue) {
        let opaque = Unmanaged<AnyObject>.passRetained(value as AnyObject).toOpaque()
        _ = consume value
        Self.release(opaque)
    }

    /// Waits until every value handed over so far is released (tests).
    public static func drain() {
        guard Self.started else { return }
        let done = DispatchSemaphore(value: 0)
        Self.jobs.withLock { $0.append(.fence(done)) }
        Self.ready.signal()
        done.wait()
    }

    /// A thread of its own, not a Dispatch worker: its priority is lowered for good (nice 10, as the
    /// log's sync thread), so freeing yields a shared core to the loop, and nothing runs its work on
    /// another thread (a Dispatch queue may run queued work on a thread waiting on it).
    private static func startThread() -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        return pthread_create(&thread, &attributes, { _ in
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            BackgroundFree.serve()
            return nil
        }, nil) == 0
    }

    private static func serve() -> Never {
        while true {
            Self.ready.wait()
            var batch: [Job] = []
            Self.jobs.withLock { swap(&batch, &$0) }
            for job in batch {
                switch job {
                case .release(let handed):
                    Unmanaged<AnyObject>.fromOpaque(UnsafeMutableRawPointer(bitPattern: handed)!).release()
                    Self.freed.add(1, ordering: .relaxed)
                    Self.pending.subtract(1, ordering: .relaxed)
                case .fence(let done):
                    done.signal()
                }
            }
        }
    }
}
