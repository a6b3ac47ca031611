import Foundation
import UniLIPCore

/// Generated sections of a Markdown file, between `<!-- BEGIN name -->` and `<!-- END name -->`,
/// so that several commands can each rewrite their own part and hand-written text survives.
public enum MarkdownSections {
    /// Replaces section `name` of `file` with `body` (appending it when absent; creating the
    /// file with `title` when missing). Written atomically.
    public static func write(_ body: String, section name: String, to file: String, title: String = "# Results") throws {
        let begin = "<!-- BEGIN \(name) -->", end = "<!-- END \(name) -->"
        let block = begin + "\n" + body.trimmingCharacters(in: .newlines) + "\n" + end
        var text = (FileManager.default.contents(atPath: file).flatMap { String(data: $0, encoding: .utf8) }) ?? (title + "\n")
        if let a = text.range(of: begin), let b = text.range(of: end, range: a.upperBound..<text.endIndex) {
            text.replaceSubrange(a.lowerBound..<b.upperBound, with: block)
        } else {
            if !text.hasSuffix("\n") { text += "\n" }
            text += "\n" + block + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: file)
    }
}
