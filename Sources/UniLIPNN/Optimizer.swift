import Foundation
import UniLIPCore

/// AdamW with PyTorch's exact semantics (`torch.optim.AdamW`, single-tensor path,
/// amsgrad off): decoupled weight decay `p ← p·(1 − lr·wd)`, bias-corrected moments, and eps
/// added outside the square root. Parameters without a gradient are skipped (their step count
/// does not advance). State is kept per parameter name.
public final class AdamW {
    public var groups: [ParameterGroup]
    public var beta1: Float
    public var beta2: Float
    public var eps: Float

    final class State {
        var step: Int = 0
        let expAvg: Tensor
        let expAvgSq: Tensor
        init(shape: [Int]) {
            expAvg = Tensor(zeros: shape)
            expAvgSq = Tensor(zeros: shape)
        }
    }
    private var state: [String: State] = [:]

    public init(groups: [ParameterGroup], betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) {
        var seen = Set<String>()
        for g in groups {
            for (name, _) in g.parameters {
                precondition(seen.insert(name).inserted, "AdamW: parameter \(name) in two groups")
            }
        }
        self.groups = groups
        self.beta1 = betas.0
        self.beta2 = betas.1
        self.eps = eps
    }

    /// One group holding every given parameter.
    public convenience init(_ named: [(String, Tensor)], lr: Float = 1e-3, weightDecay: Float = 1e-2,
                            betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) {
        self.init(groups: [ParameterGroup(name: "all", parameters: named, lr: lr, weightDecay: weightDecay)],
                  betas: betas, eps: eps)
    }

    /// Every parameter of every group.
    public var parameters: [(String, Tensor)] { groups.flatMap(\.parameters) }

    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for g in groups { for (_, p) in g.parameters { p.grad = nil } }
    }

    /// The step count of one parameter (0 before its first update).
    public func stepCount(_ name: String) -> Int { state[name]?.step ?? 0 }

    /// Applies one update to every parameter that has a gradient.
    public func step() {
        for group in groups {
            for (name, p) in group.parameters {
                guard let grad = p.grad else { continue }
                precondition(grad.count == p.count, "AdamW: gradient \(grad.shape) for \(name) \(p.shape)")
                let s: State
                if let existing = state[name] {
                    s = existing
                } else {
                    s = State(shape: p.shape)
                    state[name] = s
                }
                s.step += 1
                update(p, grad: grad, state: s, lr: group.lr, weightDecay: group.weightDecay)
            }
        }
    }

    private func update(_ p: Tensor, grad: Tensor, state s: State, lr: Float, weightDecay: Float) {
        // Scalars in Double as PyTorch computes them in Python, then rounded once.
        let t = Double(s.step)
        let b1 = Double(beta1), b2 = Double(beta2)
        let stepSize = Float(Double(lr) / (1 - Foundation.pow(b1, t)))
        let invBC2Sqrt = Float(1 / (1 - Foundation.pow(b2, t)).squareRoot())
        let decay = Float(1 - Double(lr) * Double(weightDecay))
        let oneMinusB1 = 1 - beta1, oneMinusB2 = 1 - beta2, beta2 = self.beta2, eps = self.eps
        let pp = p.pointer, pg = grad.pointer, pm = s.expAvg.pointer, pv = s.expAvgSq.pointer
        Parallel.forRange(p.count, grain: Kernels.grain) { r in
            // Eight lanes at a time, then the tail; the same arithmetic in both.
            var i = r.lowerBound
            let vb1 = SIMD8<Float>(repeating: oneMinusB1), vb2 = SIMD8<Float>(repeating: beta2)
            let vb2c = SIMD8<Float>(repeating: oneMinusB2), vbc = SIMD8<Float>(repeating: invBC2Sqrt)
            let veps = SIMD8<Float>(repeating: eps), vdecay = SIMD8<Float>(repeating: decay)
            let vstep = SIMD8<Float>(repeating: stepSize)
            while i + 8 <= r.upperBound {
                let g = UnsafeRawPointer(pg + i).loadUnaligned(as: SIMD8<Float>.self)
                var m = UnsafeRawPointer(pm + i).loadUnaligned(as: SIMD8<Float>.self)
                var v = UnsafeRawPointer(pv + i).loadUnaligned(as: SIMD8<Float>.self)
                let x = UnsafeRawPointer(pp + i).loadUnaligned(as: SIMD8<Float>.self)
                m = m + vb1 * (g - m)
                v = v * vb2 + vb2c * g * g
                let denom = v.squareRoot() * vbc + veps
                UnsafeMutableRawPointer(pm + i).storeBytes(of: m, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(pv + i).storeBytes(of: v, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(pp + i).storeBytes(of: x * vdecay - vstep * m / denom, as: SIMD8<Float>.self)
                i += 8
            }
            while i < r.upperBound {
                let g = pg[i]
                let m = pm[i] + oneMinusB1 * (g - pm[i])
                let v = pv[i] * beta2 + oneMinusB2 * g * g
                pm[i] = m
                pv[i] = v
                let denom = v.squareRoot() * invBC2Sqrt + eps
                pp[i] = pp[i] * decay - stepSize * m / denom
                i += 1
            }
        }
    }

    // MARK: Saved state

    /// Everything needed for an exact resume: per parameter `state.<name>.step`,
    /// `state.<name>.exp_avg`, `state.<name>.exp_avg_sq`, and per group `groups.<i>.lr`,
    /// `groups.<i>.initial_lr`, `groups.<i>.weight_decay`. The tensors are copies.
    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, s) in state {
            out["state.\(name).step"] = Tensor(scalar: Float(s.step))
            out["state.\(name).exp_avg"] = s.expAvg.copy()
            out["state.\(name).exp_avg_sq"] = s.expAvgSq.copy()
        }
        for (i, g) in groups.enumerated() {
            out["groups.\(i).lr"] = Tensor(scalar: g.lr)
            out["groups.\(i).initial_lr"] = Tensor(scalar: g.baseLR)
            out["groups.\(i).weight_decay"] = Tensor(scalar: g.weightDecay)
        }
        return out
    }

    /// Restores a `stateDict()` taken from an optimiser over the same parameter names and groups.
    /// Parameters with no saved state start fresh. Throws on missing or mis-shaped entries;
    /// nothing changes when it throws.
    public func loadStateDict(_ dict: [String: Tensor]) throws {
        var restored: [String: State] = [:]
        var hyper: [(Float, Float, Float)] = []
        for (i, g) in groups.enumerated() {
            hyper.append((try dict.requiredScalar("groups.\(i).lr"),
                          try dict.requiredScalar("groups.\(i).initial_lr"),
                          try dict.requiredScalar("groups.\(i).weight_decay")))
            for (name, p) in g.parameters {
                guard dict["state.\(name).step"] != nil else { continue }
                let step = try dict.requiredScalar("state.\(name).step")
                guard step >= 0, step == step.rounded() else {
                    throw StateDictError(key: "state.\(name).step", "not a step count: \(step)")
                }
                let s = State(shape: p.shape)
                s.step = Int(step)
                s.expAvg.assign(try dict.required("state.\(name).exp_avg", shape: p.shape))
                s.expAvgSq.assign(try dict.required("state.\(name).exp_avg_sq", shape: p.shape))
                restored[name] = s
            }
        }
        let known = Set(groups.flatMap { $0.parameters.map(\.0) })
        for key in dict.keys where key.hasPrefix("state.") && key.hasSuffix(".step") {
            let name = String(key.dropFirst(6).dropLast(5))
            if !known.contains(name) { throw StateDictError(key: key, "no such parameter in this optimiser") }
        }
        state = restored
        for i in groups.indices {
            groups[i].lr = hyper[i].0
            groups[i].baseLR = hyper[i].1
            groups[i].weightDecay = hyper[i].2
        }
    }
}
