import UniLIPCore
import UniLIPNN

// The decoder of diffusers' `AutoencoderDC` (DC-AE), with its tensor names:
//   conv_in, up_blocks.{stage}.{index}.…, norm_out, conv_out
// `up_blocks[i]` is stage i (resolution 2^i below the image); the last stage runs first at the
// latent's resolution. Every stage but the last starts with its up block at index 0, followed
// by its layers; the last stage's layers start at index 0.

/// Fills new weights: PyTorch's default U(−1/√fan_in, 1/√fan_in), or zeros when the weights
/// are about to be loaded (no random draws for 160M parameters).
final class DCAEInitializer {
    var rng: RandomGenerator?
    init(rng: RandomGenerator?) { self.rng = rng }

    func uniform(_ shape: [Int], fanIn: Int) -> Tensor {
        guard var r = rng else { return Tensor(zeros: shape) }
        let bound = 1 / Float(Swift.max(fanIn, 1)).squareRoot()
        let t = Tensor.uniform(shape, -bound, bound, rng: &r)
        rng = r
        return t
    }

    /// `nn.Linear(in, out, bias=False)`.
    func linear(_ inFeatures: Int, _ outFeatures: Int) -> Linear {
        Linear(weight: uniform([outFeatures, inFeatures], fanIn: inFeatures), bias: nil)
    }
}

/// A 2-D convolution layer with PyTorch's `nn.Conv2d` naming (`weight`, `bias`) and init.
final class DCAEConv: Module, UnaryLayer {
    let weight: Tensor
    let bias: Tensor?
    let padding: Int
    let groups: Int

    init(_ inChannels: Int, _ outChannels: Int, kernel: Int, groups: Int = 1, bias: Bool = true,
         init initializer: DCAEInitializer) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "conv \(inChannels)→\(outChannels) does not split into \(groups) groups")
        let fanIn = inChannels / groups * kernel * kernel
        weight = initializer.uniform([outChannels, inChannels / groups, kernel, kernel], fanIn: fanIn)
        self.bias = bias ? initializer.uniform([outChannels], fanIn: fanIn) : nil
        padding = kernel / 2
        self.groups = groups
        super.init()
        parameter("weight", weight)
        if let b = self.bias { parameter("bias", b) }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: 1, padding: padding, groups: groups)
    }
}

/// diffusers' `RMSNorm(C, eps 1e-5, bias=True)` applied over the channels of NCHW input.
final class DCAEChannelRMSNorm: Module, UnaryLayer {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    init(_ channels: Int, eps: Float = 1e-5) {
        weight = Tensor(repeating: 1, shape: [channels])
        bias = Tensor(zeros: [channels])
        self.eps = eps
        super.init()
        parameter("weight", weight)
        parameter("bias", bias)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x.rmsNormChannels(weight: weight, bias: bias, eps: eps) }
}

extension Tensor {
    /// Nearest-neighbour ×2 upsampling of [N, C, H, W] (equal to
    /// `interpolate(scale: 2, mode: .nearest)`): each pixel becomes a 2×2 block; the gradient
    /// sums each block. A dedicated loop, as the up blocks run it at full resolution.
    func nearestUpsample2x() -> Tensor {
        precondition(rank == 4, "nearestUpsample2x: input must be [N, C, H, W], got \(shape)")
        let rows = shape[0] * shape[1] * shape[2], w = shape[3]
        let out = Tensor(uninitialized: [shape[0], shape[1], 2 * shape[2], 2 * w])
        let src = pointer, dst = out.pointer
        Parallel.forRange(rows, grain: Swift.max(1, 16_384 / Swift.max(w, 1))) { r in
            for row in r {
                let x = src + row * w, y0 = dst + 4 * w * row, y1 = y0 + 2 * w
                for i in 0..<w {
                    let v = x[i]
                    y0[2 * i] = v
                    y0[2 * i + 1] = v
                }
                y1.update(from: y0, count: 2 * w)
            }
        }
        let inShape = shape
        return out.recording("nearest_upsample_2x", [self]) { g in
            let gx = Tensor(uninitialized: inShape)
            let gp = g.pointer, gxp = gx.pointer
            Parallel.forRange(rows, grain: Swift.max(1, 16_384 / Swift.max(w, 1))) { r in
                for row in r {
                    let g0 = gp + 4 * w * row, g1 = g0 + 2 * w, o = gxp + row * w
                    for i in 0..<w { o[i] = (g0[2 * i] + g0[2 * i + 1]) + (g1[2 * i] + g1[2 * i + 1]) }
                }
            }
            return [gx]
        }
    }
}

/// A `Linear` (weight [out, in], no bias) applied to the channels of NCHW input, as a 1×1 conv.
@inline(__always)
func channelLinear(_ x: Tensor, _ weight: Tensor) -> Tensor {
    x.conv2d(weight.reshaped([weight.shape[0], weight.shape[1], 1, 1]), stride: 1, padding: 0)
}

/// conv3×3 (bias) → act → conv3×3 (no bias) → channel RMSNorm → + input.
public final class DCAEResBlock: Module, UnaryLayer {
    let conv1: DCAEConv
    let conv2: DCAEConv
    let norm: DCAEChannelRMSNorm
    let activation: Activation

    init(channels: Int, activation: Activation, init initializer: DCAEInitializer) {
        conv1 = DCAEConv(channels, channels, kernel: 3, init: initializer)
        conv2 = DCAEConv(channels, channels, kernel: 3, bias: false, init: initializer)
        norm = DCAEChannelRMSNorm(channels)
        self.activation = activation
        super.init()
        child("conv1", conv1)
        child("conv2", conv2)
        child("norm", norm)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        norm(conv2(activation(conv1(x)))) + x
    }
}

/// Depthwise k×k then grouped 1×1 (3·heads groups) over the concatenated q/k/v channels
/// (`SanaMultiscaleAttentionProjection`), both without bias.
final class DCAEMultiscaleProjection: Module, UnaryLayer {
    let projIn: DCAEConv
    let projOut: DCAEConv

    init(innerDim: Int, heads: Int, kernel: Int, init initializer: DCAEInitializer) {
        let c = 3 * innerDim
        projIn = DCAEConv(c, c, kernel: kernel, groups: c, bias: false, init: initializer)
        projOut = DCAEConv(c, c, kernel: 1, groups: 3 * heads, bias: false, init: initializer)
        super.init()
        child("proj_in", projIn)
        child("proj_out", projOut)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { projOut(projIn(x)) }
}

/// SANA multiscale ReLU linear attention with residual (`SanaMultiscaleLinearAttention` as
/// DC-AE uses it). q/k/v come from bias-free 1×1 projections; each multiscale branch adds as
/// many heads again. The channels are then read as heads of 3·D consecutive channels (q, k, v
/// of D each), attended with ReLU linear attention, projected by `to_out`, normalised, and
/// added to the input.
public final class DCAEMultiscaleLinearAttention: Module, UnaryLayer {
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let multiscale: [DCAEMultiscaleProjection]
    let toOut: Linear
    let normOut: DCAEChannelRMSNorm
    public let heads: Int
    public let headDim: Int

    init(channels: Int, headDim: Int, kernels: [Int], init initializer: DCAEInitializer) {
        heads = channels / headDim
        self.headDim = headDim
        let inner = heads * headDim
        toQ = initializer.linear(channels, inner)
        toK = initializer.linear(channels, inner)
        toV = initializer.linear(channels, inner)
        var branches: [DCAEMultiscaleProjection] = []
        for k in kernels { branches.append(DCAEMultiscaleProjection(innerDim: inner, heads: heads, kernel: k, init: initializer)) }
        multiscale = branches
        toOut = initializer.linear(inner * (1 + kernels.count), channels)
        normOut = DCAEChannelRMSNorm(channels)
        super.init()
        child("to_q", toQ)
        child("to_k", toK)
        child("to_v", toV)
        child("to_qkv_multiscale", ModuleList(branches))
        child("to_out", toOut)
        child("norm_out", normOut)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "EfficientViT attention: input must be [N, C, H, W], got \(x.shape)")
        let b = x.shape[0], h = x.shape[2], w = x.shape[3], n = h * w, d = headDim
        let wqkv = Tensor.concat([toQ.weight.decoded(), toK.weight.decoded(), toV.weight.decoded()], axis: 0)
        let qkv = channelLinear(x, wqkv)
        var parts = [qkv]
        for branch in multiscale { parts.append(branch(qkv)) }
        let all = parts.count == 1 ? qkv : Tensor.concat(parts, axis: 1)
        let groups = all.shape[1] / (3 * d)
        // [B, G, 3D, N] → token-major [B, G, N, 3D], then q | k | v along the last axis.
        let tokens = all.reshaped([b, groups, 3 * d, n]).transposed(2, 3)
        let q = tokens.sliced(axis: 3, start: 0, end: d)
        let k = tokens.sliced(axis: 3, start: d, end: 2 * d)
        let v = tokens.sliced(axis: 3, start: 2 * d, end: 3 * d)
        let att = Tensor.reluLinearAttention(q: q, k: k, v: v)
        let merged = att.transposed(2, 3).reshaped([b, groups * d, h, w])
        return normOut(channelLinear(merged, toOut.weight)) + x
    }
}

/// GLUMBConv: 1×1 to 2·4C (bias) → SiLU → depthwise 3×3 (bias) → halves x, gate → x·SiLU(gate)
/// → 1×1 to C (no bias) → channel RMSNorm → + input.
public final class DCAEGLUMBConv: Module, UnaryLayer {
    let convInverted: DCAEConv
    let convDepth: DCAEConv
    let convPoint: DCAEConv
    let norm: DCAEChannelRMSNorm

    init(channels: Int, expand: Int = 4, init initializer: DCAEInitializer) {
        let hidden = expand * channels
        convInverted = DCAEConv(channels, 2 * hidden, kernel: 1, init: initializer)
        convDepth = DCAEConv(2 * hidden, 2 * hidden, kernel: 3, groups: 2 * hidden, init: initializer)
        convPoint = DCAEConv(hidden, channels, kernel: 1, bias: false, init: initializer)
        norm = DCAEChannelRMSNorm(channels)
        super.init()
        child("conv_inverted", convInverted)
        child("conv_depth", convDepth)
        child("conv_point", convPoint)
        child("norm", norm)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = convDepth(convInverted(x).silu())
        let halves = h.chunked(2, axis: 1)
        return norm(convPoint(halves[0] * halves[1].silu())) + x
    }
}

/// Multiscale linear attention then GLUMBConv (diffusers' `EfficientViTBlock`: `attn`, `conv_out`).
public final class DCAEEfficientViTBlock: Module, UnaryLayer {
    public let attn: DCAEMultiscaleLinearAttention
    public let convOut: DCAEGLUMBConv

    init(channels: Int, headDim: Int, kernels: [Int], init initializer: DCAEInitializer) {
        attn = DCAEMultiscaleLinearAttention(channels: channels, headDim: headDim, kernels: kernels, init: initializer)
        convOut = DCAEGLUMBConv(channels: channels, init: initializer)
        super.init()
        child("attn", attn)
        child("conv_out", convOut)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { convOut(attn(x)) }
}

/// ×2 upsampling from `in` to `out` channels (`DCUpBlock2d` with shortcut): nearest ×2 + 3×3
/// conv (or 3×3 conv to 4·out + pixel shuffle), plus the input's channels repeat-interleaved
/// to 4·out and pixel-shuffled.
public final class DCAEUpBlock: Module, UnaryLayer {
    let conv: DCAEConv
    let type: DCAEUpsampleType
    let repeats: Int

    init(inChannels: Int, outChannels: Int, type: DCAEUpsampleType, init initializer: DCAEInitializer) {
        precondition((4 * outChannels) % inChannels == 0,
                     "up block \(inChannels)→\(outChannels): 4·out must be a multiple of in")
        conv = DCAEConv(inChannels, type == .interpolate ? outChannels : 4 * outChannels, kernel: 3, init: initializer)
        self.type = type
        repeats = 4 * outChannels / inChannels
        super.init()
        child("conv", conv)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let main: Tensor
        switch type {
        case .interpolate: main = conv(x.nearestUpsample2x())
        case .pixelShuffle: main = conv(x).pixelShuffle(2)
        }
        let shortcut = (repeats == 1 ? x : x.repeatInterleaved(repeats, axis: 1)).pixelShuffle(2)
        return main + shortcut
    }
}

/// The DC-AE decoder: latent [B, latent_channels, h, w] → image [B, in_channels, h·f, w·f] with
/// f = 2^(stages − 1) (32 for f32c32).
public final class DCAEDecoder: Module, UnaryLayer {
    public let config: DCAEDecoderConfig
    let convIn: DCAEConv
    /// Stage i's layers in order (up block first where present), as `up_blocks.i.j`.
    let stages: [[any UnaryLayer]]
    let normOut: DCAEChannelRMSNorm
    let convOut: DCAEConv
    let convActivation: Activation

    /// A decoder with PyTorch-style random weights (norms at weight 1, bias 0).
    /// Precondition: `config.validate()` passes (configs decoded from JSON are validated).
    public convenience init(config: DCAEDecoderConfig, rng: inout RandomGenerator) {
        let initializer = DCAEInitializer(rng: rng)
        self.init(config: config, initializer: initializer)
        if let r = initializer.rng { rng = r }
    }

    /// A decoder whose weights are zeros (norm weights 1), to be overwritten by a checkpoint.
    public convenience init(forLoading config: DCAEDecoderConfig) {
        self.init(config: config, initializer: DCAEInitializer(rng: nil))
    }

    init(config: DCAEDecoderConfig, initializer: DCAEInitializer) {
        do { try config.validate() } catch { preconditionFailure("\(error)") }
        self.config = config
        let n = config.stageCount
        let ch = config.blockOutChannels
        convIn = DCAEConv(config.latentChannels, ch[n - 1], kernel: 3, init: initializer)
        // Built from the lowest resolution up as diffusers does; registered below from stage 0,
        // which gives its state_dict order.
        var built = [[any UnaryLayer]](repeating: [], count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var layers: [any UnaryLayer] = []
            if i < n - 1 {
                layers.append(DCAEUpBlock(inChannels: ch[i + 1], outChannels: ch[i],
                                          type: config.upsampleBlockType, init: initializer))
            }
            for _ in 0..<config.layersPerBlock[i] {
                switch config.blockTypes[i] {
                case .resBlock:
                    let act = DCAEDecoderConfig.activation(config.actFns[i]) ?? .silu
                    layers.append(DCAEResBlock(channels: ch[i], activation: act, init: initializer))
                case .efficientViT:
                    layers.append(DCAEEfficientViTBlock(channels: ch[i], headDim: config.attentionHeadDim,
                                                        kernels: config.qkvMultiscales[i], init: initializer))
                }
            }
            built[i] = layers
        }
        stages = built
        normOut = DCAEChannelRMSNorm(ch[0])
        convActivation = DCAEDecoderConfig.activation(config.convActFn) ?? .relu
        convOut = DCAEConv(ch[0], config.inChannels, kernel: 3, init: initializer)
        super.init()
        child("conv_in", convIn)
        child("up_blocks", ModuleList(stages.map { ModuleList($0.map { $0 as Module }) }))
        child("norm_out", normOut)
        child("conv_out", convOut)
    }

    public func callAsFunction(_ z: Tensor) -> Tensor {
        precondition(z.rank == 4 && z.shape[1] == config.latentChannels,
                     "DCAEDecoder: latent must be [B, \(config.latentChannels), h, w], got \(z.shape)")
        var h = convIn(z)
        if config.inShortcut {
            h = h + z.repeatInterleaved(config.blockOutChannels[config.stageCount - 1] / config.latentChannels, axis: 1)
        }
        for stage in stages.reversed() {
            for layer in stage { h = layer(h) }
        }
        return convOut(convActivation(normOut(h)))
    }
}
