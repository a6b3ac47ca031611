import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class SanaTransformerTests: XCTestCase {
    // The fixture configs, as diffusers writes them in config.json (plus keys this port ignores).
    static let configA = """
    {"_class_name": "SanaTransformer2DModel", "_diffusers_version": "0.42.1", "in_channels": 4,
     "out_channels": 6, "num_attention_heads": 2, "attention_head_dim": 8, "num_layers": 2,
     "num_cross_attention_heads": 2, "cross_attention_head_dim": 8, "cross_attention_dim": 16,
     "caption_channels": 12, "mlp_ratio": 2.5, "dropout": 0.0, "attention_bias": true, "sample_size": 4,
     "patch_size": 1, "norm_elementwise_affine": true, "norm_eps": 1e-06, "interpolation_scale": null,
     "guidance_embeds": false, "guidance_embeds_scale": 0.1, "qk_norm": null, "timestep_scale": 1.0,
     "some_future_key": [1, 2]}
    """
    static let configB = """
    {"in_channels": 4, "out_channels": 4, "num_attention_heads": 4, "attention_head_dim": 4, "num_layers": 2,
     "num_cross_attention_heads": 2, "cross_attention_head_dim": 12, "cross_attention_dim": 16,
     "caption_channels": 8, "mlp_ratio": 2.0, "attention_bias": false, "sample_size": 4, "patch_size": 2,
     "norm_elementwise_affine": false, "norm_eps": 1e-06, "interpolation_scale": 1.0}
    """

    private func config(_ json: String) throws -> SanaConfig {
        try JSONDecoder().decode(SanaConfig.self, from: Data(json.utf8))
    }

    /// The model with its weights loaded strictly from the fixture (keys "<key>.<diffusers name>").
    private func model(_ key: String, _ json: String) throws -> SanaTransformer2DModel {
        var rng = RandomGenerator(seed: 1)
        let m = SanaTransformer2DModel(try config(json), rng: &rng)
        let path = Fixtures.directory.appendingPathComponent("sana.safetensors").path
        let other = key == "a" ? "b" : "a"
        let rules: RenameRules = [.drop(pattern: "^(io|\(other))\\."), .prefix(from: "\(key).", to: "")]
        let report = try Checkpoint.load(path, into: m.namedTensors(), options: LoadOptions(rules: rules))
        XCTAssertTrue(report.missing.isEmpty && report.unexpected.isEmpty, "\(report)")
        XCTAssertEqual(report.loaded.count, m.namedTensors().count)
        return m
    }

    private func parity(_ key: String, _ json: String, allParameterGradients: Bool) throws {
        let m = try model(key, json)
        let f = try Fixtures("sana")
        let x = f["io.\(key).x"], caption = f["io.\(key).caption"]
        x.requiresGrad = true
        caption.requiresGrad = true
        let y = m(x, encoderHiddenStates: caption, timestep: f["io.\(key).t"],
                  encoderAttentionMask: f["io.\(key).mask"])
        assertClose(y, f["io.\(key).y"], atol: 1e-4, rtol: 0, "\(key) forward")
        y.backward(f["io.\(key).gy"])
        guard let gx = x.grad, let gc = caption.grad else { return XCTFail("no input gradients") }
        assertClose(gx, f["io.\(key).gx"], atol: 1e-4, rtol: 1e-4, "\(key) grad latents")
        assertClose(gc, f["io.\(key).gcaption"], atol: 1e-4, rtol: 1e-4, "\(key) grad caption")
        guard allParameterGradients else { return }
        for (name, p) in m.namedParameters() {
            guard let g = p.grad else { XCTFail("\(name): no gradient"); continue }
            assertClose(g, f["io.\(key).grad.\(name)"], atol: 1e-4, rtol: 1e-4, "\(key) grad \(name)")
        }
    }

    func testMatchesDiffusersPatch1WithAffineNormAndBiasedAttention() throws {
        try parity("a", Self.configA, allParameterGradients: true)
    }

    func testMatchesDiffusersPatch2WithSinCosPositions() throws {
        try parity("b", Self.configB, allParameterGradients: false)
    }

    func testStrictLoadingRejectsAMismatchedConfig() throws {
        // Config a without attention biases: the checkpoint's to_q/k/v biases are unexpected.
        var c = try config(Self.configA)
        c.attentionBias = false
        var rng = RandomGenerator(seed: 1)
        let m = SanaTransformer2DModel(c, rng: &rng)
        let path = Fixtures.directory.appendingPathComponent("sana.safetensors").path
        let rules: RenameRules = [.drop(pattern: "^(io|b)\\."), .prefix(from: "a.", to: "")]
        XCTAssertThrowsError(try Checkpoint.load(path, into: m.namedTensors(), options: LoadOptions(rules: rules)))
    }

    func testConfigDecodingDefaultsAndPresets() throws {
        let a = try config(Self.configA)
        XCTAssertEqual(a.captionChannels, 12)
        XCTAssertEqual(a.resolvedOutChannels, 6)
        XCTAssertEqual(a.ffnHiddenDim, 40)
        XCTAssertNil(a.interpolationScale)
        let empty = try config("{}")
        XCTAssertEqual(empty, SanaConfig())
        XCTAssertEqual(empty.innerDim, 2240)
        let roundTrip = try JSONDecoder().decode(SanaConfig.self, from: JSONEncoder().encode(SanaConfig.sana600M))
        XCTAssertEqual(roundTrip, .sana600M)
        XCTAssertEqual(SanaConfig.sana600M.innerDim, 1152)
        XCTAssertEqual(SanaConfig.sana600M.ffnHiddenDim, 2880)
        XCTAssertEqual(SanaConfig.sana1600M.innerDim, 2240)
        XCTAssertEqual(SanaConfig.sana1600M.ffnHiddenDim, 5600)
        XCTAssertEqual(SanaConfig.sana1600M.crossHeads * SanaConfig.sana1600M.crossHeadDim, 2240)
        XCTAssertNil(SanaConfig.sana600M.unsupportedReason)
        XCTAssertNil(SanaConfig.sana1600M.unsupportedReason)
        XCTAssertNil(SanaConfig.tiny.unsupportedReason)
    }

    func testParameterNamesFollowDiffusers() {
        var rng = RandomGenerator(seed: 2)
        let m = SanaTransformer2DModel(.tiny, rng: &rng)
        let names = Set(m.namedParameters().map(\.0))
        for name in ["patch_embed.proj.weight", "patch_embed.proj.bias",
                     "time_embed.emb.timestep_embedder.linear_1.weight", "time_embed.emb.timestep_embedder.linear_2.bias",
                     "time_embed.linear.weight", "caption_projection.linear_1.weight",
                     "caption_projection.linear_2.bias", "caption_norm.weight", "scale_shift_table", "proj_out.weight",
                     "transformer_blocks.3.attn1.to_q.weight", "transformer_blocks.3.attn1.to_out.0.bias",
                     "transformer_blocks.0.attn2.to_k.bias", "transformer_blocks.0.ff.conv_inverted.weight",
                     "transformer_blocks.0.ff.conv_depth.bias", "transformer_blocks.0.ff.conv_point.weight",
                     "transformer_blocks.2.scale_shift_table"] {
            XCTAssert(names.contains(name), "missing \(name)")
        }
        XCTAssertFalse(names.contains("transformer_blocks.0.attn1.to_q.bias"), "SANA has no q/k/v bias")
        XCTAssertFalse(names.contains("transformer_blocks.0.ff.conv_point.bias"))
        XCTAssertFalse(names.contains("transformer_blocks.0.norm2.weight"))
        XCTAssertEqual(m.namedParameters().count, 16 + 4 * 19)
        XCTAssertEqual(m.parameterCount, SanaConfig.tiny.parameterCount)
        // Counts of diffusers' SanaTransformer2DModel built from the same configs.
        XCTAssertEqual(SanaConfig.tiny.parameterCount, 1_239_840)
        XCTAssertEqual(SanaConfig.sana600M.parameterCount, 591_747_872)
        XCTAssertEqual(SanaConfig.sana1600M.parameterCount, 1_604_462_752)
        for json in [Self.configA, Self.configB] {
            guard let c = try? config(json) else { return XCTFail("config") }
            var r = RandomGenerator(seed: 1)
            XCTAssertEqual(SanaTransformer2DModel(c, rng: &r).parameterCount, c.parameterCount)
        }
    }

    func testTinyForwardShapeAndMaskedTokensAreIgnored() {
        var rng = RandomGenerator(seed: 3)
        let m = SanaTransformer2DModel(.tiny, rng: &rng)
        let x = randn(2, 32, 4, 4, seed: 4)
        let caption = randn(2, 6, 128, seed: 5)
        let mask = Tensor([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0], shape: [2, 6])
        let y = withNoGrad { m(x, encoderHiddenStates: caption, timesteps: [500, 20], encoderAttentionMask: mask) }
        XCTAssertEqual(y.shape, [2, 32, 4, 4])
        // Changing padded caption tokens leaves the output unchanged.
        let changed = caption.copy()
        for t in [4, 5] { for c in 0..<128 { changed.pointer[t * 128 + c] += 3 } }
        let y2 = withNoGrad { m(x, encoderHiddenStates: changed, timesteps: [500, 20], encoderAttentionMask: mask) }
        assertClose(y2, y, atol: 1e-6, rtol: 0, "padded tokens ignored")
        // 2×2 grids work too.
        let small = withNoGrad { m(randn(1, 32, 2, 2, seed: 6), encoderHiddenStates: randn(1, 3, 128, seed: 7),
                                   timesteps: [999]) }
        XCTAssertEqual(small.shape, [1, 32, 2, 2])
    }

    func testChannelsLastDepthwiseConvMatchesConv2d() {
        var rng = RandomGenerator(seed: 21)
        let w = Tensor.normal([6, 1, 3, 3], rng: &rng), b = Tensor.normal([6], rng: &rng)
        let x = randn(2, 3, 5, 6, seed: 22)   // [B, H, W, C]
        let y = SanaKernels.depthwiseConvChannelsLast(x, weight: w, bias: b)
        let ref = x.permuted([0, 3, 1, 2]).conv2d(w, bias: b, stride: 1, padding: 1, groups: 6).permuted([0, 2, 3, 1])
        assertClose(y, ref, atol: 1e-5, rtol: 1e-5, "forward")
        checkGradients([x, w, b]) { xs in SanaKernels.depthwiseConvChannelsLast(xs[0], weight: xs[1], bias: xs[2]) }
        checkGradients([randn(1, 2, 2, 3, seed: 23), randn(3, 1, 3, 3, seed: 24)]) { xs in
            SanaKernels.depthwiseConvChannelsLast(xs[0], weight: xs[1], bias: nil)
        }
    }

    func testGatedSiLU() {
        let x = randn(3, 4, 10, seed: 25)
        let y = SanaKernels.gatedSiLU(x)
        let ref = x.sliced(axis: 2, start: 0, end: 5) * x.sliced(axis: 2, start: 5, end: 10).silu()
        assertClose(y, ref, atol: 1e-6, rtol: 1e-5, "forward")
        checkGradients([x]) { xs in SanaKernels.gatedSiLU(xs[0]) }
    }

    func testKeyPaddingPathEqualsAdditiveBias() {
        var rng = RandomGenerator(seed: 26)
        let m = SanaTransformer2DModel(.tiny, rng: &rng)
        let h = randn(2, 16, 128, seed: 27), ctx = randn(2, 5, 128, seed: 28), mod = randn(2, 768, seed: 29)
        let mask = Tensor([1, 1, 0, 0, 0, 1, 1, 1, 1, 0], shape: [2, 5])
        let viaBias = withNoGrad {
            m.blocks[0](h, modulation: mod, context: ctx, contextBias: SanaTransformer2DModel.captionBias(mask),
                        height: 4, width: 4)
        }
        let viaPadding = withNoGrad {
            m.blocks[0](h, modulation: mod, context: ctx, contextBias: nil, contextPadding: mask, height: 4, width: 4)
        }
        assertClose(viaPadding, viaBias, atol: 1e-5, rtol: 1e-5, "padding vs bias")
        // A caption row with no kept token falls back to the bias (diffusers then averages all keys).
        let empty = Tensor([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], shape: [2, 5])
        let y = withNoGrad { m(randn(2, 32, 4, 4, seed: 30), encoderHiddenStates: randn(2, 5, 128, seed: 31),
                               timesteps: [1, 2], encoderAttentionMask: empty) }
        XCTAssertFalse(y.scalars.contains { !$0.isFinite })
    }

    func testLegacyDefaultPositionEmbedding() throws {
        // diffusers ≤ 0.32: a null interpolation_scale still adds the embedding, scale max(s/64, 1).
        var plain = SanaConfig.tiny
        plain.interpolationScale = nil
        XCTAssertNil(plain.effectivePositionEmbeddingScale)
        var legacy = plain
        legacy.legacyDefaultPositionEmbedding = true
        XCTAssertEqual(legacy.effectivePositionEmbeddingScale, 1)
        XCTAssertEqual(SanaConfig.tiny.effectivePositionEmbeddingScale, 1, "the tiny preset has the embedding on")
        var explicit = plain
        explicit.interpolationScale = 1
        var r1 = RandomGenerator(seed: 8), r2 = RandomGenerator(seed: 8), r3 = RandomGenerator(seed: 8)
        let a = SanaTransformer2DModel(legacy, rng: &r1), b = SanaTransformer2DModel(explicit, rng: &r2)
        let none = SanaTransformer2DModel(plain, rng: &r3)
        let x = randn(1, 32, 4, 4, seed: 9), cap = randn(1, 3, 128, seed: 10)
        let ya = withNoGrad { a(x, encoderHiddenStates: cap, timesteps: [400]) }
        let yb = withNoGrad { b(x, encoderHiddenStates: cap, timesteps: [400]) }
        let yn = withNoGrad { none(x, encoderHiddenStates: cap, timesteps: [400]) }
        assertClose(ya, yb, atol: 0, rtol: 0, "legacy = explicit scale 1")
        XCTAssertGreaterThan((ya - yn).abs().max().item, 1e-3)
    }

    func testFiniteDifferenceGradients() {
        // Small widths and a smooth regime (positive q/k inputs) keep float32 differences usable.
        let c = SanaConfig(inChannels: 3, outChannels: 3, numAttentionHeads: 2, attentionHeadDim: 4, numLayers: 1,
                           numCrossAttentionHeads: 2, crossAttentionHeadDim: 4, crossAttentionDim: 8,
                           captionChannels: 5, mlpRatio: 1.5, sampleSize: 3, patchSize: 1)
        var rng = RandomGenerator(seed: 11)
        let m = SanaTransformer2DModel(c, rng: &rng)
        let mask = Tensor([1, 1, 0, 1, 1, 1], shape: [2, 3])
        checkGradients([randn(2, 3, 3, 3, seed: 12), randn(2, 3, 5, seed: 13)], eps: 1e-2, atol: 2e-2, rtol: 2e-2,
                       maxProbes: 24) { xs in
            m(xs[0], encoderHiddenStates: xs[1], timesteps: [300, 900], encoderAttentionMask: mask)
        }
    }
}
