import Foundation

/// Hyper-parameters of a Qwen2 / Qwen2.5 decoder, decoded from transformers' `config.json`
/// (snake_case keys; unknown keys are ignored, absent ones take Qwen2 defaults).
public struct Qwen2Config: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var hiddenAct: String
    public var bosTokenId: Int?
    /// End-of-sequence ids (config.json holds one id or a list).
    public var eosTokenIds: [Int]
    /// Per-head width; `hidden_size / num_attention_heads` unless the file says otherwise.
    public var headDim: Int

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int, rmsNormEps: Float = 1e-6,
                ropeTheta: Float = 1_000_000, maxPositionEmbeddings: Int = 32768,
                tieWordEmbeddings: Bool = false, hiddenAct: String = "silu",
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], headDim: Int? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.tieWordEmbeddings = tieWordEmbeddings
        self.hiddenAct = hiddenAct
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)
    }

    /// Small model for training from scratch on the synthetic world: by default hidden 128,
    /// 4 layers, 4 heads × 32, 2 KV heads, SwiGLU width 344 (2.6875 × hidden, rounded to 8).
    public static func tiny(vocabSize: Int = 520, hiddenSize: Int = 128, layers: Int = 4, heads: Int = 4,
                            kvHeads: Int = 2) -> Qwen2Config {
        Qwen2Config(vocabSize: vocabSize, hiddenSize: hiddenSize,
                    intermediateSize: (hiddenSize * 43 / 16 + 7) / 8 * 8, numHiddenLayers: layers,
                    numAttentionHeads: heads, numKeyValueHeads: kvHeads, rmsNormEps: 1e-6, ropeTheta: 10_000,
                    maxPositionEmbeddings: 2048, tieWordEmbeddings: true)
    }

    /// The language model of InternVL3-1B (Qwen2.5-0.5B with InternVL's extended vocabulary).
    public static let qwen25_05B = Qwen2Config(
        vocabSize: 151_674, hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24,
        numAttentionHeads: 14, numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
        maxPositionEmbeddings: 32768, tieWordEmbeddings: false, bosTokenId: 151_643, eosTokenIds: [151_645])

    /// The language model of InternVL3-2B (Qwen2.5-1.5B with InternVL's extended vocabulary).
    public static let qwen25_15B = Qwen2Config(
        vocabSize: 151_674, hiddenSize: 1536, intermediateSize: 8960, numHiddenLayers: 28,
        numAttentionHeads: 12, numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
        maxPositionEmbeddings: 32768, tieWordEmbeddings: false, bosTokenId: 151_643, eosTokenIds: [151_645])

    /// Every check the decoder relies on; a bad config.json throws instead of crashing.
    public func validate() throws {
        guard vocabSize > 0, hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0 else {
            throw ModelConfigError("Qwen2 config: vocab_size \(vocabSize), hidden_size \(hiddenSize), intermediate_size \(intermediateSize) and num_hidden_layers \(numHiddenLayers) must be positive")
        }
        guard numAttentionHeads > 0, numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelConfigError("Qwen2 config: num_attention_heads \(numAttentionHeads) must be a positive multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelConfigError("Qwen2 config: head_dim \(headDim) must be positive and even (rotary embedding)")
        }
        guard hiddenAct == "silu" else { throw ModelConfigError("Qwen2 config: hidden_act '\(hiddenAct)' is not supported (only silu)") }
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings"
        case hiddenAct = "hidden_act"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case headDim = "head_dim"
    }

    private struct RopeParameters: Codable {
        var ropeTheta: Float?
        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta" }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let hidden = try c.decode(Int.self, forKey: .hiddenSize)
        let heads = try c.decode(Int.self, forKey: .numAttentionHeads)
        // transformers ≥ 5 moves rope_theta into rope_parameters.
        let nested = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)?.ropeTheta
        let theta = try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? nested ?? 10_000
        var eos: [Int] = []
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenId) {
            eos = [one]
        } else if let many = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eos = many
        }
        self.init(vocabSize: try c.decode(Int.self, forKey: .vocabSize),
                  hiddenSize: hidden,
                  intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
                  numHiddenLayers: try c.decode(Int.self, forKey: .numHiddenLayers),
                  numAttentionHeads: heads,
                  numKeyValueHeads: try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? heads,
                  rmsNormEps: try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6,
                  ropeTheta: theta,
                  maxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 32768,
                  tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
                  hiddenAct: try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu",
                  bosTokenId: try? c.decodeIfPresent(Int.self, forKey: .bosTokenId),
                  eosTokenIds: eos,
                  headDim: try c.decodeIfPresent(Int.self, forKey: .headDim))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 {
            try c.encode(eosTokenIds[0], forKey: .eosTokenId)
        } else if !eosTokenIds.isEmpty {
            try c.encode(eosTokenIds, forKey: .eosTokenId)
        }
        try c.encode(headDim, forKey: .headDim)
    }
}
