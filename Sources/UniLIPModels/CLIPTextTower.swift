import Foundation
import UniLIPCore
import UniLIPNN

/// Configuration of the small text encoder used for CLIP-style contrastive pretraining.
public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var maxLength: Int
    public var embedDim: Int

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numLayers = "num_hidden_layers"
        case numHeads = "num_attention_heads", maxLength = "max_position_embeddings", embedDim = "projection_dim"
    }

    public init(vocabSize: Int, hiddenSize: Int = 128, numLayers: Int = 2, numHeads: Int = 4,
                maxLength: Int = 64, embedDim: Int = 128) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.maxLength = maxLength
        self.embedDim = embedDim
    }
}

/// A bidirectional transformer over caption tokens, mean-pooled over non-padding positions and
/// projected into the shared image–text space.
public final class CLIPTextTower: Module {
    public let config: CLIPTextConfig
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Tensor
    public let layers: ModuleList
    public let finalNorm: LayerNorm
    public let projection: Linear

    public init(_ config: CLIPTextConfig, rng: inout RandomGenerator) {
        self.config = config
        tokenEmbedding = Embedding(config.vocabSize, config.hiddenSize, rng: &rng)
        positionEmbedding = Tensor.normal([config.maxLength, config.hiddenSize], std: 0.01, rng: &rng)
        var blocks: [Module] = []
        for _ in 0..<config.numLayers {
            blocks.append(TransformerBlock(dim: config.hiddenSize, heads: config.numHeads, rng: &rng))
        }
        layers = ModuleList(blocks)
        finalNorm = LayerNorm(config.hiddenSize)
        projection = Linear(config.hiddenSize, config.embedDim, bias: false, rng: &rng)
        super.init()
        child("token_embedding", tokenEmbedding)
        parameter("position_embedding", positionEmbedding)
        child("layers", layers)
        child("final_layer_norm", finalNorm)
        child("text_projection", projection)
    }

    /// ids: B rows padded to a common length L ≤ maxLength; mask [B, L] with 1 for real tokens.
    /// Returns [B, embedDim] (not normalised).
    public func callAsFunction(ids: [Int], batch: Int, length: Int, mask: Tensor) -> Tensor {
        precondition(length <= config.maxLength, "caption of \(length) tokens exceeds \(config.maxLength)")
        var x = tokenEmbedding(ids, shape: [batch, length])
            + positionEmbedding.sliced(axis: 0, start: 0, end: length)
        // Norms, projections and MLPs run on the real tokens only; padded rows come back as zeros.
        let packing = TokenPacking(mask: mask)
        let packed = packing.isDense ? nil : packing
        if let packed { x = x.packedTokens(packed) }
        for case let block as TransformerBlock in layers.namedChildren.map(\.1) {
            let h = x + block.attn(block.norm1(x), mask: nil, keyPadding: mask, packing: packed)
            x = h + block.mlp(block.norm2(h))
        }
        x = finalNorm(x)
        if let packed { x = x.unpackedTokens(packed) }
        let m = mask.reshaped([batch, length, 1])
        let pooled = (x * m).sum(axis: 1) / m.sum(axis: 1)
        return projection(pooled)
    }
}

/// Symmetric InfoNCE over a batch of paired embeddings, with a learnable log-temperature.
public func contrastiveLoss(image: Tensor, text: Tensor, logScale: Tensor) -> Tensor {
    func normalize(_ x: Tensor) -> Tensor { x / (x.square().sum(axis: -1, keepDims: true) + 1e-12).sqrt() }
    let n = image.shape[0]
    // Rows of `text` past the first n are extra negatives: they compete for every image, and
    // the text-to-image direction covers the n matched captions only.
    precondition(text.shape[0] >= n, "contrastiveLoss: \(text.shape[0]) texts for \(n) images")
    let logits = normalize(image).matmul(normalize(text), transposeB: true) * logScale.clamped(0, 4.6052).exp()
    let targets = Array(0..<n)
    let matched = text.shape[0] == n ? logits : logits.sliced(axis: 1, start: 0, end: n)
    return (crossEntropy(logits, targets) + crossEntropy(matched.transposed(0, 1), targets)) * 0.5
}
