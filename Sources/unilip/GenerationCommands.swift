import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPPipelines

extension ImageGenerationOptions.Sampler: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "dpm", "dpm-solver", "dpm-solver++", "dpmsolver": self = .dpmSolver
        case "euler": self = .euler
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["dpm", "euler"] }
}

/// Sampling settings shared by generation and editing commands.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Seed of the starting noise.") var seed: UInt64 = 42
    @Option(help: "Denoising steps.") var steps = 20
    @Option(help: "Classifier-free guidance scale (1: no guidance).") var guidance: Float = 4.5
    @Option(help: "Sampler: dpm (DPM-Solver++, the reference's) or euler.") var sampler: ImageGenerationOptions.Sampler = .dpmSolver

    var options: ImageGenerationOptions {
        ImageGenerationOptions(steps: steps, guidanceScale: guidance, seed: seed, sampler: sampler)
    }

    func validate() throws {
        do { try options.validate() } catch { throw ValidationError("\(error)") }
    }
}

struct GenerationModelOption: ParsableArguments {
    @Option(help: "Generation model folder: ours, or a published UniLIP folder (UniLIP-1B/3B) (default: the shipped Models/unilip-gen-tiny).") var model: String?

    func pipeline() throws -> GenerationPipeline {
        let directory = try ModelLocator.locate("unilip-gen-tiny", explicit: model)
        if UniLIPOfficialModel.isOfficialFolder(directory) {
            return try UniLIPOfficialModel(directory: directory).generationPipeline()
        }
        return try GenerationPipeline(directory: directory)
    }
}

/// Where generated or edited images go: `-o OUT` and `--count N` (OUT-1 … OUT-N for several).
struct ImageOutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output image (.png or .jpg); several images get -1, -2, … before the extension.") var output: String
    @Option(help: "Images to produce (one batch; row k differs by its noise).") var count = 1

    func validate() throws {
        guard count >= 1 && count <= 64 else { throw ValidationError("--count must be between 1 and 64 (got \(count))") }
    }

    func write(_ images: [Image]) throws {
        for (image, path) in zip(images, numberedPaths(output, count: count)) {
            try image.write(to: path)
            print("→ \(path)")
        }
    }
}

/// OUT.png for one image; OUT-1.png … OUT-N.png for several.
func numberedPaths(_ output: String, count: Int) -> [String] {
    guard count > 1 else { return [output] }
    let ext = (output as NSString).pathExtension, stem = (output as NSString).deletingPathExtension
    return (1...count).map { "\(stem)-\($0)" + (ext.isEmpty ? "" : ".\(ext)") }
}

func generationProgress(_ label: String, steps: Int) -> (Int, Int) -> Bool {
    let line = ProgressLine(label: label, total: steps, plainEvery: 1)
    return { step, _ in
        line.update(step: step)
        return true
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generates an image from a text prompt.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: GenerationModelOption
    @OptionGroup var sampling: SamplingOptions
    @Argument(help: "The prompt, e.g. \"a small red circle and a large blue square on a striped background.\"") var prompt: String
    @OptionGroup var out: ImageOutputOptions

    func run() throws {
        _ = global.apply()
        let pipeline = try modelOption.pipeline()
        print("seed \(sampling.seed)")
        try out.write(try pipeline.generate([String](repeating: prompt, count: out.count), options: sampling.options,
                                            progress: generationProgress("generate", steps: sampling.steps)))
    }
}

struct EditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edit", abstract: "Edits an image by an instruction.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: GenerationModelOption
    @OptionGroup var sampling: SamplingOptions
    @Argument(help: "PNG or JPEG image (resized to the model's size).") var input: String
    @Argument(help: "The instruction, e.g. \"Make the red circle blue.\"") var instruction: String
    @OptionGroup var out: ImageOutputOptions

    func run() throws {
        _ = global.apply()
        let image = try Image(contentsOf: input)
        let pipeline = try modelOption.pipeline()
        print("seed \(sampling.seed)")
        try out.write(try pipeline.edit([Image](repeating: image, count: out.count),
                                        instructions: [String](repeating: instruction, count: out.count),
                                        options: sampling.options, progress: generationProgress("edit", steps: sampling.steps)))
    }
}

/// The models compared by a generation evaluation: `--model DIR` (repeatable) and `--row LABEL=DIR`.
struct GenerationRowsOption: ParsableArguments {
    @Option(help: "Generation model folder (repeatable; default: the shipped Models/unilip-gen-tiny).") var model: [String] = []
    @Option(help: "Labelled row: LABEL=FOLDER (repeatable), e.g. \"queries only=runs/gen-queries/model\".") var row: [String] = []

    func rows() throws -> [(label: String, directory: String)] {
        var out = model.map { (label: ($0 as NSString).lastPathComponent, directory: $0) }
        for r in row {
            let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("--row must be LABEL=FOLDER, got \(r)") }
            out.append((label: parts[0], directory: parts[1]))
        }
        if out.isEmpty {
            out = [(label: "UniLIP, shipped", directory: try ModelLocator.locate("unilip-gen-tiny", explicit: nil))]
        }
        return out
    }
}

func createParent(of path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
}

/// `path` as a Markdown file at `markdown` links it: relative when it lies below the file's folder.
func relativeTo(_ markdown: String?, _ path: String) -> String {
    guard let markdown else { return path }
    let folder = ((markdown as NSString).deletingLastPathComponent as NSString).standardizingPath
    let full = (path as NSString).standardizingPath
    if folder.isEmpty || folder == "." { return full }
    return full.hasPrefix(folder + "/") ? String(full.dropFirst(folder.count + 1)) : path
}

func conditionLabel(_ pipeline: GenerationPipeline) -> String {
    pipeline.model.generator.config.conditionMode == .dual ? "dual condition" : "queries only"
}

struct EvalGenerationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generation",
        abstract: "GenEval's categories on ShapesWorld prompts, scored by the scene parser (4 samples per prompt).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var models: GenerationRowsOption
    @Option(help: "Prompts per category (every 4th uses a held-out colour-shape pair).") var promptsPerCategory = 40
    @Option(help: "Denoising steps.") var steps = 20
    @Option(help: "Classifier-free guidance scale.") var guidance: Float = 4.5
    @Option(help: "Base seed: prompt p's 4 samples use seed + p.") var seed: UInt64 = 0
    @Option(help: "Write the table into this Markdown file's `generation` section.") var markdown: String?
    @Option(help: "Sample grid PNG (2 prompts per category: the intended scene, then the 4 samples of each model); the prompts go to GRID.txt.")
    var grid: String?

    func run() throws {
        let logger = global.apply()
        let rows = try models.rows()
        let options = ImageGenerationOptions(steps: steps, guidanceScale: guidance, seed: seed)
        try options.validate()
        var results: [(label: String, score: GenerationScore)] = []
        var loose: [(label: String, score: GenerationScore)] = []
        var samples: [[[Image]]] = []
        var world = ShapesWorld(seed: 0)
        var specs: [GenerationSpec] = []
        var ceiling: GenerationEvaluation.Result? = nil
        for (label, directory) in rows {
            logger.info("\(label): \(directory)")
            let pipeline = try GenerationPipeline(directory: directory)
            if specs.isEmpty {
                world = ShapesWorld(seed: 0, resolution: pipeline.imageSize)
                specs = GenerationEvaluation.allSpecs(perCategory: promptsPerCategory, world: world)
                ceiling = GenerationEvaluation.reconstructionCeiling(ReconstructionPipeline(model: pipeline.model.autoencoder),
                                                                     specs: specs, world: world)
            }
            let line = ProgressLine(label: "generate", total: specs.count)
            let result = try GenerationEvaluation.evaluate(pipeline, specs: specs, options: options) { done, _ in
                line.update(step: done)
            }
            let score = result.score
            let full = "\(label) (\(conditionLabel(pipeline)))"
            print("\(full): overall \(GenerationEvaluation.percent(score.overall)), held-out combinations \(GenerationEvaluation.percent(score.heldOut))")
            for c in GenerationCategory.allCases {
                print("  \(c.rawValue): \(GenerationEvaluation.percent(score.score(c))) (held-out combinations \(GenerationEvaluation.percent(score.score(c, heldOut: true))))")
            }
            results.append((full, score))
            loose.append((full, result.ignoringShape))
            samples.append(result.images)
        }
        if let ceiling {
            print("ceiling (autoencoder reconstructions of the intended scenes): overall \(GenerationEvaluation.percent(ceiling.score.overall)), held-out \(GenerationEvaluation.percent(ceiling.score.heldOut))")
            results.append(("ceiling: autoencoder reconstruction of the intended scene", ceiling.score))
            loose.append(("ceiling: autoencoder reconstruction of the intended scene", ceiling.ignoringShape))
        }
        let table = GenerationEvaluation.table(results)
        let looseTable = GenerationEvaluation.table(loose)
        print(table)
        print("Shapes ignored:\n" + looseTable)
        var md = "## Generation: GenEval's categories on ShapesWorld\n\n"
        md += "Generated by `unilip eval generation --markdown …`. \(promptsPerCategory) prompts per category, phrased as the training captions (`Captioner`), "
        md += "\(GenerationEvaluation.samplesPerPrompt) samples each (prompt p: seeds from `--seed \(seed)` + p), \(steps) DPM-Solver++ steps, guidance \(guidance). "
        md += "An image counts when the scene parser's objects meet the prompt's requirements: single object — an object of the shape; "
        md += "two objects — both shapes; counting — exactly n objects of the shape; colours — the object has the colour and shape; "
        md += "position — it lies in the named cell of the 3×3 grid; colour attribution — both colour-shape bindings; "
        md += "and in every category no object beyond those the prompt names (the prompts list every object; stricter than GenEval, which ignores extras). "
        md += "Overall: mean of the six categories (GenEval). Every 4th prompt names a held-out colour-shape pair (`ShapesWorld.isHeldOut`, never seen in training); those are scored in their own row. "
        md += "The ceiling row scores autoencoder reconstructions of the intended scenes (one per prompt): what a generator can reach through this decoder.\n\n"
        md += table
        md += "\nThe same with every parsed shape taken as right (colour, count and position only; what can still be judged when the decoder blurs shapes into blobs — colour attribution then only asks for both colours):\n\n"
        md += looseTable
        if let grid {
            let picks = GenerationCategory.allCases.flatMap { c in specs.indices.filter { specs[$0].category == c }.prefix(2) }
            var tiles: [[Image]] = []
            var text = "Rows of \(grid), top to bottom (first tile: the intended scene; then \(GenerationEvaluation.samplesPerPrompt) samples per model: \(results.prefix(samples.count).map(\.label).joined(separator: "; "))):\n"
            for p in picks {
                tiles.append([world.image(specs[p].scene)] + samples.flatMap { $0[p] })
                text += "- [\(specs[p].category.rawValue)] \(specs[p].prompt)\n"
            }
            try createParent(of: grid)
            try GenerationEvaluation.grid(tiles, breaks: Set([1] + (1...samples.count).map { 1 + $0 * GenerationEvaluation.samplesPerPrompt })).write(to: grid)
            try AtomicFile.write(Data(text.utf8), to: (grid as NSString).deletingPathExtension + ".txt")
            md += "\n![generation samples](\(relativeTo(markdown, grid)))\n\n" + text
        }
        if let markdown { try MarkdownSections.write(md, section: "generation", to: markdown) }
    }
}

struct EvalEditingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "editing",
        abstract: "Edit success per type (scene parser vs the edit's target scene) and PSNR of the region the edit leaves unchanged.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var models: GenerationRowsOption
    @Option(help: "ShapesWorld split of the scenes (heldOut: edits may create held-out colour-shape pairs).") var split: Split = .test
    @Option(help: "Scenes (each gives up to one edit of every type).") var scenes = 100
    @Option(help: "Denoising steps.") var steps = 20
    @Option(help: "Classifier-free guidance scale.") var guidance: Float = 4.5
    @Option(help: "Base seed: scene i's edits use seed + i.") var seed: UInt64 = 0
    @Option(help: "Write the table into this Markdown file's `editing` section.") var markdown: String?
    @Option(help: "Grid PNG: per row an input, its target and each model's output (2 edits per type).") var grid: String?
    @Option(help: "Folder for the failed edits of the first model: input | target | output PNGs and failures.txt with the reasons.") var failures: String?

    func run() throws {
        let logger = global.apply()
        let rows = try models.rows()
        if let failures { try FileManager.default.createDirectory(atPath: failures, withIntermediateDirectories: true) }
        let options = ImageGenerationOptions(steps: steps, guidanceScale: guidance, seed: seed)
        try options.validate()
        var results: [(label: String, score: EditingScore)] = []
        var outputs: [[Image]] = []
        var cases: [EditCase] = []
        var ceiling: EditingScore? = nil
        for (label, directory) in rows {
            logger.info("\(label): \(directory)")
            let pipeline = try GenerationPipeline(directory: directory)
            if cases.isEmpty {
                cases = EditingEvaluation.cases(world: ShapesWorld(seed: 0, resolution: pipeline.imageSize), split: split, scenes: scenes)
                ceiling = EditingEvaluation.reconstructionCeiling(ReconstructionPipeline(model: pipeline.model.autoencoder), cases: cases)
            }
            let line = ProgressLine(label: "edit", total: cases.count)
            let (score, images) = try EditingEvaluation.evaluate(pipeline, cases: cases, options: options) { done, _ in
                line.update(step: done)
            }
            let full = "\(label) (\(conditionLabel(pipeline)))"
            print("\(full): overall \(GenerationEvaluation.percent(score.overall)), preserved PSNR \(String(format: "%.2f", score.overallPSNR)) dB")
            if let failures, outputs.isEmpty { try writeFailures(cases: cases, outputs: images, to: failures) }
            results.append((full, score))
            outputs.append(images)
        }
        if let ceiling { results.append(("ceiling: autoencoder reconstruction of the target", ceiling)) }
        let table = EditingEvaluation.table(results)
        print(table)
        var md = "## Editing on ShapesWorld\n\n"
        md += "Generated by `unilip eval editing --markdown …`. Every edit of the first \(scenes) \(split.rawValue) scenes (\(cases.count) edits), one sample each "
        md += "(scene i: seed \(seed) + i), \(steps) DPM-Solver++ steps, guidance \(guidance). "
        md += "Success: the scene parser's objects on the output equal the target scene's as a set of (colour, shape, row, column) — none missing, none extra; "
        md += "background edits must also change the background (mean absolute difference to the input ≥ \(Int(EditingEvaluation.backgroundChangeThreshold)) levels where the rendered before and after differ). "
        md += "Cells: success / PSNR between output and input over the pixels the edit leaves unchanged (rendered before = after; for background edits that is the objects' pixels; not reported when under 5% of the image). "
        md += "The ceiling row scores autoencoder reconstructions of the target images. "
        md += "Last column: mean success over the types other than replace with every parsed shape taken as right (what can still be judged when the decoder blurs shapes).\n\n"
        md += table
        if let grid {
            var picks: [Int] = []
            for t in EditType.allCases { picks += cases.indices.filter { cases[$0].edit.type == t }.prefix(2) }
            let tiles = picks.map { p in [cases[p].before, cases[p].after] + outputs.map { $0[p] } }
            try createParent(of: grid)
            try GenerationEvaluation.grid(tiles, breaks: [2]).write(to: grid)
            var text = "Rows of \(grid): input, target, then each model's output:\n"
            for p in picks { text += "- [\(cases[p].edit.type.rawValue)] \(cases[p].edit.instruction)\n" }
            try AtomicFile.write(Data(text.utf8), to: (grid as NSString).deletingPathExtension + ".txt")
            md += "\n![editing samples](\(relativeTo(markdown, grid)))\n\n" + text
        }
        if let markdown { try MarkdownSections.write(md, section: "editing", to: markdown) }
    }

    /// Writes each failed edit as input | target | output and tallies the reasons per type.
    func writeFailures(cases: [EditCase], outputs: [Image], to folder: String) throws {
        var text = ""
        var tally: [EditType: [String: Int]] = [:]
        for (i, (c, image)) in zip(cases, outputs).enumerated() {
            let reasons = EditingEvaluation.outcome(image, for: c).failures
            guard !reasons.isEmpty else { continue }
            for r in Set(reasons) { tally[c.edit.type, default: [:]][r, default: 0] += 1 }
            text += "\(i)\t\(c.edit.type.rawValue)\t\(c.edit.instruction)\t\(reasons.joined(separator: ", "))\n"
            let strip = GenerationEvaluation.grid([[c.before, c.after, image]])
            try strip.write(to: (folder as NSString).appendingPathComponent("\(i)-\(c.edit.type.rawValue).png"))
        }
        try AtomicFile.write(Data(text.utf8), to: (folder as NSString).appendingPathComponent("failures.txt"))
        for t in EditType.allCases {
            guard let reasons = tally[t] else { continue }
            let n = cases.filter { $0.edit.type == t }.count
            print("failures, \(t.rawValue) (of \(n)): " + reasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}
