import Foundation

// Scalar losses, each a fused forward pass (Double accumulation of the total) and a one-pass
// backward, except the weighted cross entropy, composed of log-softmax and gather.

/// Σᵢ wᵢ·CEᵢ / Σᵢ wᵢ over the rows of `logits` [N, C] whose target is not `ignoreIndex`: cross
/// entropy with a weight per row (InternVL's token weights for `loss_reduction` "square" and
/// "sample"). Equal weights give `crossEntropy`; with every row ignored the result is NaN and the
/// gradient zero, as there.
public func weightedCrossEntropy(_ logits: Tensor, _ targets: [Int], weights: [Float], ignoreIndex: Int = -100) -> Tensor {
    precondition(logits.rank == 2 && weights.count == logits.shape[0] && targets.count == logits.shape[0],
                 "weightedCrossEntropy: logits \(logits.shape), \(targets.count) targets, \(weights.count) weights")
    let kept = targets.indices.filter { targets[$0] != ignoreIndex }
    guard !kept.isEmpty else { return crossEntropy(logits, targets, ignoreIndex: ignoreIndex) }
    let total = kept.reduce(0.0) { $0 + Double(weights[$1]) }
    let rows = kept.count == targets.count ? logits : logits.indexSelect(axis: 0, kept)
    let logProbs = rows.logSoftmax(axis: -1).gather(axis: 1, kept.map { targets[$0] }, indexShape: [kept.count, 1])
    return (logProbs * Tensor(kept.map { Float(-Double(weights[$0]) / total) }, shape: [kept.count, 1])).sum()
}

/// Mean cross entropy of `logits` [N, C] against class indices, skipping rows whose target is
/// `ignoreIndex` (as torch.nn.functional.cross_entropy). With every row ignored the result is
/// NaN, as in PyTorch, and the gradient is zero.
public func crossEntropy(_ logits: Tensor, _ targets: [Int], ignoreIndex: Int = -100) -> Tensor {
    precondition(logits.rank == 2, "crossEntropy: logits must be [N, C], got \(logits.shape)")
    let n = logits.shape[0], c = logits.shape[1]
    precondition(targets.count == n, "crossEntropy: \(targets.count) targets for \(n) rows")
    for (i, t) in targets.enumerated() where t != ignoreIndex {
        precondition(t >= 0 && t < c, "crossEntropy: target \(t) at row \(i) outside 0..<\(c)")
    }
    let valid = targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
    // Per row: max and log Σ exp(x − max), kept for the backward pass.
    let lse = Tensor(uninitialized: [n, 2])
    let px = logits.pointer, pl = lse.pointer
    var rowLoss = [Double](repeating: 0, count: n)
    targets.withUnsafeBufferPointer { tp in
        rowLoss.withUnsafeMutableBufferPointer { lossBuf in
            let loss = lossBuf.baseAddress!
            Parallel.forRange(n, grain: Swift.max(1, Kernels.grain / Swift.max(c, 1))) { r in
                for i in r {
                    let x = px + i * c
                    let m = RowMath.max(x, c)
                    let s = SoftmaxKernel.expShiftedSum(x, nil, c, shift: m)
                    let ls = Foundation.log(s)
                    pl[2 * i] = m
                    pl[2 * i + 1] = ls
                    let t = tp[i]
                    loss[i] = t == ignoreIndex ? 0 : Double(m - x[t]) + Double(ls)
                }
            }
        }
    }
    let total = rowLoss.reduce(0, +)
    let out = Tensor([Float(total / Double(valid))], shape: [])
    let dl = logits.detached()
    return out.recording("cross_entropy", [logits]) { g in
        let gx = Tensor(uninitialized: dl.shape)
        let scale = valid > 0 ? g.item / Float(valid) : 0
        let px = dl.pointer, pg = gx.pointer, pl = lse.pointer
        targets.withUnsafeBufferPointer { tp in
            Parallel.forRange(n, grain: Swift.max(1, Kernels.grain / Swift.max(c, 1))) { r in
                for i in r {
                    let x = px + i * c, o = pg + i * c
                    let t = tp[i]
                    if t == ignoreIndex {
                        for j in 0..<c { o[j] = 0 }
                        continue
                    }
                    let m = pl[2 * i], ls = pl[2 * i + 1]
                    // softmax · scale = exp(x − m) · (scale · exp(−log Σ)).
                    _ = SoftmaxKernel.expShiftedSum(x, o, c, shift: m)
                    let k = scale * Foundation.exp(-ls)
                    for j in 0..<c { o[j] *= k }
                    o[t] -= scale
                }
            }
        }
        return [gx]
    }
}

/// mean((a − b)²) over equal shapes.
public func mseLoss(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "mseLoss: shapes \(a.shape) and \(b.shape) differ")
    let n = a.count
    let total = LossKernel.sum(a.pointer, b.pointer, n) { d in d * d }
    let out = Tensor([Float(total / Double(n))], shape: [])
    let da = a.detached(), db = b.detached()
    let needA = a.requiresGrad, needB = b.requiresGrad
    return out.recording("mse_loss", [a, b]) { g in
        let scale = 2 * g.item / Float(n)
        let ga = Tensor(uninitialized: da.shape)
        Kernels.zip(da.pointer, db.pointer, ga.pointer, n) { a, b in (a - b) * scale }
        return [needA ? ga : nil, needB ? -ga : nil]
    }
}

/// mean(|a − b|) over equal shapes; the gradient at a tie is zero, as in PyTorch.
public func l1Loss(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "l1Loss: shapes \(a.shape) and \(b.shape) differ")
    let n = a.count
    let total = LossKernel.sum(a.pointer, b.pointer, n) { d in Swift.abs(d) }
    let out = Tensor([Float(total / Double(n))], shape: [])
    let da = a.detached(), db = b.detached()
    let needA = a.requiresGrad, needB = b.requiresGrad
    return out.recording("l1_loss", [a, b]) { g in
        let scale = g.item / Float(n)
        let ga = Tensor(uninitialized: da.shape)
        Kernels.zip(da.pointer, db.pointer, ga.pointer, n) { a, b in
            a > b ? scale : (a < b ? -scale : 0)
        }
        return [needA ? ga : nil, needB ? -ga : nil]
    }
}

enum LossKernel {
    /// Σ f(a[i] − b[i]) with Float partial sums per block and a Double total.
    @inline(__always)
    static func sum(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int,
                    _ f: (Float) -> Float) -> Double {
        let block = 1024
        let blocks = (n + block - 1) / block
        var partials = [Double](repeating: 0, count: Swift.max(blocks, 1))
        partials.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            Parallel.forRange(blocks, grain: Swift.max(1, Kernels.grain / block)) { r in
                for k in r {
                    var s: Float = 0
                    for i in (k * block)..<Swift.min(n, (k + 1) * block) { s += f(a[i] - b[i]) }
                    p[k] = Double(s)
                }
            }
        }
        return partials.reduce(0, +)
    }
}
