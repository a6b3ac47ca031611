import Foundation
import UniLIPCore
import UniLIPNN

/// The UniLIP autoencoder's config.json: the InternViT, the `mlp1` width (the LLM's hidden size),
/// the latent width and the DC-AE decoder.
public struct UniLIPAutoencoderConfig: Codable, Sendable, Equatable {
    public var visionConfig: InternViTConfig
    /// Width d of the `mlp1` tokens (the LLM hidden size: 896 for UniLIP-1B, 1536 for 3B).
    public var llmHiddenSize: Int
    public var latentChannels: Int
    public var downBlocks: Int
    public var decoderConfig: DCAEDecoderConfig
    /// The training resolution (a multiple of 2 × patch).
    public var imageSize: Int
    public var modelType: String

    enum CodingKeys: String, CodingKey {
        case visionConfig = "vision_config", llmHiddenSize = "llm_hidden_size", latentChannels = "latent_channels"
        case downBlocks = "down_blocks", decoderConfig = "decoder_config", imageSize = "image_size"
        case modelType = "model_type"
    }

    public init(vision: InternViTConfig, llmHiddenSize: Int, decoder: DCAEDecoderConfig, imageSize: Int,
                latentChannels: Int = 32, downBlocks: Int = 3) {
        visionConfig = vision
        self.llmHiddenSize = llmHiddenSize
        self.latentChannels = latentChannels
        self.downBlocks = downBlocks
        decoderConfig = decoder
        self.imageSize = imageSize
        modelType = "unilip_autoencoder"
    }

    /// The autoencoder around an InternVL model's encoder and `mlp1`.
    public init(chat: InternVLChatConfig, decoder: DCAEDecoderConfig) {
        self.init(vision: chat.visionConfig, llmHiddenSize: chat.llmConfig.hiddenSize, decoder: decoder,
                  imageSize: chat.forceImageSize)
    }

    /// Pixels per latent cell on the encoder side (28 for InternViT-300M, 16 for tiny).
    public var encoderStride: Int { 2 * visionConfig.patchSize }

    public func validate() throws {
        try decoderConfig.validate()
        guard decoderConfig.latentChannels == latentChannels else {
            throw ModelConfigError("decoder latent_channels \(decoderConfig.latentChannels) ≠ latent_channels \(latentChannels)")
        }
        guard llmHiddenSize > 0, latentChannels > 0, downBlocks >= 0 else {
            throw ModelConfigError("llm_hidden_size, latent_channels must be positive and down_blocks ≥ 0")
        }
        guard imageSize > 0, imageSize % encoderStride == 0 else {
            throw ModelConfigError("image_size \(imageSize) must be a positive multiple of 2 × patch_size = \(encoderStride)")
        }
    }
}

/// UniLIP's autoencoder: InternViT (`encoder.*`) → pixel shuffle → `mlp1` (the understanding
/// tokens) → `down_blocks` / `down_mlp` (the 32-channel latent) → DC-AE `decoder`. Images enter
/// ImageNet-normalised and leave in [−1, 1].
public final class UniLIPAutoencoder: Module {
    public let config: UniLIPAutoencoderConfig
    public let encoder: InternViT
    public let mlp1: InternVLProjector
    public let latent: UniLIPLatent
    public let decoder: DCAEDecoder

    public convenience init(_ config: UniLIPAutoencoderConfig, rng: inout RandomGenerator) {
        do { try config.validate() } catch { preconditionFailure("UniLIPAutoencoder: \(error)") }
        let encoder = InternViT(config: config.visionConfig, rng: &rng)
        let mlp1 = InternVLProjector(visionHidden: config.visionConfig.hiddenSize, llmHidden: config.llmHiddenSize, rng: &rng)
        let latent = UniLIPLatent(dim: config.llmHiddenSize, latentChannels: config.latentChannels,
                                  blocks: config.downBlocks, rng: &rng)
        self.init(config, encoder: encoder, mlp1: mlp1, latent: latent, decoder: DCAEDecoder(config: config.decoderConfig, rng: &rng))
    }

    /// An autoencoder over existing modules (shared, not copied: the encoder and `mlp1` may
    /// also serve an MLLM).
    public init(_ config: UniLIPAutoencoderConfig, encoder: InternViT, mlp1: InternVLProjector, latent: UniLIPLatent,
                decoder: DCAEDecoder) {
        do { try config.validate() } catch { preconditionFailure("UniLIPAutoencoder: \(error)") }
        precondition(encoder.config == config.visionConfig && mlp1.llmHidden == config.llmHiddenSize
                     && latent.dim == config.llmHiddenSize && latent.latentChannels == config.latentChannels
                     && decoder.config == config.decoderConfig, "UniLIPAutoencoder: modules do not match the config")
        self.config = config
        self.encoder = encoder
        self.mlp1 = mlp1
        self.latent = latent
        self.decoder = decoder
        super.init()
        child("encoder", encoder)
        child("mlp1", mlp1)
        child("down_blocks", latent.downBlocks)
        child("down_mlp", latent.downMLP)
        child("decoder", decoder)
    }

    /// The understanding tokens [B, N, d] an MLLM reads (and the self-distillation space).
    public func understandingTokens(_ pixels: Tensor) -> Tensor { mlp1.imageTokens(pixels, encoder: encoder) }

    /// The latent grid (h, w) of images of `height` × `width` pixels.
    public func latentGrid(height: Int, width: Int) -> (Int, Int) {
        let g = encoder.grid(height: height, width: width)
        return (g.0 / 2, g.1 / 2)
    }

    /// Latents [B, 32, h, w] of understanding tokens from images of `height` × `width`.
    public func latents(tokens: Tensor, height: Int, width: Int) -> Tensor {
        let (h, w) = latentGrid(height: height, width: width)
        return latent(tokens, height: h, width: w)
    }

    /// Latents of normalised pixels [B, 3, H, W] (H, W multiples of `config.encoderStride`).
    public func encode(_ pixels: Tensor) -> Tensor {
        latents(tokens: understandingTokens(pixels), height: pixels.shape[2], width: pixels.shape[3])
    }

    /// Images in [−1, 1] of size `size` decoded from latents (the decoder output resized when
    /// encoder and decoder strides differ, as UniLIP does for 28 vs 32).
    public func decode(_ z: Tensor, size: (Int, Int)) -> Tensor {
        UniLIPLatent.decode(z, decoder: decoder, size: size)
    }

    /// Understanding tokens and the reconstruction in [−1, 1] of normalised pixels.
    public func reconstruct(_ pixels: Tensor) -> (tokens: Tensor, images: Tensor) {
        let tokens = understandingTokens(pixels)
        let z = latents(tokens: tokens, height: pixels.shape[2], width: pixels.shape[3])
        return (tokens, decode(z, size: (pixels.shape[2], pixels.shape[3])))
    }

    /// Reconstruction of images of any size: reflect-padded to a multiple of the encoder stride,
    /// encoded, decoded, resized by the stride ratio and cropped back (UniLIP's `_Pad` variant).
    public func reconstructAnySize(_ pixels: Tensor) -> Tensor {
        let (padded, padding) = UniLIPLatent.reflectPad(pixels, multiple: config.encoderStride)
        return UniLIPLatent.unpad(decoder(encode(padded)), padding: padding, encoderStride: config.encoderStride,
                                  decoderStride: config.decoderConfig.upsampleFactor)
    }

    /// Tensor-name prefixes of the encoder side (encoder + mlp1), which stage 2 trains at a lower LR.
    public static let encoderPrefixes = ["encoder", "mlp1"]
    /// Tensor-name prefixes of the layers that map understanding tokens to the latent.
    public static let latentPrefixes = ["down_blocks", "down_mlp"]
}
