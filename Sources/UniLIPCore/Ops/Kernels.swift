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

    /// Broadcasting binary op over the broadcast shape. Rows whose operands are contiguous or
    /// one repeated value (a bias, a layer scale, a per-row statistic) run 8 lanes at a time.
    public static func broadcast(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = a.shape == b.shape ? a.shape : Shape.broadcast(a.shape, b.shape)
        let out = Tensor(uninitialized: shape)
        let pa = a.pointer, pb = b.pointer, po = out.pointer
        // Same shapes, or one side a single value: one flat pass split over the threads.
        if (shape == a.shape && (shape == b.shape || b.count == 1)) || (shape == b.shape && a.count == 1) {
            let sa = a.count == out.count ? 1 : 0, sb = b.count == out.count ? 1 : 0
            Parallel.forRange(out.count, grain: grain) { r in
                let i = r.lowerBound
                row(op, pa + i * sa, sa, pb + i * sb, sb, po + i, r.count)
            }
            return out
        }
        let sa = Shape.broadcastStrides(a.shape, to: shape)
        let sb = Shape.broadcastStrides(b.shape, to: shape)
        let inner = shape.last ?? 1
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        forEachRow(shape, sa, sb) { r, oa, ob in
            row(op, pa + oa, ia, pb + ob, ib, po + r * inner, inner)
        }
        return out
    }

    @inline(__always)
    static func combine(_ op: BinaryOp, _ x: SIMDLoops.V, _ y: SIMDLoops.V) -> SIMDLoops.V {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        }
    }

    @inline(__always)
    static func combine(_ op: BinaryOp, _ x: Float, _ y: Float) -> Float {
        switch op {
        case .add: return x + y
        case .sub: return x - y
        case .mul: return x * y
        case .div: return x / y
        }
    }

    /// out[j] = a[j·sa] ∘ b[j·sb] for j in 0..<n; strides of 1 (contiguous) and 0 (one value)
    /// take SIMD loops.
    @inline(__always)
    static func row(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                    _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        typealias V = SIMDLoops.V
        var j = 0
        if sa == 1 && sb == 1 {
            while j + 8 <= n {
                SIMDLoops.store(combine(op, SIMDLoops.load(a + j), SIMDLoops.load(b + j)), out + j)
                j += 8
            }
        } else if sa == 1 && sb == 0 {
            let y = V(repeating: b[0])
            while j + 8 <= n {
                SIMDLoops.store(combine(op, SIMDLoops.load(a + j), y), out + j)
                j += 8
            }
        } else if sa == 0 && sb == 1 {
            let x = V(repeating: a[0])
            while j + 8 <= n {
                SIMDLoops.store(combine(op, x, SIMDLoops.load(b + j)), out + j)
                j += 8
            }
        }
        while j < n {
            out[j] = combine(op, a[j * sa], b[j * sb])
            j += 1
        }
    }
}

/// The four arithmetic ops, for SIMD loops that a closure argument would keep from vectorising.
public enum BinaryOp: Sendable { case add, sub, mul, div }
