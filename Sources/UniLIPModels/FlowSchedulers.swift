import Foundation
import UniLIPCore

// Flow-matching samplers and training helpers. Convention (rectified flow, as SANA and
// diffusers): x_σ = (1 − σ)·x0 + σ·ε, the model predicts v = ε − x0, σ = 1 is pure noise and
// timesteps are 1000·σ.

/// A sampler over a flow-matching schedule: `setTimesteps(n)`, then one `step` per timestep,
/// in order, from pure noise (σ = 1) to the sample (σ = 0).
public protocol FlowSampler: AnyObject {
    /// Timesteps to feed the model, one per step, decreasing.
    var timesteps: [Float] { get }
    /// Noise levels: one per step plus the final one (0).
    var sigmas: [Float] { get }
    /// Prepares `count` steps and resets the solver state.
    func setTimesteps(_ count: Int)
    /// Advances `sample` by one step given the model's velocity prediction at `timestep`.
    func step(modelOutput: Tensor, timestep: Float, sample: Tensor) -> Tensor
}

extension FlowSampler {
    /// Standard normal starting latents drawn from a seeded generator.
    public func initialNoise(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.normal(shape, rng: &rng)
    }

    /// Runs the whole chain: `velocity(x, t)` is called once per timestep (under no-grad).
    public func sample(from noise: Tensor, steps: Int, velocity: (Tensor, Float) -> Tensor) -> Tensor {
        setTimesteps(steps)
        return withNoGrad {
            var x = noise
            for t in timesteps { x = step(modelOutput: velocity(x, t), timestep: t, sample: x) }
            return x
        }
    }
}

/// Index of `timestep` in `schedule` as diffusers' `index_for_timestep`: the second match when
/// there are several, the last index when there is none.
private func scheduleIndex(of timestep: Float, in schedule: [Float]) -> Int {
    let matches = schedule.indices.filter { schedule[$0] == timestep }
    if matches.isEmpty { return schedule.count - 1 }
    return matches.count > 1 ? matches[1] : matches[0]
}

/// numpy.linspace(start, stop, num): i·step + start, with the last point exactly `stop`.
func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    precondition(num >= 1, "linspace needs at least one point")
    if num == 1 { return [start] }
    let step = (stop - start) / Double(num - 1)
    var y = (0..<num).map { Double($0) * step + start }
    y[num - 1] = stop
    return y
}

private func checkSameShape(_ a: Tensor, _ b: Tensor, _ what: String) {
    precondition(a.shape == b.shape, "\(what): model output \(a.shape) vs sample \(b.shape)")
}

// MARK: - DPM-Solver++ (multistep) on flow sigmas

/// diffusers' `DPMSolverMultistepScheduler` restricted to what SANA uses: algorithm
/// dpmsolver++, deterministic, `prediction_type=flow_prediction`, `use_flow_sigmas=True`,
/// `final_sigmas_type="zero"`, solver order 1 or 2 with the midpoint (or heun) update,
/// `lower_order_final`. SANA's scheduler config: order 2, midpoint, flow_shift 3, 1000 train steps.
public final class DPMSolverMultistepFlowScheduler: FlowSampler {
    public enum SolverType: String, Sendable { case midpoint, heun }

    public let numTrainTimesteps: Int
    public let flowShift: Double
    public let solverOrder: Int
    public let solverType: SolverType
    public let lowerOrderFinal: Bool

    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float] = []
    /// Index of the next step (nil before the first `step` after `setTimesteps`).
    public private(set) var stepIndex: Int?
    private var previousPrediction: Tensor?
    private var lowerOrderCount = 0

    public init(numTrainTimesteps: Int = 1000, flowShift: Double = 3.0, solverOrder: Int = 2,
                solverType: SolverType = .midpoint, lowerOrderFinal: Bool = true) {
        precondition(solverOrder == 1 || solverOrder == 2, "DPM-Solver++: only orders 1 and 2 are implemented")
        precondition(flowShift > 0, "DPM-Solver++: flow_shift must be positive")
        self.numTrainTimesteps = numTrainTimesteps
        self.flowShift = flowShift
        self.solverOrder = solverOrder
        self.solverType = solverType
        self.lowerOrderFinal = lowerOrderFinal
    }

    /// SANA's `scheduler/scheduler_config.json` (Sana_1600M_512px_diffusers).
    public static func sana() -> DPMSolverMultistepFlowScheduler { DPMSolverMultistepFlowScheduler() }

    public func setTimesteps(_ count: Int) {
        precondition(count >= 1, "DPM-Solver++: need at least one step")
        let n = Double(numTrainTimesteps)
        // σ = 1 − linspace(1, 1/N, count+1), shifted, reversed, the trailing 0 dropped.
        let raw = numpyLinspace(1, 1 / n, count + 1).map { 1 - $0 }
        let shifted = raw.map { flowShift * $0 / (1 + (flowShift - 1) * $0) }
        let descending = Array(shifted.reversed().dropLast())
        timesteps = descending.map { Float(($0 * n).rounded(.towardZero)) }   // int64 cast truncates
        sigmas = descending.map { Float($0) } + [0]
        stepIndex = nil
        previousPrediction = nil
        lowerOrderCount = 0
    }

    /// λ(σ) = log(α) − log(σ) with α = 1 − σ.
    private func lambda(_ sigma: Double) -> Double { Foundation.log(1 - sigma) - Foundation.log(sigma) }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor) -> Tensor {
        precondition(!timesteps.isEmpty, "DPM-Solver++: call setTimesteps before step")
        checkSameShape(modelOutput, sample, "DPM-Solver++")
        let i = stepIndex ?? scheduleIndex(of: timestep, in: timesteps)
        precondition(i < timesteps.count, "DPM-Solver++: stepped past the last timestep")
        let count = timesteps.count
        // Final sigma 0 always ends with a first-order step. (diffusers' demotion of the
        // second-to-last step only matters for order 3.)
        let finalFirstOrder = i == count - 1

        // Data prediction x0 = x − σ·v.
        let sigmaS0 = sigmas[i]
        let x0 = Tensor(uninitialized: sample.shape)
        let xp = sample.pointer, vp = modelOutput.pointer, x0p = x0.pointer
        for k in 0..<sample.count { x0p[k] = xp[k] - sigmaS0 * vp[k] }

        let out = Tensor(uninitialized: sample.shape)
        let op = out.pointer
        let sT = Double(sigmas[i + 1]), s0 = Double(sigmaS0)
        let alphaT = 1 - sT
        if solverOrder == 1 || lowerOrderCount < 1 || finalFirstOrder || previousPrediction == nil {
            // x_t = (σ_t/σ_s)·x − α_t(e^{−h} − 1)·x0; at σ_t = 0 this is x0.
            let a: Float, b: Float
            if sT == 0 {
                a = 0; b = Float(alphaT)
            } else {
                let h = lambda(sT) - lambda(s0)
                a = Float(sT / s0); b = Float(-alphaT * (Foundation.exp(-h) - 1))
            }
            for k in 0..<out.count { op[k] = a * xp[k] + b * x0p[k] }
        } else {
            guard let m1 = previousPrediction else { preconditionFailure("unreachable") }
            let s1 = Double(sigmas[i - 1])
            let lt = lambda(sT), l0 = lambda(s0), l1 = lambda(s1)
            let h = lt - l0, h0 = l0 - l1
            let r0 = h0 / h
            let e = Foundation.exp(-h) - 1
            let a = Float(sT / s0)
            let b = Float(-alphaT * e)
            let c: Float
            switch solverType {
            case .midpoint: c = Float(-0.5 * alphaT * e / r0)
            case .heun: c = Float(alphaT * (e / h + 1) / r0)
            }
            let m1p = m1.pointer
            // D0 = x0, D1 = (x0 − x0_prev)/r0: x_t = a·x + b·D0 + c'·(x0 − x0_prev).
            for k in 0..<out.count { op[k] = a * xp[k] + b * x0p[k] + c * (x0p[k] - m1p[k]) }
        }
        previousPrediction = x0
        if lowerOrderCount < solverOrder { lowerOrderCount += 1 }
        stepIndex = i + 1
        return out
    }
}

// MARK: - Flow-matching Euler

/// diffusers' `FlowMatchEulerDiscreteScheduler` (static shift, no dynamic shifting, no
/// stochastic sampling): x_{next} = x + (σ_next − σ)·v.
public final class FlowMatchEulerScheduler: FlowSampler {
    public let numTrainTimesteps: Int
    public let shift: Double
    /// The training table: timesteps 1000·σ for σ = shift(k/N), k = N…1 (float32).
    public let trainTimesteps: [Float]
    public let trainSigmas: [Float]

    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float] = []
    public private(set) var stepIndex: Int?

    public init(numTrainTimesteps: Int = 1000, shift: Double = 1.0) {
        precondition(numTrainTimesteps >= 1 && shift > 0, "FlowMatchEuler: bad configuration")
        self.numTrainTimesteps = numTrainTimesteps
        self.shift = shift
        let n = Float(numTrainTimesteps), s = Float(shift)
        // float32 throughout, as diffusers' __init__.
        var sig: [Float] = []
        for k in stride(from: numTrainTimesteps, through: 1, by: -1) {
            let raw: Float = Float(k) / n
            let num: Float = s * raw
            let den: Float = 1 + (s - 1) * raw
            sig.append(num / den)
        }
        trainSigmas = sig
        trainTimesteps = sig.map { (v: Float) -> Float in v * n }
    }

    public var sigmaMax: Float { trainSigmas.first ?? 1 }
    public var sigmaMin: Float { trainSigmas.last ?? 0 }

    public func setTimesteps(_ count: Int) {
        precondition(count >= 1, "FlowMatchEuler: need at least one step")
        let n = Double(numTrainTimesteps)
        // diffusers shifts the already-shifted σ range a second time here; kept for parity.
        let t = numpyLinspace(Double(sigmaMax) * n, Double(sigmaMin) * n, count)
        let sig: [Float] = t.map { (v: Double) -> Float in
            let raw = v / n
            return Float(shift * raw / (1 + (shift - 1) * raw))
        }
        sigmas = sig + [0]
        timesteps = sig.map { $0 * Float(numTrainTimesteps) }
        stepIndex = nil
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor) -> Tensor {
        precondition(!timesteps.isEmpty, "FlowMatchEuler: call setTimesteps before step")
        checkSameShape(modelOutput, sample, "FlowMatchEuler")
        let i = stepIndex ?? scheduleIndex(of: timestep, in: timesteps)
        precondition(i < timesteps.count, "FlowMatchEuler: stepped past the last timestep")
        let dt = sigmas[i + 1] - sigmas[i]
        let out = Tensor(uninitialized: sample.shape)
        let xp = sample.pointer, vp = modelOutput.pointer, op = out.pointer
        for k in 0..<out.count { op[k] = xp[k] + dt * vp[k] }
        stepIndex = i + 1
        return out
    }
}

// MARK: - Guidance and training helpers

public enum FlowMatching {
    /// Classifier-free guidance: v_u + s·(v_c − v_u).
    public static func guided(unconditional vu: Tensor, conditional vc: Tensor, scale: Float) -> Tensor {
        precondition(vu.shape == vc.shape, "guidance: \(vu.shape) vs \(vc.shape)")
        let out = Tensor(uninitialized: vu.shape)
        let u = vu.pointer, c = vc.pointer, o = out.pointer
        for k in 0..<out.count { o[k] = u[k] + scale * (c[k] - u[k]) }
        return out
    }

    /// Splits a batched [2B, …] prediction ordered [uncond, cond] and guides it.
    public static func guided(batched v: Tensor, scale: Float) -> Tensor {
        precondition(v.rank >= 1 && v.shape[0] % 2 == 0, "guidance: batch \(v.shape) is not [uncond; cond]")
        let half = v.shape[0] / 2
        return withNoGrad {
            guided(unconditional: v.sliced(axis: 0, start: 0, end: half),
                   conditional: v.sliced(axis: 0, start: half, end: 2 * half), scale: scale)
        }
    }

    /// Training timesteps as diffusers' logit-normal density sampling: u = sigmoid(N(mean, std)),
    /// index = ⌊N·u⌋ into the training table of `schedule`; returns the timesteps and their σ.
    public static func sampleTimesteps(batch: Int, schedule: FlowMatchEulerScheduler, mean: Float = 0,
                                       std: Float = 1, rng: inout RandomGenerator) -> (timesteps: [Float], sigmas: [Float]) {
        var ts: [Float] = [], ss: [Float] = []
        let n = schedule.trainTimesteps.count
        for _ in 0..<batch {
            let z = mean + std * rng.normal()
            let u = 1 / (1 + Foundation.exp(-z))
            let index = min(max(Int(u * Float(n)), 0), n - 1)
            ts.append(schedule.trainTimesteps[index])
            ss.append(schedule.trainSigmas[index])
        }
        return (ts, ss)
    }

    /// x_σ = (1 − σ_b)·x0 + σ_b·ε per batch element b (differentiable in x0 and ε).
    public static func interpolate(_ x0: Tensor, noise: Tensor, sigmas: [Float]) -> Tensor {
        precondition(x0.shape == noise.shape, "interpolate: \(x0.shape) vs \(noise.shape)")
        precondition(x0.rank >= 1 && sigmas.count == x0.shape[0], "interpolate: \(sigmas.count) σ for \(x0.shape)")
        var shape = [Int](repeating: 1, count: x0.rank)
        shape[0] = sigmas.count
        let s = Tensor(sigmas, shape: shape)
        return x0 * (1 - s) + noise * s
    }

    /// The velocity target ε − x0.
    public static func velocityTarget(_ x0: Tensor, noise: Tensor) -> Tensor { noise - x0 }
}
