import Foundation
import UniLIPCore
import UniLIPNN

// SANA DiT, laid out and named as diffusers' `SanaTransformer2DModel` so its checkpoints load
// strictly by name. Differences from diffusers: no guidance embedding, no qk-norm, no
// controlnet residuals, no dropout (every released SANA config has dropout 0).

/// U(−1/√fanIn, 1/√fanIn), PyTorch's default for Linear and Conv2d.
private func sanaUniform(_ shape: [Int], fanIn: Int, rng: inout RandomGenerator) -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return Tensor.uniform(shape, -bound, bound, rng: &rng)
}

/// A Conv2d holding `weight` [out, in/groups, k, k] and an optional `bias` (PyTorch's names).
public final class SanaConv2d: Module, UnaryLayer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                groups: Int = 1, bias: Bool = true, rng: inout RandomGenerator) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "SanaConv2d: \(inChannels)→\(outChannels) channels in \(groups) groups")
        let fanIn = inChannels / groups * kernel * kernel
        weight = sanaUniform([outChannels, inChannels / groups, kernel, kernel], fanIn: fanIn, rng: &rng)
        self.bias = bias ? sanaUniform([outChannels], fanIn: fanIn, rng: &rng) : nil
        self.stride = stride
        self.padding = padding
        self.groups = groups
        super.init()
        parameter("weight", weight)
        if let b = self.bias { parameter("bias", b) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: stride, padding: padding, groups: groups)
    }

    /// A 1×1 convolution applied to token-major input [..., in] → [..., out] as a GEMM.
    public func pointwise(_ x: Tensor) -> Tensor {
        precondition(weight.shape[2] == 1 && weight.shape[3] == 1 && groups == 1, "pointwise needs a 1×1 conv")
        if weight.stored != nil { return x.linear(weight: weight.reshaped([weight.shape[0], weight.shape[1]]), bias: bias) }
        let y = x.matmul(weight.reshaped([weight.shape[0], weight.shape[1]]), transposeB: true)
        guard let bias else { return y }
        return y + bias
    }
}

/// `patch_embed`: a p×p stride-p convolution (`proj`) to tokens [B, h·w, W], plus the
/// fixed sin-cos position embedding when `interpolation_scale` is set (or always, with
/// `legacyDefaultPositionEmbedding`, as diffusers ≤ 0.32).
public final class SanaPatchEmbed: Module {
    public let proj: SanaConv2d
    public let patchSize: Int
    public let baseSize: Int
    public let interpolationScale: Double?

    public init(_ config: SanaConfig, rng: inout RandomGenerator) {
        patchSize = config.patchSize
        baseSize = config.sampleSize / config.patchSize
        interpolationScale = config.effectivePositionEmbeddingScale
        proj = SanaConv2d(config.inChannels, config.innerDim, kernel: config.patchSize, stride: config.patchSize,
                          rng: &rng)
        super.init()
        child("proj", proj)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let b = x.shape[0], h = x.shape[2] / patchSize, w = x.shape[3] / patchSize
        let width = proj.weight.shape[0]
        let y: Tensor
        if patchSize == 1 {
            // [B, C, N] → [B, N, C] → GEMM: cheaper than the im2col path for a 1×1 kernel.
            y = proj.pointwise(x.reshaped([b, x.shape[1], h * w]).transposed(1, 2))
        } else {
            y = proj(x).reshaped([b, width, h * w]).transposed(1, 2)
        }
        guard let scale = interpolationScale else { return y }
        return y + Self.sinCosPositionEmbedding(width: width, height: h, widthTokens: w, baseSize: baseSize,
                                                interpolationScale: scale)
    }

    /// diffusers' `get_2d_sincos_pos_embed` as PatchEmbed uses it: token i·w + j gets
    /// [sincos(D/2, x_j), sincos(D/2, y_i)] with x_j = j / (w / base) / scale (float32 grid),
    /// each half [sin, cos] over frequencies 1/10000^(k/(D/4)). Returns [h·w, D].
    public static func sinCosPositionEmbedding(width d: Int, height h: Int, widthTokens w: Int, baseSize: Int,
                                               interpolationScale: Double) -> Tensor {
        precondition(d % 4 == 0, "sin-cos position embedding needs a width divisible by 4, got \(d)")
        let quarter = d / 4
        let omega = (0..<quarter).map { 1 / pow(10000.0, Double($0) / Double(quarter)) }
        func coordinate(_ i: Int, _ size: Int) -> Double {
            // The grid is float32 in diffusers: arange / (size / base) / scale.
            let a = Float(i) / Float(Double(size) / Double(baseSize))
            return Double(a / Float(interpolationScale))
        }
        let out = Tensor(uninitialized: [h * w, d])
        let p = out.pointer
        for i in 0..<h {
            let yi = coordinate(i, h)
            for j in 0..<w {
                let xj = coordinate(j, w)
                let row = p + (i * w + j) * d
                for k in 0..<quarter {
                    row[k] = Float(sin(xj * omega[k]))
                    row[quarter + k] = Float(cos(xj * omega[k]))
                    row[2 * quarter + k] = Float(sin(yi * omega[k]))
                    row[3 * quarter + k] = Float(cos(yi * omega[k]))
                }
            }
        }
        return out
    }
}

/// `linear_1` → SiLU → `linear_2` (diffusers' `TimestepEmbedding`).
public final class SanaTimestepEmbedding: Module {
    public let linear_1: Linear
    public let linear_2: Linear

    public init(inChannels: Int, dim: Int, rng: inout RandomGenerator) {
        linear_1 = Linear(inChannels, dim, rng: &rng)
        linear_2 = Linear(dim, dim, rng: &rng)
        super.init()
        child("linear_1", linear_1)
        child("linear_2", linear_2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear_2(linear_1(x).silu()) }
}

/// Holds `timestep_embedder` (diffusers' `PixArtAlphaCombinedTimestepSizeEmbeddings` without
/// the resolution/aspect conditions).
public final class SanaTimestepConditioning: Module {
    public static let frequencyChannels = SanaTimestepFrequencies.channels
    public let timestep_embedder: SanaTimestepEmbedding

    public init(dim: Int, rng: inout RandomGenerator) {
        timestep_embedder = SanaTimestepEmbedding(inChannels: Self.frequencyChannels, dim: dim, rng: &rng)
        super.init()
        child("timestep_embedder", timestep_embedder)
    }

    public func callAsFunction(_ timesteps: [Float]) -> Tensor {
        timestep_embedder(Self.sinusoidal(timesteps, channels: Self.frequencyChannels))
    }

    /// diffusers' `get_timestep_embedding(t, channels, flip_sin_to_cos=True, downscale_freq_shift=0)`,
    /// in float32 as diffusers computes it: [cos(t·f_k), sin(t·f_k)] with
    /// f_k = exp(−ln(10000)·k / (channels/2)). Returns [B, channels].
    public static func sinusoidal(_ timesteps: [Float], channels: Int) -> Tensor {
        let half = channels / 2
        let c = Float(-log(10000.0))
        let freqs = (0..<half).map { Foundation.exp(c * Float($0) / Float(half)) }
        let out = Tensor(zeros: [timesteps.count, channels])
        for (b, t) in timesteps.enumerated() {
            let row = out.pointer + b * channels
            for k in 0..<half {
                let a = t * freqs[k]
                row[k] = Foundation.cos(a)
                row[half + k] = Foundation.sin(a)
            }
        }
        return out
    }
}

/// `time_embed` (diffusers' `AdaLayerNormSingle`): `emb` gives the embedded timestep [B, W];
/// `linear`(SiLU(·)) gives the six modulation vectors [B, 6W].
public final class SanaAdaLayerNormSingle: Module {
    public let emb: SanaTimestepConditioning
    public let linear: Linear

    public init(dim: Int, rng: inout RandomGenerator) {
        emb = SanaTimestepConditioning(dim: dim, rng: &rng)
        linear = Linear(dim, 6 * dim, rng: &rng)
        super.init()
        child("emb", emb)
        child("linear", linear)
    }

    /// (modulation [B, 6W], embedded timestep [B, W]).
    public func callAsFunction(_ timesteps: [Float]) -> (Tensor, Tensor) {
        let embedded = emb(timesteps)
        return (linear(embedded.silu()), embedded)
    }
}

/// `caption_projection`: `linear_1` → GELU(tanh) → `linear_2` (diffusers' `PixArtAlphaTextProjection`).
public final class SanaCaptionProjection: Module, UnaryLayer {
    public let linear_1: Linear
    public let linear_2: Linear

    public init(inFeatures: Int, hidden: Int, rng: inout RandomGenerator) {
        linear_1 = Linear(inFeatures, hidden, rng: &rng)
        linear_2 = Linear(hidden, hidden, rng: &rng)
        super.init()
        child("linear_1", linear_1)
        child("linear_2", linear_2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear_2(linear_1(x).gelu(tanhApproximation: true)) }
}

/// Attention projections `to_q`, `to_k`, `to_v`, `to_out.0` (diffusers' `Attention`).
public final class SanaAttention: Module {
    public let heads: Int
    public let headDim: Int
    public let to_q: Linear
    public let to_k: Linear
    public let to_v: Linear
    public let to_out: ModuleList
    public let outProjection: Linear

    public init(queryDim: Int, keyDim: Int, heads: Int, headDim: Int, bias: Bool, outBias: Bool = true,
                rng: inout RandomGenerator) {
        self.heads = heads
        self.headDim = headDim
        let inner = heads * headDim
        to_q = Linear(queryDim, inner, bias: bias, rng: &rng)
        to_k = Linear(keyDim, inner, bias: bias, rng: &rng)
        to_v = Linear(keyDim, inner, bias: bias, rng: &rng)
        outProjection = Linear(inner, queryDim, bias: outBias, rng: &rng)
        to_out = ModuleList([outProjection])
        super.init()
        child("to_q", to_q)
        child("to_k", to_k)
        child("to_v", to_v)
        child("to_out", to_out)
    }

    /// [B, L, heads·d] → [B, heads, L, d].
    private func split(_ x: Tensor) -> Tensor {
        x.reshaped([x.shape[0], x.shape[1], heads, headDim]).transposed(1, 2)
    }

    /// [B, heads, L, d] → [B, L, heads·d].
    private func merge(_ x: Tensor) -> Tensor {
        x.transposed(1, 2).reshaped([x.shape[0], x.shape[2], heads * headDim])
    }

    /// SANA's ReLU linear self-attention (`SanaLinearAttnProcessor2_0`, eps 1e-15).
    public func linearSelfAttention(_ x: Tensor) -> Tensor {
        let out = Tensor.reluLinearAttention(q: split(to_q(x)), k: split(to_k(x)), v: split(to_v(x)), eps: 1e-15)
        return outProjection(merge(out))
    }

    /// Softmax cross-attention (`SanaAttnProcessor2_0`); `bias` is additive, broadcast to
    /// [B, heads, Lq, Lk]; `keyPadding` [B, Lk] (1 keep, 0 drop) is the faster equivalent when
    /// every row keeps a key.
    public func crossAttention(_ x: Tensor, context: Tensor, bias: Tensor?, keyPadding: Tensor? = nil) -> Tensor {
        let out = Tensor.scaledDotProductAttention(q: split(to_q(x)), k: split(to_k(context)),
                                                   v: split(to_v(context)), mask: bias, keyPadding: keyPadding,
                                                   scale: 1 / Float(headDim).squareRoot())
        return outProjection(merge(out))
    }
}

/// `ff` (diffusers' `GLUMBConv`, no norm, no residual): 1×1 conv W→2H, SiLU, depthwise 3×3,
/// split into value and gate, value·SiLU(gate), 1×1 conv H→W without bias.
public final class SanaGLUMBConv: Module {
    public let conv_inverted: SanaConv2d
    public let conv_depth: SanaConv2d
    public let conv_point: SanaConv2d
    public let hidden: Int

    public init(dim: Int, hidden: Int, rng: inout RandomGenerator) {
        self.hidden = hidden
        conv_inverted = SanaConv2d(dim, 2 * hidden, kernel: 1, rng: &rng)
        conv_depth = SanaConv2d(2 * hidden, 2 * hidden, kernel: 3, padding: 1, groups: 2 * hidden, rng: &rng)
        conv_point = SanaConv2d(hidden, dim, kernel: 1, bias: false, rng: &rng)
        super.init()
        child("conv_inverted", conv_inverted)
        child("conv_depth", conv_depth)
        child("conv_point", conv_point)
    }

    /// Tokens [B, h·w, W] on an h×w grid → [B, h·w, W].
    public func callAsFunction(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let b = x.shape[0], n = height * width
        precondition(x.shape[1] == n, "GLUMBConv: \(x.shape[1]) tokens for a \(height)×\(width) grid")
        // Token-major throughout: the tokens already are the grid in channels-last layout.
        let expanded = conv_inverted.pointwise(x).silu()                        // [B, N, 2H]
        let mixed = SanaKernels.depthwiseConvChannelsLast(expanded.reshaped([b, height, width, 2 * hidden]),
                                                          weight: conv_depth.weight.decoded(), bias: conv_depth.bias)
        let gated = SanaKernels.gatedSiLU(mixed.reshaped([b, n, 2 * hidden]))   // [B, N, H]
        return conv_point.pointwise(gated)
    }
}

/// One SANA block: adaLN-modulated linear self-attention, cross-attention, modulated GLUMBConv.
public final class SanaTransformerBlock: Module {
    public let norm1: LayerNorm
    public let attn1: SanaAttention
    public let norm2: LayerNorm
    public let attn2: SanaAttention
    public let ff: SanaGLUMBConv
    /// [6, W]: shift/scale/gate for attention, then for the FFN.
    public let scale_shift_table: Tensor
    public let dim: Int

    public init(_ config: SanaConfig, rng: inout RandomGenerator) {
        let dim = config.innerDim
        self.dim = dim
        let eps = Float(config.normEps)
        norm1 = LayerNorm(dim, eps: eps, affine: false)
        attn1 = SanaAttention(queryDim: dim, keyDim: dim, heads: config.numAttentionHeads,
                              headDim: config.attentionHeadDim, bias: config.attentionBias, rng: &rng)
        norm2 = LayerNorm(dim, eps: eps, affine: config.normElementwiseAffine)
        attn2 = SanaAttention(queryDim: dim, keyDim: config.crossAttentionDim ?? dim, heads: config.crossHeads,
                              headDim: config.crossHeadDim, bias: true, rng: &rng)
        ff = SanaGLUMBConv(dim: dim, hidden: config.ffnHiddenDim, rng: &rng)
        scale_shift_table = Tensor.normal([6, dim], rng: &rng) * (1 / Float(dim).squareRoot())
        super.init()
        child("norm1", norm1)
        child("attn1", attn1)
        child("norm2", norm2)
        child("attn2", attn2)
        child("ff", ff)
        parameter("scale_shift_table", scale_shift_table)
    }

    /// x: [B, N, W]; modulation: [B, 6W]; context: [B, L, W]; contextBias: additive [B, 1, 1, L]
    /// or contextPadding: [B, L] keep-mask (see `SanaAttention.crossAttention`).
    public func callAsFunction(_ x: Tensor, modulation: Tensor, context: Tensor, contextBias: Tensor?,
                               contextPadding: Tensor? = nil, height: Int, width: Int) -> Tensor {
        let b = x.shape[0]
        let mod = scale_shift_table.reshaped([1, 6, dim]) + modulation.reshaped([b, 6, dim])
        let parts = (0..<6).map { mod.sliced(axis: 1, start: $0, end: $0 + 1) }  // each [B, 1, W]
        let (shiftMSA, scaleMSA, gateMSA) = (parts[0], parts[1], parts[2])
        let (shiftMLP, scaleMLP, gateMLP) = (parts[3], parts[4], parts[5])

        var h = x
        let a = norm1(h) * (scaleMSA + 1) + shiftMSA
        h = h + gateMSA * attn1.linearSelfAttention(a)
        h = h + attn2.crossAttention(h, context: context, bias: contextBias, keyPadding: contextPadding)
        let f = norm2(h) * (scaleMLP + 1) + shiftMLP
        return h + gateMLP * ff(f, height: height, width: width)
    }
}

/// The final `norm_out` (diffusers' `SanaModulatedNorm`, no parameters).
public final class SanaModulatedNorm: Module {
    public let norm: LayerNorm

    public init(dim: Int, eps: Float = 1e-6) {
        norm = LayerNorm(dim, eps: eps, affine: false)
        super.init()
        child("norm", norm)
    }

    /// LayerNorm(x)·(1 + scale) + shift with (shift, scale) = table [2, W] + embedded [B, W].
    public func callAsFunction(_ x: Tensor, embedded: Tensor, table: Tensor) -> Tensor {
        let b = x.shape[0], d = table.shape[1]
        let mod = table.reshaped([1, 2, d]) + embedded.reshaped([b, 1, d])
        let shift = mod.sliced(axis: 1, start: 0, end: 1), scale = mod.sliced(axis: 1, start: 1, end: 2)
        return norm(x) * (scale + 1) + shift
    }
}

/// diffusers' `SanaTransformer2DModel` (SANA 0.6B / 1.6B and smaller variants).
public final class SanaTransformer2DModel: Module {
    public let config: SanaConfig
    public let patch_embed: SanaPatchEmbed
    public let time_embed: SanaAdaLayerNormSingle
    public let caption_projection: SanaCaptionProjection
    public let caption_norm: RMSNorm
    public let transformer_blocks: ModuleList
    public let blocks: [SanaTransformerBlock]
    /// [2, W]: shift and scale of the final norm.
    public let scale_shift_table: Tensor
    public let norm_out: SanaModulatedNorm
    public let proj_out: Linear

    /// Additive bias diffusers gives masked caption tokens.
    public static let maskBias: Float = -10000

    public init(_ config: SanaConfig, rng: inout RandomGenerator) {
        if let reason = config.unsupportedReason { preconditionFailure("SanaTransformer2DModel: \(reason)") }
        self.config = config
        let dim = config.innerDim
        patch_embed = SanaPatchEmbed(config, rng: &rng)
        time_embed = SanaAdaLayerNormSingle(dim: dim, rng: &rng)
        caption_projection = SanaCaptionProjection(inFeatures: config.captionChannels, hidden: dim, rng: &rng)
        caption_norm = RMSNorm(dim, eps: 1e-5, affine: true)
        var bs: [SanaTransformerBlock] = []
        for _ in 0..<config.numLayers { bs.append(SanaTransformerBlock(config, rng: &rng)) }
        blocks = bs
        transformer_blocks = ModuleList(bs)
        scale_shift_table = Tensor.normal([2, dim], rng: &rng) * (1 / Float(dim).squareRoot())
        norm_out = SanaModulatedNorm(dim: dim, eps: 1e-6)
        let p = config.patchSize
        proj_out = Linear(dim, p * p * config.resolvedOutChannels, rng: &rng)
        super.init()
        parameter("scale_shift_table", scale_shift_table)
        child("patch_embed", patch_embed)
        child("time_embed", time_embed)
        child("caption_projection", caption_projection)
        child("caption_norm", caption_norm)
        child("transformer_blocks", transformer_blocks)
        child("norm_out", norm_out)
        child("proj_out", proj_out)
    }

    /// Additive cross-attention bias [B, 1, 1, L] from a keep-mask [B, L] (1 keep, 0 padding):
    /// (1 − mask)·(−10000), as diffusers converts `encoder_attention_mask`.
    public static func captionBias(_ mask: Tensor) -> Tensor {
        precondition(mask.rank == 2, "caption mask must be [B, L], got \(mask.shape)")
        let out = Tensor(uninitialized: [mask.shape[0], 1, 1, mask.shape[1]])
        for i in 0..<mask.count { out.pointer[i] = (1 - mask.pointer[i]) * maskBias }
        return out
    }

    static func isBinaryWithKeptTokenPerRow(_ mask: Tensor) -> Bool {
        let rows = mask.shape[0], l = mask.shape[1]
        for r in 0..<rows {
            var kept = false
            for j in 0..<l {
                let v = mask.pointer[r * l + j]
                if v != 0 && v != 1 { return false }
                if v == 1 { kept = true }
            }
            if !kept { return false }
        }
        return true
    }

    /// Predicts the flow velocity.
    /// - hiddenStates: latents [B, C, H, W] (H, W multiples of the patch size).
    /// - encoderHiddenStates: caption tokens [B, L, caption_channels].
    /// - timestep: [B] timesteps in [0, 1000] (values, not indices).
    /// - encoderAttentionMask: [B, L], 1 for real tokens and 0 for padding; nil = all real.
    /// Returns [B, out_channels, H, W].
    public func callAsFunction(_ hiddenStates: Tensor, encoderHiddenStates: Tensor, timestep: Tensor,
                               encoderAttentionMask: Tensor? = nil) -> Tensor {
        precondition(timestep.count == hiddenStates.shape[0],
                     "SanaTransformer2DModel: \(timestep.count) timesteps for batch \(hiddenStates.shape[0])")
        return self(hiddenStates, encoderHiddenStates: encoderHiddenStates, timesteps: timestep.scalars,
                    encoderAttentionMask: encoderAttentionMask)
    }

    public func callAsFunction(_ hiddenStates: Tensor, encoderHiddenStates: Tensor, timesteps: [Float],
                               encoderAttentionMask: Tensor? = nil) -> Tensor {
        let x = hiddenStates
        precondition(x.rank == 4 && x.shape[1] == config.inChannels,
                     "SanaTransformer2DModel: latents must be [B, \(config.inChannels), H, W], got \(x.shape)")
        let b = x.shape[0], p = config.patchSize
        precondition(x.shape[2] % p == 0 && x.shape[3] % p == 0,
                     "SanaTransformer2DModel: latent size \(x.shape[2])×\(x.shape[3]) not divisible by patch \(p)")
        precondition(timesteps.count == b, "SanaTransformer2DModel: \(timesteps.count) timesteps for batch \(b)")
        let e = encoderHiddenStates
        precondition(e.rank == 3 && e.shape[0] == b && e.shape[2] == config.captionChannels,
                     "SanaTransformer2DModel: captions must be [\(b), L, \(config.captionChannels)], got \(e.shape)")
        if let m = encoderAttentionMask {
            precondition(m.shape == [b, e.shape[1]],
                         "SanaTransformer2DModel: caption mask \(m.shape) for captions \(e.shape)")
        }
        let h = x.shape[2] / p, w = x.shape[3] / p

        var tokens = patch_embed(x)                                    // [B, N, W]
        let (modulation, embedded) = time_embed(timesteps)             // [B, 6W], [B, W]
        let context = caption_norm(caption_projection(e))              // [B, L, W]
        // A 0/1 mask that keeps a token in every row masks exactly like the −10000 bias
        // (exp underflows to 0) and takes the faster key-padding path; otherwise use the bias.
        var bias: Tensor? = nil, padding: Tensor? = nil
        if let m = encoderAttentionMask {
            if Self.isBinaryWithKeptTokenPerRow(m) { padding = m } else { bias = Self.captionBias(m) }
        }

        for block in blocks {
            tokens = block(tokens, modulation: modulation, context: context, contextBias: bias,
                           contextPadding: padding, height: h, width: w)
        }
        tokens = norm_out(tokens, embedded: embedded, table: scale_shift_table)
        let out = proj_out(tokens)                                     // [B, N, p·p·C]
        let c = config.resolvedOutChannels
        if p == 1 { return out.transposed(1, 2).reshaped([b, c, h, w]) }
        return out.reshaped([b, h, w, p, p, c]).permuted([0, 5, 1, 3, 2, 4]).reshaped([b, c, h * p, w * p])
    }
}

/// Channels-last kernels for GLUMBConv, so its tokens need no NCHW round trip.
public enum SanaKernels {
    /// Depthwise k×k convolution, stride 1, padding k/2, on channels-last input x [B, H, W, C]
    /// with PyTorch's weight [C, 1, k, k] and bias [C]. Equals
    /// conv2d(x in NCHW, weight, bias, padding: k/2, groups: C) in NHWC. Returns [B, H, W, C].
    public static func depthwiseConvChannelsLast(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank == 4, "depthwiseConvChannelsLast: input must be [B, H, W, C], got \(x.shape)")
        let nb = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        precondition(weight.rank == 4 && weight.shape[0] == c && weight.shape[1] == 1
                     && weight.shape[2] == weight.shape[3] && weight.shape[2] % 2 == 1,
                     "depthwiseConvChannelsLast: weight \(weight.shape) for \(c) channels")
        if let bias { precondition(bias.shape == [c], "depthwiseConvChannelsLast: bias \(bias.shape)") }
        let k = weight.shape[2], pad = k / 2, taps = k * k
        // Taps major: wt[tap, c], so the inner loop runs over contiguous channels.
        let wt = Tensor(uninitialized: [taps, c])
        for ch in 0..<c { for t in 0..<taps { wt.pointer[t * c + ch] = weight.pointer[ch * taps + t] } }
        let out = Tensor(uninitialized: x.shape)
        let xp = UnsafePointer(x.pointer), wp = UnsafePointer(wt.pointer), op = out.pointer
        let bp: UnsafePointer<Float>? = bias.map { UnsafePointer($0.pointer) }
        // Row (b, y) at a time: out[b, y, x, :] = bias + Σ_taps wt[tap, :] ⊙ x[b, y+i−p, x+j−p, :].
        Parallel.forRange(nb * h) { rows in
            for row in rows {
                let b = row / h, y = row % h
                for xx in 0..<w {
                    let o = op + ((b * h + y) * w + xx) * c
                    if let bp { for ch in 0..<c { o[ch] = bp[ch] } } else { for ch in 0..<c { o[ch] = 0 } }
                    for i in 0..<k {
                        let sy = y + i - pad
                        if sy < 0 || sy >= h { continue }
                        for j in 0..<k {
                            let sx = xx + j - pad
                            if sx < 0 || sx >= w { continue }
                            let src = xp + ((b * h + sy) * w + sx) * c, tw = wp + (i * k + j) * c
                            for ch in 0..<c { o[ch] += tw[ch] * src[ch] }
                        }
                    }
                }
            }
        }
        let dx = x.detached(), dwt = wt
        let needX = x.requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad ?? false
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recording("depthwise_conv_channels_last", inputs) { g in
            let gp = UnsafePointer(g.pointer), xp = UnsafePointer(dx.pointer), wp = UnsafePointer(dwt.pointer)
            var gx: Tensor? = nil
            if needX {
                // gx[b, y, x] = Σ_taps wt[tap] ⊙ g[b, y−i+p, x−j+p] (a gather: rows are independent).
                let t = Tensor(uninitialized: dx.shape)
                let gxp = t.pointer
                Parallel.forRange(nb * h) { rows in
                    for row in rows {
                        let b = row / h, y = row % h
                        for xx in 0..<w {
                            let o = gxp + ((b * h + y) * w + xx) * c
                            for ch in 0..<c { o[ch] = 0 }
                            for i in 0..<k {
                                let oy = y - i + pad
                                if oy < 0 || oy >= h { continue }
                                for j in 0..<k {
                                    let ox = xx - j + pad
                                    if ox < 0 || ox >= w { continue }
                                    let src = gp + ((b * h + oy) * w + ox) * c, tw = wp + (i * k + j) * c
                                    for ch in 0..<c { o[ch] += tw[ch] * src[ch] }
                                }
                            }
                        }
                    }
                }
                gx = t
            }
            var gw: Tensor? = nil, gb: Tensor? = nil
            if needW || needB {
                // Per channel block: Σ over every pixel, so blocks are independent.
                let gwt = Tensor(zeros: [taps, c]), gbt = Tensor(zeros: [c])
                let gwp = gwt.pointer, gbp = gbt.pointer
                let block = 64
                Parallel.forRange((c + block - 1) / block) { blocks in
                    for blk in blocks {
                        let c0 = blk * block, c1 = min(c, c0 + block)
                        for b in 0..<nb {
                            for y in 0..<h {
                                for xx in 0..<w {
                                    let go = gp + ((b * h + y) * w + xx) * c
                                    for ch in c0..<c1 { gbp[ch] += go[ch] }
                                    for i in 0..<k {
                                        let sy = y + i - pad
                                        if sy < 0 || sy >= h { continue }
                                        for j in 0..<k {
                                            let sx = xx + j - pad
                                            if sx < 0 || sx >= w { continue }
                                            let src = xp + ((b * h + sy) * w + sx) * c
                                            let acc = gwp + (i * k + j) * c
                                            for ch in c0..<c1 { acc[ch] += go[ch] * src[ch] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                if needW {
                    let t = Tensor(uninitialized: [c, 1, k, k])
                    for ch in 0..<c { for tap in 0..<taps { t.pointer[ch * taps + tap] = gwp[tap * c + ch] } }
                    gw = t
                }
                if needB { gb = gbt }
            }
            var grads: [Tensor?] = [gx, gw]
            if inputs.count == 3 { grads.append(gb) }
            return grads
        }
    }

    /// GLU with SiLU on channels-last input [..., 2H]: value (first H) · SiLU(gate (last H)).
    /// Returns [..., H].
    public static func gatedSiLU(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] % 2 == 0, "gatedSiLU: last axis of \(x.shape) must be even")
        let two = x.shape[x.rank - 1], hidden = two / 2, rows = x.count / max(two, 1)
        var outShape = x.shape
        outShape[x.rank - 1] = hidden
        let out = Tensor(uninitialized: outShape)
        let xp = UnsafePointer(x.pointer), op = out.pointer
        Parallel.forRange(rows, grain: max(1, 4096 / max(hidden, 1))) { r in
            for row in r {
                let v = xp + row * two, g = v + hidden, o = op + row * hidden
                for ch in 0..<hidden {
                    let z = g[ch]
                    o[ch] = v[ch] * (z / (1 + Foundation.exp(-z)))
                }
            }
        }
        let dx = x.detached()
        return out.recording("gated_silu", [x]) { gOut in
            let gx = Tensor(uninitialized: dx.shape)
            let xp = UnsafePointer(dx.pointer), gp = UnsafePointer(gOut.pointer), gxp = gx.pointer
            Parallel.forRange(rows, grain: max(1, 4096 / max(hidden, 1))) { r in
                for row in r {
                    let v = xp + row * two, g = v + hidden, go = gp + row * hidden
                    let gv = gxp + row * two, gg = gv + hidden
                    for ch in 0..<hidden {
                        let z = g[ch]
                        let s = 1 / (1 + Foundation.exp(-z))
                        gv[ch] = go[ch] * z * s
                        gg[ch] = go[ch] * v[ch] * s * (1 + z * (1 - s))
                    }
                }
            }
            return [gx]
        }
    }
}
