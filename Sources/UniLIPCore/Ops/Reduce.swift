// Reductions beyond `sum`: mean, max/min/argmax and variance.

extension Tensor {
    /// Mean of all elements, as a scalar tensor of shape [].
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Mean along `axes` (negative counts from the end).
    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let n = Set(axes.map { Shape.normalize($0, rank: rank) }).reduce(1) { $0 * shape[$1] }
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Largest value along `axis`. The gradient goes to the first maximal element (NaN counts
    /// as maximal, as in torch).
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { extremum(axis: axis, keepDims: keepDims, largest: true) }

    /// Smallest value along `axis`; the gradient goes to the first minimal element.
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { extremum(axis: axis, keepDims: keepDims, largest: false) }

    /// Positions of the first maximal elements along `axis`, row-major over the other axes.
    public func argmax(axis: Int) -> [Int] {
        let a = Shape.normalize(axis, rank: rank)
        return Tensor.extremumKernel(self, a, largest: true).1
    }

    /// Largest element, as a scalar tensor of shape []. As in torch, the gradient is shared
    /// equally by all elements equal to the maximum.
    public func max() -> Tensor {
        precondition(count > 0, "max() of an empty tensor")
        let values = Tensor.extremumKernel(detached().reshaped([count]), 0, largest: true).0
        let best = withExtendedLifetime(values) { values.pointer[0] }
        let out = Tensor([best], shape: [])
        let x = detached()
        return out.recording("max_all", [self]) { g in
            let gx = Tensor(zeros: x.shape)
            let px = x.pointer, pg = gx.pointer
            var ties = 0
            for i in 0..<x.count where px[i] == best || (best.isNaN && px[i].isNaN) { ties += 1 }
            let share = g.pointer[0] / Float(Swift.max(ties, 1))
            for i in 0..<x.count where px[i] == best || (best.isNaN && px[i].isNaN) { pg[i] = share }
            return [gx]
        }
    }

    /// Variance along `axes`, divided by N (biased) or N − 1 (`unbiased`, Bessel's correction).
    public func variance(axes: [Int], keepDims: Bool = false, unbiased: Bool = false) -> Tensor {
        let norm = Set(axes.map { Shape.normalize($0, rank: rank) })
        let n = norm.reduce(1) { $0 * shape[$1] }
        let denom = Float(unbiased ? n - 1 : n)
        var kept = shape
        for a in norm { kept[a] = 1 }
        let (centred, v) = withNoGrad { () -> (Tensor, Tensor) in
            let x = detached()
            let d = x - x.sum(axes: Array(norm), keepDims: true) * (1 / Float(Swift.max(n, 1)))
            return (d, (d * d).sum(axes: Array(norm), keepDims: keepDims) * (1 / denom))
        }
        return v.recording("variance", [self]) { g in [centred * g.reshaped(kept) * (2 / denom)] }
    }

    // MARK: Kernels

    private func extremum(axis: Int, keepDims: Bool, largest: Bool) -> Tensor {
        let a = Shape.normalize(axis, rank: rank)
        let (values, arg) = Tensor.extremumKernel(self, a, largest: largest)
        var outShape = shape
        if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
        let out = Tensor(shape: outShape, storage: values.storage)
        let source = shape
        let n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        return out.recording(largest ? "max" : "min", [self]) { g in
            let gx = Tensor(zeros: source)
            let gs = g.pointer, gd = gx.pointer
            arg.withUnsafeBufferPointer { idx in
                Parallel.forRange(idx.count, grain: Kernels.grain) { r in
                    for e in r {
                        let o = e / inner, i = e % inner
                        gd[(o * n + idx[e]) * inner + i] = gs[e]
                    }
                }
            }
            return [gx]
        }
    }

    /// Values and first positions of the max (or min) along axis `a`, laid out as
    /// [outer, inner] row-major. No graph.
    static func extremumKernel(_ x: Tensor, _ a: Int, largest: Bool) -> (Tensor, [Int]) {
        let n = x.shape[a]
        precondition(n > 0, "max/min over an empty axis \(a) of \(x.shape)")
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        let values = Tensor(uninitialized: [outer * inner])
        var arg = [Int](repeating: 0, count: outer * inner)
        if outer * inner == 0 { return (values, arg) }
        let src = x.pointer, best = values.pointer
        @inline(__always) func better(_ v: Float, _ b: Float) -> Bool {
            if largest { return v > b || (v.isNaN && !b.isNaN) }
            return v < b || (v.isNaN && !b.isNaN)
        }
        arg.withUnsafeMutableBufferPointer { idx in
            guard let base0 = idx.baseAddress else { return }
            // One outer row, restricted to the inner columns `cols`; rows are scanned in order so
            // ties keep the first position.
            func scan(_ o: Int, _ cols: Range<Int>) {
                let base = src + o * n * inner
                let b = best + o * inner, ix = base0 + o * inner
                if inner == 1 {
                    var v0 = base[0], i0 = 0
                    for k in 1..<Swift.max(n, 1) where better(base[k], v0) { v0 = base[k]; i0 = k }
                    b[0] = v0; ix[0] = i0
                    return
                }
                for i in cols { b[i] = base[i]; ix[i] = 0 }
                for k in 1..<Swift.max(n, 1) {
                    let row = base + k * inner
                    for i in cols where better(row[i], b[i]) { b[i] = row[i]; ix[i] = k }
                }
            }
            if outer >= Parallel.threads || inner == 1 {
                Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(n * inner, 1))) { r in
                    for o in r { scan(o, 0..<inner) }
                }
            } else {
                for o in 0..<outer {
                    Parallel.forRange(inner, grain: Swift.max(64, Kernels.grain / n)) { r in scan(o, r) }
                }
            }
        }
        return (values, arg)
    }
}
