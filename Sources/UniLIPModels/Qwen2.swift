import Foundation
import UniLIPCore
import UniLIPNN

// Qwen2 / Qwen2.5 decoder as transformers' `Qwen2Model` and `Qwen2ForCausalLM`, with the
// checkpoint names of Hugging Face (`embed_tokens`, `layers.N.self_attn.q_proj`, …).

/// Grouped-query self-attention with q/k/v biases and rotary positions.
public final class Qwen2Attention: Module {
    public let qProj: Linear
    public let kProj: Linear
    public let vProj: Linear
    public let oProj: Linear
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int

    public init(_ config: Qwen2Config, rng: inout RandomGenerator) {
        heads = config.numAttentionHeads
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
        let d = config.hiddenSize
        qProj = Linear(d, heads * headDim, bias: true, rng: &rng)
        kProj = Linear(d, kvHeads * headDim, bias: true, rng: &rng)
        vProj = Linear(d, kvHeads * headDim, bias: true, rng: &rng)
        oProj = Linear(heads * headDim, d, bias: false, rng: &rng)
        super.init()
        child("q_proj", qProj)
        child("k_proj", kProj)
        child("v_proj", vProj)
        child("o_proj", oProj)
    }

    /// x: [B, L, D] → [B, L, D]. With a cache slot, the new keys and values are appended to the
    /// cached ones and attention runs over all of them. With `context.packing`, x and the result
    /// are the real tokens [T, D]: projections run on the T rows, attention on the padded
    /// [B, H, L, Dh] layout, whose padded slots are zero and masked as keys.
    func callAsFunction(_ x: Tensor, rope: (cos: Tensor, sin: Tensor), context: Qwen2AttentionContext,
                        cache: KVCache?, layer: Int) -> Tensor {
        let packing = context.packing
        // [B, L, H·Dh] (or packed [T, H·Dh]) → [B, H, L, Dh]
        func split(_ t: Tensor, _ n: Int) -> Tensor {
            if let packing { return t.unpackedHeads(packing, heads: n) }
            return t.reshaped([x.shape[0], x.shape[1], n, headDim]).transposed(1, 2)
        }
        let q = split(qProj(x), heads).applyingRotary(cos: rope.cos, sin: rope.sin)
        var k = split(kProj(x), kvHeads).applyingRotary(cos: rope.cos, sin: rope.sin)
        var v = split(vProj(x), kvHeads)
        if let cache {
            (k, v) = cache.append(layer: layer, keys: k, values: v)
        }
        let out = Tensor.scaledDotProductAttention(q: q, k: k, v: v, mask: context.mask, causal: context.causal,
                                                   keyPadding: context.keyPadding,
                                                   scale: 1 / Float(headDim).squareRoot(),
                                                   skipPaddedQueries: packing != nil)
        if let packing { return oProj(out.packedHeads(packing)) }
        return oProj(out.transposed(1, 2).reshaped([x.shape[0], x.shape[1], heads * headDim]))
    }
}

/// Masking shared by every layer of one forward pass.
struct Qwen2AttentionContext {
    var causal: Bool
    var keyPadding: Tensor?
    var mask: Tensor?
    /// Set when the hidden states are the real tokens only, [T, D].
    var packing: TokenPacking?
}

/// SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)).
public final class Qwen2MLP: Module, UnaryLayer {
    public let gateProj: Linear
    public let upProj: Linear
    public let downProj: Linear

    public init(_ config: Qwen2Config, rng: inout RandomGenerator) {
        let d = config.hiddenSize, m = config.intermediateSize
        gateProj = Linear(d, m, bias: false, rng: &rng)
        upProj = Linear(d, m, bias: false, rng: &rng)
        downProj = Linear(m, d, bias: false, rng: &rng)
        super.init()
        child("gate_proj", gateProj)
        child("up_proj", upProj)
        child("down_proj", downProj)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        downProj(Tensor.swiGLU(gate: gateProj(x), up: upProj(x)))
    }
}

/// Pre-norm decoder layer: x + attn(norm(x)), then x + mlp(norm(x)).
public final class Qwen2DecoderLayer: Module {
    public let selfAttn: Qwen2Attention
    public let mlp: Qwen2MLP
    public let inputLayernorm: RMSNorm
    public let postAttentionLayernorm: RMSNorm

    public init(_ config: Qwen2Config, rng: inout RandomGenerator) {
        selfAttn = Qwen2Attention(config, rng: &rng)
        mlp = Qwen2MLP(config, rng: &rng)
        inputLayernorm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps)
        postAttentionLayernorm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps)
        super.init()
        child("self_attn", selfAttn)
        child("mlp", mlp)
        child("input_layernorm", inputLayernorm)
        child("post_attention_layernorm", postAttentionLayernorm)
    }

    func callAsFunction(_ x: Tensor, rope: (cos: Tensor, sin: Tensor), context: Qwen2AttentionContext,
                        cache: KVCache?, layer: Int) -> Tensor {
        let h = x + selfAttn(inputLayernorm(x), rope: rope, context: context, cache: cache, layer: layer)
        return h + mlp(postAttentionLayernorm(h))
    }
}

/// What `Qwen2Model` returns.
public struct Qwen2ModelOutput {
    /// Hidden states after the last layer run, passed through the final norm: [B, L, D].
    public var lastHiddenState: Tensor
    /// With `outputHiddenStates`: the input embeddings, then each layer's output, the last one
    /// replaced by the normed state (transformers' `hidden_states` tuple). Empty otherwise.
    public var hiddenStates: [Tensor]
}

/// The Qwen2 decoder stack (transformers' `Qwen2Model`): `embed_tokens`, `layers.N`, `norm`.
public final class Qwen2Model: Module {
    public let config: Qwen2Config
    /// nil for a stack that only takes embeddings (UniLIP's connector).
    public let embedTokens: Embedding?
    public let layers: [Qwen2DecoderLayer]
    public let norm: RMSNorm

    /// Weights as transformers initialises them (normal, std 0.02; zero biases; norms one).
    /// `layerCount` overrides the config's number of layers.
    public init(_ config: Qwen2Config, embedding: Bool = true, layerCount: Int? = nil,
                rng: inout RandomGenerator) {
        do { try config.validate() } catch { preconditionFailure("\(error)") }
        self.config = config
        embedTokens = embedding ? Embedding(weight: Tensor.normal([config.vocabSize, config.hiddenSize], std: 0.02,
                                                                  rng: &rng)) : nil
        var ls: [Qwen2DecoderLayer] = []
        for _ in 0..<(layerCount ?? config.numHiddenLayers) {
            let layer = Qwen2DecoderLayer(config, rng: &rng)
            for (name, p) in layer.namedParameters() where name.hasSuffix("proj.weight") && rng.fillsValues {
                p.assign(Tensor.normal(p.shape, std: 0.02, rng: &rng))
            }
            for (name, p) in layer.namedParameters() where name.hasSuffix("proj.bias") {
                p.assign(Tensor(zeros: p.shape))
            }
            ls.append(layer)
        }
        layers = ls
        norm = RMSNorm(config.hiddenSize, eps: config.rmsNormEps)
        super.init()
        if let embedTokens { child("embed_tokens", embedTokens) }
        child("layers", ModuleList(layers))
        child("norm", norm)
    }

    /// Token embeddings [B, L, D] for `ids` laid out row-major as [batch, ids.count / batch].
    public func embed(_ ids: [Int], batch: Int = 1) -> Tensor {
        guard let embedTokens else { preconditionFailure("Qwen2Model: this stack has no embed_tokens") }
        precondition(batch > 0 && ids.count % batch == 0, "Qwen2Model: \(ids.count) ids do not split into \(batch) rows")
        for id in ids {
            precondition(id >= 0 && id < config.vocabSize, "Qwen2Model: token id \(id) outside 0..<\(config.vocabSize)")
        }
        return embedTokens(ids, shape: [batch, ids.count / batch])
    }

    /// Runs the stack on token ids ([batch, ids.count / batch], row-major). See
    /// `callAsFunction(embeddings:…)` for the other arguments.
    public func callAsFunction(ids: [Int], batch: Int = 1, positions: [Int]? = nil, keyPadding: Tensor? = nil,
                               causal: Bool = true, mask: Tensor? = nil, layers range: Range<Int>? = nil,
                               cache: KVCache? = nil, outputHiddenStates: Bool = false,
                               packPadding: Bool = false) -> Qwen2ModelOutput {
        self(embeddings: embed(ids, batch: batch), positions: positions, keyPadding: keyPadding, causal: causal,
             mask: mask, layers: range, cache: cache, outputHiddenStates: outputHiddenStates, packPadding: packPadding)
    }

    /// Runs the stack on input embeddings [B, L, D] (some rows may be image features).
    ///
    /// - positions: rotary positions, L values shared by every row or B·L values (row-major),
    ///   for example `Qwen2Model.positions(fromMask:)`; default 0..<L after the cached tokens.
    /// - keyPadding: [B, L] with 1 for real and 0 for padded tokens (keys only, as transformers'
    ///   `attention_mask`). With a cache it covers the new tokens; the cache keeps the rest.
    /// - causal: false gives bidirectional attention (UniLIP's connector).
    /// - mask: optional additive mask broadcastable to [B, H, L, Lk].
    /// - layers: a sub-range of the layers to run (the final norm is applied either way).
    /// - cache: keys and values of earlier tokens; updated in place.
    /// - packPadding: with `keyPadding` (and no cache or hidden-state list), projections, norms
    ///   and MLPs run on the real tokens only; real positions get the same values and padded
    ///   positions of `lastHiddenState` are zero. For training, where padding is waste.
    public func callAsFunction(embeddings x: Tensor, positions: [Int]? = nil, keyPadding: Tensor? = nil,
                               causal: Bool = true, mask: Tensor? = nil, layers range: Range<Int>? = nil,
                               cache: KVCache? = nil, outputHiddenStates: Bool = false,
                               packPadding: Bool = false) -> Qwen2ModelOutput {
        precondition(x.rank == 3 && x.shape[2] == config.hiddenSize,
                     "Qwen2Model: embeddings must be [B, L, \(config.hiddenSize)], got \(x.shape)")
        let b = x.shape[0], l = x.shape[1]
        let run = range ?? 0..<layers.count
        precondition(run.lowerBound >= 0 && run.upperBound <= layers.count,
                     "Qwen2Model: layer range \(run) outside 0..<\(layers.count)")
        let past = cache?.length ?? 0
        if let cache { cache.check(batch: b, layers: layers.count) }
        let pos: [Int]
        if let positions {
            precondition(positions.count == l || positions.count == b * l,
                         "Qwen2Model: \(positions.count) positions for \(b) rows of \(l) tokens")
            pos = positions
        } else if let cache, !cache.nextPositions.isEmpty {
            pos = (0..<b).flatMap { r in (0..<l).map { cache.nextPositions[r] + $0 } }
        } else {
            pos = Array(past..<(past + l))
        }
        var rope = Tensor.rotaryCosSin(positions: pos, headDim: config.headDim, theta: config.ropeTheta)
        if pos.count != l {
            rope = (rope.cos.reshaped([b, l, config.headDim]), rope.sin.reshaped([b, l, config.headDim]))
        }
        if let keyPadding {
            precondition(keyPadding.shape == [b, l], "Qwen2Model: keyPadding \(keyPadding.shape) must be \([b, l])")
        }
        var context = Qwen2AttentionContext(causal: causal, keyPadding: keyPadding, mask: mask)
        if let cache {
            context.keyPadding = cache.appendPadding(keyPadding, batch: b, newTokens: l)
            cache.advance(positions: pos, batch: b, newTokens: l)
        }
        if packPadding, let keyPadding, cache == nil, !outputHiddenStates {
            let packing = TokenPacking(mask: keyPadding)
            if !packing.isDense {
                context.packing = packing
                var h = x.packedTokens(packing)
                for i in run { h = layers[i](h, rope: rope, context: context, cache: nil, layer: i) }
                return Qwen2ModelOutput(lastHiddenState: norm(h).unpackedTokens(packing), hiddenStates: [])
            }
        }
        var h = x
        var states: [Tensor] = outputHiddenStates ? [x] : []
        for i in run {
            h = layers[i](h, rope: rope, context: context, cache: cache, layer: i)
            if outputHiddenStates { states.append(h) }
        }
        let out = norm(h)
        if outputHiddenStates { states[states.count - 1] = out }
        return Qwen2ModelOutput(lastHiddenState: out, hiddenStates: states)
    }

    /// transformers' position ids for a padding mask: cumsum(mask) − 1 per row, 1 at padded
    /// slots. `mask` is [B, L] (1 real, 0 padding); the result is B·L positions, row-major.
    public static func positions(fromMask mask: Tensor) -> [Int] {
        precondition(mask.rank == 2, "Qwen2Model.positions: mask must be [B, L], got \(mask.shape)")
        let b = mask.shape[0], l = mask.shape[1]
        var out = [Int](repeating: 1, count: b * l)
        let m = mask.pointer
        for r in 0..<b {
            var running = 0
            for j in 0..<l where m[r * l + j] != 0 {
                out[r * l + j] = running
                running += 1
            }
        }
        return out
    }
}

/// A Qwen2 decoder with its language-model head (transformers' `Qwen2ForCausalLM`):
/// children `model` and, unless the embeddings are tied, `lm_head`.
public final class Qwen2ForCausalLM: Module {
    public let config: Qwen2Config
    public let model: Qwen2Model
    /// nil when `tie_word_embeddings` (the head reuses `model.embed_tokens.weight`).
    public let lmHead: Linear?

    public init(_ config: Qwen2Config, rng: inout RandomGenerator) {
        self.config = config
        model = Qwen2Model(config, rng: &rng)
        lmHead = config.tieWordEmbeddings ? nil
            : Linear(weight: Tensor.normal([config.vocabSize, config.hiddenSize], std: 0.02, rng: &rng), bias: nil)
        super.init()
        child("model", model)
        if let lmHead { child("lm_head", lmHead) }
    }

    /// The [vocab, D] matrix that maps hidden states to logits.
    public var outputWeight: Tensor {
        if let lmHead { return lmHead.weight }
        guard let e = model.embedTokens else { preconditionFailure("Qwen2ForCausalLM: no embed_tokens") }
        return e.weight
    }

    /// Logits [..., vocab] for hidden states [..., D].
    public func logits(_ hidden: Tensor) -> Tensor {
        if let lmHead { return lmHead(hidden) }
        if outputWeight.stored != nil { return hidden.linear(weight: outputWeight) }
        return hidden.reshaped([hidden.count / config.hiddenSize, config.hiddenSize])
            .matmul(outputWeight, transposeB: true)
            .reshaped(Array(hidden.shape.dropLast()) + [config.vocabSize])
    }

    /// Logits [B, L, vocab] and the final hidden states for token ids.
    public func callAsFunction(ids: [Int], batch: Int = 1, positions: [Int]? = nil, keyPadding: Tensor? = nil,
                               cache: KVCache? = nil) -> (logits: Tensor, hidden: Tensor) {
        let h = model(ids: ids, batch: batch, positions: positions, keyPadding: keyPadding, cache: cache).lastHiddenState
        return (logits(h), h)
    }

    /// Logits [B, L, vocab] and the final hidden states for input embeddings [B, L, D].
    public func callAsFunction(embeddings: Tensor, positions: [Int]? = nil, keyPadding: Tensor? = nil,
                               cache: KVCache? = nil) -> (logits: Tensor, hidden: Tensor) {
        let h = model(embeddings: embeddings, positions: positions, keyPadding: keyPadding, cache: cache).lastHiddenState
        return (logits(h), h)
    }

    /// Next-token cross entropy for a batch [B, L] of ids (row-major): position t predicts
    /// t + 1; targets at padded positions (keyPadding 0) are ignored.
    public func languageModelingLoss(ids: [Int], batch: Int, keyPadding: Tensor? = nil) -> Tensor {
        let l = ids.count / batch
        let logits = logits(model(ids: ids, batch: batch, keyPadding: keyPadding, packPadding: true).lastHiddenState)
        var targets = [Int](repeating: -100, count: batch * l)
        for r in 0..<batch {
            for t in 0..<(l - 1) {
                let keep = keyPadding.map { $0.pointer[r * l + t + 1] != 0 } ?? true
                if keep { targets[r * l + t] = ids[r * l + t + 1] }
            }
        }
        return crossEntropy(logits.reshaped([batch * l, config.vocabSize]), targets)
    }
}

extension Tensor {
    /// silu(gate) ⊙ up in one pass (the SwiGLU of Qwen2's MLP); same shapes in and out.
    public static func swiGLU(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiGLU: gate \(gate.shape) vs up \(up.shape)")
        let n = gate.count
        let out = Tensor(uninitialized: gate.shape)
        let one = VectorMath.V(repeating: 1)
        VectorMath.zip(gate.pointer, up.pointer, out.pointer, n) { g, u in
            g / (one + VectorMath.exp(-g)) * u
        }
        let dg = gate.detached(), du = up.detached()
        let inputs = [gate, up]
        return out.recording("swiglu", inputs) { grad in
            let gg = Tensor(uninitialized: dg.shape), gu = Tensor(uninitialized: du.shape)
            SwiGLUKernel.backward(grad.pointer, dg.pointer, du.pointer, gg.pointer, gu.pointer, n)
            return [inputs[0].requiresGrad ? gg : nil, inputs[1].requiresGrad ? gu : nil]
        }
    }
}

enum SwiGLUKernel {
    typealias V = VectorMath.V

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// d/dup = dy · silu(g); d/dgate = dy · up · s · (1 + g · (1 − s)) with s = sigmoid(g).
    @inline(__always)
    static func step(_ dy: V, _ g: V, _ u: V) -> (V, V) {
        let one = V(repeating: 1)
        let s = one / (one + VectorMath.exp(-g))
        return (dy * u * s * (one + g * (one - s)), dy * g * s)
    }

    static func backward(_ dy: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                         _ gg: UnsafeMutablePointer<Float>, _ gu: UnsafeMutablePointer<Float>, _ n: Int) {
        Parallel.forRange((n + 7) / 8, grain: Kernels.grain / 8) { r in
            for blk in r {
                let i = blk * 8
                if i + 8 <= n {
                    let (a, b) = step(load(dy + i), load(g + i), load(u + i))
                    store(a, gg + i)
                    store(b, gu + i)
                } else {
                    var x = V(repeating: 0), y = V(repeating: 0), z = V(repeating: 0)
                    for j in 0..<(n - i) { x[j] = dy[i + j]; y[j] = g[i + j]; z[j] = u[i + j] }
                    let (a, b) = step(x, y, z)
                    for j in 0..<(n - i) { gg[i + j] = a[j]; gu[i + j] = b[j] }
                }
            }
        }
    }
}
