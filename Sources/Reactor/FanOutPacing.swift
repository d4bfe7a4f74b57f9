// Pacing of fan-out rounds. When one publication goes to thousands of connections, each
// connection's flush is one send(2), and on loopback a send costs the sender the receiver's TCP
// work too: a round over ten thousand subscribers can outlast the gap between publications. Sent
// back to back, such rounds would take all of the loop's time and each send would carry only the
// frames that arrived during the previous round. Instead a big round (``FanOutPacer/threshold``
// connections or more) is not started until the previous big round is followed by a pause of half
// its length (``FanOutPacer/pausePercent``): fan-out sends take at most about two thirds of the
// loop's time, the loop keeps serving every other client meanwhile, and the held connections go
// on accumulating frames, so the next round carries more frames per send. A longer pause saves
// more CPU but delays every frame by it; half a round was the pause whose delay stayed inside
// what back-to-back rounds cost (Benchmarks/README.md, "Fan-out rounds paced"). A round that starts after the gap has passed, and any small
// round, is sent at once, in the iteration its frames were queued in: at low rates nothing waits.
//
// Only output queued by the fan-out path (``Connection/queueCopy(of:)``) waits here. A connection
// that also has output of its own (a reply) is flushed at the end of the dispatch as always,
// frames included, so its own replies never wait for a round. Output limits apply to the bytes
// as they accumulate (the caller checks the backlog queueCopy returns), so a subscriber that does
// not read is still closed.

/// The connections whose fan-out output waits for the next round, and the pace rounds keep.
/// Loop thread only.
final class FanOutPacer {
    /// A round over at least this many connections is paced.
    var threshold = 256
    /// The pause after a big round, as a percentage of that round's length.
    var pausePercent: UInt64 = 50
    /// Connections queued for the next round, and the list being sent: two, swapped, so
    /// neither allocates.
    @exclusivity(unchecked) var queued: [Connection] = []
    @exclusivity(unchecked) var sending: [Connection] = []
    /// The monotonic time before which no big round starts (the last big round's end plus its length).
    @exclusivity(unchecked) var notBefore: UInt64 = 0
    /// When the last big round ended.
    @exclusivity(unchecked) var lastRoundEnd: UInt64 = 0
    /// Big rounds sent, connections flushed by them, and loop passes a big round was held for.
    @exclusivity(unchecked) var bigRounds: UInt64 = 0
    @exclusivity(unchecked) var bigRoundSends: UInt64 = 0
    @exclusivity(unchecked) var heldPasses: UInt64 = 0
}

extension EventLoop {
    /// Queues `connection` for the next fan-out round (it says it is queued: once per round).
    func queueFanOut(_ connection: Connection) {
        self.fanOut.queued.append(connection)
    }

    /// Sends the queued fan-out round now, unless it is big and the previous big round's gap has
    /// not passed. - Returns: when the loop must wake to send a held round (`.max`: none held).
    @inline(__always)
    func releaseFanOut() -> UInt64 {
        if self.fanOut.queued.isEmpty { return .max }
        return self.releaseFanOut(at: Sys.monotonicNanoseconds())
    }

    /// ``releaseFanOut()`` at the monotonic time `now` (tests pass it to stand on either side of the gap).
    func releaseFanOut(at now: UInt64) -> UInt64 {
        let pacer = self.fanOut
        let count = pacer.queued.count
        guard count > 0 else { return .max }
        let big = count >= pacer.threshold
        if big && now < pacer.notBefore {
            pacer.heldPasses &+= 1
            return pacer.notBefore
        }
        swap(&pacer.queued, &pacer.sending)
        for connection in pacer.sending { connection.flushFanOut() }
        pacer.sending.removeAll(keepingCapacity: true)
        if big {
            let end = Sys.monotonicNanoseconds()
            pacer.notBefore = end &+ (end &- min(now, end)) &* pacer.pausePercent / 100
            pacer.lastRoundEnd = end
            pacer.bigRounds &+= 1
            pacer.bigRoundSends &+= UInt64(count)
        }
        // Flushes may have queued more (a backlog report's output): it waits for its own round.
        return pacer.queued.isEmpty ? .max : pacer.queued.count >= pacer.threshold ? pacer.notBefore : 0
    }
}

extension Connection {
    /// Has the loop flush this connection with the next fan-out round (``EventLoop/releaseFanOut()``),
    /// unless it is already due to be flushed at the end of the dispatch (its frames go then).
    @inline(__always)
    func flushWithFanOut() {
        let core = self.core
        guard !core.pointee.fanOutQueued && !core.pointee.flushQueued && core.pointee.state == .open
            && !core.pointee.isCorked
        else { return }
        core.pointee.fanOutQueued = true
        self.loop.queueFanOut(self)
    }

    /// The fan-out round's flush (nothing to send when an end-of-dispatch flush sent it already).
    func flushFanOut() {
        self.core.pointee.fanOutQueued = false
        self.flush()
    }
}
