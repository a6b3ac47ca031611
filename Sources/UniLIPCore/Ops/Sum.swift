extension Tensor {
    /// Sum of all elements, as a scalar tensor of shape [].
    public func sum() -> Tensor {
        let n = count
        let p = pointer
        var partials = [Double](repeating: 0, count: Swift.max(1, Swift.min(Parallel.threads, n / Kernels.grain)))
        let per = (n + partials.count - 1) / Swift.max(partials.count, 1)
        partials.withUnsafeMutableBufferPointer { acc in
            Parallel.forRange(acc.count) { r in
                for c in r {
                    // Blocks of 512 in two SIMD8 float accumulators (32 terms per lane), each
                    // block's total added in Double: vectorised, and as accurate as a Double
                    // running sum for practical purposes.
                    var s: Double = 0
                    var i = c * per
                    let hi = Swift.min(n, i + per)
                    while i + 512 <= hi {
                        var a = SIMDLoops.V(), b = SIMDLoops.V()
                        var j = i
                        while j < i + 512 {
                            a += SIMDLoops.load(p + j)
                            b += SIMDLoops.load(p + j + 8)
                            j += 16
                        }
                        s += Double((a + b).sum())
                        i += 512
                    }
                    while i < hi {
                        s += Double(p[i])
                        i += 1
                    }
                    acc[c] = s
                }
            }
        }
        let out = Tensor([Float(partials.reduce(0, +))], shape: [])
        let source = shape
        return out.recording("sum", [self]) { g in [g.expanded(to: source)] }
    }

    /// Sum along `axes` (negative counts from the end).
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let norm = Set(axes.map { Shape.normalize($0, rank: rank) })
        var out = detached()
        var kept = shape
        for axis in norm.sorted() {
            out = Tensor.sumAxis(out, axis)
            kept[axis] = 1
        }
        let finalShape = keepDims ? kept : shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
        let result = Tensor(shape: finalShape, storage: out.storage)
        let source = shape
        return result.recording("sum_axes", [self]) { g in [g.reshaped(kept).expanded(to: source)] }
    }

    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Sums one axis as [outer, n, inner] → [outer, 1, inner], keeping rank. No graph.
    static func sumAxis(_ x: Tensor, _ axis: Int) -> Tensor {
        let n = x.shape[axis]
        let outer = x.shape[..<axis].reduce(1, *)
        let inner = x.shape[(axis + 1)...].reduce(1, *)
        var outShape = x.shape
        outShape[axis] = 1
        let out = Tensor(zeros: outShape)
        let src = x.pointer, dst = out.pointer
        if inner == 1 {
            Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(n, 1))) { r in
                for o in r {
                    var s: Float = 0
                    let row = src + o * n
                    for k in 0..<n { s += row[k] }
                    dst[o] = s
                }
            }
        } else if outer >= Parallel.threads {
            Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(n * inner, 1))) { r in
                for o in r {
                    let d = dst + o * inner
                    for k in 0..<n {
                        let s = src + (o * n + k) * inner
                        for i in 0..<inner { d[i] += s[i] }
                    }
                }
            }
        } else {
            Parallel.forRange(inner, grain: 256) { r in
                for o in 0..<outer {
                    let d = dst + o * inner
                    for k in 0..<n {
                        let s = src + (o * n + k) * inner
                        for i in r { d[i] += s[i] }
                    }
                }
            }
        }
        return out
    }
}
