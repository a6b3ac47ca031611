// Index-driven ops: index_select, gather, where, masked_fill and embedding lookup.

extension Tensor {
    /// Picks `indices` (each in 0..<size) along `axis`; indices may repeat. The backward pass
    /// scatter-adds, so repeated indices accumulate.
    public func indexSelect(axis: Int, _ indices: [Int]) -> Tensor {
        let a = Shape.normalize(axis, rank: rank)
        let n = shape[a]
        for i in indices {
            precondition(i >= 0 && i < n, "index_select: index \(i) out of range 0..<\(n) on axis \(axis) of \(shape)")
        }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let m = indices.count
        var outShape = shape
        outShape[a] = m
        let out = Tensor(uninitialized: outShape)
        let src = pointer, dst = out.pointer
        indices.withUnsafeBufferPointer { idx in
            if inner == 1 {
                Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(m, 1))) { r in
                    for o in r {
                        let s = src + o * n, d = dst + o * m
                        for j in 0..<m { d[j] = s[idx[j]] }
                    }
                }
            } else {
                Parallel.forRange(outer * m, grain: Swift.max(1, Kernels.grain / inner)) { r in
                    for q in r {
                        let o = q / m, j = q % m
                        (dst + q * inner).update(from: src + (o * n + idx[j]) * inner, count: inner)
                    }
                }
            }
        }
        let source = shape
        return out.recording("index_select", [self]) { g in
            let gx = Tensor(zeros: source)
            let gs = g.pointer, gd = gx.pointer
            indices.withUnsafeBufferPointer { idx in
                // Each outer slab, or each column range, is written by one thread only.
                if outer >= Parallel.threads || inner == 1 {
                    Parallel.forRange(outer, grain: Swift.max(1, Kernels.grain / Swift.max(m * inner, 1))) { r in
                        for o in r {
                            for j in 0..<m {
                                let s = gs + (o * m + j) * inner, d = gd + (o * n + idx[j]) * inner
                                for i in 0..<inner { d[i] += s[i] }
                            }
                        }
                    }
                } else {
                    for o in 0..<outer {
                        Parallel.forRange(inner, grain: Swift.max(64, Kernels.grain / Swift.max(m, 1))) { r in
                            for j in 0..<m {
                                let s = gs + (o * m + j) * inner, d = gd + (o * n + idx[j]) * inner
                                for i in r { d[i] += s[i] }
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// torch.gather: `out[i₀…iₖ] = self[i₀…index[i₀…iₖ]…iₖ]` with `index` (row-major, shape
    /// `indexShape`, same rank as self) replacing the coordinate on `axis`. Off that axis the
    /// index shape may be smaller than self's. The backward pass scatter-adds.
    public func gather(axis: Int, _ index: [Int], indexShape: [Int]) -> Tensor {
        let a = Shape.normalize(axis, rank: rank)
        precondition(indexShape.count == rank, "gather: index shape \(indexShape) for input \(shape)")
        precondition(index.count == indexShape.reduce(1, *),
                     "gather: \(index.count) indices do not fill shape \(indexShape)")
        for d in 0..<rank where d != a {
            precondition(indexShape[d] <= shape[d], "gather: index shape \(indexShape) exceeds input \(shape) off axis \(a)")
        }
        let n = shape[a]
        for i in index {
            precondition(i >= 0 && i < n, "gather: index \(i) out of range 0..<\(n) on axis \(axis) of \(shape)")
        }
        let out = Tensor(uninitialized: indexShape)
        let st = strides
        let last = rank - 1
        let inner = rank == 0 ? 1 : indexShape[last]
        let rows = inner == 0 ? 0 : index.count / inner
        let innerStride = a == last || rank == 0 ? 0 : st[last]
        let axisStride = rank == 0 ? 0 : st[a]
        // Source offset of a row's first element, leaving out the gathered axis.
        func rowBase(_ row: Int) -> Int {
            var rem = row, base = 0, k = last - 1
            while k >= 0 {
                let i = rem % indexShape[k]
                rem /= indexShape[k]
                if k != a { base += i * st[k] }
                k -= 1
            }
            return base
        }
        let src = pointer, dst = out.pointer
        index.withUnsafeBufferPointer { idx in
            Parallel.forRange(rows, grain: Swift.max(1, Kernels.grain / Swift.max(inner, 1))) { r in
                for row in r {
                    let base = rowBase(row)
                    for j in 0..<inner {
                        let e = row * inner + j
                        dst[e] = src[base + j * innerStride + idx[e] * axisStride]
                    }
                }
            }
        }
        let source = shape
        // Rows that differ before `axis` write disjoint parts of the gradient.
        let rowsPerGroup = a >= last ? 1 : indexShape[a..<last].reduce(1, *)
        return out.recording("gather", [self]) { g in
            let gx = Tensor(zeros: source)
            let gs = g.pointer, gd = gx.pointer
            let groups = rowsPerGroup == 0 ? 0 : rows / rowsPerGroup
            index.withUnsafeBufferPointer { idx in
                Parallel.forRange(groups, grain: Swift.max(1, Kernels.grain / Swift.max(inner * rowsPerGroup, 1))) { r in
                    for group in r {
                        for row in group * rowsPerGroup..<(group + 1) * rowsPerGroup {
                            let base = rowBase(row)
                            for j in 0..<inner {
                                let e = row * inner + j
                                gd[base + j * innerStride + idx[e] * axisStride] += gs[e]
                            }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// torch.where(mask != 0, a, b) with broadcasting of all three. The mask takes no gradient.
    /// Operands are read through broadcast strides: `b` is copied in, then `a` overwrites the
    /// masked positions.
    public static func select(_ mask: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = Shape.broadcast(Shape.broadcast(mask.shape, a.shape), b.shape)
        let sm = Shape.broadcastStrides(mask.shape, to: shape)
        let sa = Shape.broadcastStrides(a.shape, to: shape)
        let out = Tensor(uninitialized: shape)
        Kernels.stridedCopy(shape: shape, src: b.pointer, srcStrides: Shape.broadcastStrides(b.shape, to: shape),
                            dst: out.pointer, dstStrides: Shape.strides(shape))
        let inner = shape.last ?? 1, im = sm.last ?? 0, ia = sa.last ?? 0
        let pm = mask.pointer, pa = a.pointer, po = out.pointer
        Kernels.forEachRow(shape, sm, sa) { row, om, oa in
            let o = po + row * inner
            for j in 0..<inner where pm[om + j * im] != 0 { o[j] = pa[oa + j * ia] }
        }
        let wantA = a.requiresGrad, wantB = b.requiresGrad
        let shapeA = a.shape, shapeB = b.shape
        let m = mask.detached()
        return out.recording("where", [mask, a, b]) { g in
            let contiguous = Shape.strides(shape)
            // The gradient where the mask is set (`keep` true) or clear, summed back to `target`.
            func masked(_ keep: Bool, _ target: [Int]) -> Tensor {
                let t = Tensor(uninitialized: shape)
                let pt = t.pointer, gp = g.pointer, pm = m.pointer
                Kernels.forEachRow(shape, contiguous, sm) { row, og, om in
                    let d = pt + row * inner, s = gp + og
                    for j in 0..<inner { d[j] = (pm[om + j * im] != 0) == keep ? s[j] : 0 }
                }
                return t.sumTo(target)
            }
            return [nil, wantA ? masked(true, shapeA) : nil, wantB ? masked(false, shapeB) : nil]
        }
    }

    /// Sets elements where `mask != 0` to `value`; the mask broadcasts (and may broadcast self).
    /// Both operands are read through broadcast strides, so a small mask is never expanded.
    public func maskedFill(_ mask: Tensor, _ value: Float) -> Tensor {
        let shape = Shape.broadcast(self.shape, mask.shape)
        let sx = Shape.broadcastStrides(self.shape, to: shape)
        let sm = Shape.broadcastStrides(mask.shape, to: shape)
        let inner = shape.last ?? 1, ix = sx.last ?? 0, im = sm.last ?? 0
        let out = Tensor(uninitialized: shape)
        let pm = mask.pointer, px = pointer, po = out.pointer
        Kernels.forEachRow(shape, sx, sm) { row, ox, om in
            let o = po + row * inner
            for j in 0..<inner { o[j] = pm[om + j * im] != 0 ? value : px[ox + j * ix] }
        }
        let source = self.shape
        let m = mask.detached()
        return out.recording("masked_fill", [self, mask]) { g in
            let t = Tensor(uninitialized: shape)
            let pt = t.pointer, gp = g.pointer, pm = m.pointer
            let contiguous = Shape.strides(shape)
            Kernels.forEachRow(shape, contiguous, sm) { row, og, om in
                let d = pt + row * inner, s = gp + og
                for j in 0..<inner { d[j] = pm[om + j * im] != 0 ? 0 : s[j] }
            }
            return [t.sumTo(source), nil]
        }
    }

    /// Rows of `weight` ([V, D]) for `ids`, shaped `shape + [D]`. The backward pass scatter-adds
    /// into the weight gradient.
    public static func embedding(_ weight: Tensor, ids: [Int], shape: [Int]) -> Tensor {
        precondition(weight.rank == 2, "embedding: weight must be [vocab, dim], got \(weight.shape)")
        precondition(ids.count == shape.reduce(1, *), "embedding: \(ids.count) ids do not fill shape \(shape)")
        let vocab = weight.shape[0]
        for id in ids {
            precondition(id >= 0 && id < vocab, "embedding: id \(id) out of range 0..<\(vocab)")
        }
        if let stored = weight.stored {
            // Only the rows looked up are decoded.
            let dim = weight.shape[1]
            let out = Tensor(uninitialized: shape + [dim])
            for (i, id) in ids.enumerated() { stored.decode(id * dim ..< (id + 1) * dim, into: out.pointer + i * dim) }
            return out
        }
        return weight.indexSelect(axis: 0, ids).reshaped(shape + [weight.shape[1]])
    }
}
