import Foundation
import UniLIPCore
import UniLIPModels
import UniLIPNN

/// Settings for sampling images with `GenerationSampler`.
public struct ImageGenerationOptions: Sendable, Equatable {
    public enum Sampler: String, Sendable, CaseIterable {
        /// Second-order DPM-Solver++ on flow sigmas (SANA's scheduler; the reference's sampler).
        case dpmSolver = "dpm-solver++"
        /// First-order flow-matching Euler.
        case euler
    }

    /// Denoising steps (the reference hard-codes 20).
    public var steps = 20
    /// Classifier-free guidance scale s in v_u + s·(v_c − v_u) (the reference: 4.5). 1 means
    /// no guidance: the unconditional pass is skipped and no negative prompt is needed.
    public var guidanceScale: Float = 4.5
    /// Seed of the starting noise (the reference's evaluations use 42).
    public var seed: UInt64 = 42
    public var sampler: Sampler = .dpmSolver
    /// Shift of the sampling sigmas; nil takes the generator config's `flow_shift` (3).
    public var flowShift: Double? = nil
    /// Latent grid; nil takes the DiT's `sample_size`.
    public var latentHeight: Int? = nil
    public var latentWidth: Int? = nil

    public init(steps: Int = 20, guidanceScale: Float = 4.5, seed: UInt64 = 42, sampler: Sampler = .dpmSolver,
                flowShift: Double? = nil, latentHeight: Int? = nil, latentWidth: Int? = nil) {
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.seed = seed
        self.sampler = sampler
        self.flowShift = flowShift
        self.latentHeight = latentHeight
        self.latentWidth = latentWidth
    }

    /// Throws `ImageGenerationError.invalidOptions` naming the first bad setting.
    public func validate() throws {
        guard steps >= 1 else { throw ImageGenerationError.invalidOptions("steps must be at least 1, got \(steps)") }
        guard guidanceScale.isFinite && guidanceScale >= 0 else {
            throw ImageGenerationError.invalidOptions("guidance scale must be a finite number ≥ 0, got \(guidanceScale)")
        }
        if let flowShift, !(flowShift.isFinite && flowShift > 0) {
            throw ImageGenerationError.invalidOptions("flow shift must be a finite number > 0, got \(flowShift)")
        }
        for (name, v) in [("latent height", latentHeight), ("latent width", latentWidth)] {
            if let v, v < 1 { throw ImageGenerationError.invalidOptions("\(name) must be at least 1, got \(v)") }
        }
    }
}

public enum ImageGenerationError: Error, Equatable, CustomStringConvertible {
    case invalidOptions(String)
    /// The progress callback returned false after `step` of `total` steps.
    case cancelled(step: Int, total: Int)

    public var description: String {
        switch self {
        case .invalidOptions(let message): return "invalid generation options: \(message)"
        case .cancelled(let step, let total): return "generation cancelled after step \(step) of \(total)"
        }
    }
}

/// Classifier-free-guided sampling of latents with a `UniLIPGenerator`.
///
/// Each step runs the DiT once on [x; x] against the batched [uncond; cond] conditioning,
/// guides v = v_u + s·(v_c − v_u) and advances the scheduler. Timesteps are truncated to
/// integers before the DiT call, as the reference does.
///
/// The result is latents in the DiT's space (z · `unilip_factor`). Pixels come from the
/// DC-AE decoder: `decode(_:decoder:size:)`, or any decoder through `unscaled(_:)`.
public struct GenerationSampler {
    public let generator: UniLIPGenerator

    public init(generator: UniLIPGenerator) { self.generator = generator }

    /// Samples latents [B, C, h, w] for B conditional rows.
    ///
    /// - unconditional: the negative prompts' conditioning (B rows, any length); required
    ///   unless `guidanceScale` is 1.
    /// - progress: called after each step with (step, total), step counting from 1; returning
    ///   false stops sampling and throws `ImageGenerationError.cancelled`.
    /// - Throws: `ImageGenerationError.invalidOptions` for bad options or a missing or
    ///   mismatched unconditional batch, `.cancelled` on cancellation.
    /// - noise: the starting latents [B, C, h, w]; nil draws them from `options.seed`.
    public func sample(conditional: GenerationConditioning, unconditional: GenerationConditioning?,
                       options: ImageGenerationOptions = ImageGenerationOptions(), noise: Tensor? = nil,
                       progress: ((Int, Int) -> Bool)? = nil) throws -> Tensor {
        try options.validate()
        let guided = options.guidanceScale != 1
        let b = conditional.batch
        let both: GenerationConditioning
        if guided {
            guard let unconditional else {
                throw ImageGenerationError.invalidOptions("guidance scale \(options.guidanceScale) needs an unconditional (negative) prompt")
            }
            guard unconditional.batch == b else {
                throw ImageGenerationError.invalidOptions("\(unconditional.batch) unconditional rows for \(b) conditional rows")
            }
            both = GenerationConditioning.concatenated([unconditional, conditional])
        } else {
            both = conditional
        }
        let dit = generator.config.ditConfig
        let shape = [b, dit.inChannels, options.latentHeight ?? dit.sampleSize, options.latentWidth ?? dit.sampleSize]
        guard shape[2] % dit.patchSize == 0 && shape[3] % dit.patchSize == 0 else {
            throw ImageGenerationError.invalidOptions("latent size \(shape[2])×\(shape[3]) is not a multiple of the DiT patch \(dit.patchSize)")
        }
        let scheduler = Self.scheduler(options, defaultShift: generator.config.flowShift)
        if let noise, noise.shape != shape {
            throw ImageGenerationError.invalidOptions("starting noise \(noise.shape) does not match the latents \(shape)")
        }
        var x = noise ?? scheduler.initialNoise(shape, seed: options.seed)
        scheduler.setTimesteps(options.steps)
        let timesteps = scheduler.timesteps
        try withNoGrad {
            for (i, t) in timesteps.enumerated() {
                let tInt = t.rounded(.towardZero)
                let v: Tensor
                if guided {
                    let out = generator.velocity(Tensor.concat([x, x], axis: 0),
                                                 timesteps: [Float](repeating: tInt, count: 2 * b), conditioning: both)
                    v = FlowMatching.guided(batched: out, scale: options.guidanceScale)
                } else {
                    v = generator.velocity(x, timesteps: [Float](repeating: tInt, count: b), conditioning: both)
                }
                x = scheduler.step(modelOutput: v, timestep: t, sample: x)
                if let progress, !progress(i + 1, timesteps.count) {
                    throw ImageGenerationError.cancelled(step: i + 1, total: timesteps.count)
                }
            }
        }
        return x
    }

    /// The scheduler the options select.
    public static func scheduler(_ options: ImageGenerationOptions, defaultShift: Double) -> FlowSampler {
        let shift = options.flowShift ?? defaultShift
        switch options.sampler {
        case .dpmSolver: return DPMSolverMultistepFlowScheduler(numTrainTimesteps: 1000, flowShift: shift)
        case .euler: return FlowMatchEulerScheduler(numTrainTimesteps: 1000, shift: shift)
        }
    }

    // MARK: Decoding hook

    /// Latents back in the autoencoder's space: z / `unilip_factor` (the decoder's input).
    public func unscaled(_ latents: Tensor) -> Tensor { latents * (1 / generator.config.latentScale) }

    /// Images in [0, 1], [B, 3, H, W], as the reference: the DC-AE decoder on the unscaled
    /// latents, clamped to [−1, 1], mapped to [0, 1], resized to `size` (448² for 16×16 latents).
    public func decode(_ latents: Tensor, decoder: DCAEDecoder, size: (Int, Int)) -> Tensor {
        withNoGrad {
            let images = (decoder(unscaled(latents)).clamped(-1, 1) + 1) * 0.5
            return UniLIPLatent.resize(images, to: size)
        }
    }
}
