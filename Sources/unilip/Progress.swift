import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A progress line on stderr: step/total, it/s, ETA and named values such as the loss.
/// On a terminal it redraws one line; otherwise it prints a plain line every `plainEvery` seconds
/// (and at the last step), so logs stay readable.
final class ProgressLine {
    private let total: Int
    private let label: String
    private let start = Date()
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let plainEvery: TimeInterval
    private var lastPlain = Date.distantPast
    private var lastWidth = 0

    init(label: String, total: Int, plainEvery: TimeInterval = 5) {
        self.label = label
        self.total = total
        self.plainEvery = plainEvery
    }

    /// Reports that `step` (1-based) of `total` is done.
    func update(step: Int, values: KeyValuePairs<String, Double> = [:]) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(step) / elapsed : 0
        let eta = rate > 0 ? Double(total - step) / rate : 0
        var text = "\(label) \(step)/\(total) \(String(format: "%.2f", rate)) it/s ETA \(Self.clock(eta))"
        for (k, v) in values { text += " \(k) \(String(format: "%.4g", v))" }
        if isTerminal {
            let pad = max(0, lastWidth - text.count)
            FileHandle.standardError.write(("\r" + text + String(repeating: " ", count: pad)).data(using: .utf8)!)
            lastWidth = text.count
            if step >= total { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        } else if step >= total || Date().timeIntervalSince(lastPlain) >= plainEvery {
            lastPlain = Date()
            FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }
}
