import Foundation

// Broadcasting arithmetic with gradients.

extension Tensor {
    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        precondition(offset >= 0, "sumTo: \(shape) cannot reduce to \(target)")
        var axes: [Int] = Array(0..<offset)
        for (i, d) in target.enumerated() where d == 1 && shape[i + offset] != 1 {
            axes.append(i + offset)
        }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }

    /// Broadcasts this tensor to `target` by copying.
    public func expanded(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = target.count - rank
        precondition(offset >= 0 && shape.indices.allSatisfy { shape[$0] == 1 || shape[$0] == target[offset + $0] },
                     "expand: \(shape) to \(target)")
        // One write pass: a fill for a scalar (a loss's gradient), else a copy with zero strides
        // along the broadcast axes.
        let full = Tensor(uninitialized: target), dst = full.pointer, src = detached()
        if count == 1 {
            let v = src.pointer[0]
            Parallel.forRange(full.count, grain: Kernels.grain) { r in
                (dst + r.lowerBound).update(repeating: v, count: r.count)
            }
        } else {
            let own = strides
            let srcStrides = target.indices.map { k in k < offset || shape[k - offset] == 1 ? 0 : own[k - offset] }
            Kernels.stridedCopy(shape: target, src: src.pointer, srcStrides: srcStrides, dst: dst,
                                dstStrides: Shape.strides(target))
        }
        let source = shape
        return full.recording("expand", [self]) { g in [g.sumTo(source)] }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.broadcast(.add, a, b)
        let sa = a.shape, sb = b.shape
        return out.recording("add", [a, b]) { g in [g.sumTo(sa), g.sumTo(sb)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.broadcast(.sub, a, b)
        let sa = a.shape, sb = b.shape
        return out.recording("sub", [a, b]) { g in [g.sumTo(sa), (-g).sumTo(sb)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.broadcast(.mul, a, b)
        let da = a.detached(), db = b.detached()
        return out.recording("mul", [a, b]) { g in
            [a.requiresGrad ? (g * db).sumTo(da.shape) : nil,
             b.requiresGrad ? (g * da).sumTo(db.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = Kernels.broadcast(.div, a, b)
        let da = a.detached(), db = b.detached(), dout = out.detached()
        return out.recording("div", [a, b]) { g in
            [a.requiresGrad ? (g / db).sumTo(da.shape) : nil,
             b.requiresGrad ? (-(g * dout) / db).sumTo(db.shape) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        Kernels.map(a.pointer, out.pointer, a.count) { -$0 }
        return out.recording("neg", [a]) { g in [-g] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        Kernels.map(a.pointer, out.pointer, a.count) { $0 + s }
        return out.recording("add_scalar", [a]) { g in [g] }
    }

    public static func * (a: Tensor, s: Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        Kernels.map(a.pointer, out.pointer, a.count) { $0 * s }
        return out.recording("mul_scalar", [a]) { g in [g * s] }
    }

    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func - (s: Float, a: Tensor) -> Tensor { (-a) + s }

    /// Element-wise power with a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Foundation.pow($0, p) }
        let x = detached()
        return out.recording("pow", [self]) { g in
            let d = Tensor(uninitialized: x.shape)
            Kernels.map(x.pointer, d.pointer, x.count) { p * Foundation.pow($0, p - 1) }
            return [g * d]
        }
    }

    public func sqrt() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { $0.squareRoot() }
        let y = out.detached()
        return out.recording("sqrt", [self]) { g in [g / (y * 2)] }
    }

    public func exp() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Foundation.exp($0) }
        let y = out.detached()
        return out.recording("exp", [self]) { g in [g * y] }
    }

    public func log() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Foundation.log($0) }
        let x = detached()
        return out.recording("log", [self]) { g in [g / x] }
    }

    public func abs() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Swift.abs($0) }
        let x = detached()
        return out.recording("abs", [self]) { g in
            let sign = Tensor(uninitialized: x.shape)
            Kernels.map(x.pointer, sign.pointer, x.count) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
            return [g * sign]
        }
    }

    public func square() -> Tensor { self * self }

    /// Clamps values to [lo, hi]; the gradient passes where the value was inside.
    public func clamped(_ lo: Float, _ hi: Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Swift.min(Swift.max($0, lo), hi) }
        let x = detached()
        return out.recording("clamp", [self]) { g in
            let m = Tensor(uninitialized: x.shape)
            Kernels.map(x.pointer, m.pointer, x.count) { $0 >= lo && $0 <= hi ? 1 : 0 }
            return [g * m]
        }
    }
}
