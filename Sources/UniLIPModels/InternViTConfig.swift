import Foundation

/// The `vision_config` of an InternVL checkpoint (`InternVisionConfig`), with its JSON keys.
/// Keys absent from the JSON take InternVisionConfig's defaults; unknown keys are ignored.
public struct InternViTConfig: Codable, Sendable, Equatable {
    public var numChannels: Int
    public var patchSize: Int
    public var imageSize: Int
    public var qkvBias: Bool
    public var hiddenSize: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    /// RMS-normalised queries and keys (InternViT-6B); not supported by `InternViT`.
    public var qkNormalization: Bool
    public var numHiddenLayers: Int
    /// "gelu" (exact) or "gelu_pytorch_tanh" / "gelu_new" (tanh approximation).
    public var hiddenAct: String
    /// "layer_norm" or "rms_norm".
    public var normType: String
    public var layerNormEps: Float
    public var dropout: Float
    public var dropPathRate: Float
    public var attentionDropout: Float
    /// Standard deviation of the truncated-normal initialisation.
    public var initializerRange: Float
    /// Initial value of the layer scales `ls1`, `ls2`.
    public var initializerFactor: Float
    public var useFlashAttn: Bool

    enum CodingKeys: String, CodingKey {
        case numChannels = "num_channels"
        case patchSize = "patch_size"
        case imageSize = "image_size"
        case qkvBias = "qkv_bias"
        case hiddenSize = "hidden_size"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case qkNormalization = "qk_normalization"
        case numHiddenLayers = "num_hidden_layers"
        case hiddenAct = "hidden_act"
        case normType = "norm_type"
        case layerNormEps = "layer_norm_eps"
        case dropout
        case dropPathRate = "drop_path_rate"
        case attentionDropout = "attention_dropout"
        case initializerRange = "initializer_range"
        case initializerFactor = "initializer_factor"
        case useFlashAttn = "use_flash_attn"
    }

    /// Defaults are InternVisionConfig's (those of InternViT-6B).
    public init(numChannels: Int = 3, patchSize: Int = 14, imageSize: Int = 224, qkvBias: Bool = false,
                hiddenSize: Int = 3200, numAttentionHeads: Int = 25, intermediateSize: Int = 12800,
                qkNormalization: Bool = true, numHiddenLayers: Int = 48, hiddenAct: String = "gelu",
                normType: String = "rms_norm", layerNormEps: Float = 1e-6, dropout: Float = 0,
                dropPathRate: Float = 0, attentionDropout: Float = 0, initializerRange: Float = 0.02,
                initializerFactor: Float = 0.1, useFlashAttn: Bool = true) {
        self.numChannels = numChannels
        self.patchSize = patchSize
        self.imageSize = imageSize
        self.qkvBias = qkvBias
        self.hiddenSize = hiddenSize
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.qkNormalization = qkNormalization
        self.numHiddenLayers = numHiddenLayers
        self.hiddenAct = hiddenAct
        self.normType = normType
        self.layerNormEps = layerNormEps
        self.dropout = dropout
        self.dropPathRate = dropPathRate
        self.attentionDropout = attentionDropout
        self.initializerRange = initializerRange
        self.initializerFactor = initializerFactor
        self.useFlashAttn = useFlashAttn
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = InternViTConfig()
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        self.init(numChannels: try value(.numChannels, d.numChannels),
                  patchSize: try value(.patchSize, d.patchSize),
                  imageSize: try value(.imageSize, d.imageSize),
                  qkvBias: try value(.qkvBias, d.qkvBias),
                  hiddenSize: try value(.hiddenSize, d.hiddenSize),
                  numAttentionHeads: try value(.numAttentionHeads, d.numAttentionHeads),
                  intermediateSize: try value(.intermediateSize, d.intermediateSize),
                  qkNormalization: try value(.qkNormalization, d.qkNormalization),
                  numHiddenLayers: try value(.numHiddenLayers, d.numHiddenLayers),
                  hiddenAct: try value(.hiddenAct, d.hiddenAct),
                  normType: try value(.normType, d.normType),
                  layerNormEps: try value(.layerNormEps, d.layerNormEps),
                  dropout: try value(.dropout, d.dropout),
                  dropPathRate: try value(.dropPathRate, d.dropPathRate),
                  attentionDropout: try value(.attentionDropout, d.attentionDropout),
                  initializerRange: try value(.initializerRange, d.initializerRange),
                  initializerFactor: try value(.initializerFactor, d.initializerFactor),
                  useFlashAttn: try value(.useFlashAttn, d.useFlashAttn))
    }

    /// Patches per side at `imageSize` (the stored position grid).
    public var gridSize: Int { imageSize / patchSize }

    /// Patch tokens at `imageSize`, without the CLS token.
    public var numPatches: Int { gridSize * gridSize }

    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// A small encoder for 64×64 images: 8×8 patches of 8 pixels, width 128, 4 layers, 4 heads.
    public static let tiny = InternViTConfig(
        patchSize: 8, imageSize: 64, qkvBias: true, hiddenSize: 128, numAttentionHeads: 4,
        intermediateSize: 512, qkNormalization: false, numHiddenLayers: 4, normType: "layer_norm",
        layerNormEps: 1e-6, initializerFactor: 1.0, useFlashAttn: false)

    /// InternViT-300M-448px (V2.5), the vision encoder of InternVL3-1B/2B and UniLIP.
    public static let internViT300M = InternViTConfig(
        patchSize: 14, imageSize: 448, qkvBias: true, hiddenSize: 1024, numAttentionHeads: 16,
        intermediateSize: 4096, qkNormalization: false, numHiddenLayers: 24, normType: "layer_norm",
        layerNormEps: 1e-6, initializerFactor: 0.1)
}
