// Renders a run as a self-contained SVG: throughput per 100 ms over time, and the latency
// percentile curve on a "nines" axis (0%, 90%, 99%, 99.9%, …). Plain text building, no fonts or
// scripts referenced from outside.

import Histogram
#if canImport(Glibc)
import Glibc
#endif

struct SVGPlot {
    let title: String
    let subtitle: String
    /// Replies per bucket of `bucketSeconds`.
    let timeline: [Int]
    let bucketSeconds: Double
    let histogram: Histogram<UInt64>

    private let width = 900.0
    private let left = 90.0
    private let right = 40.0

    func render() -> String {
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="900" height="800" viewBox="0 0 900 800" \
            font-family="sans-serif" font-size="12">
            <rect width="900" height="800" fill="white"/>
            <text x="450" y="28" text-anchor="middle" font-size="18" font-weight="bold">\(Self.escape(self.title))</text>
            <text x="450" y="48" text-anchor="middle" fill="#444">\(Self.escape(self.subtitle))</text>

            """
        svg += self.throughputPanel(top: 90, height: 260)
        svg += self.latencyPanel(top: 460, height: 260)
        svg += "</svg>\n"
        return svg
    }

    private func throughputPanel(top: Double, height: Double) -> String {
        let rates = self.timeline.map { Double($0) / self.bucketSeconds }
        // The last bucket is usually partial: plotting it as a rate would show a false drop.
        let shown = rates.count > 1 ? Array(rates.dropLast()) : rates
        let maxTime = max(Double(shown.count) * self.bucketSeconds, self.bucketSeconds)
        let yTicks = Self.niceTicks(max: shown.max() ?? 1)
        let xTicks = Self.niceTicks(max: maxTime)
        let plotWidth = self.width - self.left - self.right
        let yMax = yTicks.last ?? 1
        let xMax = xTicks.last ?? 1
        func x(_ t: Double) -> Double { self.left + t / xMax * plotWidth }
        func y(_ v: Double) -> Double { top + height - v / yMax * height }
        var out = "<text x=\"450\" y=\"\(top - 14)\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
            + "Throughput over time (per \(Int(self.bucketSeconds * 1000)) ms)</text>\n"
        out += self.axes(top: top, height: height, xTicks: xTicks.map { (x($0), Self.label($0)) },
                         yTicks: yTicks.map { (y($0), Self.label($0)) },
                         xTitle: "time (s)", yTitle: "ops/s")
        let points = shown.enumerated().map { i, rate in
            "\(Self.f(x((Double(i) + 0.5) * self.bucketSeconds))),\(Self.f(y(rate)))"
        }
        if !points.isEmpty {
            out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
        }
        return out
    }

    private func latencyPanel(top: Double, height: Double) -> String {
        let count = Double(self.histogram.totalCount)
        // As many nines as the samples can support, 3 to 6.
        let nines = min(6.0, max(3.0, (count > 1 ? log10(count) : 0).rounded(.up)))
        var points: [(Double, Double)] = []
        if count > 0 {
            for step in self.histogram.percentiles(ticksPerHalfDistance: 5) {
                let p = step.percentileLevelIteratedTo / 100
                let nx = p >= 1 ? nines : min(nines, -log10(1 - p))
                points.append((nx, Double(step.value)))
            }
        }
        let yTicks = Self.niceTicks(max: points.map(\.1).max() ?? 1)
        let plotWidth = self.width - self.left - self.right
        let yMax = yTicks.last ?? 1
        func x(_ n: Double) -> Double { self.left + n / nines * plotWidth }
        func y(_ v: Double) -> Double { top + height - v / yMax * height }
        let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        var out = "<text x=\"450\" y=\"\(top - 14)\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
            + "Latency by percentile (\(Int(count)) samples after warm-up)</text>\n"
        out += self.axes(top: top, height: height, xTicks: (0...Int(nines)).map { (x(Double($0)), labels[$0]) },
                         yTicks: yTicks.map { (y($0), Self.label($0)) },
                         xTitle: "percentile", yTitle: "latency (µs)")
        if !points.isEmpty {
            let path = points.enumerated().map { i, point in
                (i == 0 ? "M" : "L") + "\(Self.f(x(point.0))),\(Self.f(y(point.1)))"
            }
            out += "<path fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" d=\"\(path.joined(separator: " "))\"/>\n"
        }
        return out
    }

    private func axes(top: Double, height: Double, xTicks: [(Double, String)], yTicks: [(Double, String)],
                      xTitle: String, yTitle: String) -> String {
        let bottom = top + height
        let rightEdge = self.width - self.right
        var out = "<g stroke=\"#ccc\" stroke-width=\"1\">\n"
        for (y, _) in yTicks { out += "<line x1=\"\(Self.f(self.left))\" y1=\"\(Self.f(y))\" x2=\"\(Self.f(rightEdge))\" y2=\"\(Self.f(y))\"/>\n" }
        out += "</g>\n<g stroke=\"black\" stroke-width=\"1\">\n"
        out += "<line x1=\"\(Self.f(self.left))\" y1=\"\(Self.f(bottom))\" x2=\"\(Self.f(rightEdge))\" y2=\"\(Self.f(bottom))\"/>\n"
        out += "<line x1=\"\(Self.f(self.left))\" y1=\"\(Self.f(top))\" x2=\"\(Self.f(self.left))\" y2=\"\(Self.f(bottom))\"/>\n"
        for (x, _) in xTicks { out += "<line x1=\"\(Self.f(x))\" y1=\"\(Self.f(bottom))\" x2=\"\(Self.f(x))\" y2=\"\(Self.f(bottom + 5))\"/>\n" }
        out += "</g>\n"
        for (x, label) in xTicks {
            out += "<text x=\"\(Self.f(x))\" y=\"\(Self.f(bottom + 18))\" text-anchor=\"middle\">\(Self.escape(label))</text>\n"
        }
        for (y, label) in yTicks {
            out += "<text x=\"\(Self.f(self.left - 8))\" y=\"\(Self.f(y + 4))\" text-anchor=\"end\">\(Self.escape(label))</text>\n"
        }
        out += "<text x=\"\(Self.f((self.left + rightEdge) / 2))\" y=\"\(Self.f(bottom + 38))\" text-anchor=\"middle\">\(Self.escape(xTitle))</text>\n"
        let midY = Self.f(top + height / 2)
        out += "<text x=\"20\" y=\"\(midY)\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(midY))\">\(Self.escape(yTitle))</text>\n"
        return out
    }

    /// 0 and round steps (1, 2 or 5 × 10^k) up to at least `max`.
    static func niceTicks(max: Double) -> [Double] {
        let top = max > 0 && max.isFinite ? max : 1
        let raw = top / 5
        let magnitude = pow10(floor(log10(raw)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? magnitude * 10
        var ticks: [Double] = []
        var value = 0.0
        while ticks.last.map({ $0 < top }) ?? true {
            ticks.append(value)
            value += step
        }
        return ticks
    }

    static func label(_ value: Double) -> String {
        if value >= 1_000_000 { return BenchRunner.format(value / 1_000_000, value.truncatingRemainder(dividingBy: 1_000_000) == 0 ? 0 : 1) + "M" }
        if value >= 10_000 { return BenchRunner.format(value / 1000, value.truncatingRemainder(dividingBy: 1000) == 0 ? 0 : 1) + "k" }
        if value == value.rounded() { return String(Int(value)) }
        return BenchRunner.format(value, (value * 10).rounded() == value * 10 ? 1 : 2)
    }

    static func f(_ value: Double) -> String { BenchRunner.format(value, 1) }

    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }

    private static func pow10(_ e: Double) -> Double {
        var result = 1.0
        if e >= 0 { for _ in 0..<Int(e) { result *= 10 } } else { for _ in 0..<Int(-e) { result /= 10 } }
        return result
    }
}
