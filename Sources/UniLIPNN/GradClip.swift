import UniLIPCore

/// Sum of squares of a buffer: eight Float lanes over blocks of 1024 (vectorised, short
/// enough to stay accurate), blocks added in Double, chunks split across threads.
func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    let chunks = Swift.max(1, Swift.min(Parallel.threads, n / Kernels.grain))
    let per = (n + chunks - 1) / chunks
    var partials = [Double](repeating: 0, count: chunks)
    partials.withUnsafeMutableBufferPointer { acc in
        Parallel.forRange(chunks) { r in
            for c in r {
                let lo = c * per, hi = Swift.min(n, lo + per)
                var total: Double = 0
                var i = lo
                while i + 8 <= hi {
                    let end = Swift.min(hi, i + 1024)
                    var lanes = SIMD8<Float>(repeating: 0)
                    while i + 8 <= end {
                        let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                        lanes += v * v
                        i += 8
                    }
                    total += Double(lanes.sum())
                }
                while i < hi { let v = Double(p[i]); total += v * v; i += 1 }
                acc[c] = total
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
        let vcoef = SIMD8<Float>(repeating: coef)
        Parallel.forRange(g.count, grain: Kernels.grain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                let v = UnsafeRawPointer(ptr + i).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(ptr + i).storeBytes(of: v * vcoef, as: SIMD8<Float>.self)
                i += 8
            }
            while i < r.upperBound { ptr[i] *= coef; i += 1 }
        }
    }
    return norm
}

/// `clipGradNorm` over named parameters (a module's or an optimiser's).
@discardableResult
public func clipGradNorm(_ named: [(String, Tensor)], maxNorm: Float = 1.0) -> Float {
    clipGradNorm(named.map(\.1), maxNorm: maxNorm)
}
