import Foundation
import UniLIPCore
import UniLIPNN

// InternViT, the vision encoder of InternVL, with the tensor names of InternVL's remote code
// (`embeddings.*`, `encoder.layers.N.*`), so its checkpoints load as they are.

/// Truncated-normal weight [out, in] (bounds ±2 absolute, as torch's trunc_normal_) and zero bias.
func truncNormalLinear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool, std: Float,
                       rng: inout RandomGenerator) -> Linear {
    Linear(weight: Tensor.truncatedNormal([outFeatures, inFeatures], std: std, rng: &rng),
           bias: bias ? Tensor(zeros: [outFeatures]) : nil)
}

/// A convolution whose kernel equals its stride (`patch_embedding`, weight [D, C, p, p] and bias
/// [D]), computed as one GEMM over all patches of the batch: [B, C, H, W] → [B, h·w, D] with
/// patches in row-major order (the conv output flattened and transposed).
public final class PatchEmbedding: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let patchSize: Int

    public init(weight: Tensor, bias: Tensor) {
        precondition(weight.rank == 4 && weight.shape[2] == weight.shape[3],
                     "PatchEmbedding: weight must be [D, C, p, p], got \(weight.shape)")
        precondition(bias.shape == [weight.shape[0]], "PatchEmbedding: bias \(bias.shape) for weight \(weight.shape)")
        self.weight = weight
        self.bias = bias
        patchSize = weight.shape[2]
        super.init()
        parameter("weight", weight)
        parameter("bias", bias)
    }

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let p = patchSize, c = inChannels, d = outChannels
        precondition(x.rank == 4 && x.shape[1] == c, "PatchEmbedding: input must be [B, \(c), H, W], got \(x.shape)")
        precondition(x.shape[2] % p == 0 && x.shape[3] % p == 0,
                     "PatchEmbedding: image \(x.shape[2])×\(x.shape[3]) is not a multiple of the patch size \(p)")
        let b = x.shape[0], h = x.shape[2] / p, w = x.shape[3] / p
        // [B, C, h, p, w, p] → [B, h, w, C, p, p]: each row is one patch in the kernel's layout.
        let patches = x.reshaped([b, c, h, p, w, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([b, h * w, c * p * p])
        return patches.matmul(weight.decoded().reshaped([d, c * p * p]), transposeB: true) + bias
    }
}

/// CLS token, patch embedding and learned absolute positions (`embeddings.*`).
public final class InternVisionEmbeddings: Module {
    /// [1, 1, D]
    public let classEmbedding: Tensor
    public let patchEmbedding: PatchEmbedding
    /// [1, 1 + g², D] for the g×g grid of the configured image size.
    public let positionEmbedding: Tensor
    public let grid: Int

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        let d = config.hiddenSize, p = config.patchSize, std = config.initializerRange
        precondition(config.imageSize % p == 0, "InternViT: image size \(config.imageSize) not a multiple of patch \(p)")
        grid = config.gridSize
        classEmbedding = Tensor.truncatedNormal([1, 1, d], std: std, rng: &rng)
        patchEmbedding = PatchEmbedding(
            weight: Tensor.truncatedNormal([d, config.numChannels, p, p], std: std, rng: &rng),
            bias: Tensor(zeros: [d]))
        positionEmbedding = Tensor.truncatedNormal([1, 1 + grid * grid, d], std: std, rng: &rng)
        super.init()
        parameter("class_embedding", classEmbedding)
        child("patch_embedding", patchEmbedding)
        parameter("position_embedding", positionEmbedding)
    }

    /// Position embeddings for an h×w patch grid: the stored grid resized bicubically
    /// (align_corners false) when it differs; the CLS position is kept. [1, 1 + h·w, D]
    public func positions(height h: Int, width w: Int) -> Tensor {
        if h == grid && w == grid { return positionEmbedding }
        let d = positionEmbedding.shape[2]
        let cls = positionEmbedding.sliced(axis: 1, start: 0, end: 1)
        let table = positionEmbedding.sliced(axis: 1, start: 1, end: 1 + grid * grid)
            .reshaped([1, grid, grid, d]).permuted([0, 3, 1, 2])
        let resized = table.interpolate(size: (h, w), mode: .bicubic, alignCorners: false)
            .reshaped([1, d, h * w]).transposed(1, 2)
        return Tensor.concat([cls, resized], axis: 1)
    }

    /// [B, C, H, W] → [B, 1 + h·w, D] with h = H/p, w = W/p.
    public func callAsFunction(_ pixels: Tensor) -> Tensor {
        let p = patchEmbedding.patchSize
        let b = pixels.shape[0], d = classEmbedding.shape[2]
        let patches = patchEmbedding(pixels)
        let cls = classEmbedding.expanded(to: [b, 1, d])
        return Tensor.concat([cls, patches], axis: 1) + positions(height: pixels.shape[2] / p, width: pixels.shape[3] / p)
    }
}

/// Multi-head self-attention with one fused qkv projection (`attn.qkv`, `attn.proj`).
public final class InternAttention: Module, UnaryLayer {
    public let heads: Int
    public let qkv: Linear
    public let proj: Linear

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        let d = config.hiddenSize
        precondition(d % config.numAttentionHeads == 0,
                     "InternViT: hidden size \(d) not divisible by \(config.numAttentionHeads) heads")
        heads = config.numAttentionHeads
        qkv = truncNormalLinear(d, 3 * d, bias: config.qkvBias, std: config.initializerRange, rng: &rng)
        proj = truncNormalLinear(d, d, bias: true, std: config.initializerRange, rng: &rng)
        super.init()
        child("qkv", qkv)
        child("proj", proj)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3, "InternAttention: input must be [B, N, C], got \(x.shape)")
        let b = x.shape[0], n = x.shape[1], c = x.shape[2], hd = c / heads
        // One GEMM (bias included) for q, k and v; attention reads them where they lie.
        let fused = qkv(x).reshaped([b, n, 3, heads, hd]).permuted([0, 2, 3, 1, 4])
        let out = Tensor.scaledDotProductAttention(qkv: fused, scale: 1 / Float(hd).squareRoot())
        return proj(out.transposed(1, 2).reshaped([b, n, c]))
    }
}

/// fc1 → GELU → fc2 (`mlp.fc1`, `mlp.fc2`).
public final class InternMLP: Module, UnaryLayer {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        fc1 = truncNormalLinear(config.hiddenSize, config.intermediateSize, bias: true,
                                std: config.initializerRange, rng: &rng)
        fc2 = truncNormalLinear(config.intermediateSize, config.hiddenSize, bias: true,
                                std: config.initializerRange, rng: &rng)
        switch config.hiddenAct {
        case "gelu": activation = .gelu
        case "gelu_pytorch_tanh", "gelu_new": activation = .geluTanh
        default: preconditionFailure("InternViT: unsupported hidden_act '\(config.hiddenAct)'")
        }
        super.init()
        child("fc1", fc1)
        child("fc2", fc2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { fc2(activation(fc1(x))) }
}

/// Pre-norm block with layer scale: x + ls1 ⊙ attn(norm1 x), then + ls2 ⊙ mlp(norm2 ·).
public final class InternVisionEncoderLayer: Module, UnaryLayer {
    public let ls1: Tensor
    public let ls2: Tensor
    public let attn: InternAttention
    public let mlp: InternMLP
    public let norm1: any UnaryLayer
    public let norm2: any UnaryLayer

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        let d = config.hiddenSize
        ls1 = Tensor(repeating: config.initializerFactor, shape: [d])
        ls2 = Tensor(repeating: config.initializerFactor, shape: [d])
        attn = InternAttention(config: config, rng: &rng)
        mlp = InternMLP(config: config, rng: &rng)
        func norm() -> any UnaryLayer {
            switch config.normType {
            case "layer_norm": return LayerNorm(d, eps: config.layerNormEps)
            case "rms_norm": return RMSNorm(d, eps: config.layerNormEps)
            default: preconditionFailure("InternViT: unsupported norm_type '\(config.normType)'")
            }
        }
        norm1 = norm()
        norm2 = norm()
        super.init()
        // The order of PyTorch's state_dict: own parameters, then children as constructed.
        parameter("ls1", ls1)
        parameter("ls2", ls2)
        child("attn", attn)
        child("mlp", mlp)
        child("norm1", norm1)
        child("norm2", norm2)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x + attn(norm1(x)) * ls1
        return h + mlp(norm2(h)) * ls2
    }
}

/// The layer stack (`encoder.layers.N`).
public final class InternVisionEncoder: Module, UnaryLayer {
    public let layers: [InternVisionEncoderLayer]

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        layers = (0..<config.numHiddenLayers).map { _ in InternVisionEncoderLayer(config: config, rng: &rng) }
        super.init()
        child("layers", ModuleList(layers))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for layer in layers { h = layer(h) }
        return h
    }
}

/// InternViT (InternVL's `InternVisionModel`): patch embedding, CLS token, learned positions
/// (bicubically resized for other resolutions), pre-norm blocks with layer scale and no final
/// norm. Returns the last hidden state [B, 1 + N, D], CLS first.
///
/// Random initialisation: truncated normal (std `initializer_range`) for the embeddings and
/// every weight, zero biases, norms at one/zero, layer scales at `initializer_factor`.
/// Dropout and drop path are not applied (UniLIP trains with drop path 0).
public final class InternViT: Module, UnaryLayer {
    public let config: InternViTConfig
    public let embeddings: InternVisionEmbeddings
    public let encoder: InternVisionEncoder

    public init(config: InternViTConfig, rng: inout RandomGenerator) {
        precondition(!config.qkNormalization, "InternViT: qk_normalization is not supported")
        self.config = config
        embeddings = InternVisionEmbeddings(config: config, rng: &rng)
        encoder = InternVisionEncoder(config: config, rng: &rng)
        super.init()
        child("embeddings", embeddings)
        child("encoder", encoder)
    }

    /// The patch grid (rows, columns) for images of this height and width.
    public func grid(height: Int, width: Int) -> (Int, Int) {
        (height / config.patchSize, width / config.patchSize)
    }

    /// [B, C, H, W] (H, W multiples of the patch size) → [B, 1 + (H/p)(W/p), D].
    public func callAsFunction(_ pixels: Tensor) -> Tensor {
        precondition(pixels.rank == 4 && pixels.shape[1] == config.numChannels,
                     "InternViT: input must be [B, \(config.numChannels), H, W], got \(pixels.shape)")
        return encoder(embeddings(pixels))
    }

    /// Every layer's output [B, 1 + N, D] in order (the last one is `callAsFunction`'s result).
    public func hiddenStates(_ pixels: Tensor) -> [Tensor] {
        precondition(pixels.rank == 4 && pixels.shape[1] == config.numChannels,
                     "InternViT: input must be [B, \(config.numChannels), H, W], got \(pixels.shape)")
        var h = embeddings(pixels)
        var states: [Tensor] = []
        for layer in encoder.layers {
            h = layer(h)
            states.append(h)
        }
        return states
    }
}
