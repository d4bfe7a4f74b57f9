// Renders a --sweep as a self-contained SVG: latency (ms, log scale) against achieved throughput
// (ops/s), one line per percentile (p50, p90, p99, p99.9), the p99 target as a dashed line, with
// title, axis titles with units, and a legend. Plain text building; no fonts or scripts from outside.

#if canImport(Glibc)
import Glibc
#endif

struct SweepPlot {
    struct Point {
        let throughput: Double
        /// p50, p90, p99, p99.9 in µs.
        let latenciesMicroseconds: [UInt64]
    }

    let title: String
    let subtitle: String
    let points: [Point]
    let targetMilliseconds: Double

    static let series = [("p50", "#1f77b4"), ("p90", "#2ca02c"), ("p99", "#d62728"), ("p99.9", "#9467bd")]

    private let width = 900.0
    private let height = 600.0
    private let left = 90.0
    private let right = 170.0
    private let top = 80.0
    private let bottom = 70.0

    func render() -> String {
        let plotWidth = self.width - self.left - self.right
        let plotHeight = self.height - self.top - self.bottom
        let xTicks = SVGPlot.niceTicks(max: (self.points.map(\.throughput).max() ?? 1) * 1.05)
        let xMax = xTicks.last ?? 1
        // Log scale over whole decades, from below the smallest latency to above the largest
        // (and the target), so a hockey stick from 50 µs to 500 ms stays readable.
        let values = self.points.flatMap { $0.latenciesMicroseconds.map { max(Double($0), 1) / 1000 } } + [self.targetMilliseconds]
        let lowDecade = floor(log10(values.min() ?? 0.01))
        let highDecade = max(ceil(log10(values.max() ?? 1)), lowDecade + 1)
        func x(_ v: Double) -> Double { self.left + v / xMax * plotWidth }
        func y(_ ms: Double) -> Double {
            let d = (log10(max(ms, 1e-6)) - lowDecade) / (highDecade - lowDecade)
            return self.top + plotHeight - d * plotHeight
        }
        let f = SVGPlot.f
        let bottomY = self.top + plotHeight
        let rightX = self.left + plotWidth
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(self.width))" height="\(Int(self.height))" \
            viewBox="0 0 \(Int(self.width)) \(Int(self.height))" font-family="sans-serif" font-size="12">
            <rect width="\(Int(self.width))" height="\(Int(self.height))" fill="white"/>
            <text x="\(f(self.width / 2))" y="28" text-anchor="middle" font-size="17" font-weight="bold">\(SVGPlot.escape(self.title))</text>
            <text x="\(f(self.width / 2))" y="48" text-anchor="middle" fill="#444">\(SVGPlot.escape(self.subtitle))</text>

            """
        // Grid: every decade and its 2× and 5×, labelled; vertical lines at the x ticks.
        svg += "<g stroke=\"#ddd\" stroke-width=\"1\">\n"
        var yLabels: [(Double, String)] = []
        var decade = lowDecade
        while decade <= highDecade {
            for m in [1.0, 2.0, 5.0] {
                let ms = pow(10, decade) * m
                guard log10(ms) <= highDecade + 1e-9 else { continue }
                let yy = y(ms)
                svg += "<line x1=\"\(f(self.left))\" y1=\"\(f(yy))\" x2=\"\(f(rightX))\" y2=\"\(f(yy))\"/>\n"
                yLabels.append((yy, Self.msLabel(ms)))
            }
            decade += 1
        }
        for t in xTicks { svg += "<line x1=\"\(f(x(t)))\" y1=\"\(f(self.top))\" x2=\"\(f(x(t)))\" y2=\"\(f(bottomY))\"/>\n" }
        svg += "</g>\n<g stroke=\"black\" stroke-width=\"1\">\n"
        svg += "<line x1=\"\(f(self.left))\" y1=\"\(f(bottomY))\" x2=\"\(f(rightX))\" y2=\"\(f(bottomY))\"/>\n"
        svg += "<line x1=\"\(f(self.left))\" y1=\"\(f(self.top))\" x2=\"\(f(self.left))\" y2=\"\(f(bottomY))\"/>\n"
        svg += "</g>\n"
        for (yy, label) in yLabels {
            svg += "<text x=\"\(f(self.left - 8))\" y=\"\(f(yy + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        for t in xTicks {
            svg += "<text x=\"\(f(x(t)))\" y=\"\(f(bottomY + 18))\" text-anchor=\"middle\">\(SVGPlot.label(t))</text>\n"
        }
        svg += "<text x=\"\(f((self.left + rightX) / 2))\" y=\"\(f(bottomY + 45))\" text-anchor=\"middle\" font-size=\"14\">"
            + "throughput achieved (ops/s)</text>\n"
        let midY = f(self.top + plotHeight / 2)
        svg += "<text x=\"22\" y=\"\(midY)\" text-anchor=\"middle\" font-size=\"14\" transform=\"rotate(-90 22 \(midY))\">"
            + "latency (ms, log scale)</text>\n"
        // The target.
        let ty = y(self.targetMilliseconds)
        svg += "<line x1=\"\(f(self.left))\" y1=\"\(f(ty))\" x2=\"\(f(rightX))\" y2=\"\(f(ty))\" stroke=\"#ff7f0e\" "
            + "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
        // One line per percentile, a dot per step.
        for (index, (_, colour)) in Self.series.enumerated() {
            let coordinates = self.points.map { (x($0.throughput), y(max(Double($0.latenciesMicroseconds[index]), 1) / 1000)) }
            if coordinates.count > 1 {
                let list = coordinates.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(list)\"/>\n"
            }
            for (cx, cy) in coordinates {
                svg += "<circle cx=\"\(f(cx))\" cy=\"\(f(cy))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
            }
        }
        // Legend, right of the plot.
        let lx = rightX + 20
        svg += "<text x=\"\(f(lx))\" y=\"\(f(self.top + 10))\" font-weight=\"bold\">latency</text>\n"
        for (index, (name, colour)) in Self.series.enumerated() {
            let ly = self.top + 32 + Double(index) * 22
            svg += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 28))\" y2=\"\(f(ly))\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            svg += "<circle cx=\"\(f(lx + 14))\" cy=\"\(f(ly))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
            svg += "<text x=\"\(f(lx + 36))\" y=\"\(f(ly + 4))\">\(name)</text>\n"
        }
        let ly = self.top + 32 + Double(Self.series.count) * 22
        svg += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 28))\" y2=\"\(f(ly))\" stroke=\"#ff7f0e\" "
            + "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
        svg += "<text x=\"\(f(lx + 36))\" y=\"\(f(ly + 4))\">p99 target</text>\n"
        svg += "<text x=\"\(f(lx))\" y=\"\(f(ly + 28))\" fill=\"#444\">one dot per step</text>\n"
        svg += "</svg>\n"
        return svg
    }

    private static func msLabel(_ ms: Double) -> String {
        if ms >= 1000 { return BenchRunner.format(ms / 1000, 0) + " s" }
        if ms >= 1 { return BenchRunner.format(ms, 0) + " ms" }
        if ms >= 0.1 { return BenchRunner.format(ms, 1) + " ms" }
        if ms >= 0.01 { return BenchRunner.format(ms, 2) + " ms" }
        return BenchRunner.format(ms, 3) + " ms"
    }
}
