import Foundation

/// Width of the sinusoidal timestep features fed to `time_embed` (fixed by diffusers).
public enum SanaTimestepFrequencies { public static let channels = 256 }

/// Configuration of a SANA DiT, with the keys of diffusers' `SanaTransformer2DModel`
/// `config.json` (snake_case). Missing keys take diffusers' defaults; unknown keys are ignored.
public struct SanaConfig: Codable, Sendable, Equatable {
    public var inChannels: Int = 32
    /// nil means `inChannels` (as diffusers).
    public var outChannels: Int? = 32
    public var numAttentionHeads: Int = 70
    public var attentionHeadDim: Int = 32
    public var numLayers: Int = 20
    public var numCrossAttentionHeads: Int? = 20
    public var crossAttentionHeadDim: Int? = 112
    /// Width of the caption tokens after `caption_projection`; must equal the inner width.
    public var crossAttentionDim: Int? = 2240
    public var captionChannels: Int = 2304
    public var mlpRatio: Double = 2.5
    public var dropout: Double = 0
    /// Bias on the self-attention q/k/v projections.
    public var attentionBias: Bool = false
    public var sampleSize: Int = 32
    public var patchSize: Int = 1
    /// Affine weights on `norm2` (the FFN pre-norm); `norm1` never has them.
    public var normElementwiseAffine: Bool = false
    public var normEps: Double = 1e-6
    /// nil: no absolute position embedding. Otherwise a fixed 2-D sin-cos embedding is added
    /// after the patch embedding (not saved in checkpoints).
    public var interpolationScale: Double? = nil
    /// Guidance-distilled variants (`time_embed.guidance_embedder`); not supported here.
    public var guidanceEmbeds: Bool = false
    public var guidanceEmbedsScale: Double = 0.1
    /// q/k normalisation of the SANA 1.5 variants; only nil is supported.
    public var qkNorm: String? = nil
    public var timestepScale: Double = 1
    /// Not a config key. diffusers ≤ 0.32 (the version UniLIP pins) always adds the sin-cos
    /// position embedding, with interpolation_scale = max(sample_size / 64, 1) when the key is
    /// null; later versions add none. Set true to reproduce DiTs trained under the old rule.
    public var legacyDefaultPositionEmbedding: Bool = false

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case outChannels = "out_channels"
        case numAttentionHeads = "num_attention_heads"
        case attentionHeadDim = "attention_head_dim"
        case numLayers = "num_layers"
        case numCrossAttentionHeads = "num_cross_attention_heads"
        case crossAttentionHeadDim = "cross_attention_head_dim"
        case crossAttentionDim = "cross_attention_dim"
        case captionChannels = "caption_channels"
        case mlpRatio = "mlp_ratio"
        case dropout
        case attentionBias = "attention_bias"
        case sampleSize = "sample_size"
        case patchSize = "patch_size"
        case normElementwiseAffine = "norm_elementwise_affine"
        case normEps = "norm_eps"
        case interpolationScale = "interpolation_scale"
        case guidanceEmbeds = "guidance_embeds"
        case guidanceEmbedsScale = "guidance_embeds_scale"
        case qkNorm = "qk_norm"
        case timestepScale = "timestep_scale"
    }

    public init(inChannels: Int = 32, outChannels: Int? = 32, numAttentionHeads: Int = 70,
                attentionHeadDim: Int = 32, numLayers: Int = 20, numCrossAttentionHeads: Int? = 20,
                crossAttentionHeadDim: Int? = 112, crossAttentionDim: Int? = 2240, captionChannels: Int = 2304,
                mlpRatio: Double = 2.5, dropout: Double = 0, attentionBias: Bool = false, sampleSize: Int = 32,
                patchSize: Int = 1, normElementwiseAffine: Bool = false, normEps: Double = 1e-6,
                interpolationScale: Double? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.numAttentionHeads = numAttentionHeads
        self.attentionHeadDim = attentionHeadDim
        self.numLayers = numLayers
        self.numCrossAttentionHeads = numCrossAttentionHeads
        self.crossAttentionHeadDim = crossAttentionHeadDim
        self.crossAttentionDim = crossAttentionDim
        self.captionChannels = captionChannels
        self.mlpRatio = mlpRatio
        self.dropout = dropout
        self.attentionBias = attentionBias
        self.sampleSize = sampleSize
        self.patchSize = patchSize
        self.normElementwiseAffine = normElementwiseAffine
        self.normEps = normEps
        self.interpolationScale = interpolationScale
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SanaConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        // An explicit null keeps nil (= in_channels); an absent key takes the default.
        outChannels = c.contains(.outChannels) ? try c.decodeIfPresent(Int.self, forKey: .outChannels) : d.outChannels
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        attentionHeadDim = try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim) ?? d.attentionHeadDim
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? d.numLayers
        numCrossAttentionHeads = c.contains(.numCrossAttentionHeads)
            ? try c.decodeIfPresent(Int.self, forKey: .numCrossAttentionHeads) : d.numCrossAttentionHeads
        crossAttentionHeadDim = c.contains(.crossAttentionHeadDim)
            ? try c.decodeIfPresent(Int.self, forKey: .crossAttentionHeadDim) : d.crossAttentionHeadDim
        crossAttentionDim = c.contains(.crossAttentionDim)
            ? try c.decodeIfPresent(Int.self, forKey: .crossAttentionDim) : d.crossAttentionDim
        captionChannels = try c.decodeIfPresent(Int.self, forKey: .captionChannels) ?? d.captionChannels
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? d.mlpRatio
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? d.dropout
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? d.sampleSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        normElementwiseAffine = try c.decodeIfPresent(Bool.self, forKey: .normElementwiseAffine)
            ?? d.normElementwiseAffine
        normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? d.normEps
        interpolationScale = try c.decodeIfPresent(Double.self, forKey: .interpolationScale)
        guidanceEmbeds = try c.decodeIfPresent(Bool.self, forKey: .guidanceEmbeds) ?? d.guidanceEmbeds
        guidanceEmbedsScale = try c.decodeIfPresent(Double.self, forKey: .guidanceEmbedsScale)
            ?? d.guidanceEmbedsScale
        qkNorm = try c.decodeIfPresent(String.self, forKey: .qkNorm)
        timestepScale = try c.decodeIfPresent(Double.self, forKey: .timestepScale) ?? d.timestepScale
    }

    /// Reads a diffusers `config.json` (or the `transformer/config.json` of a pipeline folder).
    public static func load(path: String) throws -> SanaConfig {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder().decode(SanaConfig.self, from: data)
    }

    // MARK: Derived sizes

    /// Width of the token stream: heads × head dim.
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    public var resolvedOutChannels: Int { outChannels ?? inChannels }
    /// GLUMBConv hidden width, int(mlp_ratio · width) as Python truncates it.
    public var ffnHiddenDim: Int { Int((mlpRatio * Double(innerDim)).rounded(.towardZero)) }
    public var crossHeads: Int { numCrossAttentionHeads ?? numAttentionHeads }
    public var crossHeadDim: Int { crossAttentionHeadDim ?? attentionHeadDim }
    /// The interpolation scale of the position embedding actually added, or nil for none.
    public var effectivePositionEmbeddingScale: Double? {
        if let interpolationScale { return interpolationScale }
        return legacyDefaultPositionEmbedding ? Double(max(sampleSize / 64, 1)) : nil
    }

    /// Number of parameters of the model this config builds (without allocating it).
    public var parameterCount: Int {
        let w = innerDim, hid = ffnHiddenDim, ci = crossHeads * crossHeadDim, kv = crossAttentionDim ?? w
        let p = patchSize, cOut = resolvedOutChannels
        var block = 3 * w * w + (attentionBias ? 3 * w : 0) + w * w + w      // attn1
        block += w * ci + ci + 2 * (kv * ci + ci) + ci * w + w                // attn2
        block += normElementwiseAffine ? 2 * w : 0                            // norm2
        block += w * 2 * hid + 2 * hid + 2 * hid * 9 + 2 * hid + hid * w      // ff
        block += 6 * w                                                        // scale_shift_table
        let f = SanaTimestepFrequencies.channels
        var top = inChannels * p * p * w + w                                  // patch_embed
        top += f * w + w + w * w + w + w * 6 * w + 6 * w                      // time_embed
        top += captionChannels * w + w + w * w + w + w                        // caption projection + norm
        top += 2 * w + w * p * p * cOut + p * p * cOut                        // scale_shift_table, proj_out
        return top + numLayers * block
    }

    /// Problems that make the configuration unsupported, or nil.
    public var unsupportedReason: String? {
        if guidanceEmbeds { return "guidance_embeds is not supported" }
        if let qkNorm { return "qk_norm \(qkNorm) is not supported" }
        guard let cad = crossAttentionDim else { return "cross_attention_dim must be set" }
        if cad != innerDim { return "cross_attention_dim \(cad) must equal the inner width \(innerDim)" }
        if crossHeads * crossHeadDim <= 0 { return "cross-attention heads × head dim must be positive" }
        if patchSize < 1 { return "patch_size must be ≥ 1" }
        if effectivePositionEmbeddingScale != nil && innerDim % 4 != 0 {
            return "the sin-cos position embedding needs a width divisible by 4"
        }
        return nil
    }

    // MARK: Presets
    // The presets follow the released diffusers configs (interpolation_scale null: no position
    // embedding under current diffusers). A DiT fine-tuned under diffusers 0.32 (UniLIP) saw the
    // sin-cos embedding: set `legacyDefaultPositionEmbedding` for those weights.

    /// SANA-0.6B at 512 px (`Sana_600M_512px_diffusers`): 28 layers, width 1152 (36 × 32),
    /// cross-attention 16 × 72, 16×16×32 latents.
    public static let sana600M = SanaConfig(
        inChannels: 32, outChannels: 32, numAttentionHeads: 36, attentionHeadDim: 32, numLayers: 28,
        numCrossAttentionHeads: 16, crossAttentionHeadDim: 72, crossAttentionDim: 1152, captionChannels: 2304,
        mlpRatio: 2.5, attentionBias: false, sampleSize: 16, patchSize: 1, normElementwiseAffine: false,
        normEps: 1e-6, interpolationScale: nil)

    /// SANA-1.6B at 512 px (`Sana_1600M_512px_diffusers`): 20 layers, width 2240 (70 × 32),
    /// cross-attention 20 × 112.
    public static let sana1600M = SanaConfig(
        inChannels: 32, outChannels: 32, numAttentionHeads: 70, attentionHeadDim: 32, numLayers: 20,
        numCrossAttentionHeads: 20, crossAttentionHeadDim: 112, crossAttentionDim: 2240, captionChannels: 2304,
        mlpRatio: 2.5, attentionBias: false, sampleSize: 16, patchSize: 1, normElementwiseAffine: false,
        normEps: 1e-6, interpolationScale: nil)

    /// A CPU-trainable DiT with SANA's layout: 32 latent channels on a 4×4 grid (sample_size 4,
    /// patch 1, so 16 tokens; 2×2 and other grids also work), width 128 (4 heads × 32),
    /// 4 layers, cross-attention 4 × 32, FFN hidden 320 (ratio 2.5), caption tokens of
    /// width 128 (the connector's projector maps onto it). 1,239,840 parameters. The sin-cos
    /// position embedding is on (interpolation_scale 1), as UniLIP's DiT saw it under diffusers
    /// 0.32: without it, linear attention is blind to position and only the FFN's zero-padded
    /// 3×3 convolution tells the 16 tokens apart.
    public static let tiny = SanaConfig(
        inChannels: 32, outChannels: 32, numAttentionHeads: 4, attentionHeadDim: 32, numLayers: 4,
        numCrossAttentionHeads: 4, crossAttentionHeadDim: 32, crossAttentionDim: 128, captionChannels: 128,
        mlpRatio: 2.5, attentionBias: false, sampleSize: 4, patchSize: 1, normElementwiseAffine: false,
        normEps: 1e-6, interpolationScale: 1)
}
