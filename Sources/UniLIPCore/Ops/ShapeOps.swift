// Axis reordering, slicing, joining, padding and tiling, all built on `Kernels.stridedCopy`.

/// How `padded` fills the new border.
public enum PadMode: Sendable {
    /// A constant value (`value`, zero by default).
    case zeros
    /// Mirror image without repeating the edge element (torch's "reflect").
    case reflect
}

extension Tensor {
    /// A contiguous copy with axes in the order `dims` (output axis i is input axis dims[i]).
    public func permuted(_ dims: [Int]) -> Tensor {
        precondition(dims.count == rank, "permute: \(dims) for a tensor of rank \(rank)")
        let perm = dims.map { Shape.normalize($0, rank: rank) }
        precondition(Set(perm).count == rank, "permute: \(dims) is not a permutation of 0..<\(rank)")
        if perm == Array(0..<rank) {
            return copy().recording("permute", [self]) { g in [g] }
        }
        let st = strides
        let outShape = perm.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        Kernels.stridedCopy(shape: outShape, src: pointer, srcStrides: perm.map { st[$0] },
                            dst: out.pointer, dstStrides: Shape.strides(outShape))
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return out.recording("permute", [self]) { g in [g.permuted(inverse)] }
    }

    /// Swaps two axes (a copy).
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        var perm = Array(0..<rank)
        perm.swapAt(Shape.normalize(a, rank: rank), Shape.normalize(b, rank: rank))
        return permuted(perm)
    }

    /// Inserts an axis of size 1 at `axis` (in -(rank+1)...rank).
    public func unsqueezed(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "unsqueeze: axis \(axis) out of range for rank \(rank)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    /// Removes `axis` when its size is 1; otherwise returns the tensor unchanged (as torch does).
    public func squeezed(_ axis: Int) -> Tensor {
        if rank == 0 { return self }
        let a = Shape.normalize(axis, rank: rank)
        if shape[a] != 1 { return self }
        var s = shape
        s.remove(at: a)
        return reshaped(s)
    }

    /// `x[..., start:end:step, ...]` on `axis`, with Python's rules: negative bounds count from
    /// the end and out-of-range bounds are clamped. `step` must be positive.
    public func sliced(axis: Int, start: Int, end: Int, step: Int = 1) -> Tensor {
        precondition(step > 0, "slice: step must be positive, got \(step)")
        let a = Shape.normalize(axis, rank: rank)
        let n = shape[a]
        func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i < 0 ? i + n : i, 0), n) }
        let s = clamp(start), e = clamp(end)
        let len = e > s ? (e - s + step - 1) / step : 0
        var outShape = shape
        outShape[a] = len
        let st = strides
        var srcStrides = st
        srcStrides[a] *= step
        let offset = s * st[a]
        let out = Tensor(uninitialized: outShape)
        Kernels.stridedCopy(shape: outShape, src: pointer + offset, srcStrides: srcStrides,
                            dst: out.pointer, dstStrides: Shape.strides(outShape))
        let source = shape
        return out.recording("slice", [self]) { g in
            let gx = Tensor(zeros: source)
            Kernels.stridedCopy(shape: g.shape, src: g.pointer, srcStrides: g.strides,
                                dst: gx.pointer + offset, dstStrides: srcStrides)
            return [gx]
        }
    }

    /// Splits `axis` into `n` pieces of ceil(size / n) (the last may be smaller, and there may be
    /// fewer than `n` pieces), like torch.chunk.
    public func chunked(_ n: Int, axis: Int) -> [Tensor] {
        precondition(n > 0, "chunk: count must be positive, got \(n)")
        let a = Shape.normalize(axis, rank: rank)
        let size = shape[a]
        if size == 0 { return [sliced(axis: a, start: 0, end: 0)] }
        let piece = (size + n - 1) / n
        return stride(from: 0, to: size, by: piece).map {
            sliced(axis: a, start: $0, end: Swift.min(size, $0 + piece))
        }
    }

    /// Joins tensors along an existing axis; all other sizes must match.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0]
        let a = Shape.normalize(axis, rank: first.rank)
        var outShape = first.shape
        outShape[a] = 0
        for t in tensors {
            var s = t.shape
            precondition(s.count == first.rank, "concat: ranks differ, \(first.shape) and \(t.shape)")
            s[a] = 0
            var expect = first.shape
            expect[a] = 0
            precondition(s == expect, "concat along \(axis): shapes \(first.shape) and \(t.shape) differ")
            outShape[a] += t.shape[a]
        }
        let out = Tensor(uninitialized: outShape)
        let outStrides = Shape.strides(outShape)
        var offsets: [Int] = []
        var at = 0
        for t in tensors {
            offsets.append(at)
            Kernels.stridedCopy(shape: t.shape, src: t.pointer, srcStrides: t.strides,
                                dst: out.pointer + at * outStrides[a], dstStrides: outStrides)
            at += t.shape[a]
        }
        let wants = tensors.map(\.requiresGrad)
        let sizes = tensors.map { $0.shape[a] }
        return out.recording("concat", tensors) { g in
            (0..<sizes.count).map { i in
                wants[i] ? g.sliced(axis: a, start: offsets[i], end: offsets[i] + sizes[i]) : nil
            }
        }
    }

    /// Joins same-shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "stack: no tensors")
        let shape0 = tensors[0].shape
        for t in tensors {
            precondition(t.shape == shape0, "stack: shapes \(shape0) and \(t.shape) differ")
        }
        return concat(tensors.map { $0.unsqueezed(axis) }, axis: axis)
    }

    /// Pads in torch.nn.functional.pad order: `[left, right]` for the last axis, then
    /// `[top, bottom]` for the one before, and so on. Constant padding takes negative amounts
    /// (cropping); reflect padding needs each amount in 0..<size of its axis.
    public func padded(_ pad: [Int], mode: PadMode = .zeros, value: Float = 0) -> Tensor {
        precondition(pad.count % 2 == 0 && pad.count / 2 <= rank,
                     "pad: \(pad) needs an even count of at most 2·rank for shape \(shape)")
        let pairs = (0..<(pad.count / 2)).map { k in (axis: rank - 1 - k, lo: pad[2 * k], hi: pad[2 * k + 1]) }
        switch mode {
        case .reflect:
            var x = self
            for p in pairs where p.lo != 0 || p.hi != 0 {
                let n = shape[p.axis]
                precondition(p.lo >= 0 && p.hi >= 0 && p.lo < n && p.hi < n,
                             "reflect pad: \(pad) must be in 0..<\(n) for axis \(p.axis) of \(shape)")
                var idx = [Int]()
                idx.reserveCapacity(n + p.lo + p.hi)
                for i in stride(from: p.lo, to: 0, by: -1) { idx.append(i) }
                idx.append(contentsOf: 0..<n)
                for i in 0..<p.hi { idx.append(n - 2 - i) }
                x = x.indexSelect(axis: p.axis, idx)
            }
            return x === self ? copy().recording("pad", [self]) { g in [g] } : x
        case .zeros:
            var x = self
            for p in pairs where p.lo < 0 || p.hi < 0 {
                x = x.sliced(axis: p.axis, start: Swift.max(0, -p.lo), end: shape[p.axis] - Swift.max(0, -p.hi))
            }
            var outShape = x.shape
            var offsetIndex = [Int](repeating: 0, count: rank)
            for p in pairs {
                outShape[p.axis] += Swift.max(0, p.lo) + Swift.max(0, p.hi)
                offsetIndex[p.axis] = Swift.max(0, p.lo)
            }
            let out = Tensor(repeating: value, shape: outShape)
            let outStrides = Shape.strides(outShape)
            let offset = zip(offsetIndex, outStrides).reduce(0) { $0 + $1.0 * $1.1 }
            Kernels.stridedCopy(shape: x.shape, src: x.pointer, srcStrides: x.strides,
                                dst: out.pointer + offset, dstStrides: outStrides)
            let inner = x.shape
            return out.recording("pad", [x]) { g in
                let gx = Tensor(uninitialized: inner)
                Kernels.stridedCopy(shape: inner, src: g.pointer + offset, srcStrides: outStrides,
                                    dst: gx.pointer, dstStrides: Shape.strides(inner))
                return [gx]
            }
        }
    }

    /// Repeats each element `repeats` times along `axis` (torch.repeat_interleave).
    public func repeatInterleaved(_ repeats: Int, axis: Int) -> Tensor {
        precondition(repeats >= 0, "repeat_interleave: negative repeat count \(repeats)")
        let a = Shape.normalize(axis, rank: rank)
        var idx = [Int]()
        idx.reserveCapacity(shape[a] * repeats)
        for i in 0..<shape[a] { for _ in 0..<repeats { idx.append(i) } }
        return indexSelect(axis: a, idx)
    }

    /// Tiles the tensor `counts[i]` times along each axis (torch.Tensor.repeat). Extra leading
    /// counts add leading axes.
    public func repeated(_ counts: [Int]) -> Tensor {
        precondition(counts.count >= rank && counts.allSatisfy { $0 >= 0 },
                     "repeat: counts \(counts) for shape \(shape)")
        let lead = counts.count - rank
        let full = [Int](repeating: 1, count: lead) + shape
        let fullStrides = Shape.strides(full)
        // Output viewed as [c0, s0, c1, s1, …]: the count axes read with stride zero.
        var view: [Int] = [], srcStrides: [Int] = []
        for k in 0..<full.count {
            view += [counts[k], full[k]]
            srcStrides += [0, fullStrides[k]]
        }
        let outShape = (0..<full.count).map { counts[$0] * full[$0] }
        let out = Tensor(uninitialized: outShape)
        Kernels.stridedCopy(shape: view, src: pointer, srcStrides: srcStrides,
                            dst: out.pointer, dstStrides: Shape.strides(view))
        let source = shape
        let countAxes = (0..<full.count).map { 2 * $0 }
        return out.recording("repeat", [self]) { g in
            [g.reshaped(view).sum(axes: countAxes).reshaped(source)]
        }
    }
}
