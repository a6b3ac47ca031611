import Foundation
import UniLIPCore

/// Linear warmup then cosine decay to a floor, as a learning-rate multiplier of the step
/// (use with `LambdaLR`). During warmup the multiplier is `step / warmupSteps`; afterwards
/// `minRatio + (1 − minRatio) · ½(1 + cos(π · progress))` with
/// `progress = (step − warmup) / max(1, total − warmup)`, held at the floor past `totalSteps`.
/// So the learning rate runs from 0 to the peak and down to `peak · minRatio`.
public struct CosineSchedule: Sendable {
    public let warmupSteps: Int
    public let totalSteps: Int
    public let minRatio: Float

    public init(warmupSteps: Int, totalSteps: Int, minRatio: Float = 0) {
        precondition(warmupSteps >= 0 && totalSteps >= warmupSteps,
                     "CosineSchedule: need 0 ≤ warmup (\(warmupSteps)) ≤ total (\(totalSteps))")
        precondition(minRatio >= 0 && minRatio <= 1, "CosineSchedule: minRatio \(minRatio) outside [0, 1]")
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minRatio = minRatio
    }

    /// From absolute rates: `minLR / peakLR` becomes the floor.
    public init(warmupSteps: Int, totalSteps: Int, peakLR: Float, minLR: Float) {
        precondition(peakLR > 0, "CosineSchedule: peak learning rate must be positive")
        self.init(warmupSteps: warmupSteps, totalSteps: totalSteps, minRatio: minLR / peakLR)
    }

    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return Float(Double(step) / Double(Swift.max(1, warmupSteps))) }
        let progress = Swift.min(1, Double(step - warmupSteps) / Double(Swift.max(1, totalSteps - warmupSteps)))
        let cosine = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        return Float(Double(minRatio) + (1 - Double(minRatio)) * cosine)
    }
}

/// Sets each group's learning rate to `baseLR · lambda(step)`, as `torch.optim.lr_scheduler.LambdaLR`:
/// construction applies `lambda(lastStep)`, and each `step()` (called after the optimiser's
/// step) advances to the next value.
public final class LambdaLR {
    public let optimizer: AdamW
    public let lambda: (Int) -> Float
    /// The step whose multiplier is in effect (PyTorch's `last_epoch`).
    public private(set) var lastStep: Int

    public init(_ optimizer: AdamW, lastStep: Int = 0, _ lambda: @escaping (Int) -> Float) {
        self.optimizer = optimizer
        self.lambda = lambda
        self.lastStep = lastStep
        apply()
    }

    public convenience init(_ optimizer: AdamW, schedule: CosineSchedule, lastStep: Int = 0) {
        self.init(optimizer, lastStep: lastStep) { schedule($0) }
    }

    public func step() {
        lastStep += 1
        apply()
    }

    /// `scheduler.last_step`, for saving next to the optimiser's state.
    public func stateDict() -> [String: Tensor] { ["scheduler.last_step": Tensor(scalar: Float(lastStep))] }

    /// Restores `lastStep` and reapplies its learning rates.
    public func loadStateDict(_ dict: [String: Tensor]) throws {
        let n = try dict.requiredScalar("scheduler.last_step")
        guard n >= 0, n == n.rounded() else { throw StateDictError(key: "scheduler.last_step", "not a step: \(n)") }
        lastStep = Int(n)
        apply()
    }

    /// The learning rate of each group now.
    public var lastLR: [Float] { optimizer.groups.map(\.lr) }

    private func apply() {
        let factor = lambda(lastStep)
        for i in optimizer.groups.indices {
            optimizer.groups[i].lr = Float(Double(optimizer.groups[i].baseLR) * Double(factor))
        }
    }
}
