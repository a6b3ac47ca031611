import Foundation

// Normalisation layers. Each forward pass computes per-row statistics in one sweep (Float
// accumulation in SIMD lanes, shifted by the row's first value so a large mean does not cancel
// the variance) and saves mean/rstd; the backward pass reuses them row by row while the row is
// still in cache, so every tensor is streamed from memory once per pass.

/// SIMD row reductions shared by the norms and softmax.
enum RowMath {
    typealias V = SIMDLoops.V

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { SIMDLoops.load(p) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { SIMDLoops.store(v, p) }

    /// (Σ(x−s), Σ(x−s)²) over n values with shift s.
    @inline(__always)
    static func shiftedMoments(_ x: UnsafePointer<Float>, _ n: Int, shift s: Float) -> (Float, Float) {
        var a1 = V(repeating: 0), a2 = V(repeating: 0)
        let sv = V(repeating: s)
        var i = 0
        while i + 8 <= n {
            let d = load(x + i) - sv
            a1 += d
            a2 = a2.addingProduct(d, d)
            i += 8
        }
        var s1 = a1.sum(), s2 = a2.sum()
        while i < n {
            let d = x[i] - s
            s1 += d
            s2 += d * d
            i += 1
        }
        return (s1, s2)
    }

    /// (Σ g·w, Σ g·w·(x − mean)) over n values.
    @inline(__always)
    static func centredDots(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                            _ n: Int, mean: Float) -> (Float, Float) {
        var a1 = V(repeating: 0), a2 = V(repeating: 0)
        let mv = V(repeating: mean)
        var i = 0
        while i + 8 <= n {
            let gw = load(g + i) * load(w + i)
            a1 += gw
            a2 = a2.addingProduct(gw, load(x + i) - mv)
            i += 8
        }
        var s1 = a1.sum(), s2 = a2.sum()
        while i < n {
            let gw = g[i] * w[i]
            s1 += gw
            s2 += gw * (x[i] - mean)
            i += 1
        }
        return (s1, s2)
    }

    /// Σ a·b over n values.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 8 <= n { acc = acc.addingProduct(load(a + i), load(b + i)); i += 8 }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Σ g·w·x over n values.
    @inline(__always)
    static func weightedDot(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                            _ n: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc = acc.addingProduct(load(g + i) * load(w + i), load(x + i))
            i += 8
        }
        var s = acc.sum()
        while i < n { s += g[i] * w[i] * x[i]; i += 1 }
        return s
    }

    /// (Σ g·(x − shift)·scale[i], Σ g) over n values; scale may be nil (all ones).
    @inline(__always)
    static func gradSums(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int,
                         shift: Float, scale: UnsafePointer<Float>?) -> (Float, Float) {
        var a1 = V(repeating: 0), a2 = V(repeating: 0)
        let sv = V(repeating: shift)
        var i = 0
        if let scale {
            while i + 8 <= n {
                let gv = load(g + i)
                a1 = a1.addingProduct(gv, (load(x + i) - sv) * load(scale + i))
                a2 += gv
                i += 8
            }
        } else {
            while i + 8 <= n {
                let gv = load(g + i)
                a1 = a1.addingProduct(gv, load(x + i) - sv)
                a2 += gv
                i += 8
            }
        }
        var s1 = a1.sum(), s2 = a2.sum()
        while i < n {
            s1 += g[i] * (x[i] - shift) * (scale?[i] ?? 1)
            s2 += g[i]
            i += 1
        }
        return (s1, s2)
    }

    /// Σ x².
    @inline(__always)
    static func sumSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let v = load(x + i)
            acc = acc.addingProduct(v, v)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += x[i] * x[i]; i += 1 }
        return s
    }

    /// Σ x.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += load(x + i); i += 8 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// Maximum of n ≥ 1 values.
    @inline(__always)
    static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 8 {
            var acc = V(repeating: -.infinity)
            while i + 8 <= n {
                let v = load(x + i)
                acc.replace(with: v, where: v .> acc)
                i += 8
            }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Number of chunks for `items` independent units of `work` elements each.
    static func chunks(_ items: Int, work: Int) -> Int {
        Swift.max(1, Swift.min(Parallel.threads, Swift.min(items, items * Swift.max(work, 1) / Kernels.grain)))
    }

    /// Runs body(chunk, range) over `items` split into `chunks` contiguous ranges.
    @inline(__always)
    static func forChunks(_ items: Int, _ chunks: Int, _ body: (Int, Range<Int>) -> Void) {
        let per = (items + chunks - 1) / chunks
        Parallel.forRange(chunks, grain: 1) { r in
            for c in r {
                let lo = c * per, hi = Swift.min(items, lo + per)
                if lo < hi { body(c, lo..<hi) }
            }
        }
    }
}

/// Accumulates per-chunk partial sums of `width` values and reduces them into a tensor.
final class PartialSums {
    let width: Int
    let chunks: Int
    let buffer: UnsafeMutablePointer<Float>

    init(width: Int, chunks: Int) {
        self.width = width
        self.chunks = chunks
        buffer = .allocate(capacity: Swift.max(1, width * chunks))
        buffer.initialize(repeating: 0, count: width * chunks)
    }

    deinit { buffer.deallocate() }

    func row(_ c: Int) -> UnsafeMutablePointer<Float> { buffer + c * width }

    func reduced(shape: [Int]) -> Tensor {
        let out = Tensor(zeros: shape)
        let o = out.pointer
        for c in 0..<chunks {
            let p = row(c)
            for j in 0..<width { o[j] += p[j] }
        }
        return out
    }
}

extension Tensor {
    /// Layer normalisation over the last axis (torch.nn.functional.layer_norm with
    /// normalized_shape = [D]); `weight` and `bias` are optional [D].
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 1, "layerNorm needs rank ≥ 1, got \(shape)")
        let d = shape[rank - 1]
        if let weight { precondition(weight.shape == [d], "layerNorm weight \(weight.shape), expected [\(d)]") }
        if let bias { precondition(bias.shape == [d], "layerNorm bias \(bias.shape), expected [\(d)]") }
        let rows = d == 0 ? 0 : count / d
        let out = Tensor(uninitialized: shape)
        let stats = Tensor(uninitialized: [rows, 2])  // mean, rstd
        let px = pointer, py = out.pointer, ps = stats.pointer
        let pw = weight?.pointer, pb = bias?.pointer
        let chunks = RowMath.chunks(rows, work: d)
        RowMath.forChunks(rows, chunks) { _, r in
            for row in r {
                let x = px + row * d, y = py + row * d
                let shift = x[0]
                let (s1, s2) = RowMath.shiftedMoments(x, d, shift: shift)
                let m1 = s1 / Float(d)
                let variance = Swift.max(s2 / Float(d) - m1 * m1, 0)
                let mean = shift + m1
                let rstd = 1 / (variance + eps).squareRoot()
                ps[2 * row] = mean
                ps[2 * row + 1] = rstd
                switch (pw, pb) {
                case let (w?, b?): for j in 0..<d { y[j] = (x[j] - mean) * rstd * w[j] + b[j] }
                case let (w?, nil): for j in 0..<d { y[j] = (x[j] - mean) * rstd * w[j] }
                case let (nil, b?): for j in 0..<d { y[j] = (x[j] - mean) * rstd + b[j] }
                case (nil, nil): for j in 0..<d { y[j] = (x[j] - mean) * rstd }
                }
            }
        }
        var inputs: [Tensor] = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let dx = detached(), dw = weight?.detached()
        let needX = requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        let hasBias = bias != nil
        return out.recording("layer_norm", inputs) { g in
            let sp = stats.pointer  // keeps the saved statistics alive
            let gx = needX ? Tensor(uninitialized: dx.shape) : nil
            let gw = needW ? PartialSums(width: d, chunks: chunks) : nil
            let gb = needB ? PartialSums(width: d, chunks: chunks) : nil
            let wOrOnes = dw ?? Tensor(repeating: 1, shape: [d])
            let px = dx.pointer, pg = g.pointer, pgx = gx?.pointer, pw = wOrOnes.pointer
            RowMath.forChunks(rows, chunks) { c, r in
                let accW = gw?.row(c), accB = gb?.row(c)
                for row in r {
                    let x = px + row * d, gy = pg + row * d
                    let mean = sp[2 * row], rstd = sp[2 * row + 1]
                    if let accW { for j in 0..<d { accW[j] += gy[j] * ((x[j] - mean) * rstd) } }
                    if let accB { for j in 0..<d { accB[j] += gy[j] } }
                    guard let pgx else { continue }
                    // Σ ĝ and Σ ĝ·x̂ with ĝ = g·w.
                    let (sg, sgc) = RowMath.centredDots(x, gy, pw, d, mean: mean)
                    let sgx = sgc * rstd
                    let out = pgx + row * d
                    let mg = sg / Float(d), mgx = sgx / Float(d)
                    for j in 0..<d {
                        out[j] = rstd * (gy[j] * pw[j] - mg - (x[j] - mean) * rstd * mgx)
                    }
                }
            }
            var grads: [Tensor?] = [gx]
            if dw != nil { grads.append(gw?.reduced(shape: [d])) }
            if hasBias { grads.append(gb?.reduced(shape: [d])) }
            return grads
        }
    }

    /// RMS normalisation over the last axis as in Qwen2: x · rsqrt(mean(x²) + eps) · weight.
    public func rmsNorm(weight: Tensor?, eps: Float = 1e-6) -> Tensor {
        precondition(rank >= 1, "rmsNorm needs rank ≥ 1, got \(shape)")
        let d = shape[rank - 1]
        if let weight { precondition(weight.shape == [d], "rmsNorm weight \(weight.shape), expected [\(d)]") }
        let rows = d == 0 ? 0 : count / d
        let out = Tensor(uninitialized: shape)
        let rstds = Tensor(uninitialized: [rows])
        let px = pointer, py = out.pointer, pr = rstds.pointer
        let pw = weight?.pointer
        let chunks = RowMath.chunks(rows, work: d)
        RowMath.forChunks(rows, chunks) { _, r in
            for row in r {
                let x = px + row * d, y = py + row * d
                let rstd = 1 / (RowMath.sumSquares(x, d) / Float(d) + eps).squareRoot()
                pr[row] = rstd
                if let w = pw {
                    for j in 0..<d { y[j] = x[j] * rstd * w[j] }
                } else {
                    for j in 0..<d { y[j] = x[j] * rstd }
                }
            }
        }
        var inputs: [Tensor] = [self]
        if let weight { inputs.append(weight) }
        let dx = detached(), dw = weight?.detached()
        let needX = requiresGrad, needW = weight?.requiresGrad ?? false
        return out.recording("rms_norm", inputs) { g in
            let rp = rstds.pointer  // keeps the saved statistics alive
            let gx = needX ? Tensor(uninitialized: dx.shape) : nil
            let gw = needW ? PartialSums(width: d, chunks: chunks) : nil
            let wOrOnes = dw ?? Tensor(repeating: 1, shape: [d])
            let px = dx.pointer, pg = g.pointer, pgx = gx?.pointer, pw = wOrOnes.pointer
            RowMath.forChunks(rows, chunks) { c, r in
                let accW = gw?.row(c)
                for row in r {
                    let x = px + row * d, gy = pg + row * d
                    let rstd = rp[row]
                    if let accW { for j in 0..<d { accW[j] += gy[j] * (x[j] * rstd) } }
                    guard let pgx else { continue }
                    let sgx = RowMath.weightedDot(x, gy, pw, d) * rstd
                    let out = pgx + row * d
                    let mgx = sgx / Float(d)
                    for j in 0..<d { out[j] = rstd * (gy[j] * pw[j] - x[j] * rstd * mgx) }
                }
            }
            var grads: [Tensor?] = [gx]
            if dw != nil { grads.append(gw?.reduced(shape: [d])) }
            return grads
        }
    }

    /// RMS normalisation over the channel axis of an N×C×… tensor (DC-AE's RMSNorm2d: each
    /// pixel's C values are scaled by rsqrt(mean(x²) + eps), then · weight[C] + bias[C]).
    public func rmsNormChannels(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2, "rmsNormChannels needs N×C×…, got \(shape)")
        let n = shape[0], ch = shape[1]
        let s = shape[2...].reduce(1, *)
        if let weight { precondition(weight.shape == [ch], "rmsNormChannels weight \(weight.shape), expected [\(ch)]") }
        if let bias { precondition(bias.shape == [ch], "rmsNormChannels bias \(bias.shape), expected [\(ch)]") }
        // Work unit: one image's block of up to `block` pixels, processed channel by channel
        // so the inner loops run over contiguous pixels.
        let block = 256
        let blocksPerImage = (s + block - 1) / block
        let units = n * blocksPerImage
        let out = Tensor(uninitialized: shape)
        let rstds = Tensor(uninitialized: [n * s])
        let px = pointer, py = out.pointer, pr = rstds.pointer
        let pw = weight?.pointer, pb = bias?.pointer
        let chunks = RowMath.chunks(units, work: ch * Swift.min(s, block))
        let invC = 1 / Float(ch)
        RowMath.forChunks(units, chunks) { _, r in
            for u in r {
                let img = u / blocksPerImage
                let s0 = (u % blocksPerImage) * block
                let len = Swift.min(block, s - s0)
                let base = img * ch * s + s0
                let rs = pr + img * s + s0
                for i in 0..<len { rs[i] = 0 }
                for c in 0..<ch {
                    let x = px + base + c * s
                    for i in 0..<len { rs[i] += x[i] * x[i] }
                }
                for i in 0..<len { rs[i] = 1 / (rs[i] * invC + eps).squareRoot() }
                for c in 0..<ch {
                    let x = px + base + c * s, y = py + base + c * s
                    let w = pw?[c] ?? 1, b = pb?[c] ?? 0
                    for i in 0..<len { y[i] = x[i] * rs[i] * w + b }
                }
            }
        }
        var inputs: [Tensor] = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let dx = detached(), dw = weight?.detached()
        let needX = requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        let hasBias = bias != nil
        return out.recording("rms_norm_channels", inputs) { g in
            let rp = rstds.pointer  // keeps the saved statistics alive
            let gx = needX ? Tensor(uninitialized: dx.shape) : nil
            let gw = needW ? PartialSums(width: ch, chunks: chunks) : nil
            let gb = needB ? PartialSums(width: ch, chunks: chunks) : nil
            let px = dx.pointer, pg = g.pointer, pgx = gx?.pointer, pw = dw?.pointer
            RowMath.forChunks(units, chunks) { c, r in
                let accW = gw?.row(c), accB = gb?.row(c)
                var dots = [Float](repeating: 0, count: block)
                dots.withUnsafeMutableBufferPointer { dotsBuf in
                    let dot = dotsBuf.baseAddress!
                    for u in r {
                        let img = u / blocksPerImage
                        let s0 = (u % blocksPerImage) * block
                        let len = Swift.min(block, s - s0)
                        let base = img * ch * s + s0
                        let rs = rp + img * s + s0
                        for i in 0..<len { dot[i] = 0 }
                        for k in 0..<ch {
                            let x = px + base + k * s, gy = pg + base + k * s
                            let w = pw?[k] ?? 1
                            for i in 0..<len { dot[i] += gy[i] * w * (x[i] * rs[i]) }
                            let (sw, sb) = RowMath.gradSums(x, gy, len, shift: 0, scale: rs)
                            if let accW { accW[k] += sw }
                            if let accB { accB[k] += sb }
                        }
                        guard let pgx else { continue }
                        for i in 0..<len { dot[i] *= invC }
                        for k in 0..<ch {
                            let x = px + base + k * s, gy = pg + base + k * s, o = pgx + base + k * s
                            let w = pw?[k] ?? 1
                            for i in 0..<len {
                                let xh = x[i] * rs[i]
                                o[i] = rs[i] * (gy[i] * w - xh * dot[i])
                            }
                        }
                    }
                }
            }
            var grads: [Tensor?] = [gx]
            if dw != nil { grads.append(gw?.reduced(shape: [ch])) }
            if hasBias { grads.append(gb?.reduced(shape: [ch])) }
            return grads
        }
    }

    /// Group normalisation of an N×C×… tensor (torch.nn.functional.group_norm): statistics over
    /// each group of C/groups channels and all trailing positions, then per-channel affine.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2, "groupNorm needs N×C×…, got \(shape)")
        let n = shape[0], ch = shape[1]
        precondition(groups > 0 && ch % groups == 0, "groupNorm: \(ch) channels not divisible into \(groups) groups")
        if let weight { precondition(weight.shape == [ch], "groupNorm weight \(weight.shape), expected [\(ch)]") }
        if let bias { precondition(bias.shape == [ch], "groupNorm bias \(bias.shape), expected [\(ch)]") }
        let s = shape[2...].reduce(1, *)
        let cg = ch / groups
        let len = cg * s  // a group's values are contiguous
        let rows = n * groups
        let out = Tensor(uninitialized: shape)
        let stats = Tensor(uninitialized: [rows, 2])
        let px = pointer, py = out.pointer, ps = stats.pointer
        let pw = weight?.pointer, pb = bias?.pointer
        let chunks = RowMath.chunks(rows, work: len)
        RowMath.forChunks(rows, chunks) { _, r in
            for row in r {
                let x = px + row * len, y = py + row * len
                let shift = len > 0 ? x[0] : 0
                let (s1, s2) = RowMath.shiftedMoments(x, len, shift: shift)
                let m1 = s1 / Float(Swift.max(len, 1))
                let variance = Swift.max(s2 / Float(Swift.max(len, 1)) - m1 * m1, 0)
                let mean = shift + m1
                let rstd = 1 / (variance + eps).squareRoot()
                ps[2 * row] = mean
                ps[2 * row + 1] = rstd
                let c0 = (row % groups) * cg
                for k in 0..<cg {
                    let w = pw?[c0 + k] ?? 1, b = pb?[c0 + k] ?? 0
                    // y = x·a + b' with a = rstd·w, b' = b − mean·a.
                    let a = rstd * w, shiftB = b - mean * a
                    let xs = x + k * s, ys = y + k * s
                    for i in 0..<s { ys[i] = xs[i] * a + shiftB }
                }
            }
        }
        var inputs: [Tensor] = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let dx = detached(), dw = weight?.detached()
        let needX = requiresGrad, needW = weight?.requiresGrad ?? false, needB = bias?.requiresGrad ?? false
        let hasBias = bias != nil
        return out.recording("group_norm", inputs) { g in
            let sp = stats.pointer  // keeps the saved statistics alive
            let gx = needX ? Tensor(uninitialized: dx.shape) : nil
            let gw = needW ? PartialSums(width: ch, chunks: chunks) : nil
            let gb = needB ? PartialSums(width: ch, chunks: chunks) : nil
            let px = dx.pointer, pg = g.pointer, pgx = gx?.pointer, pw = dw?.pointer
            RowMath.forChunks(rows, chunks) { c, r in
                let accW = gw?.row(c), accB = gb?.row(c)
                for row in r {
                    let x = px + row * len, gy = pg + row * len
                    let mean = sp[2 * row], rstd = sp[2 * row + 1]
                    let c0 = (row % groups) * cg
                    var sg: Float = 0, sgx: Float = 0
                    for k in 0..<cg {
                        let w = pw?[c0 + k] ?? 1
                        let xs = x + k * s, gs = gy + k * s
                        let (swc, sb) = RowMath.gradSums(xs, gs, s, shift: mean, scale: nil)
                        let sw = swc * rstd
                        sg += sb * w
                        sgx += sw * w
                        if let accW { accW[c0 + k] += sw }
                        if let accB { accB[c0 + k] += sb }
                    }
                    guard let pgx else { continue }
                    let o = pgx + row * len
                    let mg = sg / Float(len), mgx = sgx / Float(len)
                    for k in 0..<cg {
                        let w = pw?[c0 + k] ?? 1
                        let xs = x + k * s, gs = gy + k * s, os = o + k * s
                        for i in 0..<s {
                            let xh = (xs[i] - mean) * rstd
                            os[i] = rstd * (gs[i] * w - mg - xh * mgx)
                        }
                    }
                }
            }
            var grads: [Tensor?] = [gx]
            if dw != nil { grads.append(gw?.reduced(shape: [ch])) }
            if hasBias { grads.append(gb?.reduced(shape: [ch])) }
            return grads
        }
    }
}
