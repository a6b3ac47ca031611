import Foundation

/// A self-contained HTML report of a training run folder, or of a folder of run folders (one
/// section each): curves, the last checkpoint's state, final metric values, images (embedded as
/// data URIs up to a size cap) and Markdown tables. Reads the run folders only.
public struct RunReport {
    public var images: [String] = []
    public var tables: [String] = []
    /// Images larger than this are named with a note instead of embedded.
    public var maxImageBytes = 2 << 20
    /// Image bytes embedded in the whole report at most.
    public var maxTotalImageBytes = 32 << 20
    private var embeddedBytes = 0

    public init(images: [String] = [], tables: [String] = [], maxImageBytes: Int = 2 << 20) {
        self.images = images
        self.tables = tables
        self.maxImageBytes = maxImageBytes
    }

    /// A folder is a run folder when it holds a metrics log, a `latest` pointer or a checkpoint.
    public static func isRunFolder(_ path: String) -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: (path as NSString).appendingPathComponent("metrics.jsonl"))
            || fm.fileExists(atPath: (path as NSString).appendingPathComponent("latest")) { return true }
        return ((try? fm.contentsOfDirectory(atPath: path)) ?? []).contains { $0.hasPrefix("checkpoint-") }
    }

    /// `path` itself when it is a run folder, otherwise the run folders below it (three levels at
    /// most), sorted.
    public static func runFolders(in path: String, depth: Int = 3) -> [String] {
        if isRunFolder(path) { return [path] }
        guard depth > 0, let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        var out: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let child = (path as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: child, isDirectory: &isDir), isDir.boolValue else { continue }
            out += runFolders(in: child, depth: depth - 1)
        }
        return out
    }

    public mutating func html(for path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw TrainingError("\(path): no such folder")
        }
        for file in images + tables where !FileManager.default.fileExists(atPath: file) {
            throw TrainingError("\(file): no such file")
        }
        let runs = Self.runFolders(in: path)
        guard !runs.isEmpty else {
            throw TrainingError("\(path): no run folder found (one with metrics.jsonl, latest or checkpoint-*)")
        }
        embeddedBytes = 0
        let root = (path as NSString).standardizingPath
        var h = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Training report: \(escape(root))</title>\n"
        h += "<style>body{font:14px sans-serif;margin:2em;max-width:1100px}svg{max-width:100%;height:auto}"
        h += "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        h += "th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f7f7f7;padding:6px;overflow:auto}"
        h += "figure{display:inline-block;margin:6px;vertical-align:top}figure img{max-width:320px;image-rendering:pixelated}"
        h += ".note{color:#a60}nav a{margin-right:1em}</style></head><body>\n"
        h += "<h1>Training report</h1>\n<p>\(escape(root)), \(runs.count) run\(runs.count == 1 ? "" : "s"). "
        h += "Written \(escape(ISO8601DateFormatter().string(from: Date()))).</p>\n"
        if runs.count > 1 {
            h += "<nav>" + runs.map { "<a href=\"#\(anchor(relative($0, to: root)))\">\(escape(relative($0, to: root)))</a>" }
                .joined() + "</nav>\n"
        }
        for table in tables {
            guard let data = FileManager.default.contents(atPath: table), let text = String(data: data, encoding: .utf8) else {
                throw TrainingError("\(table): cannot read the table file as UTF-8 text")
            }
            h += "<section><h2>\(escape((table as NSString).lastPathComponent))</h2>\n\(MarkdownTable.html(text))</section>\n"
        }
        if !images.isEmpty {
            h += "<section><h2>Images</h2>\n" + images.map { figure($0) }.joined() + "</section>\n"
        }
        for run in runs { h += try section(run, root: root) }
        return h + "</body></html>\n"
    }

    mutating func section(_ run: String, root: String) throws -> String {
        let name = relative(run, to: root)
        var h = "<section id=\"\(anchor(name))\"><h2>\(escape(name))</h2>\n"
        let logPath = (run as NSString).appendingPathComponent("metrics.jsonl")
        if FileManager.default.fileExists(atPath: logPath) {
            let series = try MetricsLog.read(logPath)
            h += "<h3>Curves</h3>\n" + MetricsPlot.svg(series: series, title: name)
            h += "<h3>Final metrics</h3>\n<table><tr><th>metric</th><th>last</th><th>at step</th><th>min</th><th>max</th><th>points</th></tr>\n"
            for metric in MetricsPlot.order(Array(series.keys)) {
                guard let points = series[metric], let last = points.last else { continue }
                let values = points.map(\.value)
                h += "<tr><td>\(escape(metric))</td><td class=n>\(number(last.value))</td><td class=n>\(number(last.step))</td>"
                h += "<td class=n>\(number(values.min() ?? .nan))</td><td class=n>\(number(values.max() ?? .nan))</td>"
                h += "<td class=n>\(points.count)</td></tr>\n"
            }
            h += "</table>\n"
        } else {
            h += "<p class=note>No metrics.jsonl in this run folder.</p>\n"
        }
        h += "<h3>Last checkpoint</h3>\n"
        if let checkpoint = RunDirectory.latestCheckpoint(in: run) {
            h += "<p>\(escape((checkpoint as NSString).lastPathComponent))</p>\n"
            do {
                h += stateTable(try RunDirectory.state(in: checkpoint))
            } catch {
                h += "<p class=note>\(escape("\(error)"))</p>\n"
            }
        } else {
            h += "<p class=note>No complete checkpoint (no valid <code>latest</code> pointer).</p>\n"
        }
        let pngs = ([run, (run as NSString).appendingPathComponent("model")]).flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
                .filter { $0.lowercased().hasSuffix(".png") }.map { (folder as NSString).appendingPathComponent($0) }
        }
        if !pngs.isEmpty { h += "<h3>Images</h3>\n" + pngs.map { figure($0) }.joined() + "\n" }
        return h + "</section>\n"
    }

    /// The checkpoint state as a key/value table; JSON held in strings (the options) is shown pretty-printed.
    func stateTable(_ state: [String: Any]) -> String {
        var h = "<table><tr><th>key</th><th>value</th></tr>\n"
        func rank(_ k: String) -> Int { k == "step" ? 0 : k == "total_steps" ? 1 : 2 }
        for key in state.keys.sorted(by: { (rank($0), $0) < (rank($1), $1) }) {
            let value = state[key] ?? NSNull()
            var cell: String
            if let s = value as? String {
                if s.hasPrefix("{") || s.hasPrefix("["), let object = try? JSONSerialization.jsonObject(with: Data(s.utf8)),
                   let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
                    cell = "<pre>\(escape(String(decoding: pretty, as: UTF8.self)))</pre>"
                } else {
                    cell = escape(s)
                }
            } else if value is [Any] || value is [String: Any],
                      let pretty = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) {
                cell = "<pre>\(escape(String(decoding: pretty, as: UTF8.self)))</pre>"
            } else {
                cell = escape("\(value)")
            }
            h += "<tr><td>\(escape(key))</td><td>\(cell)</td></tr>\n"
        }
        return h + "</table>\n"
    }

    /// An image embedded as a data URI, or a note when it is over the cap or unreadable.
    mutating func figure(_ path: String) -> String {
        let name = escape((path as NSString).lastPathComponent)
        let ext = (path as NSString).pathExtension.lowercased()
        let mime = ["png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                    "svg": "image/svg+xml", "webp": "image/webp"][ext]
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
        guard let mime else { return "<p class=note>\(name): not embedded (unknown image type .\(escape(ext))).</p>\n" }
        guard size >= 0, let data = size <= maxImageBytes && embeddedBytes + size <= maxTotalImageBytes
                ? FileManager.default.contents(atPath: path) : nil else {
            let why = size < 0 ? "unreadable"
                : size > maxImageBytes ? "\(kb(size)) over the \(kb(maxImageBytes)) cap per image"
                : "the report already embeds \(kb(embeddedBytes)) of images (cap \(kb(maxTotalImageBytes)))"
            return "<p class=note>\(escape(path)): not embedded (\(why)).</p>\n"
        }
        embeddedBytes += data.count
        return "<figure><img alt=\"\(name)\" src=\"data:\(mime);base64,\(data.base64EncodedString())\">"
            + "<figcaption>\(name)</figcaption></figure>\n"
    }

    func kb(_ bytes: Int) -> String { bytes >= 1 << 20 ? String(format: "%.1f MB", Double(bytes) / 1048576) : "\(bytes / 1024) KB" }

    func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e9 ? String(Int(v)) : String(format: "%.5g", v) }

    func relative(_ path: String, to root: String) -> String {
        let p = (path as NSString).standardizingPath
        if p == root { return (root as NSString).lastPathComponent }
        return p.hasPrefix(root + "/") ? String(p.dropFirst(root.count + 1)) : p
    }

    func anchor(_ s: String) -> String {
        "run-" + String(s.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" })
    }

    func escape(_ s: String) -> String { HTMLText.escape(s) }
}

enum HTMLText {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// Markdown with pipe tables to HTML: tables (with column alignment), headings, bullet lists and paragraphs;
/// inline `code` and **bold**. Enough for result tables, not a full Markdown renderer.
public enum MarkdownTable {
    public static func html(_ markdown: String) -> String {
        var out = ""
        var block: [String] = []
        var paragraph: [String] = []
        func flushParagraph() {
            if !paragraph.isEmpty { out += "<p>" + paragraph.map(inline).joined(separator: " ") + "</p>\n" }
            paragraph = []
        }
        var items: [String] = []
        func flushList() {
            if !items.isEmpty { out += "<ul>" + items.map { "<li>\(inline($0))</li>" }.joined() + "</ul>\n" }
            items = []
        }
        func flushTable() {
            if !block.isEmpty { out += table(block) }
            block = []
        }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("|") {
                flushParagraph()
                flushList()
                block.append(line)
                continue
            }
            flushTable()
            if line.hasPrefix("- ") || line.hasPrefix("* ") {
                flushParagraph()
                items.append(String(line.dropFirst(2)))
            } else if line.isEmpty || line.hasPrefix("<!--") {
                flushParagraph()
                flushList()
            } else if line.hasPrefix("#") {
                flushParagraph()
                flushList()
                let level = min(6, max(3, line.prefix { $0 == "#" }.count + 2))
                out += "<h\(level)>\(inline(String(line.drop { $0 == "#" }).trimmingCharacters(in: .whitespaces)))</h\(level)>\n"
            } else if !items.isEmpty && raw.first == " " {
                items[items.count - 1] += " " + line  // a list item's continuation line
            } else {
                flushList()
                paragraph.append(line)
            }
        }
        flushTable()
        flushParagraph()
        flushList()
        return out
    }

    /// Cells of one `| a | b |` row; `\|` stays inside a cell.
    static func cells(_ line: String) -> [String] {
        var s = Substring(line)
        if s.hasPrefix("|") { s = s.dropFirst() }
        if s.hasSuffix("|") && !s.hasSuffix("\\|") { s = s.dropLast() }
        var out: [String] = [], cell = "", escaped = false
        for c in s {
            if escaped { cell.append(c == "|" ? "|" : "\\\(c)"); escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "|" { out.append(cell.trimmingCharacters(in: .whitespaces)); cell = "" } else { cell.append(c) }
        }
        if escaped { cell.append("\\") }
        out.append(cell.trimmingCharacters(in: .whitespaces))
        return out
    }

    static func table(_ lines: [String]) -> String {
        let rows = lines.map(cells)
        let isSeparator = { (row: [String]) in
            !row.isEmpty && row.allSatisfy { c in !c.isEmpty && c.allSatisfy { "-:".contains($0) } && c.contains("-") }
        }
        var header: [String]? = nil, aligns: [String] = [], body = rows
        if rows.count >= 2 && isSeparator(rows[1]) {
            header = rows[0]
            aligns = rows[1].map { c in
                c.hasPrefix(":") && c.hasSuffix(":") ? "center" : c.hasSuffix(":") ? "right" : c.hasPrefix(":") ? "left" : ""
            }
            body = Array(rows.dropFirst(2))
        }
        func row(_ cells: [String], _ tag: String) -> String {
            "<tr>" + cells.enumerated().map { i, c in
                let align = i < aligns.count && !aligns[i].isEmpty ? " style=\"text-align:\(aligns[i])\"" : ""
                return "<\(tag)\(align)>\(inline(c))</\(tag)>"
            }.joined() + "</tr>\n"
        }
        var h = "<table>\n"
        if let header { h += row(header, "th") }
        for r in body { h += row(r, "td") }
        return h + "</table>\n"
    }

    /// Escapes the text, then renders `code` and **bold** spans.
    static func inline(_ text: String) -> String {
        var out = ""
        let parts = text.components(separatedBy: "`")
        for (i, part) in parts.enumerated() {
            if i % 2 == 1 && i < parts.count - 1 {
                out += "<code>\(HTMLText.escape(part))</code>"
            } else {
                let plain = i % 2 == 1 ? "`" + part : part
                let bold = HTMLText.escape(plain).components(separatedBy: "**")
                out += bold.enumerated().map { j, s in
                    j % 2 == 1 && j < bold.count - 1 ? "<b>\(s)</b>" : (j % 2 == 1 ? "**" + s : s)
                }.joined()
            }
        }
        return out
    }
}
