import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class InternViTTests: XCTestCase {
    /// The config of Tools/reference/fixtures/internvit.py.
    static let fixtureConfig = InternViTConfig(
        patchSize: 4, imageSize: 16, qkvBias: true, hiddenSize: 32, numAttentionHeads: 4,
        intermediateSize: 64, qkNormalization: false, numHiddenLayers: 2, normType: "layer_norm",
        layerNormEps: 1e-6, initializerFactor: 1)

    /// Encoder and projector loaded strictly from the fixture's `vision_model.*` and `mlp1.*`
    /// tensors; only the test data (`data.*`) is set aside.
    func loadFixtureModel() throws -> (InternViT, InternVLProjector, Fixtures) {
        var rng = RandomGenerator(seed: 1)
        let vit = InternViT(config: Self.fixtureConfig, rng: &rng)
        let projector = InternVLProjector(visionHidden: 32, llmHidden: 24, rng: &rng)
        let path = Fixtures.directory.appendingPathComponent("internvit.safetensors").path
        let report = try Checkpoint(path: path).load(
            into: vit.namedTensors(prefix: "vision_model") + projector.namedTensors(prefix: "mlp1"),
            options: LoadOptions(rules: [.drop(pattern: "^data\\.")]))
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(report.loaded.count, vit.namedTensors().count + 6)
        return (vit, projector, try Fixtures("internvit"))
    }

    func testTensorNamesFollowTheRemoteCode() {
        var rng = RandomGenerator(seed: 0)
        let vit = InternViT(config: .tiny, rng: &rng)
        let names = vit.namedTensors().map(\.0)
        XCTAssertEqual(Array(names.prefix(4)), [
            "embeddings.class_embedding", "embeddings.position_embedding",
            "embeddings.patch_embedding.weight", "embeddings.patch_embedding.bias"])
        XCTAssertEqual(Array(names[4..<20]), [
            "encoder.layers.0.ls1", "encoder.layers.0.ls2",
            "encoder.layers.0.attn.qkv.weight", "encoder.layers.0.attn.qkv.bias",
            "encoder.layers.0.attn.proj.weight", "encoder.layers.0.attn.proj.bias",
            "encoder.layers.0.mlp.fc1.weight", "encoder.layers.0.mlp.fc1.bias",
            "encoder.layers.0.mlp.fc2.weight", "encoder.layers.0.mlp.fc2.bias",
            "encoder.layers.0.norm1.weight", "encoder.layers.0.norm1.bias",
            "encoder.layers.0.norm2.weight", "encoder.layers.0.norm2.bias",
            "encoder.layers.1.ls1", "encoder.layers.1.ls2"])
        XCTAssertEqual(names.count, 4 + 4 * 14)
        XCTAssertEqual(vit.embeddings.classEmbedding.shape, [1, 1, 128])
        XCTAssertEqual(vit.embeddings.positionEmbedding.shape, [1, 65, 128])
        XCTAssertEqual(vit.embeddings.patchEmbedding.weight.shape, [128, 3, 8, 8])
        XCTAssertEqual(vit.tensor(named: "encoder.layers.3.mlp.fc1.weight")?.shape, [512, 128])
        XCTAssertEqual(vit.tensor(named: "encoder.layers.3.ls2")?.pointer[5], 1)

        let projector = InternVLProjector(visionHidden: 128, llmHidden: 64, rng: &rng)
        XCTAssertEqual(projector.namedTensors().map(\.0),
                       ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"])
        XCTAssertEqual(projector.fc1.weight.shape, [64, 512])
    }

    func testRandomInitIsSeededTruncatedNormal() {
        var a = RandomGenerator(seed: 5), b = RandomGenerator(seed: 5)
        let v1 = InternViT(config: .tiny, rng: &a), v2 = InternViT(config: .tiny, rng: &b)
        for ((name, t1), (_, t2)) in zip(v1.namedTensors(), v2.namedTensors()) {
            XCTAssertEqual(t1.scalars, t2.scalars, name)
        }
        let w = v1.encoder.layers[0].attn.qkv.weight.scalars
        let std = (w.map { $0 * $0 }.reduce(0, +) / Float(w.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
        XCTAssertLessThanOrEqual(w.map(abs).max() ?? 0, 2)
        XCTAssertEqual(v1.encoder.layers[0].attn.qkv.bias?.scalars.allSatisfy { $0 == 0 }, true)
    }

    func testConfigDecodesVisionConfigJSON() throws {
        let json = """
        {"architectures": ["InternVisionModel"], "attention_dropout": 0.0, "drop_path_rate": 0.0,
         "dropout": 0.0, "hidden_act": "gelu", "hidden_size": 1024, "image_size": 448,
         "initializer_factor": 0.1, "initializer_range": 0.02, "intermediate_size": 4096,
         "layer_norm_eps": 1e-06, "model_type": "intern_vit_6b", "norm_type": "layer_norm",
         "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24,
         "patch_size": 14, "qk_normalization": false, "qkv_bias": true, "use_flash_attn": true}
        """
        let config = try JSONDecoder().decode(InternViTConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config, .internViT300M)
        XCTAssertEqual(config.gridSize, 32)
        XCTAssertEqual(config.headDim, 64)
        // Round trip through the snake_case keys; absent keys take InternVisionConfig's defaults.
        let encoded = try JSONEncoder().encode(InternViTConfig.tiny)
        XCTAssertTrue(String(decoding: encoded, as: UTF8.self).contains("\"num_hidden_layers\":4"))
        XCTAssertEqual(try JSONDecoder().decode(InternViTConfig.self, from: encoded), .tiny)
        let sparse = try JSONDecoder().decode(InternViTConfig.self, from: Data(#"{"hidden_size": 64}"#.utf8))
        XCTAssertEqual(sparse.hiddenSize, 64)
        XCTAssertEqual(sparse.numHiddenLayers, 48)
        XCTAssertEqual(sparse.normType, "rms_norm")
    }

    func testPixelShuffleIndexMap() {
        let b = 2, h = 4, w = 6, c = 3
        let x = Tensor((0..<(b * h * w * c)).map(Float.init), shape: [b, h, w, c])
        let y = InternVLProjector.pixelShuffle(x)
        XCTAssertEqual(y.shape, [b, h / 2, w / 2, 4 * c])
        for n in 0..<b { for a in 0..<(h / 2) { for col in 0..<(w / 2) {
            for m in 0..<2 { for k in 0..<2 { for ch in 0..<c {
                let out = y.pointer[((n * (h / 2) + a) * (w / 2) + col) * 4 * c + (2 * m + k) * c + ch]
                let input = x.pointer[((n * h + 2 * a + m) * w + 2 * col + k) * c + ch]
                XCTAssertEqual(out, input)
            } } }
        } } }
    }

    func testPixelShuffleMatchesInternVL() throws {
        let f = try Fixtures("internvit")
        assertClose(InternVLProjector.pixelShuffle(f["data.shuffle.x"]), f["data.shuffle.y"], atol: 0, rtol: 0,
                    "pixel shuffle v2")
    }

    func testMatchesPyTorchAtNativeResolution() throws {
        let (vit, projector, f) = try loadFixtureModel()
        let x = f["data.square.x"]
        assertClose(vit(x), f["data.square.hidden"], atol: 1e-4, rtol: 0, "hidden state")
        assertClose(projector.imageTokens(x, encoder: vit), f["data.square.tokens"], atol: 1e-4, rtol: 0, "tokens")
    }

    func testMatchesPyTorchWithResizedPositions() throws {
        let (vit, projector, f) = try loadFixtureModel()
        let x = f["data.rect.x"]
        x.requiresGrad = true
        let hidden = vit(x)
        XCTAssertEqual(hidden.shape, [2, 1 + 6 * 4, 32])
        assertClose(hidden, f["data.rect.hidden"], atol: 1e-4, rtol: 0, "hidden state")
        let tokens = projector.tokens(fromHidden: hidden, grid: (6, 4))
        assertClose(tokens, f["data.rect.tokens"], atol: 1e-4, rtol: 0, "tokens")

        tokens.backward(f["data.rect.gy"])
        guard let gx = x.grad else { return XCTFail("no input gradient") }
        assertClose(gx, f["data.rect.gx"], atol: 1e-4, rtol: 1e-3, "input gradient")
        for (name, p) in vit.namedParameters(prefix: "vision_model") + projector.namedParameters(prefix: "mlp1") {
            guard let g = p.grad else {
                XCTFail("\(name) has no gradient")
                continue
            }
            assertClose(g, f["data.rect.grad.\(name)"], atol: 1e-4, rtol: 1e-3, "gradient of \(name)")
        }
    }

    func testStrictLoadRejectsAShallowerEncoder() throws {
        var config = Self.fixtureConfig
        config.numHiddenLayers = 1
        var rng = RandomGenerator(seed: 1)
        let vit = InternViT(config: config, rng: &rng)
        let path = Fixtures.directory.appendingPathComponent("internvit.safetensors").path
        XCTAssertThrowsError(try Checkpoint(path: path).load(
            into: vit.namedTensors(prefix: "vision_model"),
            options: LoadOptions(rules: [.drop(pattern: "^(data|mlp1)\\.")])))
    }

    func testFiniteDifferencesThroughEncoderAndProjector() {
        let config = InternViTConfig(
            patchSize: 2, imageSize: 8, qkvBias: true, hiddenSize: 8, numAttentionHeads: 2,
            intermediateSize: 16, qkNormalization: false, numHiddenLayers: 2, normType: "layer_norm",
            initializerRange: 0.3, initializerFactor: 0.7)
        var rng = RandomGenerator(seed: 3)
        let vit = InternViT(config: config, rng: &rng)
        let projector = InternVLProjector(visionHidden: 8, llmHidden: 6, rng: &rng)
        // 12×8 pixels: a 6×4 grid, so the positions go through the bicubic resize.
        let pixels = randn(1, 3, 12, 8, seed: 4)
        let layer = vit.encoder.layers[1]
        checkGradients([pixels, vit.embeddings.positionEmbedding, vit.embeddings.classEmbedding, layer.ls1,
                        layer.attn.qkv.weight, projector.fc1.weight],
                       eps: 1e-2, atol: 2e-2, rtol: 2e-2) { xs in
            projector.imageTokens(xs[0], encoder: vit)
        }
    }
}
