import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPPipelines

extension UniLIPGeneratorConfig.ConditionMode: ExpressibleByArgument {}
extension UniLIPGeneratorConfig.GridPositionEmbedding: ExpressibleByArgument {}

struct TrainGenerationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generation",
        abstract: "Trains the generation/editing head (queries, connector, projector, DiT) on frozen MLLM, encoder and decoder.",
        discussion: """
        Flow matching on UniLIP latents (scaled by 1/std measured on training images), batches that are all
        text-to-image or all editing, 10% of prompts replaced by the unconditional one. Rerun to resume.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "dual (UniLIP) or queries_only (the ablation without the multimodal hidden states).")
    var mode: UniLIPGeneratorConfig.ConditionMode = .dual
    @Option(help: "Base InternVL model folder (default: the shipped internvl-tiny).") var mllm: String?
    @Option(help: "UniLIP autoencoder folder (default: the shipped unilip-tiny).") var autoencoder: String?
    @Option(name: .customLong("run"), help: "Run folder (default: runs/unilip-gen-tiny-MODE).") var runDir: String?
    @Option(name: .shortAndLong, help: "Model folder to write (default: RUN/model).") var output: String?
    @Option(help: "Training steps.") var steps: Int?
    @Option(help: "Batch size.") var batchSize: Int?
    @Option(help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "Connector layers copied from the LLM's last ones.") var connectLayers = 2
    @Option(help: "Fraction of batches that are editing (default 0.5; the rest are text-to-image).")
    var editFraction: Double?
    @Option(help: "Share of text-to-image captions that place every object (\"… at the top left\"); the rest draw from all phrasings (default 0: uniform, a quarter place objects).")
    var placedCaptions: Double?
    @Option(help: "Shift of the noise levels trained (default 1, the reference's; the sampler uses the config's flow_shift, 3).")
    var trainingFlowShift: Double?
    @Option(help: "Seed of the initialisation, data and noise.") var seed: UInt64 = 0
    @Option(help: "Generation model folder to start from (its config and weights; a fresh optimiser and schedule) instead of a new head.")
    var initFrom: String?
    @Option(help: "Learnable grid-position embedding added in dual mode to: none (the reference), reference (the reference image's tokens) or reference_and_queries (our extension).")
    var gridPositions: UniLIPGeneratorConfig.GridPositionEmbedding = .none
    @Flag(help: "Learn an offset to the frozen LLM's token embeddings on the generation path (our extension; with --init-from it is added to a head that lacks it, starting at zero).")
    var textEmbeddingOffset = false
    @Option(help: "Learning-rate multiplier of the text-embedding offset (default 10).") var offsetLRScale: Float?

    func validate() throws {
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        if let batchSize, batchSize <= 0 { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        let logger = global.apply()
        var options = GenerationTrainingOptions.tiny
        options.seed = seed
        if let steps { options.schedule.steps = steps }
        if let batchSize { options.schedule.batchSize = batchSize }
        if let learningRate { options.schedule.learningRate = learningRate }
        if let editFraction { options.editFraction = editFraction }
        if let trainingFlowShift { options.trainingFlowShift = trainingFlowShift }
        if let placedCaptions { options.placedCaptionFraction = placedCaptions }
        if let offsetLRScale { options.textEmbeddingOffsetLRScale = offsetLRScale }
        try options.validate()
        let mllmPath = try ModelLocator.locate("internvl-tiny", explicit: mllm)
        let autoencoderPath = try ModelLocator.locate("unilip-tiny", explicit: autoencoder)
        let runPath = runDir ?? "runs/unilip-gen-tiny-\(mode.rawValue)"
        let outPath = output ?? (runPath as NSString).appendingPathComponent("model")

        let components = GenerationComponents(mllm: mllmPath, autoencoder: autoencoderPath)
        let (chat, ae, tokenizer) = try GenerationModel.loadComponents(components, relativeTo: ".")
        let world = ShapesWorld(seed: 0, resolution: ae.config.imageSize)
        let grid = ae.latentGrid(height: ae.config.imageSize, width: ae.config.imageSize)
        let generator: UniLIPGenerator
        if let initFrom {
            // Its config (mode, latent scale, …) comes with it; of the other head options only
            // --text-embedding-offset applies.
            generator = try GenerationModel.loadGenerator(directory: initFrom, addingTextEmbeddingOffset: textEmbeddingOffset)
            let c = generator.config, llm = chat.config.llmConfig
            guard c.llmConfig.hiddenSize == llm.hiddenSize && c.llmConfig.numAttentionHeads == llm.numAttentionHeads
                    && c.llmConfig.numKeyValueHeads == llm.numKeyValueHeads && c.llmConfig.headDim == llm.headDim
                    && c.llmConfig.intermediateSize == llm.intermediateSize,
                  c.ditConfig.inChannels == ae.config.latentChannels, c.numQueries == grid.0 * grid.1 else {
                throw ValidationError("--init-from \(initFrom): its head (LLM width \(c.llmConfig.hiddenSize), \(c.ditConfig.inChannels) latent channels, \(c.numQueries) queries) does not fit the MLLM (width \(llm.hiddenSize)) and autoencoder (\(ae.config.latentChannels) channels, \(grid.0 * grid.1) latent cells)")
            }
            logger.info("starting from \(initFrom)")
        } else {
            var dit = SanaConfig.tiny
            dit.inChannels = ae.config.latentChannels
            dit.outChannels = ae.config.latentChannels
            dit.sampleSize = grid.0
            let scale = GenerationTraining.latentScale(ae, world: world, count: options.scaleImages)
            let config = UniLIPGeneratorConfig(numQueries: grid.0 * grid.1, connectLayers: connectLayers,
                                               llmConfig: chat.config.llmConfig, ditConfig: dit, conditionMode: mode,
                                               latentScale: scale, gridPositionEmbedding: gridPositions,
                                               textEmbeddingOffset: textEmbeddingOffset)
            try config.validate()
            var rng = RandomGenerator(seed: seed)
            generator = UniLIPGenerator(config, rng: &rng)
        }
        let model = try GenerationModel(generator: generator, mllm: chat, autoencoder: ae, tokenizer: tokenizer)
        let run = try RunDirectory(runPath)
        let used = generator.config
        logger.info("\(used.conditionMode.rawValue): \(options.schedule.steps) steps of \(options.schedule.batchSize), latent scale \(used.latentScale), training flow shift \(options.trainingFlowShift), placed captions \(options.placedCaptionFraction), run \(runPath)")
        let line = ProgressLine(label: "generation", total: options.schedule.steps)
        let start = Date()
        let weights = try GenerationTraining.train(model, options: options, world: world, run: run,
                                                   info: ["mllm": mllmPath, "autoencoder": autoencoderPath],
                                                   initConnector: initFrom == nil) { p in
            line.update(step: p.step, values: ["loss": p.values["loss"] ?? .nan])
            return true
        }
        let relative = GenerationComponents(mllm: GenerationTraining.relativePath(from: outPath, to: mllmPath),
                                            autoencoder: GenerationTraining.relativePath(from: outPath, to: autoencoderPath))
        try GenerationModel.save(model.generator, weights: weights, components: relative, to: outPath)
        logger.info("wrote \(outPath) in \(ProgressLine.clock(Date().timeIntervalSince(start)))")
    }
}
