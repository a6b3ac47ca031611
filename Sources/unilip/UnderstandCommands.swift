import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPPipelines

struct ModelOption: ParsableArguments {
    @Option(help: "Model folder (default: the shipped Models/internvl-tiny).")
    var model: String?

    func pipeline() throws -> UnderstandingPipeline {
        try UnderstandingPipeline(directory: try ModelLocator.locate("internvl-tiny", explicit: model))
    }
}

struct AskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ask", abstract: "Answers a question about an image.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: ModelOption
    @Argument(help: "PNG or JPEG image.") var image: String
    @Argument(help: "The question.") var question: String
    @Option(help: "Sampling temperature (0: greedy).") var temperature: Float = 0
    @Option(help: "Seed for sampling.") var seed: UInt64 = 0

    func run() throws {
        _ = global.apply()
        let pipeline = try modelOption.pipeline()
        var options = UnderstandingOptions()
        options.temperature = temperature
        options.seed = seed
        print(try pipeline.ask(try Image(contentsOf: image), question, options: options))
    }
}

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "Describes an image.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: ModelOption
    @Argument(help: "PNG or JPEG image.") var image: String

    func run() throws {
        _ = global.apply()
        print(try modelOption.pipeline().describe(try Image(contentsOf: image)))
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluations on ShapesWorld.",
                                                    subcommands: [EvalUnderstandingCommand.self])
}

struct EvalUnderstandingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "understanding",
        abstract: "VQA accuracy by question type and zero-shot attribute accuracy, on the test and held-out splits.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: ModelOption
    @Option(help: "Scenes per split for VQA (every question of each scene).") var scenes = 200
    @Option(help: "Single-object images per split for zero-shot accuracy.") var zeroShotImages = 300
    @Option(help: "World seed.") var seed: UInt64 = 0
    @Option(help: "Also write the tables as Markdown to this file.") var markdown: String?

    func run() throws {
        _ = global.apply()
        let pipeline = try modelOption.pipeline()
        let world = ShapesWorld(seed: seed, resolution: pipeline.model.config.forceImageSize)
        let (clip, tokenizer) = try UnderstandingEvaluation.loadCLIP(directory: pipeline.directory, vision: pipeline.model.vision)
        var md = "| split | " + QuestionType.allCases.map(\.rawValue).joined(separator: " | ") + " | VQA overall | zero-shot color | shape | size |\n"
        md += "|---|" + String(repeating: "---|", count: QuestionType.allCases.count + 4) + "\n"
        for split in [Split.test, .heldOut] {
            let line = ProgressLine(label: "vqa \(split.rawValue)", total: 1)
            let vqa = try UnderstandingEvaluation.vqa(pipeline, world: world, split: split, scenes: scenes) { done, total in
                line.update(step: done == total ? 1 : 0)
            }
            let zs = UnderstandingEvaluation.zeroShot(clip, tokenizer: tokenizer, world: world, split: split, images: zeroShotImages)
            func pct(_ v: Double) -> String { v.isNaN ? "–" : String(format: "%.1f%%", v * 100) }
            print("\(split.rawValue): VQA \(pct(vqa.overall)) over \(vqa.total.values.reduce(0, +)) questions")
            for t in QuestionType.allCases {
                print("  \(t.rawValue): \(pct(vqa.accuracy(t.rawValue))) (\(vqa.total[t.rawValue] ?? 0))")
            }
            print("  zero-shot: color \(pct(zs.accuracy("color"))), shape \(pct(zs.accuracy("shape"))), size \(pct(zs.accuracy("size"))) over \(zs.total["color"] ?? 0) single-object images")
            md += "| \(split.rawValue) | " + QuestionType.allCases.map { pct(vqa.accuracy($0.rawValue)) }.joined(separator: " | ")
            md += " | \(pct(vqa.overall)) | \(pct(zs.accuracy("color"))) | \(pct(zs.accuracy("shape"))) | \(pct(zs.accuracy("size"))) |\n"
        }
        if let markdown { try AtomicFile.write(Data(md.utf8), to: markdown) }
    }
}
