import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPPipelines

extension LossReduction: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training recipes (resumable: rerun the same command to continue).",
        subcommands: [TrainUnderstandingCommand.self, TrainAutoencoderCommand.self, TrainGenerationCommand.self])
}

struct TrainUnderstandingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "understanding",
        abstract: "Makes the base model InternVL-tiny: tokenizer, CLIP pretraining of InternViT, MLLM training, full fine-tuning.")

    @OptionGroup var global: GlobalOptions
    @Option(name: .customLong("run"), help: "Run folder (checkpoints, metrics.jsonl); an interrupted run resumes from it.")
    var runDir = "runs/internvl-tiny"
    @Option(name: .shortAndLong, help: "Model folder to write at the end.")
    var output = "Models/internvl-tiny"
    @Option(help: "Seed of the world, the initialisation and the data order.")
    var seed: UInt64 = 0
    @Option(help: "CLIP pretraining steps.") var clipSteps: Int?
    @Option(help: "MLLM training steps.") var mllmSteps: Int?
    @Option(help: "Full fine-tuning steps.") var finetuneSteps: Int?
    @Option(help: "Batch size of every stage.") var batchSize: Int?
    @Flag(help: "CLIP pretraining also contrasts each caption with a copy whose one object has another shape.")
    var clipShapeNegatives = false
    @Flag(inversion: .prefixedNo,
          help: "CLIP pretraining also classifies the shape and colour covering each patch (on in the shipped recipe).")
    var clipPatchLabels = true
    @Flag(inversion: .prefixedNo,
          help: "The CLIP patch labels also name the column and row of the covering object's centre.")
    var clipPositionLabels = false
    @Option(help: "How stages (b) and (c) average the answer tokens' loss: token, sample or square (InternVL's loss_reduction; token made the shipped model).")
    var lossReduction: LossReduction = .square
    @Option(name: .customLong("question-weight"),
            help: "TYPE=W: stages (b) and (c) draw questions of TYPE W times as often as a type of weight 1 (repeatable; types: \(QuestionType.allCases.map(\.rawValue).joined(separator: ", "))).")
    var questionWeights: [String] = []
    @Flag(inversion: .prefixedNo,
          help: "Stages (b) and (c) answer \"Describe the image.\" with the caption that places every object (\"… at the top left\").")
    var describePositions = false
    @Option(help: "Language model width (default 128).") var llmHiddenSize: Int?
    @Option(help: "Language model layers (default 4).") var llmLayers: Int?
    @Option(help: "Language model attention heads (default 4).") var llmHeads: Int?
    @Option(help: "Language model key/value heads (default 2; must divide the heads).") var llmKvHeads: Int?

    func validate() throws {
        let recipe: InternVLTinyRecipe
        do { recipe = try configured() } catch { throw ValidationError("\(error)") }
        do { try recipe.chatConfig(vocabSize: 1).validate() } catch { throw ValidationError("language model: \(error)") }
    }

    /// The recipe with this command's options applied.
    func configured() throws -> InternVLTinyRecipe {
        var recipe = InternVLTinyRecipe()
        recipe.seed = seed
        recipe.clipShapeNegatives = clipShapeNegatives
        recipe.clipPatchLabels = clipPatchLabels
        recipe.clipPositionLabels = clipPositionLabels
        recipe.lossReduction = lossReduction
        recipe.describePositions = describePositions
        recipe.questionTypeWeights = try UnderstandingData.typeWeights(parsing: questionWeights)
        if let clipSteps { recipe.clip.steps = clipSteps }
        if let mllmSteps { recipe.mllm.steps = mllmSteps }
        if let finetuneSteps { recipe.finetune.steps = finetuneSteps }
        if let batchSize {
            recipe.clip.batchSize = batchSize
            recipe.mllm.batchSize = batchSize
            recipe.finetune.batchSize = batchSize
        }
        if let llmHiddenSize { recipe.llmHiddenSize = llmHiddenSize }
        if let llmLayers { recipe.llmLayers = llmLayers }
        if let llmHeads { recipe.llmHeads = llmHeads }
        if let llmKvHeads { recipe.llmKVHeads = llmKvHeads }
        return recipe
    }

    func run() throws {
        let logger = global.apply()
        let recipe = try configured()
        var lines: [String: ProgressLine] = [:]
        let start = Date()
        try recipe.run(runDir: runDir, output: output, log: { logger.info("\($0)") }, progress: { stage, p in
            let line = lines[stage] ?? ProgressLine(label: stage, total: p.totalSteps)
            lines[stage] = line
            line.update(step: p.step, values: ["loss": p.values["loss"] ?? .nan])
        })
        logger.info("done in \(ProgressLine.clock(Date().timeIntervalSince(start)))")
    }
}
