import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN

/// Settings of generation/editing training (`unilip.md` §2.4, stages 2–3: the DiT trains with
/// the connector, queries and projector; LLM, encoder and decoder stay frozen).
public struct GenerationTrainingOptions: Codable, Sendable, Equatable {
    public var schedule: TrainingSchedule
    /// Fraction of batches that are editing (the rest are text-to-image); each batch is one task.
    public var editFraction: Double = 0.5
    /// Probability that a row's text is replaced by the unconditional prompt (10% in the reference).
    public var conditionDropout: Double = 0.1
    /// Train the DiT too (false: the reference's stage-1 connector alignment).
    public var trainDiT = true
    /// Share of text-to-image rows captioned with the phrasing that places every object
    /// (`Captioner.placedPhrasing`); the other rows draw uniformly from all phrasings, that one
    /// included. 0 (the default) is uniform: a quarter of the captions say where objects are.
    public var placedCaptionFraction: Double = 0
    /// Shift of the flow-matching training table the noise levels are drawn from. The reference
    /// trains at shift 1 and samples at `flow_shift` 3, so the near-pure-noise levels where the
    /// sampler fixes the layout are rarely trained (σ > 0.9 in 1.4% of draws; 13.6% at shift 3).
    public var trainingFlowShift: Double = 1
    /// Learning-rate multiplier of `text_embedding_offset` (when the head has one). Its rows must
    /// move by about the embeddings' own norm to tell apart words the LLM embeds alike; at the
    /// head's rate they moved 0.44 in 2,000 steps.
    public var textEmbeddingOffsetLRScale: Float = 10
    /// Training images used to measure the latent scale (1 / std of the latents).
    public var scaleImages = 512
    public var seed: UInt64 = 0

    public init(schedule: TrainingSchedule) { self.schedule = schedule }

    /// The tiny recipe: batch 32, 8,000 steps (5,000 scored 32% on our benchmark, 8,000 48%, with
    /// the parser of the time). The shipped head continues it from its own weights (`--init-from`)
    /// five more times, with more editing batches and placed captions (`make model-generation`;
    /// docs/RESULTS.md has every step).
    /// EMA 0.999 is our addition (the reference trains with the HF Trainer and no EMA); at this
    /// scale it steadies the samples.
    public static let tiny = GenerationTrainingOptions(schedule: TrainingSchedule(
        steps: 8000, batchSize: 32, learningRate: 5e-4, minLRRatio: 0.1, warmupSteps: 100, weightDecay: 0,
        gradClip: 1, emaDecay: 0.999, checkpointEvery: 250, logEvery: 10))

    public func validate() throws {
        guard (0...1).contains(editFraction), (0...1).contains(conditionDropout), (0...1).contains(placedCaptionFraction),
              scaleImages >= 2 else {
            throw TrainingError("edit fraction, condition dropout and placed-caption fraction must lie in [0, 1]; scale images ≥ 2")
        }
        guard textEmbeddingOffsetLRScale > 0, textEmbeddingOffsetLRScale.isFinite else {
            throw TrainingError("the text-embedding offset's learning-rate scale must be positive, got \(textEmbeddingOffsetLRScale)")
        }
        guard trainingFlowShift > 0, trainingFlowShift.isFinite else {
            throw TrainingError("the training flow shift must be positive, got \(trainingFlowShift)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case schedule, editFraction = "edit_fraction", conditionDropout = "condition_dropout", trainDiT = "train_dit"
        case scaleImages = "scale_images", seed, trainingFlowShift = "training_flow_shift"
        case placedCaptionFraction = "placed_caption_fraction"
        case textEmbeddingOffsetLRScale = "text_embedding_offset_lr_scale"
    }
}

/// One task-homogeneous batch: prompt rows, reference images for editing, target images.
public struct GenerationBatch {
    public enum Task: String, Sendable { case generation, editing }
    public let task: Task
    public let ids: [Int]
    public let mask: Tensor
    /// Normalised reference pixels [B, 3, S, S] (editing only).
    public let referencePixels: Tensor?
    /// Normalised target pixels [B, 3, S, S].
    public let targetPixels: Tensor
}

public enum GenerationTraining {
    /// 1 / standard deviation of the autoencoder's latents over `count` training images (the
    /// reference's `unilip_factor`, computed from data).
    public static func latentScale(_ autoencoder: UniLIPAutoencoder, world: ShapesWorld, count: Int) -> Float {
        withNoGrad {
            var sum = 0.0, sumSq = 0.0, n = 0
            for start in stride(from: 0, to: count, by: 64) {
                let images = (start..<Swift.min(count, start + 64)).map { world.image(world.scene(.train, $0)) }
                let z = autoencoder.encode(UnderstandingData.pixels(images))
                for i in 0..<z.count {
                    let v = Double(z.pointer[i])
                    sum += v
                    sumSq += v * v
                }
                n += z.count
            }
            let mean = sum / Double(n)
            let std = (sumSq / Double(n) - mean * mean).squareRoot()
            return Float(1 / Swift.max(std, 1e-6))
        }
    }

    /// Batch `step`: a pure function of the step and seed. Scene k = step·B + i of the train split.
    public static func batch(step: Int, options: GenerationTrainingOptions, world: ShapesWorld,
                             template: ChatTemplate, queries: Int, referenceTokens: Int) -> GenerationBatch {
        var rng = RandomGenerator(seed: options.seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ 0x67656E)
        let size = options.schedule.batchSize
        let task: GenerationBatch.Task = Double(rng.uniform()) < options.editFraction ? .editing : .generation
        var rows: [[Int]] = [], references: [Image] = [], targets: [Image] = []
        var k = step * size
        while rows.count < size {
            let sample = world.sample(.train, k)
            k += 1
            let drop = Double(rng.uniform()) < options.conditionDropout
            switch task {
            case .generation:
                var phrasing = Int(rng.next() % UInt64(sample.captions.count))
                // No extra draw at fraction 0, so the default data order stays what it was.
                if options.placedCaptionFraction > 0 && Double(rng.uniform()) < options.placedCaptionFraction {
                    phrasing = Captioner.placedPhrasing
                }
                let caption = sample.captions[phrasing]
                rows.append(drop ? template.unconditionalGenerationPrompt(queries: queries)
                                 : template.generationPrompt(caption, queries: queries))
                targets.append(world.image(sample.scene))
            case .editing:
                guard !sample.edits.isEmpty else { continue }
                let edit = sample.edits[Int(rng.next() % UInt64(sample.edits.count))]
                rows.append(drop ? template.unconditionalEditPrompt(referenceTokens: referenceTokens, queries: queries)
                                 : template.editPrompt(edit.instruction, referenceTokens: referenceTokens, queries: queries))
                references.append(world.image(edit.before))
                targets.append(world.image(edit.after))
            }
        }
        let (ids, mask) = template.paddedBatch(rows)
        return GenerationBatch(task: task, ids: ids, mask: mask,
                               referencePixels: references.isEmpty ? nil : UnderstandingData.pixels(references),
                               targetPixels: UnderstandingData.pixels(targets))
    }

    /// Trains `model.generator` in `run` (resuming from its newest checkpoint). A fresh run
    /// copies the LLM's last layers into the connector first, unless `initConnector` is false
    /// (the generator starts from trained weights). Returns the weights to export.
    @discardableResult
    public static func train(_ model: GenerationModel, options: GenerationTrainingOptions, world: ShapesWorld,
                             run: RunDirectory, info: [String: Any] = [:], initConnector: Bool = true,
                             progress: (TrainingProgress) -> Bool = { _ in true }) throws -> [String: Tensor] {
        try options.validate()
        let generator = model.generator
        let schedule = options.schedule
        model.mllm.freeze()
        model.autoencoder.freeze()
        generator.unfreeze()
        if !options.trainDiT { generator.freeze(prefix: "dit") }
        generator.train()
        if run.latest == nil && initConnector { generator.initConnector(from: model.mllm.language.model) }
        let groups = ParameterGroup.decaySplit(generator.namedParameters(), lr: schedule.learningRate,
                                               weightDecay: schedule.weightDecay,
                                               scaled: [("text_embedding_offset", options.textEmbeddingOffsetLRScale)])
        let loop = try TrainingLoop(model: generator, groups: groups, schedule: schedule, run: run)
        var state = info
        state["unilip_factor"] = Double(generator.config.latentScale)
        loop.checkpointInfo = state
        try loop.resume()
        let queries = generator.config.numQueries, references = model.referenceTokenCount
        let contextID = model.template.imgContext
        let scale = generator.config.latentScale
        // The generator's own table (the reference's), re-made only at the shift asked for.
        let noiseLevels = FlowMatchEulerScheduler(numTrainTimesteps: generator.trainingSchedule.numTrainTimesteps,
                                                  shift: options.trainingFlowShift)
        try loop.train(lossAt: { step in
            let b = batch(step: step, options: options, world: world, template: model.template, queries: queries,
                          referenceTokens: references)
            let x0 = withNoGrad { model.autoencoder.encode(b.targetPixels) * scale }
            let conditioning = generator.conditioning(model: model.mllm, ids: b.ids, batch: schedule.batchSize,
                                                      mask: b.mask, contextID: contextID, referencePixels: b.referencePixels)
            var rng = RandomGenerator(seed: options.seed ^ (UInt64(step) &* 0xD1B5_4A32_D192_ED03) ^ 0x666D)
            let loss = generator.flowMatchingLoss(x0, conditioning: conditioning, schedule: noiseLevels, rng: &rng)
            return (loss, [b.task == .editing ? "loss_edit" : "loss_t2i": Double(loss.item)])
        }, progress: progress)
        return loop.exportedWeights()
    }

    /// `target` relative to the folder `base` (both resolved against the working directory), for
    /// components.json.
    public static func relativePath(from base: String, to target: String) -> String {
        func parts(_ p: String) -> [String] {
            let absolute = p.hasPrefix("/") ? p : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(p)
            return (absolute as NSString).standardizingPath.split(separator: "/").map(String.init)
        }
        let a = parts(base), b = parts(target)
        var common = 0
        while common < Swift.min(a.count, b.count) && a[common] == b[common] { common += 1 }
        let up = [String](repeating: "..", count: a.count - common)
        let rest = (up + b[common...]).joined(separator: "/")
        return rest.isEmpty ? "." : rest
    }
}
