import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import UniLIPCore
import UniLIPNN
import UniLIPPipelines
import XCTest

final class MetricsPlotTests: XCTestCase {
    func tempDir() -> String {
        let p = NSTemporaryDirectory() + "unilip-report-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    /// Parses the text as XML; fails the test with the parser's message otherwise.
    func assertWellFormed(_ xml: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNoThrow(try XMLDocument(xmlString: xml, options: []), "not well-formed XML", file: file, line: line)
    }

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    func series() -> [String: MetricsLog.Series] {
        let steps = (1...200).map(Double.init)
        return [
            "loss": steps.map { (step: $0, value: 10 * exp(-($0 - 1) / 20)) },  // 10 → 4.9e-4: log scale
            "psnr": steps.map { (step: $0, value: 10 + 0.1 * $0) },
            "lr": steps.map { (step: $0, value: 1e-3 * min(1, $0 / 10)) },
            "a<b&\"c\"": [(step: 1, value: 1)],
        ]
    }

    func testSVGHasOnePanelPerMetricAndIsWellFormed() {
        let svg = MetricsPlot.svg(series: series(), title: "run <1> & co")
        XCTAssertEqual(count("class=\"panel\"", in: svg), 4)
        for name in ["loss", "psnr", "lr", "a&lt;b&amp;&quot;c&quot;"] {
            XCTAssertEqual(count("data-metric=\"\(name)\"", in: svg), 1, name)
        }
        XCTAssertEqual(count("class=\"average\"", in: svg), 3, "a moving average over each metric with enough points")
        assertWellFormed(svg)
        // Loss is drawn first.
        let order = ["loss", "a&lt;b", "psnr", "lr"].compactMap { svg.range(of: "data-metric=\"\($0)")?.lowerBound }
        XCTAssertEqual(order, order.sorted())
        XCTAssertEqual(order.count, 4)

        let empty = MetricsPlot.svg(series: ["loss": []], title: "new run")
        XCTAssertEqual(count("class=\"panel\"", in: empty), 0)
        XCTAssertTrue(empty.contains("no metrics logged yet"))
        assertWellFormed(empty)
    }

    /// A long run is drawn with a bounded number of points that keeps a one-step spike.
    func testLongSeriesAreThinnedButKeepSpikes() throws {
        let points = (1...20_000).map { (step: Double($0), value: $0 == 12_345 ? 50.0 : 1 + 0.1 * sin(Double($0))) }
        let svg = MetricsPlot.svg(series: ["loss": points], title: "long")
        assertWellFormed(svg)
        func polyline(_ cls: String) -> [String] {
            guard let start = svg.range(of: "class=\"\(cls)\" points=\""),
                  let end = svg.range(of: "\"", range: start.upperBound..<svg.endIndex) else { return [] }
            return svg[start.upperBound..<end.lowerBound].split(separator: " ").map(String.init)
        }
        let raw = polyline("raw"), average = polyline("average")
        XCTAssertGreaterThan(raw.count, 100)
        XCTAssertLessThanOrEqual(raw.count, MetricsPlot.maxLinePoints)
        XCTAssertLessThanOrEqual(average.count, MetricsPlot.maxLinePoints + 1)
        // The spike is the highest point: the top of the plot area.
        let topY = raw.compactMap { $0.split(separator: ",").last.flatMap { Double($0) } }.min()
        XCTAssertEqual(topY ?? -1, MetricsPlot.top, accuracy: 0.05)
        // Both lines end at the last step: the right edge.
        let rightEdge = String(format: "%.1f", MetricsPlot.panelWidth - MetricsPlot.right)
        XCTAssertEqual(raw.last?.split(separator: ",").first.map(String.init), rightEdge)
        XCTAssertEqual(average.last?.split(separator: ",").first.map(String.init), rightEdge)
        XCTAssertLessThan(svg.utf8.count, 100_000)
    }

    func testLogScaleOnlyForPositiveMetricsSpanningMoreThanTwoDecades() {
        XCTAssertTrue(MetricsPlot.usesLogScale([5, 0.01]))
        XCTAssertFalse(MetricsPlot.usesLogScale([5, 0.06]))
        XCTAssertFalse(MetricsPlot.usesLogScale([0, 5, 1e-6]))
        XCTAssertFalse(MetricsPlot.usesLogScale([-1e-4, 5]))
        XCTAssertFalse(MetricsPlot.usesLogScale([]))
        let svg = MetricsPlot.svg(series: series(), title: "t")
        let panels = svg.components(separatedBy: "<g class=\"panel\"").dropFirst()
        let logPanels = panels.filter { $0.contains("(log scale)") }
        XCTAssertEqual(logPanels.count, 1)  // loss spans 4 decades; lr (1e-4 … 1e-3) one
        XCTAssertTrue(logPanels.first?.hasPrefix(" data-metric=\"loss\"") ?? false)
        // Decade tick labels on the log axis.
        let loss = panels.first { $0.hasPrefix(" data-metric=\"loss\"") } ?? ""
        for label in [">0.001<", ">0.01<", ">0.1<", ">1<", ">10<"] { XCTAssertTrue(loss.contains(label), label) }
    }

    func testReaderSkipsATruncatedLastLineAndKeepsTheLaterValueOfARepeatedStep() throws {
        let text = """
            {"step":10,"loss":2.5,"lr":0.001,"note":"text is ignored"}
            {"step":20,"loss":1.5,"lr":0.002}
            {"step":20,"loss":1.25,"lr":0.002}

            {"step":30,"loss":1.0,"l
            """
        let log = try MetricsLog.parse(Data(text.utf8))
        XCTAssertEqual(Set(log.keys), ["loss", "lr"])
        XCTAssertEqual(log["loss"]?.map(\.step), [10, 20])
        XCTAssertEqual(log["loss"]?.map(\.value), [2.5, 1.25])
        XCTAssertEqual(log["lr"]?.count, 2)
        XCTAssertTrue(try MetricsLog.parse(Data()).isEmpty)
    }

    func testReaderRejectsGarbageWithTheLineNumber() {
        func error(_ text: String) -> String {
            do {
                _ = try MetricsLog.parse(Data(text.utf8), path: "m.jsonl")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let middle = error("{\"step\":1,\"loss\":1}\nthis is not json\n{\"step\":2,\"loss\":1}\n")
        XCTAssertTrue(middle.contains("m.jsonl:2:") && middle.contains("this is not json"), middle)
        // A truncated line is only forgiven at the very end of the file.
        XCTAssertTrue(error("{\"step\":1,\"lo\n{\"step\":2,\"loss\":1}\n").contains("m.jsonl:1:"))
        XCTAssertTrue(error("{\"step\":1,\"loss\":1}\n{\"step\":2,\"lo\n").contains("m.jsonl:2:"))
        XCTAssertTrue(error("garbage without newline").contains("m.jsonl:1:"))
        XCTAssertTrue(error("{\"loss\":1}\n").contains("numeric \"step\""))
        XCTAssertTrue(error("[1,2,3]\n").contains("m.jsonl:1:"))
        XCTAssertThrowsError(try MetricsLog.parse(Data([0xff, 0xfe, 0x00, 0x81]), path: "m.jsonl")) { e in
            XCTAssertTrue("\(e)".contains("not UTF-8"), "\(e)")
        }
        XCTAssertThrowsError(try MetricsLog.read("/nonexistent/metrics.jsonl"))
    }

    /// A 3-step training run: its checkpoint comes with curves.svg, and the report shows the
    /// curves, the checkpoint state and the images without writing into the run folder.
    func testCheckpointDrawsCurvesAndReportShowsTheRun() throws {
        let root = tempDir()
        let dir = root + "/stage1"
        var rng = RandomGenerator(seed: 1)
        let model = MLP(4, hidden: 8, out: 2, rng: &rng)
        let schedule = TrainingSchedule(steps: 3, batchSize: 4, learningRate: 1e-2, warmupSteps: 1,
                                        checkpointEvery: 5, logEvery: 1)
        let loop = try TrainingLoop(model: model, groups: ParameterGroup.decaySplit(model.namedParameters(), lr: 1e-2, weightDecay: 0.01),
                                    schedule: schedule, run: try RunDirectory(dir))
        loop.checkpointInfo = ["options": "{\"stage\":1,\"seed\":7}"]
        try loop.train { step in
            var r = RandomGenerator(seed: UInt64(step))
            let loss = mseLoss(model(Tensor.normal([4, 4], rng: &r)), Tensor.normal([4, 2], rng: &r))
            return (loss, ["psnr": 10 + Double(step)])
        }
        let svg = try String(contentsOfFile: dir + "/curves.svg", encoding: .utf8)
        assertWellFormed(svg)
        for name in ["loss", "psnr", "lr", "grad_norm"] { XCTAssertTrue(svg.contains("data-metric=\"\(name)\""), name) }
        XCTAssertEqual(count("class=\"panel\"", in: svg), 4)

        // A picture in the run folder and one in a second run beside it.
        let png = Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])
        try png.write(to: URL(fileURLWithPath: dir + "/samples.png"))
        try FileManager.default.createDirectory(atPath: root + "/stage2", withIntermediateDirectories: true)
        try Data("{\"step\":5,\"loss\":0.5}\n".utf8).write(to: URL(fileURLWithPath: root + "/stage2/metrics.jsonl"))
        let table = root + "/results.md"
        try Data("# Results\n| run | PSNR |\n|---|--:|\n| `stage1` | **12.5** |\n".utf8).write(to: URL(fileURLWithPath: table))
        let before = try FileManager.default.subpathsOfDirectory(atPath: dir).sorted()

        var report = RunReport(tables: [table])
        let html = try report.html(for: dir)
        XCTAssertEqual(count("<section id=", in: html), 1)
        XCTAssertTrue(html.contains("data-metric=\"loss\""))
        XCTAssertTrue(html.contains("checkpoint-000003"))
        XCTAssertTrue(html.contains("<td>step</td><td>3</td>"), "checkpoint step")
        XCTAssertTrue(html.contains("<td>total_steps</td><td>3</td>"))
        XCTAssertTrue(html.contains("&quot;seed&quot; : 7"), "options JSON pretty-printed")
        XCTAssertTrue(html.contains("data:image/png;base64,\(png.base64EncodedString())"))
        XCTAssertTrue(html.contains("<td style=\"text-align:right\"><b>12.5</b></td>"))
        XCTAssertTrue(html.contains("<td><code>stage1</code></td>"))
        XCTAssertTrue(html.contains("<td>psnr</td><td class=n>12</td><td class=n>3</td>"), "final psnr at step 3")
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir).sorted(), before, "the run folder is only read")

        // A folder of runs: one section each; an image over the cap is named, not embedded.
        var capped = RunReport(maxImageBytes: 4)
        let both = try capped.html(for: root)
        XCTAssertEqual(count("<section id=", in: both), 2)
        XCTAssertTrue(both.contains("No complete checkpoint"), "stage2 has a log but no checkpoint")
        XCTAssertFalse(both.contains("data:image/png"))
        XCTAssertTrue(both.contains("samples.png: not embedded"))

        var missing = RunReport(images: [root + "/nope.png"])
        XCTAssertThrowsError(try missing.html(for: dir)) { XCTAssertTrue("\($0)".contains("nope.png: no such file")) }
        var plain = RunReport()
        XCTAssertThrowsError(try plain.html(for: root + "/stage2/none")) { XCTAssertTrue("\($0)".contains("no such folder")) }
    }

    func testMarkdownTables() {
        let html = MarkdownTable.html("intro `x` text\n\n| a | b \\| c | d |\n|:--|:-:|---|\n| 1 | <2> | |\n## After\n- one\n  more\n- two\nend\n")
        XCTAssertTrue(html.contains("<p>intro <code>x</code> text</p>"), html)
        XCTAssertTrue(html.contains("<th style=\"text-align:left\">a</th><th style=\"text-align:center\">b | c</th><th>d</th>"), html)
        XCTAssertTrue(html.contains("<td style=\"text-align:center\">&lt;2&gt;</td><td></td>"), html)
        XCTAssertTrue(html.contains("<h4>After</h4>\n<ul><li>one more</li><li>two</li></ul>\n<p>end</p>"), html)
        assertWellFormed("<div>" + html + "</div>")
    }
}
