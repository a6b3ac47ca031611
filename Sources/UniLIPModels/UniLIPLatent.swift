import UniLIPCore
import UniLIPNN

/// One residual MLP block of `down_blocks`: x + [LayerNorm(d, eps 1e-6) → Linear d→d → GELU →
/// Linear d→d], the Sequential named `mlp` (indices 0, 1, 3).
public final class UniLIPDownBlock: Module, UnaryLayer {
    public let mlp: Sequential

    public init(dim: Int, rng: inout RandomGenerator) {
        mlp = Sequential([LayerNorm(dim, eps: 1e-6), UniLIPLatent.newLinear(dim, dim, rng: &rng), GELU(),
                          UniLIPLatent.newLinear(dim, dim, rng: &rng)])
        super.init()
        child("mlp", mlp)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x + mlp(x) }
}

/// UniLIP's path from the `mlp1` tokens to the 32-channel latent, and the decoder's output
/// post-processing.
///
/// Tensor names as in the autoencoder checkpoint: `down_blocks.{0,1,2}.mlp.{0,1,3}.*` (three
/// residual MLPs) and `down_mlp.{0,1,3}.*` (LayerNorm(d, eps 1e-5) → Linear d→32 → GELU →
/// Linear 32→32). A parent holding the decoder can register `downBlocks` and `downMLP` as its
/// own children to get the flat `down_blocks.*` / `down_mlp.*` / `decoder.*` layout.
public final class UniLIPLatent: Module {
    public let downBlocks: ModuleList
    public let downMLP: Sequential
    public let dim: Int
    public let latentChannels: Int

    /// New layers: Linear weights trunc-normal(std 0.02), biases zero; LayerNorm weight 1, bias 0.
    public init(dim: Int, latentChannels: Int = 32, blocks: Int = 3, rng: inout RandomGenerator) {
        self.dim = dim
        self.latentChannels = latentChannels
        var list: [Module] = []
        for _ in 0..<blocks { list.append(UniLIPDownBlock(dim: dim, rng: &rng)) }
        downBlocks = ModuleList(list)
        downMLP = Sequential([LayerNorm(dim, eps: 1e-5), Self.newLinear(dim, latentChannels, rng: &rng), GELU(),
                              Self.newLinear(latentChannels, latentChannels, rng: &rng)])
        super.init()
        child("down_blocks", downBlocks)
        child("down_mlp", downMLP)
    }

    static func newLinear(_ inFeatures: Int, _ outFeatures: Int, rng: inout RandomGenerator) -> Linear {
        Linear(weight: Tensor.truncatedNormal([outFeatures, inFeatures], std: 0.02, rng: &rng),
               bias: Tensor(zeros: [outFeatures]))
    }

    /// Tokens [B, h·w, d] (row-major over the h×w grid) → channel-last latent [B, h·w, 32].
    public func tokens(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[2] == dim, "UniLIPLatent: tokens must be [B, N, \(dim)], got \(x.shape)")
        var h = x
        for block in downBlocks.modules {
            guard let b = block as? UniLIPDownBlock else { preconditionFailure("down_blocks holds \(type(of: block))") }
            h = b(h)
        }
        return downMLP(h)
    }

    /// The latent z [B, 32, h, w] of `mlp1` tokens [B, h·w, d].
    public func callAsFunction(_ x: Tensor, height: Int, width: Int) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == height * width,
                     "UniLIPLatent: \(x.shape) does not hold a \(height)×\(width) grid of tokens")
        return tokens(x).transposed(1, 2).reshaped([x.shape[0], latentChannels, height, width])
    }

    // MARK: Output post-processing

    /// Decodes latents and resizes to the target image size (training and generation path:
    /// 16×16 → 512² → 448², bilinear, align_corners false).
    public static func decode(_ z: Tensor, decoder: DCAEDecoder, size: (Int, Int)) -> Tensor {
        resize(decoder(z), to: size)
    }

    /// Decodes latents of reflect-padded images and returns images of the unpadded size
    /// (resize by 28/32 with align_corners true, then crop).
    public static func decode(_ z: Tensor, decoder: DCAEDecoder, padding: Padding,
                              encoderStride: Int = 28) -> Tensor {
        unpad(decoder(z), padding: padding, encoderStride: encoderStride,
              decoderStride: decoder.config.upsampleFactor)
    }

    /// Bilinear resize of decoded images [B, C, H, W] to `size` (training at 224/448: decode to
    /// 256/512, resize to 224/448 with align_corners false). Returns the input when the size
    /// already matches.
    public static func resize(_ decoded: Tensor, to size: (Int, Int), alignCorners: Bool = false) -> Tensor {
        precondition(decoded.rank == 4, "resize: images must be [B, C, H, W], got \(decoded.shape)")
        if decoded.shape[2] == size.0 && decoded.shape[3] == size.1 { return decoded }
        return decoded.interpolate(size: size, mode: .bilinear, alignCorners: alignCorners)
    }

    /// Symmetric reflect padding of one axis to the next multiple (⌊p/2⌋ before, the rest after).
    public struct Padding: Equatable, Sendable {
        public var top, bottom, left, right: Int
        public init(top: Int, bottom: Int, left: Int, right: Int) {
            self.top = top; self.bottom = bottom; self.left = left; self.right = right
        }
        /// The padding that brings height × width to multiples of `multiple`.
        public init(height: Int, width: Int, multiple: Int) {
            precondition(multiple > 0 && height > 0 && width > 0, "Padding: sizes must be positive")
            let ph = (multiple - height % multiple) % multiple, pw = (multiple - width % multiple) % multiple
            self.init(top: ph / 2, bottom: ph - ph / 2, left: pw / 2, right: pw - pw / 2)
        }
        public var isZero: Bool { top == 0 && bottom == 0 && left == 0 && right == 0 }
    }

    /// Reflect-pads images [B, C, H, W] up to multiples of `multiple` (28 for UniLIP). Reflection
    /// commutes with per-channel normalisation, so normalised or [0, 1] images give the same
    /// result. Each pad must be smaller than its axis (reflection's limit).
    public static func reflectPad(_ images: Tensor, multiple: Int = 28) -> (Tensor, Padding) {
        precondition(images.rank == 4, "reflectPad: images must be [B, C, H, W], got \(images.shape)")
        let p = Padding(height: images.shape[2], width: images.shape[3], multiple: multiple)
        if p.isZero { return (images, p) }
        return (images.padded([p.left, p.right, p.top, p.bottom], mode: .reflect), p)
    }

    /// Undoes `reflectPad` on decoded images: bilinear resize by encoder/decoder stride
    /// (28/32, align_corners true; sizes rounded half to even as Python's `round`) back to the
    /// padded size, then crop the padding.
    public static func unpad(_ decoded: Tensor, padding p: Padding, encoderStride: Int = 28,
                             decoderStride: Int = 32) -> Tensor {
        precondition(decoded.rank == 4, "unpad: images must be [B, C, H, W], got \(decoded.shape)")
        func scaled(_ n: Int) -> Int {
            Int((Double(n * encoderStride) / Double(decoderStride)).rounded(.toNearestOrEven))
        }
        let h = scaled(decoded.shape[2]), w = scaled(decoded.shape[3])
        precondition(h > p.top + p.bottom && w > p.left + p.right,
                     "unpad: \(h)×\(w) is smaller than the padding \(p)")
        let resized = resize(decoded, to: (h, w), alignCorners: true)
        if p.isZero { return resized }
        return resized.sliced(axis: 2, start: p.top, end: h - p.bottom).sliced(axis: 3, start: p.left, end: w - p.right)
    }
}
