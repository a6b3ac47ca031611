// 2-D convolution (NCHW), as torch.nn.functional.conv2d.
//
// General and grouped convolutions run as im2col + one GEMM per group per tile, with col2im
// for the input gradient and the weight gradient accumulated by GEMMs with beta = 1. A tile
// is several small images (so BLAS sees enough columns) or a block of output rows of one
// image (so the im2col buffer stays cache-sized). Stride-1 1×1 convolutions multiply the
// input directly; other stride-1 convolutions with enough channels read a zero-padded copy of
// the input at each kernel tap's offset, without im2col or col2im (Conv2dShifted.swift). Convolutions with one input channel per group (depthwise) use a direct
// kernel split over channels.

/// Sizes of one conv2d call.
struct Conv2dGeometry {
    let n, cin, h, w: Int
    let cout, kh, kw: Int
    let sh, sw, ph, pw, dh, dw: Int
    let groups: Int
    let oh, ow: Int

    init(input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int),
         dilation: (Int, Int), groups: Int) {
        precondition(input.count == 4, "conv2d: input must be [N, C, H, W], got \(input)")
        precondition(weight.count == 4, "conv2d: weight must be [Cout, Cin/groups, kH, kW], got \(weight)")
        precondition(groups >= 1, "conv2d: groups must be ≥ 1, got \(groups)")
        precondition(stride.0 >= 1 && stride.1 >= 1, "conv2d: stride must be ≥ 1, got \(stride)")
        precondition(padding.0 >= 0 && padding.1 >= 0, "conv2d: padding must be ≥ 0, got \(padding)")
        precondition(dilation.0 >= 1 && dilation.1 >= 1, "conv2d: dilation must be ≥ 1, got \(dilation)")
        n = input[0]; cin = input[1]; h = input[2]; w = input[3]
        cout = weight[0]; kh = weight[2]; kw = weight[3]
        precondition(cin % groups == 0 && cout % groups == 0,
                     "conv2d: \(cin) input and \(cout) output channels do not split into \(groups) groups")
        precondition(weight[1] * groups == cin,
                     "conv2d: weight \(weight) with groups \(groups) expects \(weight[1] * groups) input channels, input \(input) has \(cin)")
        precondition(kh >= 1 && kw >= 1, "conv2d: empty kernel \(weight)")
        sh = stride.0; sw = stride.1; ph = padding.0; pw = padding.1; dh = dilation.0; dw = dilation.1
        self.groups = groups
        oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1
        precondition(h + 2 * ph >= dh * (kh - 1) + 1 && w + 2 * pw >= dw * (kw - 1) + 1,
                     "conv2d: kernel \(weight) (dilation \(dilation)) larger than padded input \(input)")
    }

    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    /// im2col rows per group: Cin/groups · kH · kW.
    var k: Int { cinG * kh * kw }
    var inPlane: Int { h * w }
    var outPlane: Int { oh * ow }
    /// 1×1, stride 1, no padding: the input already is the im2col matrix.
    var pointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }
    /// One input channel per group: handled by the direct kernel.
    var depthwise: Bool { cinG == 1 }

    /// Images per GEMM: enough output columns to keep BLAS efficient, with a bounded buffer.
    var chunk: Int {
        let p = max(outPlane, 1)
        var nb = min(n, max(1, Conv2dGeometry.targetColumns / p))
        while nb > 1 && cin * kh * kw * p * nb > Conv2dGeometry.maxColumnFloats { nb /= 2 }
        return max(nb, 1)
    }

    /// Output rows per im2col block when a chunk is one image.
    var rowBlock: Int {
        let perRow = max(cin * kh * kw * ow, 1)
        return max(1, min(oh, Conv2dGeometry.maxColumnFloats / perRow))
    }

    static let targetColumns = 1024
    /// Bound on an im2col buffer (16 MB): large enough that the GEMMs run at full speed
    /// (4 MB measured 15% slower on the 3×3 benchmark), small enough that a big decoder layer
    /// does not allocate a whole-image buffer. Settable for tests.
    nonisolated(unsafe) static var maxColumnFloats = 1 << 22
}

extension Tensor {
    /// 2-D convolution, as torch.nn.functional.conv2d.
    /// self: [N, Cin, H, W]; weight: [Cout, Cin/groups, kH, kW]; bias: [Cout].
    public func conv2d(_ weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                       padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
                       groups: Int = 1) -> Tensor {
        let weight = weight.decoded()
        let g = Conv2dGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
        if let bias {
            precondition(bias.shape == [g.cout], "conv2d: bias \(bias.shape) for \(g.cout) output channels")
        }
        let out = Tensor(uninitialized: [g.n, g.cout, g.oh, g.ow])
        let biasPointer: UnsafePointer<Float>? = bias.map { UnsafePointer($0.pointer) }
        let shifted = ConvKernels.useShifted(g)
        if g.depthwise {
            ConvKernels.depthwiseForward(pointer, weight.pointer, biasPointer, g, out.pointer)
        } else if shifted {
            ConvKernels.shiftedForward(pointer, weight.pointer, biasPointer, g, out.pointer)
        } else {
            ConvKernels.gemmForward(pointer, weight.pointer, biasPointer, g, out.pointer)
        }

        let x = detached(), w = weight.detached()
        let needX = requiresGrad, needW = weight.requiresGrad
        let needB = bias?.requiresGrad ?? false
        let hasBias = bias != nil
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        return out.recording("conv2d", inputs) { gy in
            let gx: Tensor? = needX ? Tensor(uninitialized: x.shape) : nil
            let gw: Tensor? = needW ? Tensor(zeros: w.shape) : nil
            if needX || needW {
                if g.depthwise {
                    ConvKernels.depthwiseBackward(x.pointer, w.pointer, gy.pointer, g,
                                                  gx?.pointer, gw?.pointer)
                } else if shifted {
                    ConvKernels.shiftedBackward(x.pointer, w.pointer, gy.pointer, g,
                                                gx?.pointer, gw?.pointer)
                } else {
                    ConvKernels.gemmBackward(x.pointer, w.pointer, gy.pointer, g,
                                             gx?.pointer, gw?.pointer)
                }
            }
            var result: [Tensor?] = [gx, gw]
            if hasBias {
                result.append(needB ? ConvKernels.biasGradient(gy.pointer, g) : nil)
            }
            return result
        }
    }

    /// 2-D convolution with the same stride, padding and dilation on both axes.
    public func conv2d(_ weight: Tensor, bias: Tensor? = nil, stride: Int, padding: Int,
                       dilation: Int = 1, groups: Int = 1) -> Tensor {
        conv2d(weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
               dilation: (dilation, dilation), groups: groups)
    }
}
