import UniLIPCore

/// Sum of squares of a buffer, accumulated in Double over parallel chunks.
func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    let chunks = Swift.max(1, Swift.min(Parallel.threads, n / Kernels.grain))
    let per = (n + chunks - 1) / chunks
    var partials = [Double](repeating: 0, count: chunks)
    partials.withUnsafeMutableBufferPointer { acc in
        Parallel.forRange(chunks) { r in
            for c in r {
                let lo = c * per, hi = Swift.min(n, lo + per)
                var s: Double = 0
                if lo < hi { for i in lo..<hi { let v = Double(p[i]); s += v * v } }
                acc[c] = s
            }
        }
    }
    return partials.reduce(0, +)
}

/// Rescales gradients so their global L2 norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`: the factor is `min(1, maxNorm / (total + 1e-6))`.
/// Parameters without a gradient are ignored. Returns the norm before clipping (inf or nan
/// when a gradient is not finite; then the gradients are scaled by nan as in PyTorch).
///
/// Gradients that share storage (autograd may hand one tensor to two leaves) are copied apart
/// before scaling, so each is scaled once.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float = 1.0) -> Float {
    let grads = parameters.compactMap(\.grad)
    var total: Double = 0
    for g in grads { total += sumOfSquares(g.pointer, g.count) }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    guard !(coef >= 1) else { return norm }
    // Separate shared storage first: scaling in place must touch each gradient once.
    var seen = Set<ObjectIdentifier>()
    for p in parameters {
        guard let g = p.grad else { continue }
        if !seen.insert(ObjectIdentifier(g.storage)).inserted { p.grad = g.copy() }
    }
    for p in parameters {
        guard let g = p.grad else { continue }
        let ptr = g.pointer
        Parallel.forRange(g.count, grain: Kernels.grain) { r in
            for i in r { ptr[i] *= coef }
        }
    }
    return norm
}

/// `clipGradNorm` over named parameters (a module's or an optimiser's).
@discardableResult
public func clipGradNorm(_ named: [(String, Tensor)], maxNorm: Float = 1.0) -> Float {
    clipGradNorm(named.map(\.1), maxNorm: maxNorm)
}
