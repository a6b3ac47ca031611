import CKernels
import Foundation

// Element-wise activations. Forward and backward are single flat loops (Kernels.map/zip, or
// VectorMath.map/zip with eight-lane exp/erf for the transcendental ones), split over threads;
// the backward closures keep the input or the output, whichever the derivative needs.

extension Tensor {
    public func relu() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { $0 > 0 ? $0 : 0 }
        let x = detached()
        return out.recording("relu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            Kernels.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in x > 0 ? g : 0 }
            return [gx]
        }
    }

    public func leakyRelu(_ slope: Float = 0.01) -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { $0 > 0 ? $0 : $0 * slope }
        let x = detached()
        return out.recording("leaky_relu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            Kernels.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in x > 0 ? g : g * slope }
            return [gx]
        }
    }

    /// x · sigmoid(x).
    public func silu() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let one = VectorMath.V(repeating: 1)
        VectorMath.map(pointer, out.pointer, count) { x in x / (one + VectorMath.exp(-x)) }
        let x = detached()
        return out.recording("silu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            VectorMath.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                let s = one / (one + VectorMath.exp(-x))
                return g * s * one.addingProduct(x, one - s)
            }
            return [gx]
        }
    }

    /// GELU: x·Φ(x) with the exact erf form, or PyTorch's tanh approximation when asked.
    public func gelu(tanhApproximation: Bool = false) -> Tensor {
        typealias V = VectorMath.V
        let out = Tensor(uninitialized: shape)
        let x = detached()
        let one = V(repeating: 1), half = V(repeating: 0.5)
        let k0 = V(repeating: GELUConstants.sqrt2OverPi), k1 = V(repeating: GELUConstants.cubic)
        if tanhApproximation {
            // tanh(u) = 1 − 2 / (e^{2u} + 1).
            VectorMath.map(pointer, out.pointer, count) { x in
                let u = k0 * x.addingProduct(k1 * x * x, x)
                let t = one - 2 / (VectorMath.exp(u + u) + one)
                return half * x * (one + t)
            }
            return out.recording("gelu_tanh", [self]) { g in
                let gx = Tensor(uninitialized: x.shape)
                VectorMath.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                    let x2 = x * x
                    let u = k0 * x.addingProduct(k1 * x2, x)
                    let t = one - 2 / (VectorMath.exp(u + u) + one)
                    let du = k0 * one.addingProduct(3 * k1, x2)
                    return g * (half * (one + t) + half * x * (one - t * t) * du)
                }
                return [gx]
            }
        }
        if HeadKernels.useAVX512 {
            // Twice the lanes, and the backward computes e^(−x²/2) once for erf and the density.
            let src = pointer, dst = out.pointer
            Parallel.forRange(count, grain: Kernels.grain) { r in
                unilip_gelu_avx512(src + r.lowerBound, dst + r.lowerBound, r.count)
            }
            return out.recording("gelu", [self]) { g in
                let gx = Tensor(uninitialized: x.shape)
                let gp = g.pointer, xp = x.pointer, gxp = gx.pointer
                Parallel.forRange(x.count, grain: Kernels.grain) { r in
                    unilip_gelu_backward_avx512(gp + r.lowerBound, xp + r.lowerBound, gxp + r.lowerBound, r.count)
                }
                return [gx]
            }
        }
        let invSqrt2 = V(repeating: GELUConstants.invSqrt2), invSqrt2Pi = V(repeating: GELUConstants.invSqrt2Pi)
        VectorMath.map(pointer, out.pointer, count) { x in
            half * x * (one + VectorMath.erf(x * invSqrt2))
        }
        return out.recording("gelu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            VectorMath.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                let cdf = half * (one + VectorMath.erf(x * invSqrt2))
                let pdf = invSqrt2Pi * VectorMath.exp(-half * x * x)
                return g * cdf.addingProduct(x, pdf)
            }
            return [gx]
        }
    }

    public func sigmoid() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let one = VectorMath.V(repeating: 1)
        VectorMath.map(pointer, out.pointer, count) { x in one / (one + VectorMath.exp(-x)) }
        let y = out.detached()
        return out.recording("sigmoid", [self]) { g in
            let gx = Tensor(uninitialized: y.shape)
            VectorMath.zip(g.pointer, y.pointer, gx.pointer, y.count) { g, y in g * y * (one - y) }
            return [gx]
        }
    }

    public func tanh() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { Foundation.tanh($0) }
        let y = out.detached()
        return out.recording("tanh", [self]) { g in
            let gx = Tensor(uninitialized: y.shape)
            Kernels.zip(g.pointer, y.pointer, gx.pointer, y.count) { g, y in g * (1 - y * y) }
            return [gx]
        }
    }
}

enum GELUConstants {
    static let invSqrt2: Float = 0.70710678118654752
    static let invSqrt2Pi: Float = 0.39894228040143268
    static let sqrt2OverPi: Float = 0.79788456080286536
    static let cubic: Float = 0.044715
}

/// Eight-lane exp and erf for the activation, softmax and loss loops, where scalar libm calls
/// would dominate. Both are branch-free so the loops compile to AVX2 code.
public enum VectorMath {
    public typealias V = SIMD8<Float>

    /// e^x with relative error below 3e-7 (Cephes polynomial after range reduction by ln 2).
    /// Inputs are clamped to [−87.3, 88.3], so the result is never 0 or ∞; NaN stays NaN.
    @inline(__always)
    public static func exp(_ x: V) -> V {
        // pointwiseMin/Max are not inlined; lane-wise selects are.
        let lo = V(repeating: -87.3), hi = V(repeating: 88.3)
        var xc = x.replacing(with: lo, where: x .< lo)
        xc.replace(with: hi, where: xc .> hi)
        // Round x·log2(e) to an integer n with the 1.5·2^23 trick; t's low bits then hold n.
        let magic = V(repeating: 12_582_912)
        let tn = xc * V(repeating: 1.442_695_04) + magic
        let n = tn - magic
        // r = x − n·ln 2 in two steps (ln 2 split into an exact head and a tail).
        var r = xc - n * V(repeating: 0.693_359_375)
        r = r - n * V(repeating: -2.121_944_4e-4)
        var p = V(repeating: 1.987_569_15e-4)
        p = V(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
        p = V(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
        p = V(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
        p = V(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
        p = V(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
        let e = (r + V(repeating: 1)).addingProduct(p, r * r)
        let bits = (unsafeBitCast(tn, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        let y = e * unsafeBitCast(bits, to: V.self)
        return y.replacing(with: x, where: x .!= x)
    }

    /// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error below 4e-7 in Float), the same
    /// formula PyTorch's vectorised CPU kernels use.
    @inline(__always)
    public static func erf(_ x: V) -> V {
        var a = x.replacing(with: -x, where: x .< 0)
        a.replace(with: V(repeating: 10), where: a .> 10)
        let t = V(repeating: 1) / V(repeating: 1).addingProduct(V(repeating: 0.327_591_1), a)
        var p = V(repeating: 1.061_405_429)
        p = V(repeating: -1.453_152_027).addingProduct(p, t)
        p = V(repeating: 1.421_413_741).addingProduct(p, t)
        p = V(repeating: -0.284_496_736).addingProduct(p, t)
        p = V(repeating: 0.254_829_592).addingProduct(p, t)
        let y = V(repeating: 1) - p * t * exp(-(a * a))
        return y.replacing(with: -y, where: x .< 0).replacing(with: x, where: x .!= x)
    }

    /// out[i] = f(a[i]) eight lanes at a time; the tail goes through a padded vector.
    @inline(__always)
    public static func map(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int,
                           _ f: (V) -> V) {
        Parallel.forRange((count + 7) / 8, grain: Kernels.grain / 8) { r in
            for blk in r {
                let i = blk * 8
                if i + 8 <= count {
                    RowMath.store(f(RowMath.load(a + i)), out + i)
                } else {
                    var v = V(repeating: 0)
                    for j in 0..<(count - i) { v[j] = a[i + j] }
                    let y = f(v)
                    for j in 0..<(count - i) { out[i + j] = y[j] }
                }
            }
        }
    }

    /// out[i] = f(a[i], b[i]) eight lanes at a time.
    @inline(__always)
    public static func zip(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ out: UnsafeMutablePointer<Float>, _ count: Int, _ f: (V, V) -> V) {
        Parallel.forRange((count + 7) / 8, grain: Kernels.grain / 8) { r in
            for blk in r {
                let i = blk * 8
                if i + 8 <= count {
                    RowMath.store(f(RowMath.load(a + i), RowMath.load(b + i)), out + i)
                } else {
                    var u = V(repeating: 0), v = V(repeating: 0)
                    for j in 0..<(count - i) { u[j] = a[i + j]; v[j] = b[i + j] }
                    let y = f(u, v)
                    for j in 0..<(count - i) { out[i + j] = y[j] }
                }
            }
        }
    }
}
