// The metrics port's wiring (docs/protocol.md "metrics"): its listener, protected mode at accept,
// the snapshot of the loop's counters a scrape takes, and the round trip of that snapshot through
// the metrics queue and back into the loop. Rendering is MetricsExporter's; HTTP is HTTPStream's.

import Reactor
import Services

/// A rendered scrape coming back into the loop.
struct ScrapeDone: Sendable {
    let id: Int
    let text: [UInt8]
}

extension Server: MetricsEndpoint {
    /// Binds the metrics port when it is on, and switches on what only it reads.
    func bindMetrics() throws(ServerError) {
        guard case .port(let port) = self.configuration.metricsPort else { return }
        self.exporter = MetricsExporter()
        self.loop.measuresBusyTime = true
        // The kv parts already count for it (Server.openStore saw the port on).
        self.scrapeInbox = self.loop.makeInbox { [unowned self] (done: ScrapeDone) in
            self.scrapeWaiters.removeValue(forKey: done.id)?(done.text)
        }
        // Protected mode answers here with HTTP's own 403 (no DENIED line).
        try self.listen(service: .metrics, host: self.configuration.host, port: port, denial: nil) {
            [unowned self] (admitted: Bool) in
            HTTPStream(endpoint: self, forbidden: !admitted)
        }
    }

    /// The kv password in force now (CONFIG SET requirepass changes it), nil: none.
    var password: [UInt8]? {
        if let kv { return kv.state.password }
        return self.configuration.requirePassword.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    func healthProblem() -> String? {
        guard let failure = self.kv?.data.store.logWriteFailure else { return nil }
        return "log cannot be written: \(failure)"
    }

    func scrape(_ completion: @escaping ([UInt8]) -> Void) {
        guard let exporter = self.exporter, let inbox = self.scrapeInbox else { return completion([]) }
        let id = self.nextScrapeID
        self.nextScrapeID += 1
        self.scrapeWaiters[id] = completion
        exporter.render(self.metricsSnapshot()) { text in inbox.post(ScrapeDone(id: id, text: text)) }
    }

    /// The loop's counters, copied for the metrics queue.
    private func metricsSnapshot() -> MetricsSnapshot {
        var s = MetricsSnapshot()
        s.version = ServerConfiguration.version
        for service in ServiceName.allCases where self.endpoints.contains(where: { $0.service == service.label }) {
            let i = service.rawValue
            s.connections.append((service.label, self.metrics.live[i], self.metrics.accepted[i], self.metrics.refused[i]))
        }
        let commands = self.metrics.commands
        s.commandNames = CommandStatistics.names
        s.commandCalls = commands.calls
        s.commandErrors = commands.errors
        s.commandDurations = s.commandCalls.indices.map { commands.durations(slot: $0) }
        if let kv = self.kv {
            let facts = kv.control.facts()
            s.keys = facts.keys
            s.keysWithExpiry = facts.keysWithExpiry
            s.expiredKeys = facts.expiredKeys
            s.evictedKeys = facts.evictedKeys
            s.usedMemoryBytes = facts.usedMemoryBytes
            s.logWrittenBytes = kv.data.store.logBytesWritten
        }
        s.maxMemoryBytes = self.configuration.maxMemoryBytes
        s.fsyncDurations = self.metrics.fsyncDurations
        s.compactionsSucceeded = self.metrics.compactionsSucceeded
        s.compactionsFailed = self.metrics.compactionsFailed
        s.loop = self.loop.metrics
        return s
    }
}
