import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPNN

/// Optimiser and schedule settings shared by the training stages.
public struct TrainingSchedule: Codable, Sendable, Equatable {
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    /// The cosine schedule ends at learningRate × minLRRatio.
    public var minLRRatio: Float
    public var warmupSteps: Int
    public var weightDecay: Float
    public var gradClip: Float
    /// EMA decay of the weights (nil: no EMA). The exported model is the EMA when set.
    public var emaDecay: Float?
    public var checkpointEvery: Int
    public var logEvery: Int

    public init(steps: Int, batchSize: Int, learningRate: Float, minLRRatio: Float = 0.1, warmupSteps: Int = 100,
                weightDecay: Float = 0.05, gradClip: Float = 1.0, emaDecay: Float? = nil,
                checkpointEvery: Int = 250, logEvery: Int = 10) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.minLRRatio = minLRRatio
        self.warmupSteps = warmupSteps
        self.weightDecay = weightDecay
        self.gradClip = gradClip
        self.emaDecay = emaDecay
        self.checkpointEvery = checkpointEvery
        self.logEvery = logEvery
    }
}

/// AdamW + cosine schedule with warmup + grad clipping + optional EMA, with checkpoints in a run
/// folder and exact resume (model, optimiser moments, EMA and step are all restored; data is a
/// pure function of the step).
public final class TrainingLoop {
    public let model: Module
    public let optimizer: AdamW
    public let schedule: TrainingSchedule
    public let run: RunDirectory
    public let ema: EMA?
    public private(set) var step = 0
    private let cosine: CosineSchedule
    /// Extra JSON written into each checkpoint's state (the model config, say).
    public var checkpointInfo: [String: Any] = [:]
    /// Extra state saved in each checkpoint under `aux.` and restored on resume (for example a
    /// GAN discriminator with its optimiser).
    public var auxiliaryState: (save: () -> [String: Tensor], load: ([String: Tensor]) throws -> Void)?

    /// `groups` partitions the trainable parameters (for example a 0.1× LR group for an encoder).
    public init(model: Module, groups: [ParameterGroup], schedule: TrainingSchedule, run: RunDirectory) throws {
        guard schedule.steps > 0, schedule.batchSize > 0, schedule.learningRate > 0, schedule.logEvery > 0,
              schedule.checkpointEvery > 0, (0...1).contains(schedule.minLRRatio) else {
            throw TrainingError("invalid training schedule: \(schedule)")
        }
        self.model = model
        self.schedule = schedule
        self.run = run
        let adam = AdamW(groups: groups)
        optimizer = adam
        ema = schedule.emaDecay.map { EMA(adam.parameters, decay: $0) }
        // A run shorter than its warmup warms up over the whole run.
        cosine = CosineSchedule(warmupSteps: Swift.min(schedule.warmupSteps, schedule.steps), totalSteps: schedule.steps,
                                minRatio: schedule.minLRRatio)
    }

    /// Loads the newest checkpoint of the run folder, if there is one. Returns the step reached.
    @discardableResult
    public func resume() throws -> Int {
        guard let checkpoint = run.latest else { return 0 }
        let state = try RunDirectory.trainingState(in: checkpoint)
        let live = state.filter { $0.key.hasPrefix("live.") }
        if live.isEmpty {
            _ = try Checkpoint.load((checkpoint as NSString).appendingPathComponent("model.safetensors"),
                                    into: model.namedTensors())
        } else {
            for (name, tensor) in model.namedTensors() {
                guard let saved = live["live." + name], saved.shape == tensor.shape else {
                    throw TrainingError("\(checkpoint): training state lacks live weights for \(name)")
                }
                tensor.assign(saved)
            }
        }
        try optimizer.loadStateDict(state.filter {
            !$0.key.hasPrefix("live.") && !$0.key.hasPrefix("ema") && !$0.key.hasPrefix("aux.")
        })
        if let auxiliaryState {
            var aux: [String: Tensor] = [:]
            for (k, v) in state where k.hasPrefix("aux.") { aux[String(k.dropFirst(4))] = v }
            try auxiliaryState.load(aux)
        }
        try ema?.loadStateDict(state.filter { $0.key.hasPrefix("ema") })
        let info = try RunDirectory.state(in: checkpoint)
        guard let s = info["step"] as? Int else { throw TrainingError("\(checkpoint): state.json has no step") }
        step = s
        return s
    }

    /// Trains from the current step to `schedule.steps`. `lossAt(step)` builds the loss of one batch.
    /// `progress` is called after every step; returning false stops after saving a checkpoint.
    public func train(lossAt: (Int) throws -> (loss: Tensor, metrics: [String: Double]),
                      progress: (TrainingProgress) -> Bool = { _ in true }) throws {
        var window: [String: Double] = [:]
        var windowCount = 0
        while step < schedule.steps {
            let factor = cosine(step)
            for g in optimizer.groups.indices { optimizer.groups[g].lr = optimizer.groups[g].baseLR * factor }
            optimizer.zeroGrad()
            let (loss, metrics) = try lossAt(step)
            let value = Double(loss.item)
            guard value.isFinite else {
                throw TrainingError("loss became \(value) at step \(step + 1); nothing was saved for this step. "
                    + "Resume restarts from \(run.latest ?? "the beginning").")
            }
            let norm = Self.update(optimizer, loss: loss, gradClip: schedule.gradClip)
            ema?.update()
            step += 1
            var values = metrics
            values["loss"] = value
            values["grad_norm"] = Double(norm)
            values["lr"] = Double(optimizer.groups.first?.lr ?? 0)
            for (k, v) in values { window[k, default: 0] += v }
            windowCount += 1
            if step % schedule.logEvery == 0 || step == schedule.steps {
                var entry: [String: Any] = ["step": step]
                for (k, v) in window { entry[k] = v / Double(windowCount) }
                run.log(entry)
                window = [:]
                windowCount = 0
            }
            let keepGoing = progress(TrainingProgress(step: step, totalSteps: schedule.steps, values: values))
            if step % schedule.checkpointEvery == 0 || step == schedule.steps || !keepGoing {
                try saveCheckpoint()
            }
            if !keepGoing { return }
        }
    }

    /// One optimiser update: backward from `loss`, the global gradient norm clipped to
    /// `gradClip`, an AdamW step. Returns the norm before clipping.
    public static func update(_ optimizer: AdamW, loss: Tensor, gradClip: Float) -> Float {
        loss.backward()
        let norm = clipGradNorm(optimizer.parameters, maxNorm: gradClip)
        optimizer.step()
        return norm
    }

    /// The weights to export: the EMA when there is one, otherwise the live weights.
    public func exportedWeights() -> [String: Tensor] {
        var out = Dictionary(uniqueKeysWithValues: model.namedTensors().map { ($0.0, $0.1) })
        if let ema { for (k, v) in ema.averagedParameters() { out[k] = v } }
        return out
    }

    public func saveCheckpoint() throws {
        var state = optimizer.stateDict()
        if let ema {
            for (k, v) in ema.stateDict() { state[k] = v }
            for (k, v) in model.namedTensors() { state["live." + k] = v }
        }
        if let auxiliaryState { for (k, v) in auxiliaryState.save() { state["aux." + k] = v } }
        var info = checkpointInfo
        info["total_steps"] = schedule.steps
        try run.save(step: step, model: exportedWeights(), trainingState: state, state: info)
    }
}
