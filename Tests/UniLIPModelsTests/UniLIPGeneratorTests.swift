import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class UniLIPGeneratorTests: XCTestCase {
    /// The configuration of Tools/reference/fixtures/unilip_generator.py.
    static let fixtureLLM = Qwen2Config(
        vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 3, numAttentionHeads: 4,
        numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 1e6, maxPositionEmbeddings: 128)
    static let fixtureDiT = SanaConfig(
        inChannels: 4, outChannels: 4, numAttentionHeads: 2, attentionHeadDim: 8, numLayers: 2,
        numCrossAttentionHeads: 2, crossAttentionHeadDim: 8, crossAttentionDim: 16, captionChannels: 24,
        mlpRatio: 2.5, attentionBias: false, sampleSize: 2, patchSize: 1, normElementwiseAffine: false,
        normEps: 1e-6, interpolationScale: nil)
    static let fixtureConfig = UniLIPGeneratorConfig(numQueries: 4, connectLayers: 2, llmConfig: fixtureLLM,
                                                     ditConfig: fixtureDiT)
    static let contextID = 62
    static var fixturePath: String { Fixtures.directory.appendingPathComponent("unilip_generator.safetensors").path }

    /// Generator and LLM loaded strictly by the reference names.
    func loaded() throws -> (UniLIPGenerator, Qwen2Model, Fixtures) {
        var rng = RandomGenerator(seed: 5)
        let generator = UniLIPGenerator(Self.fixtureConfig, rng: &rng)
        let report = try Checkpoint.load(Self.fixturePath, into: generator.namedTensors(),
                                         options: LoadOptions(rules: [.drop(pattern: "^(io|language_model)\\.")]))
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(report.loaded.count, generator.namedTensors().count)
        XCTAssertTrue(report.loaded.contains("latent_queries"))
        XCTAssertTrue(report.loaded.contains("llm_connector.layers.1.self_attn.q_proj.bias"))
        XCTAssertTrue(report.loaded.contains("llm_connector.norm.weight"))
        XCTAssertTrue(report.loaded.contains("projector.weight"))
        let llm = Qwen2Model(Self.fixtureLLM, rng: &rng)
        let rules: RenameRules = [.drop(pattern: "^(io|latent_queries|llm_connector|projector|dit)(\\.|$)"),
                                  .prefix(from: "language_model.", to: "")]
        let llmReport = try Checkpoint.load(Self.fixturePath, into: llm.namedTensors(), options: LoadOptions(rules: rules))
        XCTAssertTrue(llmReport.isClean, "\(llmReport)")
        XCTAssertEqual(llmReport.loaded.count, llm.namedTensors().count)
        llm.freeze()
        return (generator, llm, try Fixtures("unilip_generator"))
    }

    func ints(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    /// Max |a − b| over the rows of [B, L, C] whose mask [B, L] entry is 1.
    func maxError(_ a: Tensor, _ b: Tensor, mask: Tensor? = nil) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        let c = a.shape.last ?? 1
        var worst: Float = 0
        for i in 0..<a.count where mask.map({ $0.pointer[i / c] != 0 }) ?? true {
            worst = max(worst, abs(a.pointer[i] - b.pointer[i]))
        }
        return worst
    }

    // MARK: Parity

    func testDualConditioningAndVelocityMatchReference() throws {
        let (generator, llm, f) = try loaded()
        let mask = f["io.mask"]
        let cond = withNoGrad {
            generator.conditioning(llm: llm, ids: ints(f["io.ids"]), batch: 2, mask: mask, contextID: Self.contextID,
                                   referenceTokens: f["io.reference"])
        }
        XCTAssertEqual(cond.encoderHiddenStates.shape, [2, 17, 24])
        XCTAssertEqual(cond.mask.scalars, mask.scalars)
        XCTAssertLessThanOrEqual(maxError(cond.encoderHiddenStates, f["io.encoder"], mask: mask), 1e-4)
        let v = withNoGrad { generator.velocity(f["io.latents"], timesteps: f["io.t"].scalars, conditioning: cond) }
        XCTAssertLessThanOrEqual(maxError(v, f["io.velocity"]), 1e-4)

        // The reference image reaches the edit row only.
        let other = withNoGrad {
            generator.conditioning(llm: llm, ids: ints(f["io.ids"]), batch: 2, mask: mask, contextID: Self.contextID,
                                   referenceTokens: f["io.reference"] * 2)
        }
        func row(_ t: Tensor, _ r: Int) -> Tensor { t.sliced(axis: 0, start: r, end: r + 1) }
        func rowMask(_ r: Int) -> Tensor { mask.sliced(axis: 0, start: r, end: r + 1) }
        XCTAssertGreaterThan(maxError(row(other.encoderHiddenStates, 0), row(cond.encoderHiddenStates, 0), mask: rowMask(0)), 1e-3)
        XCTAssertLessThanOrEqual(maxError(row(other.encoderHiddenStates, 1), row(cond.encoderHiddenStates, 1), mask: rowMask(1)), 1e-6)
    }

    /// Gradients of sum(velocity · gy) reach the trainable parts as in PyTorch, through the frozen LLM.
    func testTrainableGradientsMatchReference() throws {
        let (generator, llm, f) = try loaded()
        let cond = generator.conditioning(llm: llm, ids: ints(f["io.ids"]), batch: 2, mask: f["io.mask"],
                                          contextID: Self.contextID, referenceTokens: f["io.reference"])
        let v = generator.velocity(f["io.latents"], timesteps: f["io.t"].scalars, conditioning: cond)
        v.backward(f["io.gy"])
        let names = f.tensors.keys.filter { $0.hasPrefix("io.grad.") }.sorted()
        XCTAssertEqual(names.count, 10)
        for key in names {
            let name = String(key.dropFirst("io.grad.".count))
            guard let p = generator.parameter(named: name) else { XCTFail("no parameter \(name)"); continue }
            guard let g = p.grad else { XCTFail("\(name): no gradient"); continue }
            assertClose(g, f[key], atol: 1e-4, rtol: 1e-4, "grad \(name)")
        }
        XCTAssertTrue(llm.parameters().allSatisfy { $0.grad == nil }, "the frozen LLM took gradients")
    }

    func testQueriesOnlyAblationMatchesReference() throws {
        let (generator, llm, f) = try loaded()
        let cond = withNoGrad {
            generator.conditioning(llm: llm, ids: ints(f["io.ids"]), batch: 2, mask: f["io.mask"],
                                   contextID: Self.contextID, referenceTokens: f["io.reference"], mode: .queriesOnly)
        }
        XCTAssertEqual(cond.mask.scalars, [Float](repeating: 1, count: 8))
        XCTAssertLessThanOrEqual(maxError(cond.encoderHiddenStates, f["io.queries_encoder"]), 1e-4)
        let v = withNoGrad { generator.velocity(f["io.latents"], timesteps: f["io.t"].scalars, conditioning: cond) }
        XCTAssertLessThanOrEqual(maxError(v, f["io.queries_velocity"]), 1e-4)
        // The two modes really condition differently.
        XCTAssertGreaterThan(maxError(v, f["io.velocity"]), 1e-3)
    }

    func testSlotLayoutOfEditAndTextRows() throws {
        let f = try Fixtures("unilip_generator")
        let slots = GenerationSlots(ids: ints(f["io.ids"]), batch: 2, mask: f["io.mask"], contextID: Self.contextID,
                                    queries: 4, referenceTokens: 3)
        XCTAssertEqual(slots.references, [[5, 6, 7], []])
        XCTAssertEqual(slots.queries, [[13, 14, 15, 16], [6, 7, 8, 9]])
        XCTAssertEqual(slots.editRows, [0])
    }

    // MARK: Initialisation and training

    func smallConfig() -> UniLIPGeneratorConfig {
        var llm = Self.fixtureLLM
        llm.vocabSize = 40
        var c = Self.fixtureConfig
        c.llmConfig = llm
        return c
    }

    /// A frozen random LLM and a head on `smallConfig()` changed by `configure`.
    func frozenLLMAndHead(seed: UInt64, rng: inout RandomGenerator,
                          _ configure: (inout UniLIPGeneratorConfig) -> Void) -> (Qwen2Model, UniLIPGenerator) {
        rng = RandomGenerator(seed: seed)
        var config = smallConfig()
        configure(&config)
        let llm = Qwen2Model(config.llmConfig, rng: &rng)
        llm.freeze()
        return (llm, UniLIPGenerator(config, rng: &rng))
    }

    func testConnectorInitialisedFromLastLLMLayers() {
        var rng = RandomGenerator(seed: 2)
        let config = smallConfig()
        let llm = Qwen2Model(config.llmConfig, rng: &rng)
        let generator = UniLIPGenerator(config, rng: &rng)
        let x = Tensor.normal([2, 5, 32], rng: &rng)
        let before = withNoGrad { generator.llmConnector(embeddings: x, causal: false).lastHiddenState }
        generator.initConnector(from: llm)
        for i in 0..<2 {
            let src = llm.layers[1 + i].namedParameters(), dst = generator.llmConnector.layers[i].namedParameters()
            XCTAssertEqual(src.count, dst.count)
            for ((name, s), (_, d)) in zip(src, dst) {
                XCTAssertEqual(s.scalars, d.scalars, "layer \(i) \(name)")
                XCTAssertFalse(s === d, "the connector must own copies")
            }
        }
        XCTAssertEqual(generator.llmConnector.norm.namedParameters()[0].1.scalars, llm.norm.namedParameters()[0].1.scalars)
        // Same function as the LLM's last two layers (bidirectional) and its norm.
        let connector = withNoGrad { generator.llmConnector(embeddings: x, causal: false).lastHiddenState }
        let reference = withNoGrad { llm(embeddings: x, causal: false, layers: 1..<3).lastHiddenState }
        XCTAssertLessThanOrEqual(maxError(connector, reference), 1e-6)
        XCTAssertGreaterThan(maxError(connector, before), 1e-3)
    }

    func testLossIsFiniteAndOnlyTrainablePartsGetGradients() {
        var rng = RandomGenerator(seed: 3)
        let config = smallConfig()
        let llm = Qwen2Model(config.llmConfig, rng: &rng)
        llm.freeze()
        let generator = UniLIPGenerator(config, rng: &rng)
        generator.initConnector(from: llm)
        // Row 0 edits (3 reference slots), row 1 is text-to-image, right-padded.
        let c = 39
        let ids = [1, 2, c, c, c, 3, 4, c, c, c, c,
                   5, 6, 7, 4, c, c, c, c, 0, 0, 0]
        let mask = Tensor([Float](repeating: 1, count: 11) + [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], shape: [2, 11])
        let reference = Tensor.normal([1, 3, 32], rng: &rng)
        let cond = generator.conditioning(llm: llm, ids: ids, batch: 2, mask: mask, contextID: c,
                                          referenceTokens: reference)
        let x0 = Tensor.normal([2, 4, 2, 2], rng: &rng)
        var lossRng = RandomGenerator(seed: 9)
        let loss = generator.flowMatchingLoss(x0, conditioning: cond, rng: &lossRng)
        XCTAssertEqual(loss.shape, [])
        XCTAssertTrue(loss.item.isFinite && loss.item > 0)
        loss.backward()
        for (name, p) in generator.namedParameters() {
            guard let g = p.grad else { XCTFail("\(name): no gradient"); continue }
            XCTAssertTrue(g.scalars.allSatisfy(\.isFinite), "\(name): non-finite gradient")
        }
        for prefix in ["latent_queries", "llm_connector", "projector", "dit"] {
            let norm = generator.parameters(under: prefix).reduce(Float(0)) { acc, p in
                acc + (p.1.grad?.scalars.reduce(0) { $0 + $1 * $1 } ?? 0)
            }
            XCTAssertGreaterThan(norm, 0, "\(prefix) receives no gradient")
        }
        for (name, p) in llm.namedParameters() {
            XCTAssertNil(p.grad, "frozen LLM parameter \(name) got a gradient")
        }
        // Same seed, same loss.
        var again = RandomGenerator(seed: 9)
        let repeated = withNoGrad { generator.flowMatchingLoss(x0, conditioning: cond, rng: &again) }
        XCTAssertEqual(repeated.item, loss.item, accuracy: 1e-6)
    }

    func testGridPositionEmbeddingTagsTheChosenSlots() throws {
        // Row 0 edits (4 reference slots for the 2×2 grid), row 1 is text-to-image, right-padded.
        let c = 39
        let ids = [1, 2, c, c, c, c, 3, 4, c, c, c, c,
                   5, 6, 7, 4, c, c, c, c, 0, 0, 0, 0]
        let mask = Tensor([Float](repeating: 1, count: 12) + [Float](repeating: 1, count: 8) + [0, 0, 0, 0], shape: [2, 12])
        var run: [UniLIPGeneratorConfig.GridPositionEmbedding: (UniLIPGenerator, Tensor)] = [:]
        for mode in UniLIPGeneratorConfig.GridPositionEmbedding.allCases {
            var rng = RandomGenerator(seed: 0)
            let (llm, generator) = frozenLLMAndHead(seed: 6, rng: &rng) { $0.gridPositionEmbedding = mode }
            let reference = Tensor.normal([1, 4, 32], rng: &rng)
            let cond = generator.conditioning(llm: llm, ids: ids, batch: 2, mask: mask, contextID: c,
                                              referenceTokens: reference)
            cond.encoderHiddenStates.sum().backward()
            run[mode] = (generator, cond.encoderHiddenStates.detached())
        }
        let (plain, none) = try XCTUnwrap(run[.none])
        XCTAssertNil(plain.gridPositions)
        XCTAssertFalse(plain.namedParameters().contains { $0.0 == "grid_position_embedding" })
        func rows(_ t: Tensor, _ r: Int) -> Tensor { t.sliced(axis: 0, start: r, end: r + 1) }
        let rowMask = [rows(mask, 0), rows(mask, 1)]
        for mode in [UniLIPGeneratorConfig.GridPositionEmbedding.reference, .referenceAndQueries] {
            let (generator, states) = try XCTUnwrap(run[mode])
            let table = try XCTUnwrap(generator.namedParameters().first { $0.0 == "grid_position_embedding" }?.1)
            XCTAssertEqual(table.shape, [1, 4, 32])
            let sinCos = SanaPatchEmbed.sinCosPositionEmbedding(width: 32, height: 2, widthTokens: 2, baseSize: 2,
                                                                 interpolationScale: 1)
            XCTAssertEqual(table.scalars, sinCos.scalars)
            XCTAssertGreaterThan(table.grad?.scalars.map(abs).max() ?? 0, 0, "\(mode): no gradient")
            // The edit row always changes; the text-to-image row only when the queries are tagged.
            XCTAssertGreaterThan(maxError(rows(states, 0), rows(none, 0), mask: rowMask[0]), 1e-3, "\(mode)")
            let textRow = maxError(rows(states, 1), rows(none, 1), mask: rowMask[1])
            if mode == .reference { XCTAssertEqual(textRow, 0, "\(mode)") } else { XCTAssertGreaterThan(textRow, 1e-3) }
        }
        // The key is ours: absent means none; a non-square grid is refused.
        var config = smallConfig()
        config.gridPositionEmbedding = .referenceAndQueries
        let text = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        XCTAssertTrue(text.contains("\"grid_position_embedding\":\"reference_and_queries\""), text)
        XCTAssertEqual(try JSONDecoder().decode(UniLIPGeneratorConfig.self, from: Data(text.utf8)), config)
        let withoutKey = text.replacingOccurrences(of: ",\"grid_position_embedding\":\"reference_and_queries\"", with: "")
            .replacingOccurrences(of: "\"grid_position_embedding\":\"reference_and_queries\",", with: "")
        XCTAssertEqual(try JSONDecoder().decode(UniLIPGeneratorConfig.self, from: Data(withoutKey.utf8)).gridPositionEmbedding, .none)
        config.numQueries = 3
        XCTAssertThrowsError(try config.validate())
    }

    func testTextEmbeddingOffsetStartsNeutralAndLearnsOnlyTheUsedTokens() throws {
        let c = 39
        let ids = [1, 2, 3, 2, c, c, c, c]
        let mask = Tensor(repeating: 1, shape: [1, 8])
        var states: [Bool: Tensor] = [:]
        var withOffset: UniLIPGenerator?
        for on in [false, true] {
            var rng = RandomGenerator(seed: 0)
            let (llm, generator) = frozenLLMAndHead(seed: 8, rng: &rng) { $0.textEmbeddingOffset = on }
            let cond = generator.conditioning(llm: llm, ids: ids, batch: 1, mask: mask, contextID: c)
            cond.encoderHiddenStates.sum().backward()
            states[on] = cond.encoderHiddenStates.detached()
            XCTAssertTrue(llm.parameters().allSatisfy { $0.grad == nil }, "the LLM stays frozen")
            if on { withOffset = generator }
        }
        // A zero table computes what the plain head does.
        XCTAssertEqual(maxError(try XCTUnwrap(states[true]), try XCTUnwrap(states[false])), 0)
        let generator = try XCTUnwrap(withOffset)
        let table = try XCTUnwrap(generator.namedParameters().first { $0.0 == "text_embedding_offset" }?.1)
        XCTAssertEqual(table.shape, [smallConfig().llmConfig.vocabSize, 32])
        let grad = try XCTUnwrap(table.grad)
        func rowNorm(_ r: Int) -> Float { (0..<32).map { abs(grad.pointer[r * 32 + $0]) }.max() ?? 0 }
        for used in [1, 2, 3] { XCTAssertGreaterThan(rowNorm(used), 0, "token \(used)") }
        // Query slots take the queries, not the text embedding.
        for unused in [0, 4, 5, c] { XCTAssertEqual(rowNorm(unused), 0, "token \(unused)") }
        // The key is ours: absent means off.
        let text = String(decoding: try JSONEncoder().encode(generator.config), as: UTF8.self)
        XCTAssertTrue(text.contains("\"text_embedding_offset\":true"), text)
        let withoutKey = text.replacingOccurrences(of: ",\"text_embedding_offset\":true", with: "")
            .replacingOccurrences(of: "\"text_embedding_offset\":true,", with: "")
        XCTAssertFalse(try JSONDecoder().decode(UniLIPGeneratorConfig.self, from: Data(withoutKey.utf8)).textEmbeddingOffset)
    }

    func testQueriesReceiveGradientsThroughTheFrozenLLMOnly() {
        var rng = RandomGenerator(seed: 4)
        let config = smallConfig()
        let llm = Qwen2Model(config.llmConfig, rng: &rng)
        llm.freeze()
        let generator = UniLIPGenerator(config, rng: &rng)
        let c = 39
        let ids = [1, 2, 3, c, c, c, c]
        let mask = Tensor(repeating: 1, shape: [1, 7])
        let cond = generator.conditioning(llm: llm, ids: ids, batch: 1, mask: mask, contextID: c, mode: .queriesOnly)
        cond.encoderHiddenStates.sum().backward()
        XCTAssertNotNil(generator.latentQueries.grad)
        XCTAssertNil(generator.dit.parameters().first?.grad, "the DiT is not on this path")
        XCTAssertTrue(llm.parameters().allSatisfy { $0.grad == nil })
    }

    // MARK: Config

    func testConfigRoundTripsAndReadsReferenceKeys() throws {
        let json = try JSONEncoder().encode(UniLIPGeneratorConfig.unilip1B)
        let text = String(decoding: json, as: UTF8.self)
        for key in ["\"n_query\":256", "\"connect_layer\":6", "\"unilip_factor\"", "\"llm_config\"", "\"dit_config\""] {
            XCTAssertTrue(text.contains(key), "missing \(key) in \(text.prefix(200))")
        }
        let decoded = try JSONDecoder().decode(UniLIPGeneratorConfig.self, from: json)
        XCTAssertEqual(decoded, .unilip1B)
        XCTAssertEqual(decoded.ditConfig.captionChannels, 2304)
        var bad = UniLIPGeneratorConfig.tiny()
        bad.connectLayers = 5
        XCTAssertThrowsError(try bad.validate())
        bad = .tiny()
        bad.numQueries = 0
        XCTAssertThrowsError(try bad.validate())
        XCTAssertNoThrow(try UniLIPGeneratorConfig.tiny().validate())
        XCTAssertEqual(UniLIPGeneratorConfig.tiny().numQueries, SanaConfig.tiny.sampleSize * SanaConfig.tiny.sampleSize)
    }
}
