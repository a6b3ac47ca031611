import Foundation
import UniLIPCore
import UniLIPNN

/// InternVL's `mlp1`: LayerNorm(4D, eps 1e-5) → Linear 4D→d → GELU → Linear d→d, children named
/// `0`, `1`, `3` as in the checkpoints (the GELU at index 2 has no parameters). It reads the
/// pixel-shuffled ViT features; its output is the image tokens the language model reads.
public final class InternVLProjector: Module, UnaryLayer {
    public let norm: LayerNorm
    public let fc1: Linear
    public let fc2: Linear
    /// ViT width D.
    public let visionHidden: Int
    /// Language-model width d.
    public let llmHidden: Int

    /// PyTorch's default initialisation (LayerNorm one/zero, Linear U(−1/√in, 1/√in)).
    public init(visionHidden: Int, llmHidden: Int, rng: inout RandomGenerator) {
        self.visionHidden = visionHidden
        self.llmHidden = llmHidden
        let width = 4 * visionHidden
        norm = LayerNorm(width, eps: 1e-5)
        fc1 = Linear(width, llmHidden, rng: &rng)
        fc2 = Linear(llmHidden, llmHidden, rng: &rng)
        super.init()
        child("0", norm)
        child("1", fc1)
        child("3", fc2)
    }

    /// [..., 4D] → [..., d]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        fc2(fc1(norm(x)).gelu(tanhApproximation: false))
    }

    /// InternVL's pixel shuffle with ratio 0.5 (ps_version "v2") on [B, h, w, C] (h, w even):
    /// out[b, a, c', (2m + k)·C + ch] = in[b, 2a + m, 2c' + k, ch], giving [B, h/2, w/2, 4C].
    public static func pixelShuffle(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "pixelShuffle: input must be [B, h, w, C], got \(x.shape)")
        let b = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        precondition(h % 2 == 0 && w % 2 == 0, "pixelShuffle: grid \(h)×\(w) must be even")
        return x.reshaped([b, h / 2, 2, w / 2, 2, c]).permuted([0, 1, 3, 2, 4, 5])
            .reshaped([b, h / 2, w / 2, 4 * c])
    }

    /// ViT last hidden state [B, 1 + h·w, D] (CLS first) on an h×w patch grid → image tokens
    /// [B, h·w/4, d]: drop CLS, pixel shuffle, flatten row-major, mlp1.
    public func tokens(fromHidden hidden: Tensor, grid: (Int, Int)) -> Tensor {
        let (h, w) = grid
        precondition(hidden.rank == 3 && hidden.shape[1] == 1 + h * w && hidden.shape[2] == visionHidden,
                     "InternVLProjector: hidden \(hidden.shape) does not match a \(h)×\(w) grid of width \(visionHidden) plus CLS")
        let b = hidden.shape[0]
        let patches = hidden.sliced(axis: 1, start: 1, end: 1 + h * w).reshaped([b, h, w, visionHidden])
        return self(Self.pixelShuffle(patches).reshaped([b, h * w / 4, 4 * visionHidden]))
    }

    /// Pixels [B, C, H, W] (H, W multiples of 2·patch) → image tokens [B, (H/p)(W/p)/4, d]:
    /// the ViT, then `tokens(fromHidden:grid:)`.
    public func imageTokens(_ pixels: Tensor, encoder: InternViT) -> Tensor {
        precondition(encoder.config.hiddenSize == visionHidden,
                     "InternVLProjector: encoder width \(encoder.config.hiddenSize) vs projector \(visionHidden)")
        let grid = encoder.grid(height: pixels.shape[2], width: pixels.shape[3])
        return tokens(fromHidden: encoder(pixels), grid: grid)
    }
}

extension InternViT {
    /// The image tokens the language model reads: ViT (CLS dropped) → pixel shuffle → mlp1.
    public func imageTokens(_ pixels: Tensor, projector: InternVLProjector) -> Tensor {
        projector.imageTokens(pixels, encoder: self)
    }
}
