import Foundation

// Softmax and log-softmax along any axis, max-shifted so large logits cannot overflow.
// The tensor is viewed as [outer, n, inner] with the reduced axis in the middle.

enum SoftmaxKernel {
    /// Columns processed together when the axis is not the last one.
    static let block = 256

    static func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        outer: Int, n: Int, inner: Int, log: Bool) {
        if n == 0 { return }
        if inner == 1 {
            Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / n)) { r in
                for o in r {
                    let xs = x + o * n, ys = y + o * n
                    let m = RowMath.max(xs, n)
                    let s = expShiftedSum(xs, ys, n, shift: m)
                    if log {
                        // (x − m) − log s keeps the precision that x − (m + log s) loses.
                        let ls = Foundation.log(s)
                        for j in 0..<n { ys[j] = (xs[j] - m) - ls }
                    } else {
                        let inv = 1 / s
                        var j = 0
                        while j + 8 <= n { RowMath.store(RowMath.load(ys + j) * inv, ys + j); j += 8 }
                        while j < n { ys[j] *= inv; j += 1 }
                    }
                }
            }
            return
        }
        let blocks = (inner + block - 1) / block
        let units = outer * blocks
        let chunks = RowMath.chunks(units, work: n * Swift.min(inner, block))
        RowMath.forChunks(units, chunks) { _, r in
            var scratch = [Float](repeating: 0, count: 2 * block)
            scratch.withUnsafeMutableBufferPointer { buf in
                let mx = buf.baseAddress!, sm = mx + block
                for u in r {
                    let o = u / blocks, i0 = (u % blocks) * block
                    let len = Swift.min(block, inner - i0)
                    let base = o * n * inner + i0
                    for i in 0..<len { mx[i] = -.infinity; sm[i] = 0 }
                    for k in 0..<n {
                        let xs = x + base + k * inner
                        for i in 0..<len { mx[i] = Swift.max(mx[i], xs[i]) }
                    }
                    for k in 0..<n {
                        let xs = x + base + k * inner, ys = y + base + k * inner
                        var i = 0
                        while i + 8 <= len {
                            let e = VectorMath.exp(RowMath.load(xs + i) - RowMath.load(mx + i))
                            RowMath.store(e, ys + i)
                            RowMath.store(RowMath.load(sm + i) + e, sm + i)
                            i += 8
                        }
                        while i < len {
                            let e = Foundation.exp(xs[i] - mx[i])
                            ys[i] = e
                            sm[i] += e
                            i += 1
                        }
                    }
                    if log {
                        for i in 0..<len { sm[i] = Foundation.log(sm[i]) }
                        for k in 0..<n {
                            let xs = x + base + k * inner, ys = y + base + k * inner
                            for i in 0..<len { ys[i] = (xs[i] - mx[i]) - sm[i] }
                        }
                    } else {
                        for i in 0..<len { sm[i] = 1 / sm[i] }
                        for k in 0..<n {
                            let ys = y + base + k * inner
                            for i in 0..<len { ys[i] *= sm[i] }
                        }
                    }
                }
            }
        }
    }

    /// ys = exp(xs − shift) when ys is given, returning Σ exp(xs − shift) (eight lanes at a time).
    @inline(__always)
    static func expShiftedSum(_ xs: UnsafePointer<Float>, _ ys: UnsafeMutablePointer<Float>?, _ n: Int,
                              shift: Float) -> Float {
        let sv = RowMath.V(repeating: shift)
        var acc = RowMath.V(repeating: 0)
        var j = 0
        while j + 8 <= n {
            let e = VectorMath.exp(RowMath.load(xs + j) - sv)
            if let ys { RowMath.store(e, ys + j) }
            acc += e
            j += 8
        }
        var s = acc.sum()
        while j < n {
            let e = Foundation.exp(xs[j] - shift)
            ys?[j] = e
            s += e
            j += 1
        }
        return s
    }

    /// softmax: gx = y·(g − Σ g·y); log-softmax: gx = g − exp(y)·Σ g.
    static func backward(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ gx: UnsafeMutablePointer<Float>,
                         outer: Int, n: Int, inner: Int, log: Bool) {
        if n == 0 { return }
        if inner == 1 {
            Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / n)) { r in
                for o in r {
                    let gs = g + o * n, ys = y + o * n, out = gx + o * n
                    if log {
                        let s = RowMath.sum(gs, n)
                        var j = 0
                        while j + 8 <= n {
                            let e = VectorMath.exp(RowMath.load(ys + j))
                            RowMath.store(RowMath.load(gs + j) - e * s, out + j)
                            j += 8
                        }
                        while j < n { out[j] = gs[j] - Foundation.exp(ys[j]) * s; j += 1 }
                    } else {
                        let s = RowMath.dot(gs, ys, n)
                        for j in 0..<n { out[j] = ys[j] * (gs[j] - s) }
                    }
                }
            }
            return
        }
        let blocks = (inner + block - 1) / block
        let units = outer * blocks
        let chunks = RowMath.chunks(units, work: n * Swift.min(inner, block))
        RowMath.forChunks(units, chunks) { _, r in
            var scratch = [Float](repeating: 0, count: block)
            scratch.withUnsafeMutableBufferPointer { buf in
                let sm = buf.baseAddress!
                for u in r {
                    let o = u / blocks, i0 = (u % blocks) * block
                    let len = Swift.min(block, inner - i0)
                    let base = o * n * inner + i0
                    for i in 0..<len { sm[i] = 0 }
                    for k in 0..<n {
                        let gs = g + base + k * inner, ys = y + base + k * inner
                        if log {
                            for i in 0..<len { sm[i] += gs[i] }
                        } else {
                            for i in 0..<len { sm[i] += gs[i] * ys[i] }
                        }
                    }
                    for k in 0..<n {
                        let gs = g + base + k * inner, ys = y + base + k * inner, out = gx + base + k * inner
                        if log {
                            var i = 0
                            while i + 8 <= len {
                                let e = VectorMath.exp(RowMath.load(ys + i))
                                RowMath.store(RowMath.load(gs + i) - e * RowMath.load(sm + i), out + i)
                                i += 8
                            }
                            while i < len { out[i] = gs[i] - Foundation.exp(ys[i]) * sm[i]; i += 1 }
                        } else {
                            for i in 0..<len { out[i] = ys[i] * (gs[i] - sm[i]) }
                        }
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// exp(x − max) / Σ exp(x − max) along `axis`.
    public func softmax(axis: Int = -1) -> Tensor { softmaxImpl(axis: axis, log: false) }

    /// x − max − log Σ exp(x − max) along `axis`.
    public func logSoftmax(axis: Int = -1) -> Tensor { softmaxImpl(axis: axis, log: true) }

    private func softmaxImpl(axis: Int, log: Bool) -> Tensor {
        precondition(rank >= 1, "softmax needs rank ≥ 1, got \(shape)")
        let a = Shape.normalize(axis, rank: rank)
        let n = shape[a]
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let out = Tensor(uninitialized: shape)
        SoftmaxKernel.forward(pointer, out.pointer, outer: outer, n: n, inner: inner, log: log)
        let y = out.detached()
        return out.recording(log ? "log_softmax" : "softmax", [self]) { g in
            let gx = Tensor(uninitialized: y.shape)
            SoftmaxKernel.backward(g.pointer, y.pointer, gx.pointer, outer: outer, n: n, inner: inner, log: log)
            return [gx]
        }
    }
}
