import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPNN
import UniLIPPipelines
import UniLIPText

/// `unilip bench training`: one optimiser step of each stage of `unilip train understanding`
/// (the tiny preset at the recipe's batch size), and the recipe's compute time they add up to.
/// Batches are built before the clock starts and timed on their own.
struct BenchTraining: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training",
        abstract: "Milliseconds per step of the base model's training stages, and the recipe's time they add up to.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Timed steps per stage; the median is reported.") var repeats = 10
    @Option(help: "Base model folder whose tokenizer.json sets the vocabulary (default: the shipped internvl-tiny).")
    var base: String?
    @Option(help: "Also write the results as JSON to this path.") var json: String?

    func run() throws {
        _ = global.apply()
        let recipe = InternVLTinyRecipe()
        let folder = try ModelLocator.locate("internvl-tiny", explicit: base)
        let tokenizer = try Tokenizer(contentsOf: (folder as NSString).appendingPathComponent("tokenizer.json"))
        let template = try ChatTemplate(tokenizer: tokenizer)
        let world = ShapesWorld(seed: recipe.seed)
        let data = UnderstandingData(world: world, split: .train)
        let (model, clip) = recipe.models(vocabSize: tokenizer.vocabSize)
        print("threads: \(Parallel.threads), OpenBLAS kernels: \(BLASCore.coreName), batch \(recipe.clip.batchSize)")

        var results: [BenchResult] = []
        func record(_ name: String, _ value: Double, unit: String = "ms") {
            let r = BenchResult(name: name, value: value, unit: unit)
            results.append(r)
            print(r.line)
        }
        let steps = max(1, repeats) + 1  // one warm-up batch
        var clipData: [UnderstandingTraining.CLIPBatch] = []
        record("clip batch", Self.milliseconds {
            clipData = (0..<steps).map {
                UnderstandingTraining.clipBatch(step: $0, size: recipe.clip.batchSize, data: data, tokenizer: tokenizer,
                                                model: clip, shapeNegatives: recipe.clipShapeNegatives,
                                                patchLabels: recipe.clipPatchLabels)
            }
        } / Double(steps))
        // The encoder alone (the tiny InternViT on a batch of 64), as Tools/reference/bench_training.py times it.
        let pixels = clipData[0].pixels
        record("encoder forward", medianMilliseconds(repeats: repeats) { _ = withNoGrad { model.vision(pixels) } })
        record("encoder fwd+bwd", medianMilliseconds(repeats: repeats) {
            model.zeroGrad()
            model.vision(pixels).sum().backward()
        })
        let clipOptimizer = AdamW(groups: ParameterGroup.decaySplit(clip.namedParameters(), lr: recipe.clip.learningRate,
                                                                    weightDecay: recipe.clip.weightDecay))
        record("clip step", Self.stepMilliseconds(clipData, optimizer: clipOptimizer, gradClip: recipe.clip.gradClip) {
            UnderstandingTraining.clipLoss(clip, $0)
        })

        var mllmData: [UnderstandingTraining.MLLMBatch] = []
        record("mllm batch", Self.milliseconds {
            mllmData = (0..<steps).map {
                UnderstandingTraining.mllmBatch(step: $0, size: recipe.mllm.batchSize, data: data, template: template,
                                                imageTokens: model.config.imageTokens)
            }
        } / Double(steps))
        for (name, schedule, scale) in [("mllm step", recipe.mllm, nil), ("finetune step", recipe.finetune, recipe.encoderLRScale)] {
            let optimizer = AdamW(groups: UnderstandingTraining.mllmGroups(model, schedule: schedule, encoderLRScale: scale))
            record(name, Self.stepMilliseconds(mllmData, optimizer: optimizer, gradClip: schedule.gradClip) {
                UnderstandingTraining.mllmLoss(model, $0, template: template, reduction: recipe.lossReduction)
            })
        }

        let ms = Dictionary(uniqueKeysWithValues: results.map { ($0.name, $0.value) })
        let stages: [(String, TrainingSchedule, Double)] = [
            ("clip", recipe.clip, ms["clip step", default: 0] + ms["clip batch", default: 0]),
            ("mllm", recipe.mllm, ms["mllm step", default: 0] + ms["mllm batch", default: 0]),
            ("finetune", recipe.finetune, ms["finetune step", default: 0] + ms["mllm batch", default: 0]),
        ]
        var total = 0.0
        for (name, schedule, perStep) in stages {
            let minutes = Double(schedule.steps) * perStep / 60_000
            total += minutes
            print(String(format: "%@: %d steps × %.1f ms = %.1f min", name, schedule.steps, perStep, minutes))
        }
        print(String(format: "recipe compute (steps × (step + batch), no checkpoints or tokenizer): %.1f min", total))
        record("recipe minutes", total, unit: "min")
        if let json { try BenchResult.writeJSON(results, to: json) }
    }

    static func milliseconds(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }

    /// Median (or, with UNILIP_BENCH_STAT=min, fastest) milliseconds of one optimiser step over
    /// the batches after the first, which warms up.
    static func stepMilliseconds<B>(_ batches: [B], optimizer: AdamW, gradClip: Float,
                                    loss: (B) -> Tensor) -> Double {
        var next = 0
        return medianMilliseconds(repeats: batches.count - 1) {
            let batch = batches[next % batches.count]
            next += 1
            optimizer.zeroGrad()
            _ = TrainingLoop.update(optimizer, loss: loss(batch), gradClip: gradClip)
        }
    }
}
