import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class Qwen2Tests: XCTestCase {
    /// The config of Tools/reference/fixtures/qwen2.py.
    static let fixtureConfig = Qwen2Config(
        vocabSize: 100, hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1e6, maxPositionEmbeddings: 128,
        tieWordEmbeddings: false)

    static var fixturePath: String { Fixtures.directory.appendingPathComponent("qwen2.safetensors").path }

    /// The fixture model, loaded strictly by Hugging Face names (case tensors dropped).
    func loadedModel() throws -> (Qwen2ForCausalLM, Fixtures) {
        var rng = RandomGenerator(seed: 3)
        let lm = Qwen2ForCausalLM(Self.fixtureConfig, rng: &rng)
        let report = try Checkpoint.load(Self.fixturePath, into: lm.namedParameters(),
                                         options: LoadOptions(rules: [.drop(pattern: "^case\\.")]))
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(report.loaded.count, lm.namedParameters().count)
        return (lm, try Fixtures("qwen2"))
    }

    func ints(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    /// Max |a − b| over positions where mask [B, L] is 1 (rows of width `d`).
    func maxError(_ a: Tensor, _ b: Tensor, mask: Tensor? = nil) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        let d = a.shape.last ?? 1
        var worst: Float = 0
        for i in 0..<a.count where mask.map({ $0.pointer[i / d] != 0 }) ?? true {
            worst = max(worst, abs(a.pointer[i] - b.pointer[i]))
        }
        return worst
    }

    // MARK: Config

    func testConfigDecodesTransformersJSON() throws {
        let json = """
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151674,
         "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
         "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
         "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": false,
         "hidden_act": "silu", "bos_token_id": 151643, "eos_token_id": 151645,
         "rope_scaling": {"factor": 2.0, "type": "dynamic"}, "torch_dtype": "bfloat16", "use_cache": true}
        """
        let c = try JSONDecoder().decode(Qwen2Config.self, from: Data(json.utf8))
        XCTAssertEqual(c, Qwen2Config.qwen25_05B)
        XCTAssertEqual(c.headDim, 64)
        let back = try JSONDecoder().decode(Qwen2Config.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(back, c)

        let v5 = """
        {"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
         "num_attention_heads": 2, "rope_parameters": {"rope_type": "default", "rope_theta": 5000.0},
         "eos_token_id": [3, 4]}
        """
        let d = try JSONDecoder().decode(Qwen2Config.self, from: Data(v5.utf8))
        XCTAssertEqual(d.ropeTheta, 5000)
        XCTAssertEqual(d.numKeyValueHeads, 2)
        XCTAssertEqual(d.eosTokenIds, [3, 4])
        XCTAssertEqual(d.headDim, 4)
        XCTAssertFalse(d.tieWordEmbeddings)
        XCTAssertEqual(Qwen2Config.qwen25_15B.headDim, 128)
    }

    func testInvalidConfigsThrowNamingTheField() throws {
        XCTAssertNoThrow(try Qwen2Config.tiny().validate())
        XCTAssertNoThrow(try Qwen2Config.qwen25_05B.validate())
        let cases: [(String, (inout Qwen2Config) -> Void)] = [
            ("num_key_value_heads 3", { $0.numKeyValueHeads = 3 }),
            ("num_key_value_heads 0", { $0.numKeyValueHeads = 0 }),
            ("head_dim 31", { $0.headDim = 31 }),
            ("hidden_act 'gelu'", { $0.hiddenAct = "gelu" }),
            ("num_hidden_layers 0", { $0.numHiddenLayers = 0 }),
            ("vocab_size -1", { $0.vocabSize = -1 }),
        ]
        for (expected, change) in cases {
            var config = Qwen2Config.tiny()
            change(&config)
            XCTAssertThrowsError(try config.validate(), expected) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
    }

    func testParameterNamesFollowTransformers() {
        var rng = RandomGenerator(seed: 1)
        let lm = Qwen2ForCausalLM(Self.fixtureConfig, rng: &rng)
        let names = lm.namedParameters().map(\.0)
        XCTAssertEqual(names.count, 1 + 2 * 12 + 1 + 1)
        for n in ["model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.bias",
                  "model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight",
                  "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"] {
            XCTAssertTrue(names.contains(n), n)
        }
        XCTAssertFalse(names.contains("model.layers.0.self_attn.o_proj.bias"))

        let tied = Qwen2ForCausalLM(.tiny(), rng: &rng)
        XCTAssertNil(tied.module(named: "lm_head"))
        XCTAssertEqual(tied.namedParameters().count, 1 + 4 * 12 + 1)
        let connector = Qwen2Model(Self.fixtureConfig, embedding: false, layerCount: 1, rng: &rng)
        XCTAssertEqual(connector.namedParameters().map(\.0).first, "layers.0.self_attn.q_proj.weight")
    }

    // MARK: Parity with transformers

    func testPaddedBatchMatchesTransformers() throws {
        let (lm, fx) = try loadedModel()
        let mask = fx["case.pad.mask"]
        let out = withNoGrad {
            lm.model(ids: ints(fx["case.pad.ids"]), batch: 3, keyPadding: mask, outputHiddenStates: true)
        }
        XCTAssertLessThanOrEqual(maxError(out.lastHiddenState, fx["case.pad.hidden"]), 1e-4)
        XCTAssertLessThanOrEqual(maxError(lm.logits(out.lastHiddenState), fx["case.pad.logits"]), 1e-4)
        XCTAssertEqual(out.hiddenStates.count, 3)
        for (i, h) in out.hiddenStates.enumerated() {
            XCTAssertLessThanOrEqual(maxError(h, fx["case.pad.state\(i)"]), 1e-4, "state \(i)")
        }
        // Running only the first layer gives that layer's output through the final norm.
        let first = withNoGrad { lm.model(ids: ints(fx["case.pad.ids"]), batch: 3, keyPadding: mask, layers: 0..<1) }
        let expected = withNoGrad { lm.model.norm(fx["case.pad.state1"]) }
        XCTAssertLessThanOrEqual(maxError(first.lastHiddenState, expected), 1e-4)
        // Packed (real tokens only): the same states at real positions, zeros at padding.
        let packed = withNoGrad { lm.model(ids: ints(fx["case.pad.ids"]), batch: 3, keyPadding: mask, packPadding: true) }
        XCTAssertLessThan(mask.sum().item, Float(mask.count), "the case has padding")
        XCTAssertLessThanOrEqual(maxError(packed.lastHiddenState, fx["case.pad.hidden"], mask: mask), 1e-4)
        let d = packed.lastHiddenState.shape[2]
        XCTAssertTrue((0..<packed.lastHiddenState.count).allSatisfy { mask.pointer[$0 / d] != 0 || packed.lastHiddenState.pointer[$0] == 0 })
    }

    func testLeftPaddingWithMaskPositionsMatchesTransformers() throws {
        let (lm, fx) = try loadedModel()
        let mask = fx["case.left.mask"]
        let positions = Qwen2Model.positions(fromMask: mask)
        XCTAssertEqual(Array(positions[0..<6]), [1, 1, 0, 1, 2, 3])
        let (logits, hidden) = withNoGrad {
            lm(ids: ints(fx["case.left.ids"]), batch: 2, positions: positions, keyPadding: mask)
        }
        XCTAssertLessThanOrEqual(maxError(hidden, fx["case.left.hidden"], mask: mask), 1e-4)
        XCTAssertLessThanOrEqual(maxError(logits, fx["case.left.logits"], mask: mask), 1e-4)
        let packed = withNoGrad {
            lm.model(ids: ints(fx["case.left.ids"]), batch: 2, positions: positions, keyPadding: mask, packPadding: true)
        }
        XCTAssertLessThanOrEqual(maxError(packed.lastHiddenState, fx["case.left.hidden"], mask: mask), 1e-4)
    }

    func testInputEmbeddingsMatchTransformers() throws {
        let (lm, fx) = try loadedModel()
        let (logits, hidden) = withNoGrad { lm(embeddings: fx["case.embeds.x"]) }
        XCTAssertLessThanOrEqual(maxError(hidden, fx["case.embeds.hidden"]), 1e-4)
        XCTAssertLessThanOrEqual(maxError(logits, fx["case.embeds.logits"]), 1e-4)
    }

    func testBidirectionalLayersMatchTransformers() throws {
        let (lm, fx) = try loadedModel()
        let out = withNoGrad {
            lm.model(embeddings: fx["case.bidir.x"], keyPadding: fx["case.bidir.mask"], causal: false)
        }
        XCTAssertLessThanOrEqual(maxError(out.lastHiddenState, fx["case.bidir.hidden"]), 1e-4)
        // Causal attention must give something else (the test can fail).
        let causal = withNoGrad { lm.model(embeddings: fx["case.bidir.x"], keyPadding: fx["case.bidir.mask"]) }
        XCTAssertGreaterThan(maxError(causal.lastHiddenState, fx["case.bidir.hidden"]), 1e-2)
    }

    func testLossGradientsMatchTransformers() throws {
        // The loss runs on the real tokens only (packed); transformers' runs on the padded batch.
        let (lm, fx) = try loadedModel()
        let loss = lm.languageModelingLoss(ids: ints(fx["case.pad.ids"]), batch: 3, keyPadding: fx["case.pad.mask"])
        XCTAssertEqual(loss.item, fx["case.grad.loss"].item, accuracy: 1e-4)
        loss.backward()
        let names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                     "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.bias",
                     "model.layers.0.input_layernorm.weight", "model.layers.1.mlp.down_proj.weight",
                     "model.layers.1.self_attn.v_proj.weight", "model.norm.weight"]
        for name in names {
            guard let p = lm.parameter(named: name), let g = p.grad else {
                XCTFail("no gradient for \(name)")
                continue
            }
            assertClose(g, fx["case.grad.\(name)"], atol: 1e-5, rtol: 1e-3, name)
        }
    }

    func testSwiGLUGradients() {
        let gate = randn(3, 10, seed: 4, scale: 2), up = randn(3, 10, seed: 5)
        checkGradients([gate, up], eps: 1e-3, atol: 2e-3, rtol: 2e-3) { xs in Tensor.swiGLU(gate: xs[0], up: xs[1]) }
        let ref = gate.silu() * up
        assertClose(Tensor.swiGLU(gate: gate, up: up), ref, atol: 1e-6)
    }

    // MARK: Cache and generation

    /// Full-sequence recomputation: logits at every position of `ids`.
    func fullLogits(_ lm: Qwen2ForCausalLM, _ ids: [Int]) -> Tensor {
        withNoGrad { lm(ids: ids).logits }
    }

    func testCachedDecodingMatchesFullRecompute() throws {
        let (lm, _) = try loadedModel()
        let prompt = [5, 17, 42, 9]
        let cache = KVCache(layers: 2)
        var ids = prompt
        var cachedRows: [Tensor] = []
        withNoGrad {
            var logits = lm(ids: prompt, cache: cache).logits.sliced(axis: 1, start: 3, end: 4)
            for _ in 0..<6 {
                cachedRows.append(logits)
                let next = Sampler.greedy(logits.pointer, count: 100)
                ids.append(next)
                logits = lm(ids: [next], cache: cache).logits
            }
        }
        XCTAssertEqual(cache.length, 10)
        XCTAssertEqual(cache.keys[0]?.shape, [1, 2, 10, 16])
        let full = fullLogits(lm, ids)
        for (step, row) in cachedRows.enumerated() {
            let t = prompt.count - 1 + step
            XCTAssertLessThanOrEqual(maxError(row, full.sliced(axis: 1, start: t, end: t + 1)), 1e-4, "step \(step)")
        }
        var rng = RandomGenerator(seed: 1)
        let generated = lm.generate(ids: prompt, options: GenerationOptions(maxNewTokens: 6), rng: &rng)
        XCTAssertEqual(generated, Array(ids[prompt.count...]))
    }

    func testBatchedLeftPaddedGenerationMatchesSingleRows() throws {
        let (lm, _) = try loadedModel()
        let a = [3, 14, 15, 92, 65], b = [27, 18]
        var rng = RandomGenerator(seed: 1)
        let options = GenerationOptions(maxNewTokens: 5)
        let ga = lm.generate(ids: a, options: options, rng: &rng)
        let gb = lm.generate(ids: b, options: options, rng: &rng)
        let ids = a + [0, 0, 0] + b
        let mask = Tensor([1, 1, 1, 1, 1, 0, 0, 0, 1, 1], shape: [2, 5])
        let emb = lm.model.embed(ids, batch: 2)
        let batched = lm.generate(embeddings: emb, keyPadding: mask, options: options, rng: &rng)
        XCTAssertEqual(batched, [ga, gb])
    }

    func testStopTokensAndSeededSampling() throws {
        let (lm, _) = try loadedModel()
        let prompt = [1, 2, 3]
        var rng = RandomGenerator(seed: 1)
        let greedy = lm.generate(ids: prompt, options: GenerationOptions(maxNewTokens: 8), rng: &rng)
        XCTAssertEqual(greedy.count, 8)
        let stop = greedy[2]
        let stopped = lm.generate(ids: prompt, options: GenerationOptions(maxNewTokens: 8, stopTokens: [stop]),
                                  rng: &rng)
        XCTAssertEqual(stopped, Array(greedy[0...(greedy.firstIndex(of: stop) ?? 0)]))

        let sampling = GenerationOptions(maxNewTokens: 12, temperature: 1.5, topP: 0.95)
        var r1 = RandomGenerator(seed: 9), r2 = RandomGenerator(seed: 9), r3 = RandomGenerator(seed: 10)
        let s1 = lm.generate(ids: prompt, options: sampling, rng: &r1)
        let s2 = lm.generate(ids: prompt, options: sampling, rng: &r2)
        let s3 = lm.generate(ids: prompt, options: sampling, rng: &r3)
        XCTAssertEqual(s1, s2)
        XCTAssertNotEqual(s1, s3)
        // A tiny nucleus holds only the top token: sampling becomes greedy.
        var r4 = RandomGenerator(seed: 9)
        let nucleus = lm.generate(ids: prompt, options: GenerationOptions(maxNewTokens: 8, temperature: 1, topP: 1e-6),
                                  rng: &r4)
        XCTAssertEqual(nucleus, greedy)
    }

    func testSamplerDistribution() {
        let logits: [Float] = [0, Foundation.log(3), -Float.infinity, 0]
        var rng = RandomGenerator(seed: 2)
        var counts = [0, 0, 0, 0]
        logits.withUnsafeBufferPointer { p in
            for _ in 0..<10_000 {
                counts[Sampler.sample(p.baseAddress!, count: 4, temperature: 1, topP: 1, rng: &rng)] += 1
            }
            XCTAssertEqual(Sampler.greedy(p.baseAddress!, count: 4), 1)
            // top-p 0.7 keeps tokens 1 (0.6) and one of the 0.2 ones.
            var kept = Set<Int>()
            for _ in 0..<1000 { kept.insert(Sampler.sample(p.baseAddress!, count: 4, temperature: 1, topP: 0.7, rng: &rng)) }
            XCTAssertEqual(kept.count, 2)
            XCTAssertTrue(kept.contains(1))
        }
        XCTAssertEqual(counts[2], 0)
        XCTAssertEqual(Double(counts[1]) / 10_000, 0.6, accuracy: 0.03)
        XCTAssertEqual(Double(counts[0]) / 10_000, 0.2, accuracy: 0.03)
    }

    func testTiedHeadUsesEmbeddings() {
        var rng = RandomGenerator(seed: 5)
        let lm = Qwen2ForCausalLM(.tiny(vocabSize: 40), rng: &rng)
        let ids = [1, 5, 7, 39, 0, 2]
        let loss = lm.languageModelingLoss(ids: ids, batch: 2)
        loss.backward()
        XCTAssertNotNil(lm.model.embedTokens?.weight.grad)
        let (logits, hidden) = withNoGrad { lm(ids: ids, batch: 2) }
        let expected = hidden.reshaped([6, 128]).matmul(lm.model.embedTokens!.weight, transposeB: true)
        assertClose(logits.reshaped([6, 40]), expected, atol: 1e-5)
    }
}
