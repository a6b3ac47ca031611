import Foundation

// Element-wise activations. Forward and backward are single flat loops (Kernels.map/zip),
// split over threads; the backward closures keep the input or the output, whichever the
// derivative needs.

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
        Kernels.map(pointer, out.pointer, count) { $0 / (1 + Foundation.exp(-$0)) }
        let x = detached()
        return out.recording("silu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            Kernels.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                let s = 1 / (1 + Foundation.exp(-x))
                return g * s * (1 + x * (1 - s))
            }
            return [gx]
        }
    }

    /// GELU: x·Φ(x) with the exact erf form, or PyTorch's tanh approximation when asked.
    public func gelu(tanhApproximation: Bool = false) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let x = detached()
        if tanhApproximation {
            Kernels.map(pointer, out.pointer, count) { x in
                let u = GELUConstants.sqrt2OverPi * (x + GELUConstants.cubic * x * x * x)
                return 0.5 * x * (1 + Foundation.tanh(u))
            }
            return out.recording("gelu_tanh", [self]) { g in
                let gx = Tensor(uninitialized: x.shape)
                Kernels.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                    let x2 = x * x
                    let t = Foundation.tanh(GELUConstants.sqrt2OverPi * (x + GELUConstants.cubic * x2 * x))
                    let du = GELUConstants.sqrt2OverPi * (1 + 3 * GELUConstants.cubic * x2)
                    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
                }
                return [gx]
            }
        }
        Kernels.map(pointer, out.pointer, count) { x in
            0.5 * x * (1 + Foundation.erf(x * GELUConstants.invSqrt2))
        }
        return out.recording("gelu", [self]) { g in
            let gx = Tensor(uninitialized: x.shape)
            Kernels.zip(g.pointer, x.pointer, gx.pointer, x.count) { g, x in
                let cdf = 0.5 * (1 + Foundation.erf(x * GELUConstants.invSqrt2))
                let pdf = GELUConstants.invSqrt2Pi * Foundation.exp(-0.5 * x * x)
                return g * (cdf + x * pdf)
            }
            return [gx]
        }
    }

    public func sigmoid() -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.map(pointer, out.pointer, count) { 1 / (1 + Foundation.exp(-$0)) }
        let y = out.detached()
        return out.recording("sigmoid", [self]) { g in
            let gx = Tensor(uninitialized: y.shape)
            Kernels.zip(g.pointer, y.pointer, gx.pointer, y.count) { g, y in g * y * (1 - y) }
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
