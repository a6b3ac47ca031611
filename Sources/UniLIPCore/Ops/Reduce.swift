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
        let outShape = keepDims ? kept : shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
        let sorted = norm.sorted()
        if let first = sorted.first, let last = sorted.last, last - first + 1 == sorted.count {
            // The reduced axes are one block: a fused two-pass kernel over [outer, n, inner].
            let outer = shape[..<first].reduce(1, *), inner = shape[(last + 1)...].reduce(1, *)
            let (mean, v) = Tensor.varianceKernel(self, outer, n, inner, denom)
            let out = Tensor(shape: outShape, storage: v.storage)
            let x = detached()
            return out.recording("variance", [self]) { g in
                let gx = Tensor(uninitialized: x.shape)
                let px = x.pointer, pm = mean.pointer, pg = g.pointer, po = gx.pointer
                let scale = 2 / denom
                Parallel.forRange(outer * n, grain: Swift.max(1, Kernels.grain / Swift.max(inner, 1))) { r in
                    for q in r {
                        let o = q / n
                        let xs = px + q * inner, ds = po + q * inner
                        let ms = pm + o * inner, gs = pg + o * inner
                        for i in 0..<inner { ds[i] = gs[i] * scale * (xs[i] - ms[i]) }
                    }
                }
                return [gx]
            }
        }
        let (centred, v) = withNoGrad { () -> (Tensor, Tensor) in
            let x = detached()
            let d = x - x.sum(axes: sorted, keepDims: true) * (1 / Float(Swift.max(n, 1)))
            return (d, (d * d).sum(axes: sorted, keepDims: keepDims) * (1 / denom))
        }
        return v.recording("variance", [self]) { g in [centred * g.reshaped(kept) * (2 / denom)] }
    }

    /// Mean and variance of x viewed as [outer, n, inner], reduced over n; both [outer·inner].
    static func varianceKernel(_ x: Tensor, _ outer: Int, _ n: Int, _ inner: Int,
                               _ denom: Float) -> (Tensor, Tensor) {
        let mean = Tensor(uninitialized: [outer * inner]), variance = Tensor(uninitialized: [outer * inner])
        let src = x.pointer, pm = mean.pointer, pv = variance.pointer
        let invN = 1 / Float(Swift.max(n, 1)), invD = 1 / denom
        // Columns of one outer slab; ranges of columns are independent.
        func columns(_ o: Int, _ cols: Range<Int>) {
            let base = src + o * n * inner, m = pm + o * inner, v = pv + o * inner
            if inner == 1 {
                let mu = Tensor.rowSum(base, n) { $0 } * invN
                m[0] = mu
                v[0] = Tensor.rowSum(base, n) { ($0 - mu) * ($0 - mu) } * invD
                return
            }
            for i in cols { m[i] = 0; v[i] = 0 }
            for k in 0..<n {
                let row = base + k * inner
                for i in cols { m[i] += row[i] }
            }
            for i in cols { m[i] *= invN }
            for k in 0..<n {
                let row = base + k * inner
                for i in cols { let d = row[i] - m[i]; v[i] += d * d }
            }
            for i in cols { v[i] *= invD }
        }
        if outer >= Parallel.threads || inner == 1 {
            Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(n * inner, 1))) { r in
                for o in r { columns(o, 0..<inner) }
            }
        } else {
            for o in 0..<outer {
                Parallel.forRange(inner, grain: Swift.max(64, Kernels.grain / Swift.max(n, 1))) { r in columns(o, r) }
            }
        }
        return (mean, variance)
    }

    /// Σ f(p[k]) over a contiguous row with eight independent lanes (so the loop vectorises).
    @inline(__always)
    static func rowSum(_ p: UnsafePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var k = 0
        let raw = UnsafeRawPointer(p)
        while k + 8 <= n {
            acc += f(raw.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self))
            k += 8
        }
        var tail = SIMD8<Float>(repeating: 0)
        var j = 0
        while k < n { tail[j] = p[k]; j += 1; k += 1 }
        // Padding lanes must contribute nothing, so mask them after applying f.
        var ft = f(tail)
        for l in j..<8 { ft[l] = 0 }
        return (acc + ft).sum()
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
        arg.withUnsafeMutableBufferPointer { idx in
            guard let base0 = idx.baseAddress else { return }
            // One outer row, restricted to the inner columns `cols`. Rows are scanned in order
            // and only a strictly better value (or a first NaN) moves the position, so ties keep
            // the first one. The selects are branch-free so the column loop vectorises.
            func scan(_ o: Int, _ cols: Range<Int>) {
                let base = src + o * n * inner
                let b = best + o * inner, ix = base0 + o * inner
                if inner == 1 {
                    let v0 = Tensor.rowExtremum(base, n, largest: largest)
                    var i0 = 0
                    if v0.isNaN {
                        while !base[i0].isNaN { i0 += 1 }
                    } else {
                        while base[i0] != v0 { i0 += 1 }
                    }
                    b[0] = v0; ix[0] = i0
                    return
                }
                for i in cols { b[i] = base[i]; ix[i] = 0 }
                for k in 1..<n {
                    let row = base + k * inner
                    for i in cols {
                        let v = row[i], bv = b[i]
                        let take = (largest ? v > bv : v < bv) || (v != v && bv == bv)
                        b[i] = take ? v : bv
                        ix[i] = take ? k : ix[i]
                    }
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

    /// Largest (or smallest) value of a contiguous row; NaN if any element is NaN. Eight
    /// independent lanes, then a scalar tail.
    static func rowExtremum(_ p: UnsafePointer<Float>, _ n: Int, largest: Bool) -> Float {
        var k = 0
        var m = p[0]
        if n >= 16 {
            var acc = SIMD8<Float>(repeating: p[0])
            let raw = UnsafeRawPointer(p)
            while k + 8 <= n {
                let v = raw.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
                acc.replace(with: v, where: (largest ? v .> acc : v .< acc) .| (v .!= v))
                k += 8
            }
            m = acc[0]
            for j in 1..<8 { m = pick(acc[j], m, largest) }
        }
        while k < n {
            m = pick(p[k], m, largest)
            k += 1
        }
        return m
    }

    @inline(__always)
    private static func pick(_ v: Float, _ m: Float, _ largest: Bool) -> Float {
        (largest ? v > m : v < m) || (v != v && m == m) ? v : m
    }
}
