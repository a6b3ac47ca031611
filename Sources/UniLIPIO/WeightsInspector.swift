import Foundation
import UniLIPCore

/// A text summary of a checkpoint's tensors: one row per tensor (sorted by name) with its dtype,
/// shape and parameter count, then totals overall and per dtype.
public enum WeightsInspector {
    public struct Row: Equatable, Sendable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let parameters: Int
        public let bytes: Int
        /// The file holding the tensor (its last path component).
        public let file: String
    }

    /// The rows for `checkpoint`, sorted by name, keeping names that start with `prefix`.
    public static func rows(_ checkpoint: Checkpoint, prefix: String? = nil) -> [Row] {
        var out: [Row] = []
        let fileNames = checkpoint.torch != nil ? [(checkpoint.path as NSString).lastPathComponent]
            : checkpoint.files.map { ($0.path as NSString).lastPathComponent }
        for name in checkpoint.names {
            if let prefix, !prefix.isEmpty, !name.hasPrefix(prefix) { continue }
            guard let i = checkpoint.locations[name], i < fileNames.count,
                  let e = try? checkpoint.describe(name) else { continue }
            out.append(Row(name: name, dtype: e.dtypeName, shape: e.shape, parameters: e.shape.reduce(1, *),
                           bytes: e.bytes, file: fileNames[i]))
        }
        return out
    }

    /// Opens `path` (a .safetensors file, an index .json, a folder, or a PyTorch .pth) and describes it.
    public static func inspect(path: String, prefix: String? = nil, key: String? = nil) throws -> String {
        report(try Checkpoint(path: path, key: key), prefix: prefix)
    }

    public static func report(_ checkpoint: Checkpoint, prefix: String? = nil) -> String {
        let rows = rows(checkpoint, prefix: prefix)
        var lines: [String] = []
        let source = checkpoint.isSharded ? "\(checkpoint.path) (\(checkpoint.files.count) shards)" : checkpoint.path
        lines.append(source)
        if let key = checkpoint.torch?.key { lines.append("state dict under key '\(key)'") }
        if let prefix, !prefix.isEmpty {
            lines.append("tensors whose name starts with '\(prefix)': \(rows.count) of \(checkpoint.locations.count)")
        }
        let showFile = checkpoint.isSharded
        var header = ["name", "dtype", "shape", "params"]
        if showFile { header.append("file") }
        var table = [header]
        for r in rows {
            var cells = [r.name, r.dtype, "[" + r.shape.map(String.init).joined(separator: ", ") + "]", grouped(r.parameters)]
            if showFile { cells.append(r.file) }
            table.append(cells)
        }
        if !rows.isEmpty {
            let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
            let rightAligned: Set<Int> = [3]
            for cells in table {
                let padded = cells.enumerated().map { c, text -> String in
                    let pad = String(repeating: " ", count: widths[c] - text.count)
                    return rightAligned.contains(c) ? pad + text : text + pad
                }
                lines.append(padded.joined(separator: "  ").trimmingTrailingSpaces())
            }
        }
        let totalParams = rows.reduce(0) { $0 + $1.parameters }
        let totalBytes = rows.reduce(0) { $0 + $1.bytes }
        lines.append("")
        lines.append("total: \(rows.count) \(rows.count == 1 ? "tensor" : "tensors"), \(grouped(totalParams)) parameters, \(grouped(totalBytes)) bytes (\(humanBytes(totalBytes)))")
        var byType: [String: (tensors: Int, params: Int, bytes: Int)] = [:]
        for r in rows {
            var t = byType[r.dtype, default: (0, 0, 0)]
            t.tensors += 1
            t.params += r.parameters
            t.bytes += r.bytes
            byType[r.dtype] = t
        }
        for dtype in byType.keys.sorted() {
            guard let t = byType[dtype] else { continue }
            lines.append("  \(dtype): \(t.tensors) \(t.tensors == 1 ? "tensor" : "tensors"), \(grouped(t.params)) parameters, \(grouped(t.bytes)) bytes (\(humanBytes(t.bytes)))")
        }
        return lines.joined(separator: "\n")
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    static func humanBytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

private extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
