import Foundation
import UniLIPCore
import UniLIPNN

/// The InternVL chat model's `config.json` (the keys of InternVL's remote-code `InternVLChatConfig`).
public struct InternVLChatConfig: Codable, Sendable, Equatable {
    public var visionConfig: InternViTConfig
    public var llmConfig: Qwen2Config
    public var forceImageSize: Int
    public var downsampleRatio: Double
    public var psVersion: String
    public var selectLayer: Int
    public var template: String
    public var modelType: String

    enum CodingKeys: String, CodingKey {
        case visionConfig = "vision_config", llmConfig = "llm_config", forceImageSize = "force_image_size"
        case downsampleRatio = "downsample_ratio", psVersion = "ps_version", selectLayer = "select_layer"
        case template, modelType = "model_type"
    }

    public init(vision: InternViTConfig, llm: Qwen2Config, imageSize: Int) {
        visionConfig = vision
        llmConfig = llm
        forceImageSize = imageSize
        downsampleRatio = 0.5
        psVersion = "v2"
        selectLayer = -1
        template = "internvl2_5"
        modelType = "internvl_chat"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        visionConfig = try c.decode(InternViTConfig.self, forKey: .visionConfig)
        llmConfig = try c.decode(Qwen2Config.self, forKey: .llmConfig)
        forceImageSize = try c.decodeIfPresent(Int.self, forKey: .forceImageSize) ?? visionConfig.imageSize
        downsampleRatio = try c.decodeIfPresent(Double.self, forKey: .downsampleRatio) ?? 0.5
        psVersion = try c.decodeIfPresent(String.self, forKey: .psVersion) ?? "v2"
        selectLayer = try c.decodeIfPresent(Int.self, forKey: .selectLayer) ?? -1
        template = try c.decodeIfPresent(String.self, forKey: .template) ?? "internvl2_5"
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "internvl_chat"
    }

    /// Image tokens per image: (size / patch)² / 4.
    public var imageTokens: Int {
        let g = forceImageSize / visionConfig.patchSize
        return g * g / 4
    }

    /// The tiny preset for 64×64 ShapesWorld images: 16 image tokens.
    public static func tiny(vocabSize: Int) -> InternVLChatConfig {
        InternVLChatConfig(vision: .tiny, llm: .tiny(vocabSize: vocabSize), imageSize: 64)
    }

    public func validate() throws {
        try llmConfig.validate()
        guard downsampleRatio == 0.5, psVersion == "v2" else {
            throw ModelConfigError("only downsample_ratio 0.5 with ps_version v2 is supported")
        }
        guard forceImageSize % (2 * visionConfig.patchSize) == 0 else {
            throw ModelConfigError("force_image_size \(forceImageSize) must be a multiple of 2 × patch \(visionConfig.patchSize)")
        }
    }
}

public struct ModelConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// How the language-model loss averages over labelled tokens (InternVL's `loss_reduction`): each
/// token of a sample with n labelled tokens weighs 1 (`token`: long answers count for more), 1/n
/// (`sample`: every sample the same) or 1/√n (`square`, InternVL 2.5 and later: in between).
public enum LossReduction: String, Codable, CaseIterable, Sendable {
    case token, sample, square

    /// The weight of each labelled token of a sample with `labelledTokens` of them.
    public func weight(labelledTokens n: Int) -> Float {
        guard n > 0 else { return 0 }
        switch self {
        case .token: return 1
        case .sample: return 1 / Float(n)
        case .square: return 1 / Float(n).squareRoot()
        }
    }
}

/// InternVL: InternViT → pixel shuffle → `mlp1` → Qwen2, with the image tokens replacing the
/// `<IMG_CONTEXT>` embeddings. Names follow InternVL's remote code: `vision_model.*`, `mlp1.*`,
/// `language_model.model.*`, `language_model.lm_head.*`.
public final class InternVLChatModel: Module {
    public let config: InternVLChatConfig
    public let vision: InternViT
    public let projector: InternVLProjector
    public let language: Qwen2ForCausalLM

    public convenience init(_ config: InternVLChatConfig, rng: inout RandomGenerator) {
        let vision = InternViT(config: config.visionConfig, rng: &rng)
        let projector = InternVLProjector(visionHidden: config.visionConfig.hiddenSize,
                                          llmHidden: config.llmConfig.hiddenSize, rng: &rng)
        self.init(config, vision: vision, projector: projector, language: Qwen2ForCausalLM(config.llmConfig, rng: &rng))
    }

    /// A model over existing modules (not copied: modules shared with an autoencoder or a
    /// generator stay one set of weights).
    public init(_ config: InternVLChatConfig, vision: InternViT, projector: InternVLProjector, language: Qwen2ForCausalLM) {
        precondition(vision.config == config.visionConfig && projector.llmHidden == config.llmConfig.hiddenSize
                     && language.config == config.llmConfig, "InternVLChatModel: modules do not match the config")
        self.config = config
        self.vision = vision
        self.projector = projector
        self.language = language
        super.init()
        child("vision_model", vision)
        child("mlp1", projector)
        child("language_model", language)
    }

    /// Image tokens [B, T, d] for normalised pixels [B, 3, S, S]. The encoder runs without a graph
    /// when its parameters are frozen.
    public func imageTokens(_ pixels: Tensor) -> Tensor {
        let grid = vision.grid(height: pixels.shape[2], width: pixels.shape[3])
        let frozen = !vision.parameters().contains { $0.requiresGrad }
        let hidden = frozen ? withNoGrad { vision(pixels) } : vision(pixels)
        return projector.tokens(fromHidden: hidden, grid: grid)
    }

    /// Token embeddings [B, L, d] with the `contextID` positions replaced, in order, by the rows of
    /// `imageTokens` [B, T, d] (row r's T tokens fill row r's T context positions).
    public func inputEmbeddings(ids: [Int], batch: Int, imageTokens: Tensor?, contextID: Int) -> Tensor {
        let length = ids.count / batch
        let text = language.model.embed(ids, batch: batch)
        guard let imageTokens else { return text }
        let t = imageTokens.shape[1], d = imageTokens.shape[2]
        var index = [Int](repeating: 0, count: batch * length)
        for r in 0..<batch {
            var k = 0
            for p in 0..<length {
                let i = r * length + p
                if ids[i] == contextID {
                    precondition(k < t, "row \(r) has more than \(t) image context tokens")
                    index[i] = batch * length + r * t + k
                    k += 1
                } else {
                    index[i] = i
                }
            }
            precondition(k == t || k == 0, "row \(r) has \(k) image context tokens, expected \(t)")
        }
        let table = Tensor.concat([text.reshaped([batch * length, d]), imageTokens.reshaped([batch * t, d])], axis: 0)
        return table.indexSelect(axis: 0, index).reshaped([batch, length, d])
    }

    /// Next-token cross entropy on the positions whose label is not -100 (labels aligned with ids:
    /// position t's logits predict label t + 1), averaged over those positions with the weights of
    /// `reduction` (InternVL's `loss_reduction`).
    public func loss(pixels: Tensor, ids: [Int], labels: [Int], batch: Int, mask: Tensor, contextID: Int,
                     reduction: LossReduction = .token) -> Tensor {
        let length = ids.count / batch
        let embeddings = inputEmbeddings(ids: ids, batch: batch, imageTokens: imageTokens(pixels), contextID: contextID)
        let hidden = language.model(embeddings: embeddings, keyPadding: mask, packPadding: true).lastHiddenState
        var targets = [Int](repeating: -100, count: batch * length)
        for r in 0..<batch {
            for p in 0..<(length - 1) { targets[r * length + p] = labels[r * length + p + 1] }
        }
        // Logits only where a label is: the prompt and image positions (most of each row) would
        // add nothing to the loss or its gradient but their share of the vocabulary projection.
        let rows = targets.indices.filter { targets[$0] != -100 }
        guard !rows.isEmpty else {
            return crossEntropy(language.logits(hidden).reshaped([batch * length, config.llmConfig.vocabSize]), targets)
        }
        let picked = hidden.reshaped([batch * length, config.llmConfig.hiddenSize]).indexSelect(axis: 0, rows)
        let logits = language.logits(picked)
        // Token averaging stays on the fused op: the same sums as the runs that made the shipped model.
        guard reduction != .token else { return crossEntropy(logits, rows.map { targets[$0] }) }
        // Each labelled position weighted by its row's label count.
        var counts = [Int](repeating: 0, count: batch)
        for i in rows { counts[i / length] += 1 }
        return weightedCrossEntropy(logits, rows.map { targets[$0] },
                                    weights: rows.map { reduction.weight(labelledTokens: counts[$0 / length]) })
    }

    /// Greedy (or sampled) answers for left-padded prompt rows.
    public func generate(pixels: Tensor?, ids: [Int], batch: Int, mask: Tensor, contextID: Int,
                         options: GenerationOptions, rng: inout RandomGenerator) -> [[Int]] {
        withNoGrad {
            let tokens = pixels.map { imageTokens($0) }
            let embeddings = inputEmbeddings(ids: ids, batch: batch, imageTokens: tokens, contextID: contextID)
            return language.generate(embeddings: embeddings, keyPadding: mask, options: options, rng: &rng)
        }
    }
}
