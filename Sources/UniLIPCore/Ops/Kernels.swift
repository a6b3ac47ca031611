/// Low-level loops shared by the element-wise ops: flat maps and broadcast walks.
/// Each splits its work over `Parallel.threads`; none calls BLAS.
public enum Kernels {
    /// Elements per parallel chunk for cheap element-wise work.
    public static let grain = 1 << 14

    /// out[i] = f(a[i]) for a contiguous range.
    @inline(__always)
    public static func map(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           _ count: Int, _ f: (Float) -> Float) {
        Parallel.forRange(count, grain: grain) { r in
            for i in r { out[i] = f(a[i]) }
        }
    }

    /// out[i] = f(a[i], b[i]) for a contiguous range.
    @inline(__always)
    public static func zip(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, _ count: Int,
                           _ f: (Float, Float) -> Float) {
        Parallel.forRange(count, grain: grain) { r in
            for i in r { out[i] = f(a[i], b[i]) }
        }
    }

    /// Walks `shape` row by row (the last axis is the row), giving each row's starting offsets
    /// in up to two broadcast operands. `strides` are broadcast strides (0 on broadcast axes).
    @inline(__always)
    public static func forEachRow(_ shape: [Int], _ stridesA: [Int], _ stridesB: [Int],
                                  _ body: (_ row: Int, _ offA: Int, _ offB: Int) -> Void) {
        let rank = shape.count
        let inner = rank == 0 ? 1 : shape[rank - 1]
        let rows = inner == 0 ? 0 : shape.reduce(1, *) / inner
        Parallel.forRange(rows, grain: max(1, grain / max(inner, 1))) { r in
            for row in r {
                var rem = row
                var offA = 0
                var offB = 0
                var axis = rank - 2
                while axis >= 0 {
                    let d = shape[axis]
                    let idx = rem % d
                    rem /= d
                    offA += idx * stridesA[axis]
                    offB += idx * stridesB[axis]
                    axis -= 1
                }
                body(row, offA, offB)
            }
        }
    }

    /// Broadcasting binary op: out = f(a, b) over the broadcast shape.
    @inline(__always)
    public static func broadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitialized: a.shape)
            zip(a.pointer, b.pointer, out.pointer, a.count, f)
            return out
        }
        let shape = Shape.broadcast(a.shape, b.shape)
        let out = Tensor(uninitialized: shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        if b.count == 1 && shape == a.shape {
            let s = pb[0]
            map(pa, po, a.count) { f($0, s) }
            return out
        }
        if a.count == 1 && shape == b.shape {
            let s = pa[0]
            map(pb, po, b.count) { f(s, $0) }
            return out
        }
        let sa = Shape.broadcastStrides(a.shape, to: shape)
        let sb = Shape.broadcastStrides(b.shape, to: shape)
        let inner = shape.last ?? 1
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        forEachRow(shape, sa, sb) { row, oa, ob in
            let o = po + row * inner
            if ia == 1 && ib == 1 {
                for j in 0..<inner { o[j] = f(pa[oa + j], pb[ob + j]) }
            } else if ia == 1 {
                let s = pb[ob]
                for j in 0..<inner { o[j] = f(pa[oa + j], s) }
            } else if ib == 1 {
                let s = pa[oa]
                for j in 0..<inner { o[j] = f(s, pb[ob + j]) }
            } else {
                for j in 0..<inner { o[j] = f(pa[oa + j * ia], pb[ob + j * ib]) }
            }
        }
        return out
    }
}

/// The four arithmetic ops, for SIMD loops that a closure argument would keep from vectorising.
public enum BinaryOp: Sendable { case add, sub, mul, div }

extension Kernels {
    /// out = a ∘ b element-wise on same-shape operands, 8 lanes at a time.
    public static func sameShape(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        Parallel.forRange(a.count, grain: grain) { r in
            var i = r.lowerBound
            let end = r.upperBound
            typealias V = SIMDLoops.V
            while i + 8 <= end {
                let x = SIMDLoops.load(pa + i), y = SIMDLoops.load(pb + i)
                let z: V
                switch op {
                case .add: z = x + y
                case .sub: z = x - y
                case .mul: z = x * y
                case .div: z = x / y
                }
                SIMDLoops.store(z, po + i)
                i += 8
            }
            while i < end {
                switch op {
                case .add: po[i] = pa[i] + pb[i]
                case .sub: po[i] = pa[i] - pb[i]
                case .mul: po[i] = pa[i] * pb[i]
                case .div: po[i] = pa[i] / pb[i]
                }
                i += 1
            }
        }
        return out
    }

    /// Same-shape operands take the SIMD loop; others the broadcast walk.
    @inline(__always)
    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        a.shape == b.shape ? sameShape(op, a, b) : broadcast(a, b, f)
    }
}
