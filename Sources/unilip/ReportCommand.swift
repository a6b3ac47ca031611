import ArgumentParser
import Foundation
import UniLIPCore
import UniLIPPipelines

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Writes a self-contained HTML report of a training run folder (or a folder of runs).",
        discussion: """
            Each run gets its curves, the last checkpoint's state.json, the final metric values and the \
            PNG images in the run folder and its model/ subfolder. Images are embedded; those over \
            --max-image-kb are named with a note instead. Run folders are only read.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "A run folder, or a folder of run folders (one section each).") var runDir: String
    @Option(name: .shortAndLong, help: "Output HTML file.") var output = "report.html"
    @Option(name: .customLong("image"), help: "An extra image to include (repeatable).") var images: [String] = []
    @Option(name: .customLong("table"), help: "A Markdown file whose tables are included (repeatable).") var tables: [String] = []
    @Option(help: "Largest image embedded, in KB.") var maxImageKb = 2048

    func validate() throws {
        guard maxImageKb >= 0 else { throw ValidationError("--max-image-kb must be at least 0 (got \(maxImageKb))") }
    }

    func run() throws {
        let logger = global.apply()
        var report = RunReport(images: images, tables: tables, maxImageBytes: maxImageKb * 1024)
        let html = try report.html(for: runDir)
        try AtomicFile.write(Data(html.utf8), to: output)
        logger.info("wrote \(output) (\(html.utf8.count / 1024) KB) for \(RunReport.runFolders(in: runDir).count) run(s) in \(runDir)")
    }
}
