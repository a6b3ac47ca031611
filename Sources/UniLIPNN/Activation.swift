import UniLIPCore

/// Element-wise activations, for layers that take one as a setting.
public enum Activation: String, Sendable, CaseIterable {
    case gelu          // exact, erf-based (PyTorch's default)
    case geluTanh      // tanh approximation
    case silu
    case relu
    case identity

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .gelu: return x.gelu(tanhApproximation: false)
        case .geluTanh: return x.gelu(tanhApproximation: true)
        case .silu: return x.silu()
        case .relu: return x.relu()
        case .identity: return x
        }
    }
}

/// An activation as a parameterless layer (for `Sequential`).
public final class ActivationLayer: Module, UnaryLayer {
    public let activation: Activation
    public init(_ activation: Activation) {
        self.activation = activation
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { activation(x) }
}

public func GELU(approximate: Bool = false) -> ActivationLayer { ActivationLayer(approximate ? .geluTanh : .gelu) }
public func SiLU() -> ActivationLayer { ActivationLayer(.silu) }
public func ReLU() -> ActivationLayer { ActivationLayer(.relu) }
public func Identity() -> ActivationLayer { ActivationLayer(.identity) }

/// fc1 → activation → fc2 (timm's `Mlp` naming).
public final class MLP: Module, UnaryLayer {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation

    public init(_ inFeatures: Int, hidden: Int, out: Int? = nil, activation: Activation = .gelu,
                bias: Bool = true, rng: inout RandomGenerator) {
        fc1 = Linear(inFeatures, hidden, bias: bias, rng: &rng)
        fc2 = Linear(hidden, out ?? inFeatures, bias: bias, rng: &rng)
        self.activation = activation
        super.init()
        child("fc1", fc1)
        child("fc2", fc2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}
