import Foundation
import UniLIPNN

/// Stage block of the DC-AE decoder (diffusers' `decoder_block_types` values).
public enum DCAEBlockType: String, Codable, Sendable, Equatable {
    case resBlock = "ResBlock"
    case efficientViT = "EfficientViTBlock"
}

/// How each up block doubles the resolution (diffusers' `upsample_block_type`).
public enum DCAEUpsampleType: String, Codable, Sendable, Equatable {
    /// Nearest ×2 then a 3×3 conv in→out.
    case interpolate
    /// A 3×3 conv in→4·out then pixel shuffle.
    case pixelShuffle = "pixel_shuffle"
}

/// The decoder half of diffusers' `AutoencoderDC` config (`config.json` keys, snake case).
///
/// Decoding follows diffusers: missing keys take its defaults, unknown keys (encoder settings,
/// `_class_name`, …) are ignored, and the per-stage settings `decoder_block_types`,
/// `decoder_norm_types` and `decoder_act_fns` may be one string for every stage or a list.
/// Stages are indexed from the highest resolution (0) to the latent resolution (last); the
/// decoder runs them last to first, upsampling ×2 between stages.
public struct DCAEDecoderConfig: Codable, Sendable, Equatable {
    /// Image channels produced (diffusers' `in_channels`).
    public var inChannels: Int
    public var latentChannels: Int
    public var attentionHeadDim: Int
    public var blockTypes: [DCAEBlockType]
    public var blockOutChannels: [Int]
    public var layersPerBlock: [Int]
    /// Kernel sizes of the multiscale q/k/v aggregation per stage (EfficientViT stages only).
    public var qkvMultiscales: [[Int]]
    /// Only "rms_norm" (channel RMSNorm with bias) is implemented.
    public var normTypes: [String]
    /// "silu" / "swish", "relu" or "gelu" (ResBlock activation).
    public var actFns: [String]
    public var upsampleBlockType: DCAEUpsampleType
    /// Adds the latent's channels, repeat-interleaved, to `conv_in`'s output.
    public var inShortcut: Bool
    /// Activation between `norm_out` and `conv_out`.
    public var convActFn: String
    /// Latents are divided by this before decoding in diffusers pipelines (not inside the decoder).
    public var scalingFactor: Float

    public init(inChannels: Int = 3, latentChannels: Int = 32, attentionHeadDim: Int = 32,
                blockTypes: [DCAEBlockType], blockOutChannels: [Int], layersPerBlock: [Int],
                qkvMultiscales: [[Int]], normTypes: [String]? = nil, actFns: [String]? = nil,
                upsampleBlockType: DCAEUpsampleType = .interpolate, inShortcut: Bool = true,
                convActFn: String = "relu", scalingFactor: Float = 1) {
        let n = blockOutChannels.count
        self.inChannels = inChannels
        self.latentChannels = latentChannels
        self.attentionHeadDim = attentionHeadDim
        self.blockTypes = blockTypes
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.qkvMultiscales = qkvMultiscales
        self.normTypes = normTypes ?? Array(repeating: "rms_norm", count: n)
        self.actFns = actFns ?? Array(repeating: "silu", count: n)
        self.upsampleBlockType = upsampleBlockType
        self.inShortcut = inShortcut
        self.convActFn = convActFn
        self.scalingFactor = scalingFactor
    }

    /// Number of stages (resolutions).
    public var stageCount: Int { blockOutChannels.count }

    /// Spatial upsampling factor from latent to image: 2^(stages − 1).
    public var upsampleFactor: Int { 1 << (stageCount - 1) }

    /// The SANA DC-AE f32c32 decoder (`dc-ae-f32c32-sana-1.0/1.1`), UniLIP's pixel decoder:
    /// ResBlock×3 at 128/256/512 channels, EfficientViT×3 at 512/1024/1024 with multiscale
    /// kernel 5 and head dim 32, RMSNorm, SiLU, interpolate upsampling; ×32.
    public static let f32c32 = DCAEDecoderConfig(
        latentChannels: 32, attentionHeadDim: 32,
        blockTypes: [.resBlock, .resBlock, .resBlock, .efficientViT, .efficientViT, .efficientViT],
        blockOutChannels: [128, 256, 512, 512, 1024, 1024], layersPerBlock: [3, 3, 3, 3, 3, 3],
        qkvMultiscales: [[], [], [], [5], [5], [5]], upsampleBlockType: .interpolate,
        scalingFactor: 0.41407)

    /// A small decoder for 64×64 images, trainable on a CPU. It upsamples ×16, so the tiny
    /// encoder's latent (64×64 image, 8-pixel patches, 2×2 token merge → 4×4×32) decodes straight
    /// to 64×64 without the 32/28 resize of the full model. Same structure as `f32c32`:
    /// ResBlocks at 64×64 (16 ch), 32×32 (32), 16×16 (64 ×2), EfficientViT blocks at 8×8 and
    /// 4×4 (128 ch, 4 heads of 32, multiscale kernel 5), interpolate upsampling.
    public static let tiny = DCAEDecoderConfig(
        latentChannels: 32, attentionHeadDim: 32,
        blockTypes: [.resBlock, .resBlock, .resBlock, .efficientViT, .efficientViT],
        blockOutChannels: [16, 32, 64, 128, 128], layersPerBlock: [1, 1, 2, 1, 1],
        qkvMultiscales: [[], [], [], [5], [5]], upsampleBlockType: .interpolate)

    /// Checks every list length and value the decoder relies on.
    public func validate() throws {
        func fail(_ message: String) -> DCAEConfigError { DCAEConfigError.invalid(message) }
        let n = stageCount
        guard n >= 1 else { throw fail("decoder_block_out_channels is empty") }
        guard blockTypes.count == n, layersPerBlock.count == n, qkvMultiscales.count == n,
              normTypes.count == n, actFns.count == n else {
            throw fail("per-stage lists must have \(n) entries (decoder_block_out_channels): block_types \(blockTypes.count), layers_per_block \(layersPerBlock.count), qkv_multiscales \(qkvMultiscales.count), norm_types \(normTypes.count), act_fns \(actFns.count)")
        }
        guard inChannels > 0, latentChannels > 0, attentionHeadDim > 0 else {
            throw fail("in_channels, latent_channels and attention_head_dim must be positive")
        }
        guard blockOutChannels.allSatisfy({ $0 > 0 }) else { throw fail("decoder_block_out_channels must be positive") }
        guard layersPerBlock.allSatisfy({ $0 > 0 }) else {
            throw fail("decoder_layers_per_block \(layersPerBlock): stages without layers are not supported")
        }
        if inShortcut, blockOutChannels[n - 1] % latentChannels != 0 {
            throw fail("in_shortcut needs latent_channels \(latentChannels) to divide \(blockOutChannels[n - 1])")
        }
        for i in 0..<(n - 1) where (4 * blockOutChannels[i]) % blockOutChannels[i + 1] != 0 {
            throw fail("up block \(blockOutChannels[i + 1])→\(blockOutChannels[i]): shortcut needs 4·out divisible by in")
        }
        for (i, t) in normTypes.enumerated() where t != "rms_norm" {
            throw fail("decoder_norm_types[\(i)] = \(t): only rms_norm is implemented")
        }
        for (i, a) in actFns.enumerated() where DCAEDecoderConfig.activation(a) == nil {
            throw fail("decoder_act_fns[\(i)] = \(a) is not supported")
        }
        if DCAEDecoderConfig.activation(convActFn) == nil {
            throw fail("decoder_conv_act_fn = \(convActFn) is not supported")
        }
        for i in 0..<n where blockTypes[i] == .efficientViT {
            guard blockOutChannels[i] / attentionHeadDim >= 1 else {
                throw fail("stage \(i): \(blockOutChannels[i]) channels hold no head of \(attentionHeadDim)")
            }
            guard qkvMultiscales[i].allSatisfy({ $0 > 0 && $0 % 2 == 1 }) else {
                throw fail("decoder_qkv_multiscales[\(i)] = \(qkvMultiscales[i]): kernels must be odd and positive")
            }
        }
    }

    /// The activation a diffusers name stands for (`get_activation`).
    static func activation(_ name: String) -> Activation? {
        switch name.lowercased() {
        case "silu", "swish": return .silu
        case "relu": return .relu
        case "gelu": return .gelu
        default: return nil
        }
    }

    // MARK: Codable

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels"
        case latentChannels = "latent_channels"
        case attentionHeadDim = "attention_head_dim"
        case blockTypes = "decoder_block_types"
        case blockOutChannels = "decoder_block_out_channels"
        case layersPerBlock = "decoder_layers_per_block"
        case qkvMultiscales = "decoder_qkv_multiscales"
        case normTypes = "decoder_norm_types"
        case actFns = "decoder_act_fns"
        case upsampleBlockType = "upsample_block_type"
        case inShortcut = "decoder_in_shortcut"
        case convActFn = "decoder_conv_act_fn"
        case scalingFactor = "scaling_factor"
    }

    /// One string for every stage, or one per stage.
    private static func stringOrList(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys,
                                     default value: String, count: Int) throws -> [String] {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return Array(repeating: value, count: count) }
        if let s = try? c.decode(String.self, forKey: key) { return Array(repeating: s, count: count) }
        return try c.decode([String].self, forKey: key)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        inChannels = try value(.inChannels, 3)
        latentChannels = try value(.latentChannels, 32)
        attentionHeadDim = try value(.attentionHeadDim, 32)
        blockOutChannels = try value(.blockOutChannels, [128, 256, 512, 512, 1024, 1024])
        let n = blockOutChannels.count
        layersPerBlock = try value(.layersPerBlock, [3, 3, 3, 3, 3, 3])
        qkvMultiscales = try value(.qkvMultiscales, [[], [], [], [5], [5], [5]])
        let types = try Self.stringOrList(c, .blockTypes, default: "ResBlock", count: n)
        blockTypes = try types.enumerated().map { i, t in
            guard let b = DCAEBlockType(rawValue: t) else {
                throw DecodingError.dataCorruptedError(forKey: .blockTypes, in: c,
                                                       debugDescription: "decoder_block_types[\(i)] = \(t) is not ResBlock or EfficientViTBlock")
            }
            return b
        }
        normTypes = try Self.stringOrList(c, .normTypes, default: "rms_norm", count: n)
        actFns = try Self.stringOrList(c, .actFns, default: "silu", count: n)
        upsampleBlockType = try value(.upsampleBlockType, .pixelShuffle)
        inShortcut = try value(.inShortcut, true)
        convActFn = try value(.convActFn, "relu")
        scalingFactor = try value(.scalingFactor, 1)
        do {
            try validate()
        } catch let DCAEConfigError.invalid(message) {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
        }
    }

    /// Reads the decoder settings from an `AutoencoderDC` `config.json`.
    public static func load(path: String) throws -> DCAEDecoderConfig {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(DCAEDecoderConfig.self, from: data)
        } catch {
            throw DCAEConfigError.invalid("\(path): \(error)")
        }
    }
}

public enum DCAEConfigError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let m): return "DC-AE decoder config: \(m)" }
    }
}
