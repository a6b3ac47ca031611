import Foundation
import UniLIPCore

/// Multi-head self-attention with a fused qkv projection (timm's `Attention` naming:
/// `qkv`, `proj`). Input and output [B, N, C].
public final class SelfAttention: Module, UnaryLayer {
    public let heads: Int
    public let qkv: Linear
    public let proj: Linear

    public init(dim: Int, heads: Int, qkvBias: Bool = true, rng: inout RandomGenerator) {
        precondition(heads > 0 && dim % heads == 0, "SelfAttention: dim \(dim) not divisible by \(heads) heads")
        self.heads = heads
        qkv = Linear(dim, 3 * dim, bias: qkvBias, rng: &rng)
        proj = Linear(dim, dim, rng: &rng)
        super.init()
        child("qkv", qkv)
        child("proj", proj)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { self(x, mask: nil) }

    /// `mask` is added to the attention logits (broadcast to [B, H, N, N]); `keyPadding` is
    /// [B, N] with 1 for kept and 0 for padded tokens. With `packing` (of `keyPadding`), x and the
    /// result hold the real tokens only, [T, C]; attention runs on the padded layout.
    public func callAsFunction(_ x: Tensor, mask: Tensor?, causal: Bool = false, keyPadding: Tensor? = nil,
                               packing: TokenPacking? = nil) -> Tensor {
        precondition(x.rank == (packing == nil ? 3 : 2),
                     "SelfAttention: input must be \(packing == nil ? "[B, N, C]" : "packed [T, C]"), got \(x.shape)")
        let c = x.shape[x.rank - 1], d = c / heads
        // [B, 3, H, N, D]: from [B, N, 3, H, D], or unpacked from [T, 3·H·D]
        let fused = packing.map {
            qkv(x).unpackedHeads($0, heads: 3 * heads).reshaped([$0.batch, 3, heads, $0.length, d])
        } ?? qkv(x).reshaped([x.shape[0], x.shape[1], 3, heads, d]).permuted([0, 2, 3, 1, 4])
        let out = Tensor.scaledDotProductAttention(qkv: fused, mask: mask, causal: causal, keyPadding: keyPadding,
                                                   scale: 1 / Float(d).squareRoot(), skipPaddedQueries: packing != nil)
        if let packing { return proj(out.packedHeads(packing)) }
        return proj(out.transposed(1, 2).reshaped([x.shape[0], x.shape[1], c]))
    }
}

/// Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)) (timm's `Block`
/// naming: `norm1`, `attn`, `norm2`, `mlp.fc1`, `mlp.fc2`).
public final class TransformerBlock: Module, UnaryLayer {
    public let norm1: LayerNorm
    public let attn: SelfAttention
    public let norm2: LayerNorm
    public let mlp: MLP

    public init(dim: Int, heads: Int, mlpRatio: Float = 4, qkvBias: Bool = true, eps: Float = 1e-6,
                activation: Activation = .gelu, rng: inout RandomGenerator) {
        norm1 = LayerNorm(dim, eps: eps)
        attn = SelfAttention(dim: dim, heads: heads, qkvBias: qkvBias, rng: &rng)
        norm2 = LayerNorm(dim, eps: eps)
        mlp = MLP(dim, hidden: Int(Float(dim) * mlpRatio), activation: activation, rng: &rng)
        super.init()
        child("norm1", norm1)
        child("attn", attn)
        child("norm2", norm2)
        child("mlp", mlp)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let h = x + attn(norm1(x))
        return h + mlp(norm2(h))
    }
}
