import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN

/// One stage of UniLIP's autoencoder training (`unilip.md` §2.1–2.2).
///
/// - Stage 1: encoder and `mlp1` frozen; `down_*` and the decoder learn to reconstruct
///   (`decoderOnly` freezes `down_*` as well: a decoder fine-tune under a fixed latent).
/// - Stage 2: everything trains, the encoder side at `encoderLRScale` × LR, with the
///   self-distillation loss λ·MSE(student `mlp1` tokens, frozen original's tokens).
public struct AutoencoderTrainingOptions: Codable, Sendable, Equatable {
    public var stage: Int
    public var schedule: TrainingSchedule
    /// Learning-rate factor of `encoder.*` and `mlp1.*` in stage 2 (0.1 in the reference).
    public var encoderLRScale: Float = 0.1
    /// λ of the self-distillation loss in stage 2 (1 in the reference; 0 turns it off).
    public var distillWeight: Float = 1
    /// Weight of the pixel MSE on [0, 1] images.
    public var mseWeight: Float = 1
    /// Weight of the perceptual distance (nil distance: off). Our encoder-feature distance is
    /// about 20× the pixel MSE at the start; 0.1 keeps the MSE in charge of PSNR.
    public var perceptualWeight: Float = 0.1
    /// The hinge GAN, off when nil.
    public var gan: GANOptions?
    /// Stage 1 only: also freezes `down_*`, so the latent stays fixed and a generation head
    /// trained on it keeps working while the decoder alone trains on.
    public var decoderOnly = false
    public var seed: UInt64 = 0

    public init(stage: Int, schedule: TrainingSchedule) {
        self.stage = stage
        self.schedule = schedule
    }

    /// The tiny recipe's stages: 64 px ShapesWorld, batch 32; 1,500 steps for stage 1, 1,000 for stage 2.
    public static func tiny(stage: Int) -> AutoencoderTrainingOptions {
        let schedule = stage == 1
            ? TrainingSchedule(steps: 1500, batchSize: 32, learningRate: 1e-3, minLRRatio: 0.1, warmupSteps: 100,
                               weightDecay: 1e-4, gradClip: 1, emaDecay: 0.999, checkpointEvery: 250, logEvery: 10)
            : TrainingSchedule(steps: 1000, batchSize: 32, learningRate: 5e-4, minLRRatio: 0.1, warmupSteps: 100,
                               weightDecay: 1e-4, gradClip: 1, emaDecay: 0.999, checkpointEvery: 250, logEvery: 10)
        return AutoencoderTrainingOptions(stage: stage, schedule: schedule)
    }

    /// The shipped decoder fine-tune: 3,000 decoder-only steps at 5e-4 on top of stage 2.
    public static func tinyDecoderOnly() -> AutoencoderTrainingOptions {
        var options = tiny(stage: 1)
        options.schedule.steps = 3000
        options.schedule.learningRate = 5e-4
        options.decoderOnly = true
        return options
    }

    public func validate() throws {
        guard stage == 1 || stage == 2 else { throw TrainingError("stage must be 1 or 2, got \(stage)") }
        if decoderOnly && stage != 1 { throw TrainingError("decoder-only training is a stage-1 option") }
        guard distillWeight >= 0, mseWeight >= 0, perceptualWeight >= 0, encoderLRScale >= 0 else {
            throw TrainingError("loss weights and the encoder LR scale must be ≥ 0")
        }
        if let gan, gan.startStep < 0 || gan.baseChannels % 32 != 0 {
            throw TrainingError("GAN start step must be ≥ 0 and its width a multiple of 32")
        }
    }

    enum CodingKeys: String, CodingKey {
        case stage, schedule, encoderLRScale = "encoder_lr_scale", distillWeight = "distill_weight"
        case mseWeight = "mse_weight", perceptualWeight = "perceptual_weight", gan, seed, decoderOnly = "decoder_only"
    }
}

/// The frozen original encoder and `mlp1`: the self-distillation teacher.
public struct DistillationTeacher {
    public let encoder: InternViT
    public let mlp1: InternVLProjector

    public init(encoder: InternViT, mlp1: InternVLProjector) {
        encoder.freeze()
        mlp1.freeze()
        self.encoder = encoder
        self.mlp1 = mlp1
    }

    public func tokens(_ pixels: Tensor) -> Tensor {
        withNoGrad { mlp1.imageTokens(pixels, encoder: encoder) }
    }
}

public enum AutoencoderTraining {
    /// Images [0, 1] and ImageNet-normalised pixels of scenes k = step·batch + i of the train split.
    public static func batch(world: ShapesWorld, step: Int, size: Int) -> (unit: Tensor, pixels: Tensor) {
        let images = (0..<size).map { world.image(world.scene(.train, step * size + $0)) }
        let unit = Tensor.concat(images.map { $0.rgb().tensor(mean: [0, 0, 0], std: [1, 1, 1]) }, axis: 0)
        return (unit, UnderstandingData.pixels(images))
    }

    /// Trains `model` for one stage in `run` (resuming from its newest checkpoint). The teacher is
    /// required in stage 2 when λ > 0; `perceptual` nil leaves the perceptual term out.
    /// Returns the weights to export (the EMA; a finished run just reloads them).
    @discardableResult
    public static func train(_ model: UniLIPAutoencoder, options: AutoencoderTrainingOptions, world: ShapesWorld,
                             teacher: DistillationTeacher?, perceptual: PerceptualDistance?, run: RunDirectory,
                             info: [String: Any] = [:],
                             progress: (TrainingProgress) -> Bool = { _ in true }) throws -> [String: Tensor] {
        try options.validate()
        if options.stage == 2 && options.distillWeight > 0 && teacher == nil {
            throw TrainingError("stage 2 with distillation needs the original encoder as teacher")
        }
        let schedule = options.schedule
        model.unfreeze()
        if options.stage == 1 { for p in UniLIPAutoencoder.encoderPrefixes { model.freeze(prefix: p) } }
        if options.decoderOnly { for p in UniLIPAutoencoder.latentPrefixes { model.freeze(prefix: p) } }
        let scaled = options.stage == 2 ? UniLIPAutoencoder.encoderPrefixes.map { ($0, options.encoderLRScale) } : []
        let groups = ParameterGroup.decaySplit(model.namedParameters(), lr: schedule.learningRate,
                                               weightDecay: schedule.weightDecay, scaled: scaled)
        let loop = try TrainingLoop(model: model, groups: groups, schedule: schedule, run: run)
        var state = info
        state["stage"] = options.stage
        state["distill_weight"] = Double(options.distillWeight)
        loop.checkpointInfo = state
        let gan = options.gan.map { HingeGAN(options: $0, totalSteps: schedule.steps, seed: options.seed) }
        if let gan { loop.auxiliaryState = (gan.saveState, gan.loadState) }
        try loop.resume()

        try loop.train(lossAt: { step in
            let (unit, pixels) = batch(world: world, step: step, size: schedule.batchSize)
            let (tokens, images) = model.reconstruct(pixels)
            let recon01 = (images + 1) * 0.5
            var metrics: [String: Double] = [:]
            let mse = mseLoss(recon01, unit)
            metrics["mse"] = Double(mse.item)
            metrics["psnr"] = 10 * log10(1 / Swift.max(Double(mse.item), 1e-12))
            var loss = mse * options.mseWeight
            if let perceptual, options.perceptualWeight > 0 {
                let p = perceptual(recon01, unit)
                metrics["perceptual"] = Double(p.item)
                loss = loss + p * options.perceptualWeight
            }
            if options.stage == 2, let teacher, options.distillWeight > 0 {
                let d = mseLoss(tokens, teacher.tokens(pixels))
                metrics["distill"] = Double(d.item)
                loss = loss + d * options.distillWeight
            } else if options.stage == 2, let teacher {
                metrics["distill"] = Double(withNoGrad { mseLoss(tokens, teacher.tokens(pixels)) }.item)
            }
            if let gan, step >= gan.options.startStep {
                let real = unit * 2 - 1
                for (k, v) in gan.updateDiscriminator(real: real, fake: images, step: step) { metrics[k] = v }
                let g = gan.generatorLoss(images)
                metrics["g_loss"] = Double(g.item)
                loss = loss + g
            }
            return (loss, metrics)
        }, progress: progress)
        return loop.exportedWeights()
    }
}
