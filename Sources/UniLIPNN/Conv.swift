import UniLIPCore

/// 2-D convolution over NCHW input with weight [out, in/groups, kh, kw] (PyTorch's `nn.Conv2d`).
public final class Conv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)
    public let groups: Int

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int),
                            stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                            dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                            rng: inout RandomGenerator) {
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: channels \(inChannels)→\(outChannels) not divisible by groups \(groups)")
        let fanIn = inChannels / groups * kernelSize.0 * kernelSize.1
        let w = kaimingUniform([outChannels, inChannels / groups, kernelSize.0, kernelSize.1], fanIn: fanIn, rng: &rng)
        let b = bias ? kaimingUniform([outChannels], fanIn: fanIn, rng: &rng) : nil
        self.init(weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// Square kernel, stride, padding and dilation.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1,
                            padding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true,
                            rng: inout RandomGenerator) {
        self.init(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                  padding: (padding, padding), dilation: (dilation, dilation), groups: groups, bias: bias,
                  rng: &rng)
    }

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        precondition(weight.rank == 4, "Conv2d: weight must be [out, in/groups, kh, kw], got \(weight.shape)")
        if let bias {
            precondition(bias.shape == [weight.shape[0]], "Conv2d: bias \(bias.shape) for weight \(weight.shape)")
        }
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        super.init()
        parameter("weight", weight)
        if let bias { parameter("bias", bias) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}
