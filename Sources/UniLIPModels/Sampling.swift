import Foundation
import UniLIPCore

/// How `generate` picks tokens.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    /// 0 picks the most likely token (greedy); otherwise logits are divided by it and sampled.
    public var temperature: Float
    /// Nucleus sampling: keep the most likely tokens whose probabilities add up to `topP`.
    public var topP: Float
    /// Generation of a row stops after it emits one of these (the stop token is included).
    public var stopTokens: Set<Int>

    public init(maxNewTokens: Int = 32, temperature: Float = 0, topP: Float = 1, stopTokens: Set<Int> = []) {
        precondition(maxNewTokens >= 0, "GenerationOptions: maxNewTokens must be ≥ 0")
        precondition(temperature >= 0, "GenerationOptions: temperature must be ≥ 0")
        precondition(topP > 0 && topP <= 1, "GenerationOptions: topP must be in (0, 1]")
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topP = topP
        self.stopTokens = stopTokens
    }

    public static let greedy = GenerationOptions()
}

/// Token choice from one row of logits.
public enum Sampler {
    /// Index of the largest logit (the first on ties).
    public static func greedy(_ logits: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<count where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// A token drawn from softmax(logits / temperature) restricted to the top-p nucleus;
    /// temperature 0 is greedy.
    public static func sample(_ logits: UnsafePointer<Float>, count: Int, temperature: Float, topP: Float,
                              rng: inout RandomGenerator) -> Int {
        if temperature == 0 { return greedy(logits, count: count) }
        var m = -Float.infinity
        for i in 0..<count { m = Swift.max(m, logits[i]) }
        var probs = [Double](repeating: 0, count: count)
        var sum = 0.0
        for i in 0..<count {
            let p = Foundation.exp(Double((logits[i] - m) / temperature))
            probs[i] = p
            sum += p
        }
        var order = Array(0..<count)
        var total = sum
        if topP < 1 {
            order.sort { probs[$0] > probs[$1] }
            var kept = 0
            var cumulative = 0.0
            // Smallest prefix whose mass reaches topP (at least one token).
            while kept < count {
                cumulative += probs[order[kept]] / sum
                kept += 1
                if cumulative >= Double(topP) { break }
            }
            order.removeLast(count - kept)
            total = order.reduce(0) { $0 + probs[$1] }
        }
        var u = rng.uniformDouble() * total
        for i in order {
            u -= probs[i]
            if u < 0 { return i }
        }
        return order.last ?? 0
    }
}

extension Qwen2ForCausalLM {
    /// Continues a single sequence of token ids; returns the new tokens only.
    public func generate(ids: [Int], options: GenerationOptions = .greedy, rng: inout RandomGenerator) -> [Int] {
        precondition(!ids.isEmpty, "generate: empty prompt")
        return generate(embeddings: model.embed(ids), options: options, rng: &rng)[0]
    }

    /// Continues a batch of prompts given as input embeddings [B, L, D] (rows left-padded when
    /// `keyPadding` [B, L] marks padding; positions follow transformers' cumsum(mask) − 1).
    /// Each step after the prompt runs one position through the model with a `KVCache`.
    /// Returns each row's new tokens, ending at its first stop token.
    public func generate(embeddings: Tensor, keyPadding: Tensor? = nil, options: GenerationOptions = .greedy,
                         rng: inout RandomGenerator) -> [[Int]] {
        withNoGrad {
            let b = embeddings.shape[0], l = embeddings.shape[1]
            let v = config.vocabSize
            let cache = KVCache(layers: model.layers.count)
            var outputs = [[Int]](repeating: [], count: b)
            var done = [Bool](repeating: options.maxNewTokens == 0, count: b)
            let positions = keyPadding.map { Qwen2Model.positions(fromMask: $0) }
            var hidden = model(embeddings: embeddings, positions: positions, keyPadding: keyPadding, cache: cache)
                .lastHiddenState.sliced(axis: 1, start: l - 1, end: l)
            var step = 0
            while step < options.maxNewTokens && done.contains(false) {
                let logits = self.logits(hidden)  // [B, 1, V]
                var next = [Int](repeating: 0, count: b)
                for r in 0..<b {
                    let row = logits.pointer + r * v
                    next[r] = Sampler.sample(row, count: v, temperature: options.temperature, topP: options.topP,
                                             rng: &rng)
                    if !done[r] {
                        outputs[r].append(next[r])
                        if options.stopTokens.contains(next[r]) { done[r] = true }
                    }
                }
                step += 1
                if step == options.maxNewTokens || !done.contains(false) { break }
                // Finished rows keep decoding (their tokens are discarded) so the batch stays aligned.
                hidden = model(ids: next, batch: b, cache: cache).lastHiddenState
            }
            return outputs
        }
    }
}
