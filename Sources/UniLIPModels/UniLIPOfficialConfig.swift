import Foundation
import UniLIPCore
import UniLIPNN

/// transformers' `InternVLVisionConfig` as the published UniLIP checkpoints write it
/// (`vision_config`); `image_size` and `patch_size` may be one number or [H, W].
public struct OfficialVisionConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var imageSize: [Int]
    public var patchSize: [Int]
    public var layerNormEps: Float
    public var normType: String
    public var attentionBias: Bool
    public var useQKNorm: Bool
    public var hiddenAct: String
    public var layerScaleInitValue: Float

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", imageSize = "image_size", patchSize = "patch_size"
        case layerNormEps = "layer_norm_eps", normType = "norm_type", attentionBias = "attention_bias"
        case useQKNorm = "use_qk_norm", hiddenAct = "hidden_act", layerScaleInitValue = "layer_scale_init_value"
    }

    public init(_ vit: InternViTConfig) {
        hiddenSize = vit.hiddenSize
        numHiddenLayers = vit.numHiddenLayers
        numAttentionHeads = vit.numAttentionHeads
        intermediateSize = vit.intermediateSize
        imageSize = [vit.imageSize, vit.imageSize]
        patchSize = [vit.patchSize, vit.patchSize]
        layerNormEps = vit.layerNormEps
        normType = vit.normType
        attentionBias = vit.qkvBias
        useQKNorm = vit.qkNormalization
        hiddenAct = vit.hiddenAct
        layerScaleInitValue = vit.initializerFactor
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OfficialVisionConfig(.internViT300M)
        func pair(_ key: CodingKeys, _ fallback: [Int]) throws -> [Int] {
            if let one = try? c.decodeIfPresent(Int.self, forKey: key) { return [one, one] }
            return try c.decodeIfPresent([Int].self, forKey: key) ?? fallback
        }
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        imageSize = try pair(.imageSize, d.imageSize)
        patchSize = try pair(.patchSize, d.patchSize)
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        normType = try c.decodeIfPresent(String.self, forKey: .normType) ?? d.normType
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        useQKNorm = try c.decodeIfPresent(Bool.self, forKey: .useQKNorm) ?? d.useQKNorm
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerScaleInitValue = try c.decodeIfPresent(Float.self, forKey: .layerScaleInitValue) ?? d.layerScaleInitValue
    }

    /// The same encoder in the remote-code InternViT terms our model uses.
    public func internViT() throws -> InternViTConfig {
        guard imageSize.count == 2, patchSize.count == 2, imageSize[0] == imageSize[1], patchSize[0] == patchSize[1] else {
            throw ModelConfigError("vision_config: only square image_size and patch_size are supported, got \(imageSize) and \(patchSize)")
        }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw ModelConfigError("vision_config: hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard !useQKNorm else { throw ModelConfigError("vision_config: use_qk_norm is not supported") }
        guard normType == "layer_norm" || normType == "rms_norm" else {
            throw ModelConfigError("vision_config: norm_type '\(normType)' is not layer_norm or rms_norm")
        }
        return InternViTConfig(patchSize: patchSize[0], imageSize: imageSize[0], qkvBias: attentionBias,
                               hiddenSize: hiddenSize, numAttentionHeads: numAttentionHeads,
                               intermediateSize: intermediateSize, qkNormalization: false,
                               numHiddenLayers: numHiddenLayers, hiddenAct: hiddenAct, normType: normType,
                               layerNormEps: layerNormEps, initializerFactor: layerScaleInitValue, useFlashAttn: false)
    }
}

/// The sampling scheduler (diffusers `DPMSolverMultistepScheduler` config keys). Only the
/// form SANA ships is implemented: dpmsolver++, order 2, flow prediction on flow sigmas.
public struct OfficialSchedulerConfig: Codable, Sendable, Equatable {
    public var algorithmType: String = "dpmsolver++"
    public var solverOrder: Int = 2
    public var predictionType: String = "flow_prediction"
    public var useFlowSigmas: Bool = true
    public var flowShift: Double = 3
    public var numTrainTimesteps: Int = 1000

    enum CodingKeys: String, CodingKey {
        case algorithmType = "algorithm_type", solverOrder = "solver_order", predictionType = "prediction_type"
        case useFlowSigmas = "use_flow_sigmas", flowShift = "flow_shift", numTrainTimesteps = "num_train_timesteps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OfficialSchedulerConfig()
        algorithmType = try c.decodeIfPresent(String.self, forKey: .algorithmType) ?? d.algorithmType
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder) ?? d.solverOrder
        predictionType = try c.decodeIfPresent(String.self, forKey: .predictionType) ?? d.predictionType
        useFlowSigmas = try c.decodeIfPresent(Bool.self, forKey: .useFlowSigmas) ?? d.useFlowSigmas
        flowShift = try c.decodeIfPresent(Double.self, forKey: .flowShift) ?? d.flowShift
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? d.numTrainTimesteps
    }

    public func validate() throws {
        guard algorithmType == "dpmsolver++", solverOrder == 2, predictionType == "flow_prediction", useFlowSigmas,
              numTrainTimesteps == 1000 else {
            throw ModelConfigError("scheduler_config: only dpmsolver++ order 2 with flow_prediction, use_flow_sigmas and 1000 train steps is supported (got \(algorithmType), order \(solverOrder), \(predictionType), use_flow_sigmas \(useFlowSigmas), \(numTrainTimesteps) steps)")
        }
        guard flowShift.isFinite && flowShift > 0 else { throw ModelConfigError("scheduler_config: flow_shift must be positive") }
    }
}

/// `config.json` of a published UniLIP checkpoint (`UniLIP_InternVLForCausalLM`,
/// model_type `unilip_internvl`). Unknown keys are ignored. The published files carry no DiT or
/// decoder config; the optional `dit_config` (diffusers SanaTransformer2DModel keys),
/// `vae_decoder_config` (diffusers AutoencoderDC keys) and `scheduler_config` override the
/// presets chosen by the LLM width (896: UniLIP-1B, 1536: UniLIP-3B).
public struct UniLIPOfficialConfig: Codable, Sendable, Equatable {
    public static let modelType = "unilip_internvl"

    public var architectures: [String]
    public var modelType: String
    public var downsampleRatio: Double
    public var imageTokenId: Int?
    public var visionFeatureLayer: Int
    public var visionConfig: OfficialVisionConfig
    public var textConfig: Qwen2Config
    public var numQueries: Int
    public var connectLayers: Int
    public var unilipFactor: Float
    public var ditConfig: SanaConfig?
    public var vaeDecoderConfig: DCAEDecoderConfig?
    public var schedulerConfig: OfficialSchedulerConfig?
    public var torchDtype: String?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", downsampleRatio = "downsample_ratio"
        case imageTokenId = "image_token_id", visionFeatureLayer = "vision_feature_layer"
        case visionConfig = "vision_config", textConfig = "text_config", numQueries = "n_query"
        case connectLayers = "connect_layer", unilipFactor = "unilip_factor", ditConfig = "dit_config"
        case vaeDecoderConfig = "vae_decoder_config", schedulerConfig = "scheduler_config", torchDtype = "torch_dtype"
    }

    public init(vision: InternViTConfig, text: Qwen2Config, numQueries: Int = 256, connectLayers: Int = 6,
                unilipFactor: Float, dit: SanaConfig? = nil, decoder: DCAEDecoderConfig? = nil,
                scheduler: OfficialSchedulerConfig? = nil) {
        architectures = ["UniLIP_InternVLForCausalLM"]
        modelType = Self.modelType
        downsampleRatio = 0.5
        imageTokenId = nil
        visionFeatureLayer = -1
        visionConfig = OfficialVisionConfig(vision)
        textConfig = text
        self.numQueries = numQueries
        self.connectLayers = connectLayers
        self.unilipFactor = unilipFactor
        ditConfig = dit
        vaeDecoderConfig = decoder
        schedulerConfig = scheduler
        torchDtype = "bfloat16"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        modelType = try c.decode(String.self, forKey: .modelType)
        downsampleRatio = try c.decodeIfPresent(Double.self, forKey: .downsampleRatio) ?? 0.5
        imageTokenId = try c.decodeIfPresent(Int.self, forKey: .imageTokenId)
        visionFeatureLayer = try c.decodeIfPresent(Int.self, forKey: .visionFeatureLayer) ?? -1
        visionConfig = try c.decode(OfficialVisionConfig.self, forKey: .visionConfig)
        textConfig = try c.decode(Qwen2Config.self, forKey: .textConfig)
        numQueries = try c.decodeIfPresent(Int.self, forKey: .numQueries) ?? 256
        connectLayers = try c.decodeIfPresent(Int.self, forKey: .connectLayers) ?? 6
        unilipFactor = try c.decode(Float.self, forKey: .unilipFactor)
        ditConfig = try c.decodeIfPresent(SanaConfig.self, forKey: .ditConfig)
        vaeDecoderConfig = try c.decodeIfPresent(DCAEDecoderConfig.self, forKey: .vaeDecoderConfig)
        schedulerConfig = try c.decodeIfPresent(OfficialSchedulerConfig.self, forKey: .schedulerConfig)
        torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype)
    }

    /// UniLIP-1B: InternViT-300M + Qwen2.5-0.5B (InternVL3-1B), SANA-0.6B 512 px, DC-AE f32c32.
    public static let unilip1B = UniLIPOfficialConfig(vision: .internViT300M, text: .qwen25_05B, unilipFactor: 10.6)
    /// UniLIP-3B: InternViT-300M + Qwen2.5-1.5B (InternVL3-2B), SANA-1.6B 512 px, DC-AE f32c32.
    public static let unilip3B = UniLIPOfficialConfig(vision: .internViT300M, text: .qwen25_15B, unilipFactor: 9.5)

    /// A preset by name: `unilip-1b` or `unilip-3b`.
    public static func preset(named name: String) -> UniLIPOfficialConfig? {
        switch name.lowercased() {
        case "unilip-1b", "1b": return unilip1B
        case "unilip-3b", "3b": return unilip3B
        default: return nil
        }
    }

    // MARK: Resolved parts

    public func vision() throws -> InternViTConfig { try visionConfig.internViT() }

    /// The DiT: `dit_config` (read as current diffusers does), or the SANA preset of the LLM
    /// width. The presets add SANA's sin-cos position embedding: UniLIP pins diffusers 0.32.2
    /// (requirements.txt), which adds it whenever `interpolation_scale` is null, so the
    /// published DiTs were trained and sampled with it.
    public func dit() throws -> SanaConfig {
        if let ditConfig { return ditConfig }
        var preset: SanaConfig
        switch textConfig.hiddenSize {
        case 896: preset = .sana600M
        case 1536: preset = .sana1600M
        default:
            throw ModelConfigError("no dit_config and no SANA preset for LLM width \(textConfig.hiddenSize) (presets: 896 → SANA-0.6B, 1536 → SANA-1.6B)")
        }
        preset.legacyDefaultPositionEmbedding = true
        return preset
    }

    /// The pixel decoder: `vae_decoder_config`, or DC-AE f32c32.
    public var decoder: DCAEDecoderConfig { vaeDecoderConfig ?? .f32c32 }

    public var scheduler: OfficialSchedulerConfig { schedulerConfig ?? OfficialSchedulerConfig() }

    /// The understanding model's config (image size from `vision_config`).
    public func chat() throws -> InternVLChatConfig {
        let v = try vision()
        return InternVLChatConfig(vision: v, llm: textConfig, imageSize: v.imageSize)
    }

    public func autoencoder() throws -> UniLIPAutoencoderConfig {
        let v = try vision()
        return UniLIPAutoencoderConfig(vision: v, llmHiddenSize: textConfig.hiddenSize, decoder: decoder, imageSize: v.imageSize)
    }

    public func generator() throws -> UniLIPGeneratorConfig {
        UniLIPGeneratorConfig(numQueries: numQueries, connectLayers: connectLayers, llmConfig: textConfig,
                              ditConfig: try dit(), latentScale: unilipFactor, flowShift: scheduler.flowShift)
    }

    /// Every check the model relies on, each error naming the field.
    public func validate() throws {
        guard modelType == Self.modelType else {
            throw ModelConfigError("model_type is '\(modelType)', expected '\(Self.modelType)'")
        }
        guard downsampleRatio == 0.5 else { throw ModelConfigError("downsample_ratio \(downsampleRatio): only 0.5 is supported") }
        guard visionFeatureLayer == -1 else {
            throw ModelConfigError("vision_feature_layer \(visionFeatureLayer): only -1 (the last layer) is supported")
        }
        do { try textConfig.validate() } catch { throw ModelConfigError("text_config: \(error)") }
        try chat().validate()
        try autoencoder().validate()
        try scheduler.validate()
        try generator().validate()
    }
}

/// The modules of a published UniLIP checkpoint, built once and shared: the vision tower and
/// `mlp1` serve understanding, the autoencoder and edit references; the LLM serves
/// understanding and the generation conditioning.
public final class UniLIPOfficialModules {
    public let config: UniLIPOfficialConfig
    public let chat: InternVLChatModel
    public let autoencoder: UniLIPAutoencoder
    public let generator: UniLIPGenerator

    /// Builds the modules; with `RandomGenerator.unfilled` no parameter memory is touched, for
    /// a checkpoint to fill.
    public init(_ config: UniLIPOfficialConfig, rng: inout RandomGenerator) throws {
        try config.validate()
        self.config = config
        let chatConfig = try config.chat(), aeConfig = try config.autoencoder()
        let vision = InternViT(config: chatConfig.visionConfig, rng: &rng)
        let projector = InternVLProjector(visionHidden: chatConfig.visionConfig.hiddenSize,
                                          llmHidden: config.textConfig.hiddenSize, rng: &rng)
        let language = Qwen2ForCausalLM(config.textConfig, rng: &rng)
        chat = InternVLChatModel(chatConfig, vision: vision, projector: projector, language: language)
        let latent = UniLIPLatent(dim: aeConfig.llmHiddenSize, latentChannels: aeConfig.latentChannels,
                                  blocks: aeConfig.downBlocks, rng: &rng)
        autoencoder = UniLIPAutoencoder(aeConfig, encoder: vision, mlp1: projector, latent: latent,
                                        decoder: DCAEDecoder(config: aeConfig.decoderConfig, rng: &rng))
        generator = UniLIPGenerator(try config.generator(), rng: &rng)
    }

    /// Every parameter and buffer under its name in the published checkpoint
    /// (transformers' current layout), each tensor once.
    public func namedTensors() -> [(String, Tensor)] {
        var out = chat.vision.namedTensors(prefix: "model.vision_tower")
        out += chat.projector.namedTensors(prefix: "model.multi_modal_projector")
        out += chat.language.model.namedTensors(prefix: "model.language_model")
        if let head = chat.language.lmHead { out += head.namedTensors(prefix: "lm_head") }
        out += generator.namedTensors(prefix: "model")
        out += autoencoder.decoder.namedTensors(prefix: "model.vae_decoder.decoder")
        out += autoencoder.latent.downBlocks.namedTensors(prefix: "model.vae_decoder.down_blocks")
        out += autoencoder.latent.downMLP.namedTensors(prefix: "model.vae_decoder.down_mlp")
        return out
    }

    public func eval() {
        chat.eval()
        autoencoder.eval()
        generator.eval()
    }

    public func freeze() {
        chat.freeze()
        autoencoder.freeze()
        generator.freeze()
    }
}
