import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPPipelines

struct TrainAutoencoderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoencoder",
        abstract: "UniLIP autoencoder training: stage 1 (encoder frozen) or stage 2 (everything, with self-distillation).",
        discussion: """
        Stage 1 starts from the base model's encoder and mlp1 (--base) with new down_* layers and decoder.
        Stage 2 starts from a stage-1 model folder (--init); the frozen base encoder is the distillation
        teacher. The exported model is the EMA of the weights. Rerun the same command to resume.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "1 or 2.") var stage: Int
    @Option(help: "λ of the self-distillation loss (stage 2).") var distillWeight: Float = 1
    @Option(help: "Base InternVL model folder: its encoder and mlp1 (default: the shipped internvl-tiny).")
    var base: String?
    @Option(help: "Autoencoder folder to start from. Stage 2 default: runs/unilip-tiny/stage1/model; stage 1 default: the base encoder with new layers.")
    var initFrom: String?
    @Option(name: .customLong("run"), help: "Run folder (default: runs/unilip-tiny/stage1 or stage2-lambdaλ).")
    var runDir: String?
    @Option(name: .shortAndLong, help: "Model folder to write (default: RUN/model).") var output: String?
    @Option(help: "Training steps.") var steps: Int?
    @Option(help: "Batch size.") var batchSize: Int?
    @Option(help: "Peak learning rate.") var learningRate: Float?
    @Option(help: "Weight of the perceptual distance (0: off).") var perceptualWeight: Float = 0.1
    @Option(help: "Turn on the hinge GAN from this step.") var ganStart: Int?
    @Option(help: "Seed of the initialisation (the data order follows the step).") var seed: UInt64 = 0
    @Flag(help: "Stage 1 from --init-from with down_* frozen too: only the decoder trains, so the latent (and any generation head trained on it) stays valid (default 3,000 steps at 5e-4, run runs/unilip-tiny/decoder).")
    var decoderOnly = false

    func validate() throws {
        guard stage == 1 || stage == 2 else { throw ValidationError("--stage must be 1 or 2") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        if let batchSize, batchSize <= 0 { throw ValidationError("--batch-size must be positive") }
        if decoderOnly && (stage != 1 || initFrom == nil) {
            throw ValidationError("--decoder-only needs --stage 1 and --init-from (the autoencoder whose decoder to train)")
        }
        guard distillWeight >= 0, perceptualWeight >= 0 else { throw ValidationError("loss weights must be ≥ 0") }
    }

    static func defaultRun(stage: Int, distillWeight: Float, decoderOnly: Bool) -> String {
        if decoderOnly { return "runs/unilip-tiny/decoder" }
        return stage == 1 ? "runs/unilip-tiny/stage1" : "runs/unilip-tiny/stage2-lambda\(String(format: "%g", distillWeight))"
    }

    func run() throws {
        let logger = global.apply()
        var options = decoderOnly ? AutoencoderTrainingOptions.tinyDecoderOnly() : AutoencoderTrainingOptions.tiny(stage: stage)
        options.distillWeight = distillWeight
        options.perceptualWeight = perceptualWeight
        options.seed = seed
        if let steps { options.schedule.steps = steps }
        if let batchSize { options.schedule.batchSize = batchSize }
        if let learningRate { options.schedule.learningRate = learningRate }
        if let ganStart { options.gan = GANOptions(startStep: ganStart) }
        let runPath = runDir ?? Self.defaultRun(stage: stage, distillWeight: distillWeight, decoderOnly: decoderOnly)
        let outPath = output ?? (runPath as NSString).appendingPathComponent("model")
        let basePath = try ModelLocator.locate("internvl-tiny", explicit: base)

        let model: UniLIPAutoencoder
        if stage == 1, let initFrom {
            model = try AutoencoderFolder.load(initFrom)
        } else if stage == 1 {
            let chat = try UnderstandingPipeline.config(in: basePath)
            var rng = RandomGenerator(seed: seed)
            model = UniLIPAutoencoder(UniLIPAutoencoderConfig(chat: chat, decoder: .tiny), rng: &rng)
            try AutoencoderFolder.loadEncoder(fromInternVL: basePath, into: model)
        } else {
            model = try AutoencoderFolder.load(initFrom ?? "runs/unilip-tiny/stage1/model")
        }
        model.train()
        let teacher = try AutoencoderFolder.teacher(fromInternVL: basePath, config: model.config)
        let world = ShapesWorld(seed: 0, resolution: model.config.imageSize)
        let run = try RunDirectory(runPath)
        logger.info("stage \(stage): \(options.schedule.steps) steps of \(options.schedule.batchSize), run \(runPath), λ \(distillWeight)")
        let line = ProgressLine(label: "stage\(stage)", total: options.schedule.steps)
        let start = Date()
        let info: [String: Any] = ["base": basePath, "options": String(data: try JSONEncoder().encode(options), encoding: .utf8) ?? ""]
        let weights = try AutoencoderTraining.train(model, options: options, world: world, teacher: teacher,
                                      perceptual: EncoderFeatureDistance(encoder: teacher.encoder), run: run,
                                      info: info, progress: { p in
            line.update(step: p.step, values: ["loss": p.values["loss"] ?? .nan, "psnr": p.values["psnr"] ?? .nan,
                                               "distill": p.values["distill"] ?? .nan])
            return true
        })
        try AutoencoderFolder.save(model, weights: weights, to: outPath)
        logger.info("wrote \(outPath) in \(ProgressLine.clock(Date().timeIntervalSince(start)))")
    }
}
