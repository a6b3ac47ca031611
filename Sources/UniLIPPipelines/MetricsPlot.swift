import Foundation

/// Reader of a run folder's `metrics.jsonl` (one JSON object per logged step).
public enum MetricsLog {
    public typealias Series = [(step: Double, value: Double)]

    /// Every numeric key except `step`, as points sorted by step. A step logged twice (a resumed
    /// run re-logs the steps after its last checkpoint) keeps the later value. An unterminated
    /// last line that starts like a JSON object is a write cut short by a crash and is skipped;
    /// any other line that is not a JSON object with a numeric `step` is an error naming the line.
    public static func read(_ path: String) throws -> [String: Series] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): cannot read the metrics log")
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String = "metrics.jsonl") throws -> [String: Series] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TrainingError("\(path): not a metrics log (not UTF-8 text)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let terminated = text.hasSuffix("\n")
        var byStep: [String: [Double: Double]] = [:]
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let isLast = i == lines.count - 1
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = (object["step"] as? NSNumber)?.doubleValue, step.isFinite else {
                if isLast && !terminated && line.hasPrefix("{") { continue }  // cut short by a crash
                let excerpt = line.count > 60 ? String(line.prefix(60)) + "…" : line
                throw TrainingError("\(path):\(i + 1): not a metrics log line (expected a JSON object "
                    + "with a numeric \"step\"), found: \(excerpt)")
            }
            for (key, value) in object where key != "step" {
                guard !(value is String), let number = value as? NSNumber else { continue }
                let v = number.doubleValue
                if v.isFinite { byStep[key, default: [:]][step] = v }
            }
        }
        return byStep.mapValues { points in points.sorted { $0.key < $1.key }.map { (step: $0.key, value: $0.value) } }
    }
}

/// Training curves as a standalone SVG: one small panel per metric, raw values as a thin light
/// line with a moving average over them, log y axis for metrics spanning more than two decades.
public enum MetricsPlot {
    /// Panel layout, in SVG units: panels of panelWidth × panelHeight, plot area inset by the margins.
    public static let panelWidth = 340.0, panelHeight = 200.0, columns = 3
    public static let left = 56.0, right = 12.0, top = 24.0, bottom = 28.0

    /// Metric order: loss first, then the rest alphabetically, with grad_norm and lr last.
    public static func order(_ names: [String]) -> [String] {
        func rank(_ n: String) -> Int { n == "loss" ? 0 : n == "grad_norm" ? 2 : n == "lr" ? 3 : 1 }
        return names.sorted { (rank($0), $0) < (rank($1), $1) }
    }

    /// Log scale when every value is positive and the values span more than two decades.
    public static func usesLogScale(_ values: [Double]) -> Bool {
        guard let lo = values.min(), let hi = values.max(), lo > 0 else { return false }
        return hi / lo > 100
    }

    public static func svg(series: [String: MetricsLog.Series], title: String) -> String {
        let names = order(series.keys.filter { !(series[$0] ?? []).isEmpty })
        let cols = max(1, min(columns, names.count))
        let rows = max(1, (names.count + cols - 1) / cols)
        let titleHeight = 28.0
        let width = Double(cols) * panelWidth, height = titleHeight + Double(rows) * panelHeight
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" "
        s += "viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" font-family=\"sans-serif\" font-size=\"10\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
        s += "<text x=\"8\" y=\"19\" font-size=\"14\" font-weight=\"bold\">\(xmlEscape(title))</text>\n"
        if names.isEmpty {
            s += "<text x=\"8\" y=\"\(fmt(titleHeight + 20))\" fill=\"#666\">no metrics logged yet</text>\n"
        }
        for (i, name) in names.enumerated() {
            let x = Double(i % cols) * panelWidth, y = titleHeight + Double(i / cols) * panelHeight
            s += panel(name, series[name] ?? [], x: x, y: y)
        }
        return s + "</svg>\n"
    }

    static func panel(_ name: String, _ points: MetricsLog.Series, x: Double, y: Double) -> String {
        let w = panelWidth - left - right, h = panelHeight - top - bottom
        let steps = points.map(\.step), values = points.map(\.value)
        let log = usesLogScale(values)
        let ys = log ? values.map { Foundation.log10($0) } : values
        var x0 = steps.min() ?? 0, x1 = steps.max() ?? 1
        if x1 <= x0 { x0 -= 1; x1 += 1 }
        var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if y1 <= y0 { let pad = Swift.max(abs(y0) * 0.05, 1e-3); y0 -= pad; y1 += pad }
        let ticksY = log ? logTicks(y0, y1) : niceTicks(y0, y1)
        // The axis spans the data and the outer ticks that fall inside it.
        let px = { (v: Double) in left + (v - x0) / (x1 - x0) * w }
        let py = { (v: Double) in top + (1 - (v - y0) / (y1 - y0)) * h }
        let lastValue = values.last.map { formatValue($0) } ?? ""
        var s = "<g class=\"panel\" data-metric=\"\(xmlEscape(name))\" transform=\"translate(\(fmt(x)),\(fmt(y)))\">\n"
        s += "<text x=\"\(fmt(left))\" y=\"15\" font-size=\"12\" font-weight=\"bold\">\(xmlEscape(name))"
        s += "<tspan font-weight=\"normal\" fill=\"#555\"> last \(xmlEscape(lastValue))\(log ? " (log scale)" : "")</tspan></text>\n"
        // Grid and tick labels.
        for t in ticksY where t >= y0 - 1e-12 && t <= y1 + 1e-12 {
            let yy = fmt(py(t))
            s += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(left + w))\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#eee\"/>"
            s += "<text x=\"\(fmt(left - 4))\" y=\"\(yy)\" dy=\"3\" text-anchor=\"end\">"
            s += xmlEscape(log ? formatValue(pow(10, t)) : formatValue(t)) + "</text>\n"
        }
        for t in niceTicks(x0, x1, target: 4) where t >= x0 - 1e-9 && t <= x1 + 1e-9 {
            let xx = fmt(px(t))
            s += "<line x1=\"\(xx)\" x2=\"\(xx)\" y1=\"\(fmt(top + h))\" y2=\"\(fmt(top + h + 4))\" stroke=\"#444\"/>"
            s += "<text x=\"\(xx)\" y=\"\(fmt(top + h + 15))\" text-anchor=\"middle\">\(formatStep(t))</text>\n"
        }
        s += "<path d=\"M\(fmt(left)),\(fmt(top))V\(fmt(top + h))H\(fmt(left + w))\" fill=\"none\" stroke=\"#444\"/>\n"
        // Raw values: a thin light line, with dots when there are few.
        let raw = envelope(ys, buckets: maxLinePoints / 2 - 1).map { "\(fmt(px(steps[$0]))),\(fmt(py(ys[$0])))" }
        if raw.count > 1 {
            s += "<polyline class=\"raw\" points=\"\(raw.joined(separator: " "))\" fill=\"none\" stroke=\"#9ecae1\" stroke-width=\"1\"/>\n"
        }
        if raw.count <= 60 {
            for (sx, sy) in zip(steps, ys) {
                s += "<circle cx=\"\(fmt(px(sx)))\" cy=\"\(fmt(py(sy)))\" r=\"1.8\" fill=\"#6baed6\"/>"
            }
            s += "\n"
        }
        if ys.count >= 5 {
            let avg = movingAverage(ys, window: Swift.max(3, Swift.min(51, ys.count / 15 | 1)))
            let stride = Swift.max(1, (avg.count + maxLinePoints - 1) / maxLinePoints)
            let kept = Array(Swift.stride(from: 0, to: avg.count, by: stride)) + ((avg.count - 1) % stride == 0 ? [] : [avg.count - 1])
            let line = kept.map { "\(fmt(px(steps[$0]))),\(fmt(py(avg[$0])))" }
            s += "<polyline class=\"average\" points=\"\(line.joined(separator: " "))\" fill=\"none\" stroke=\"#08519c\" stroke-width=\"1.5\"/>\n"
        }
        return s + "</g>\n"
    }

    /// Points per line at most: a panel is under 300 px wide, so more only grows the file.
    public static let maxLinePoints = 800

    /// Indices of the points to draw: all of them when they fit, otherwise the lowest and
    /// highest point of each of `buckets` consecutive runs, in order, so spikes stay visible, and
    /// the first and last points, so the line spans the whole run.
    static func envelope(_ v: [Double], buckets: Int) -> [Int] {
        guard v.count > 2 * buckets, buckets > 0 else { return Array(v.indices) }
        var out: [Int] = []
        out.reserveCapacity(2 * buckets)
        for b in 0..<buckets {
            let a = b * v.count / buckets, e = (b + 1) * v.count / buckets
            guard a < e else { continue }
            var lo = a, hi = a
            for i in a..<e {
                if v[i] < v[lo] { lo = i }
                if v[i] > v[hi] { hi = i }
            }
            if lo == hi { out.append(lo) } else { out += [Swift.min(lo, hi), Swift.max(lo, hi)] }
        }
        if out.first != 0 { out.insert(0, at: 0) }
        if out.last != v.count - 1 { out.append(v.count - 1) }
        return out
    }

    /// Centred moving average through prefix sums; the window narrows symmetrically at the ends
    /// so that the line stays centred on its point (a one-sided window lags at the warmup).
    static func movingAverage(_ v: [Double], window: Int) -> [Double] {
        var prefix = [0.0]
        prefix.reserveCapacity(v.count + 1)
        for x in v { prefix.append(prefix[prefix.count - 1] + x) }
        return v.indices.map { i in
            let half = Swift.min(window / 2, i, v.count - 1 - i)
            let a = i - half, b = i + half + 1
            return (prefix[b] - prefix[a]) / Double(b - a)
        }
    }

    /// Ticks at 1, 2 or 5 × 10^k, about `target` of them.
    static func niceTicks(_ lo: Double, _ hi: Double, target: Int = 5) -> [Double] {
        let span = hi - lo
        guard span > 0, span.isFinite else { return [lo] }
        let raw = span / Double(target)
        let magnitude = pow(10, floor(Foundation.log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 && out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    /// Ticks in log10 units: the decades in range, and 2× and 5× when fewer than three decades show.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let first: Int = Int(ceil(lo - 1e-9)), last: Int = Int(floor(hi + 1e-9))
        let decades: [Double] = first <= last ? (first...last).map { Double($0) } : []
        if decades.count >= 3 { return decades }
        var out: [Double] = []
        for k in Int(floor(lo))...Int(ceil(hi)) {
            for m in [1.0, 2, 5] {
                let t = Double(k) + Foundation.log10(m)
                if t >= lo - 1e-9 && t <= hi + 1e-9 { out.append(t) }
            }
        }
        return out
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func formatStep(_ v: Double) -> String {
        abs(v) >= 10_000 && v.truncatingRemainder(dividingBy: 1000) == 0
            ? "\(Int(v / 1000))k" : String(format: "%g", v)
    }

    static func formatValue(_ v: Double) -> String { String(format: "%.4g", v) }

    static func xmlEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
