import Foundation
import UniLIPCore

/// PyTorch's default for Linear/Conv weights and biases: kaiming_uniform(a=√5), which is
/// U(−1/√fan_in, 1/√fan_in).
func kaimingUniform(_ shape: [Int], fanIn: Int, rng: inout RandomGenerator) -> Tensor {
    let bound = 1 / Float(Swift.max(fanIn, 1)).squareRoot()
    return Tensor.uniform(shape, -bound, bound, rng: &rng)
}

/// y = x·Wᵀ + b with weight [out, in] and bias [out] (PyTorch's `nn.Linear`). Leading axes of
/// x fold into one GEMM.
public final class Linear: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// Weights and bias drawn as PyTorch does: U(−1/√in, 1/√in).
    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true,
                            rng: inout RandomGenerator) {
        let w = kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures, rng: &rng)
        let b = bias ? kaimingUniform([outFeatures], fanIn: inFeatures, rng: &rng) : nil
        self.init(weight: w, bias: b)
    }

    /// A layer over given tensors (registered as its parameters, not copied).
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "Linear: weight must be [out, in], got \(weight.shape)")
        if let bias {
            precondition(bias.shape == [weight.shape[0]], "Linear: bias \(bias.shape) for weight \(weight.shape)")
        }
        self.weight = weight
        self.bias = bias
        super.init()
        parameter("weight", weight)
        if let bias { parameter("bias", bias) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures,
                     "Linear: input \(x.shape) does not end in \(inFeatures)")
        return x.linear(weight: weight, bias: bias)
    }
}

/// A lookup table [count, dim] (PyTorch's `nn.Embedding`, initialised N(0, 1)).
public final class Embedding: Module {
    public let weight: Tensor
    public var count: Int { weight.shape[0] }
    public var dim: Int { weight.shape[1] }

    public convenience init(_ count: Int, _ dim: Int, rng: inout RandomGenerator) {
        self.init(weight: Tensor.normal([count, dim], rng: &rng))
    }

    public init(weight: Tensor) {
        precondition(weight.rank == 2, "Embedding: weight must be [count, dim], got \(weight.shape)")
        self.weight = weight
        super.init()
        parameter("weight", weight)
    }

    /// Rows of the table for `ids` laid out as `shape`; the result is `shape + [dim]`.
    public func callAsFunction(_ ids: [Int], shape: [Int]) -> Tensor {
        Tensor.embedding(weight, ids: ids, shape: shape)
    }

    public func callAsFunction(_ ids: [Int]) -> Tensor { self(ids, shape: [ids.count]) }
}
