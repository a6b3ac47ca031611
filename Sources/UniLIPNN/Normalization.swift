import UniLIPCore

/// Normalises the last axis (PyTorch's `nn.LayerNorm` over one trailing dimension);
/// weight ones and bias zeros.
public final class LayerNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-5, affine: Bool = true, bias: Bool = true) {
        weight = affine ? Tensor(repeating: 1, shape: [dim]) : nil
        self.bias = affine && bias ? Tensor(zeros: [dim]) : nil
        self.eps = eps
        super.init()
        if let weight { parameter("weight", weight) }
        if let b = self.bias { parameter("bias", b) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }
}

/// Root-mean-square normalisation of the last axis with a learned scale (weight ones).
public final class RMSNorm: Module, UnaryLayer {
    public let weight: Tensor?
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-6, affine: Bool = true) {
        weight = affine ? Tensor(repeating: 1, shape: [dim]) : nil
        self.eps = eps
        super.init()
        if let weight { parameter("weight", weight) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNorm(weight: weight, eps: eps) }
}

/// Group normalisation over NC… input (PyTorch's `nn.GroupNorm`); weight ones, bias zeros.
public final class GroupNorm: Module, UnaryLayer {
    public let groups: Int
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels in \(groups) groups")
        self.groups = groups
        weight = affine ? Tensor(repeating: 1, shape: [channels]) : nil
        bias = affine ? Tensor(zeros: [channels]) : nil
        self.eps = eps
        super.init()
        if let weight { parameter("weight", weight) }
        if let bias { parameter("bias", bias) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps)
    }
}
