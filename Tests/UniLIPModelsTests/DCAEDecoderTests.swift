import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

/// Parity with diffusers' `AutoencoderDC` decoder (Tools/reference/fixtures/dcae.py).
final class DCAEDecoderTests: XCTestCase {
    static var fixturePath: String { Fixtures.directory.appendingPathComponent("dcae.safetensors").path }

    static func metadata(_ key: String) throws -> String {
        let file = try SafetensorsFile(path: fixturePath)
        guard let value = file.metadata[key] else { throw DCAEConfigError.invalid("fixture metadata \(key) missing") }
        return value
    }

    /// The fixture's config `key` (diffusers' own config.json), and a decoder built from it with
    /// every tensor loaded strictly from `key.decoder.*`; the other fixture entries are dropped.
    func loadDecoder(_ key: String) throws -> DCAEDecoder {
        let config = try JSONDecoder().decode(DCAEDecoderConfig.self, from: Data(Self.metadata("\(key).config").utf8))
        let decoder = DCAEDecoder(forLoading: config)
        let prefix = "\(key).decoder"
        let report = try Checkpoint(path: Self.fixturePath).load(
            into: decoder.namedTensors(prefix: prefix),
            options: LoadOptions(rules: [.drop(pattern: "^(?!\(key)\\.decoder\\.)")]))
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(report.loaded.count, decoder.namedTensors().count)
        return decoder
    }

    // MARK: Config

    func testConfigDecodesDiffusersJSON() throws {
        let evit = try JSONDecoder().decode(DCAEDecoderConfig.self, from: Data(Self.metadata("evit.config").utf8))
        XCTAssertEqual(evit.latentChannels, 4)
        XCTAssertEqual(evit.attentionHeadDim, 8)
        XCTAssertEqual(evit.blockTypes, [.resBlock, .efficientViT, .efficientViT])
        XCTAssertEqual(evit.blockOutChannels, [8, 16, 16])
        XCTAssertEqual(evit.layersPerBlock, [1, 1, 2])
        XCTAssertEqual(evit.qkvMultiscales, [[], [3, 5], [5]])
        XCTAssertEqual(evit.normTypes, ["rms_norm", "rms_norm", "rms_norm"])  // one string for all
        XCTAssertEqual(evit.actFns, ["silu", "silu", "silu"])
        XCTAssertEqual(evit.upsampleBlockType, .interpolate)
        XCTAssertTrue(evit.inShortcut)
        XCTAssertEqual(evit.convActFn, "relu")
        XCTAssertEqual(evit.scalingFactor, 0.41407)
        XCTAssertEqual(evit.upsampleFactor, 4)

        let ps = try JSONDecoder().decode(DCAEDecoderConfig.self, from: Data(Self.metadata("ps.config").utf8))
        XCTAssertEqual(ps.blockTypes, [.resBlock, .resBlock])  // one string for all
        XCTAssertEqual(ps.actFns, ["relu", "relu"])
        XCTAssertEqual(ps.upsampleBlockType, .pixelShuffle)
        XCTAssertEqual(ps.convActFn, "silu")
        XCTAssertEqual(ps.scalingFactor, 1)

        // Round trip through our own encoding; missing keys take diffusers' defaults.
        let again = try JSONDecoder().decode(DCAEDecoderConfig.self, from: JSONEncoder().encode(evit))
        XCTAssertEqual(again, evit)
        let defaults = try JSONDecoder().decode(DCAEDecoderConfig.self, from: Data("{}".utf8))
        XCTAssertEqual(defaults.blockOutChannels, [128, 256, 512, 512, 1024, 1024])
        XCTAssertEqual(defaults.upsampleBlockType, .pixelShuffle)
        XCTAssertEqual(defaults.blockTypes, Array(repeating: .resBlock, count: 6))
    }

    func testConfigRejectsWhatIsNotImplemented() {
        func decode(_ json: String) throws -> DCAEDecoderConfig {
            try JSONDecoder().decode(DCAEDecoderConfig.self, from: Data(json.utf8))
        }
        XCTAssertThrowsError(try decode(#"{"decoder_norm_types": "batch_norm"}"#))
        XCTAssertThrowsError(try decode(#"{"decoder_act_fns": "relu6"}"#))
        XCTAssertThrowsError(try decode(#"{"decoder_block_types": ["ResBlock", "ResBlock"]}"#))
        XCTAssertThrowsError(try decode(#"{"decoder_block_types": "Transformer"}"#))
        XCTAssertThrowsError(try decode(#"{"decoder_layers_per_block": [0, 3, 3, 3, 3, 3]}"#))
        XCTAssertNoThrow(try DCAEDecoderConfig.f32c32.validate())
        XCTAssertNoThrow(try DCAEDecoderConfig.tiny.validate())
    }

    // MARK: Architecture

    func testF32C32NamesAndShapesMatchDiffusers() throws {
        let json = try Self.metadata("f32c32.shapes")
        let expected = try JSONDecoder().decode([String: [Int]].self, from: Data(json.utf8))
        let decoder = DCAEDecoder(forLoading: .f32c32)
        let ours = Dictionary(uniqueKeysWithValues: decoder.namedTensors().map { ($0.0, $0.1.shape) })
        XCTAssertEqual(Set(ours.keys).subtracting(expected.keys).sorted(), [])
        XCTAssertEqual(Set(expected.keys).subtracting(ours.keys).sorted(), [])
        for (name, shape) in expected where ours[name] != nil {
            XCTAssertEqual(ours[name], shape, name)
        }
        XCTAssertEqual(decoder.parameterCount, 159_223_171)
        XCTAssertEqual(DCAEDecoderConfig.f32c32.upsampleFactor, 32)
    }

    func testTinyDecodesFourByFourLatentTo64x64() {
        var rng = RandomGenerator(seed: 0)
        let decoder = DCAEDecoder(config: .tiny, rng: &rng)
        XCTAssertEqual(DCAEDecoderConfig.tiny.upsampleFactor, 16)
        let names = decoder.namedTensors().map(\.0)
        XCTAssertEqual(Array(names.prefix(2)), ["conv_in.weight", "conv_in.bias"])
        XCTAssertTrue(names.contains("up_blocks.4.0.attn.to_qkv_multiscale.0.proj_out.weight"))
        XCTAssertTrue(names.contains("up_blocks.3.0.conv.weight"))
        XCTAssertTrue(names.contains("up_blocks.2.2.conv2.weight"))
        XCTAssertEqual(Array(names.suffix(4)), ["norm_out.weight", "norm_out.bias", "conv_out.weight", "conv_out.bias"])
        // Seeded PyTorch-style init: U(±1/√fan_in); norms at 1 / 0. For loading: zeros.
        var rng2 = RandomGenerator(seed: 0)
        let again = DCAEDecoder(config: .tiny, rng: &rng2)
        XCTAssertEqual(again.tensor(named: "conv_out.weight")?.scalars, decoder.tensor(named: "conv_out.weight")?.scalars)
        let w = decoder.tensor(named: "up_blocks.0.0.conv.weight")?.scalars ?? []
        let bound = 1 / Float(32 * 9).squareRoot()
        XCTAssertTrue(w.allSatisfy { abs($0) <= bound } && w.contains { abs($0) > bound / 2 })
        XCTAssertEqual(decoder.tensor(named: "up_blocks.4.0.conv_out.norm.weight")?.scalars.allSatisfy { $0 == 1 }, true)
        let blank = DCAEDecoder(forLoading: .tiny)
        XCTAssertEqual(blank.tensor(named: "conv_in.weight")?.scalars.allSatisfy { $0 == 0 }, true)
        XCTAssertEqual(blank.tensor(named: "norm_out.weight")?.scalars.allSatisfy { $0 == 1 }, true)
        XCTAssertEqual(blank.parameterCount, decoder.parameterCount)
        XCTAssertEqual(decoder.parameterCount, 1_077_331)  // diffusers' count for this config

        let y = withNoGrad { decoder(randn(2, 32, 4, 4, seed: 5)) }
        XCTAssertEqual(y.shape, [2, 3, 64, 64])
        XCTAssertTrue(y.scalars.allSatisfy { $0.isFinite })
    }

    /// Every tiny-decoder parameter takes a gradient.
    func testEveryTinyParameterTakesAGradient() {
        var rng = RandomGenerator(seed: 6)
        let decoder = DCAEDecoder(config: .tiny, rng: &rng)
        let y = decoder(randn(1, 32, 4, 4, seed: 2))
        (y * randn(1, 3, 64, 64, seed: 3)).sum().backward()
        for (name, p) in decoder.namedParameters() {
            let g = p.grad?.scalars ?? []
            XCTAssertTrue(g.contains { $0 != 0 } && g.allSatisfy { $0.isFinite }, "no gradient for \(name)")
        }
    }

    /// A few AdamW steps fit a fixed target (both stage types, interpolate up blocks).
    func testSmallDecoderFitsATarget() {
        let config = DCAEDecoderConfig(
            latentChannels: 8, attentionHeadDim: 8, blockTypes: [.resBlock, .resBlock, .efficientViT],
            blockOutChannels: [8, 16, 16], layersPerBlock: [1, 1, 1], qkvMultiscales: [[], [], [5]])
        var rng = RandomGenerator(seed: 6)
        let decoder = DCAEDecoder(config: config, rng: &rng)
        let z = randn(2, 8, 4, 4, seed: 2)
        let target = randn(2, 3, 16, 16, seed: 3, scale: 0.5)
        let optimizer = AdamW(decoder.namedParameters(), lr: 3e-3, weightDecay: 0)
        var losses: [Float] = []
        for _ in 0..<10 {
            optimizer.zeroGrad()
            let d = decoder(z) - target
            let loss = (d * d).sum() * (1 / Float(d.count))
            loss.backward()
            optimizer.step()
            losses.append(loss.item)
        }
        XCTAssertLessThan(losses[9], 0.7 * losses[0], "losses \(losses)")
    }

    // MARK: Parity with diffusers

    func testEfficientViTDecoderMatchesDiffusers() throws {
        let decoder = try loadDecoder("evit")
        let f = try Fixtures("dcae")
        let z = f["evit.z"]
        z.requiresGrad = true
        let y = decoder(z)
        assertClose(y, f["evit.y"], atol: 1e-4, rtol: 0, "evit forward")
        (y * f["evit.gy"]).sum().backward()
        assertClose(z.grad ?? Tensor(zeros: [0]), f["evit.gz"], atol: 1e-4, rtol: 1e-4, "evit latent gradient")
        var checked = 0
        for (name, p) in decoder.namedParameters() {
            guard let expected = f.tensors["evit.grad.\(name)"] else { continue }
            assertClose(p.grad ?? Tensor(zeros: [0]), expected, atol: 1e-4, rtol: 1e-4, "evit grad \(name)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 30)

        // A 2×2 latent: the 4-token stage takes diffusers' quadratic attention branch.
        let z1 = f["evit_1.z"]
        z1.requiresGrad = true
        let small = decoder(z1)
        assertClose(small, f["evit_1.y"], atol: 1e-4, rtol: 0, "evit 2×2 forward")
        (small * f["evit_1.gy"]).sum().backward()
        assertClose(z1.grad ?? Tensor(zeros: [0]), f["evit_1.gz"], atol: 1e-4, rtol: 1e-4, "evit 2×2 latent gradient")
    }

    func testPixelShuffleResBlockDecoderMatchesDiffusers() throws {
        let decoder = try loadDecoder("ps")
        let f = try Fixtures("dcae")
        let z = f["ps.z"]
        z.requiresGrad = true
        let y = decoder(z)
        assertClose(y, f["ps.y"], atol: 1e-4, rtol: 0, "ps forward")
        (y * f["ps.gy"]).sum().backward()
        assertClose(z.grad ?? Tensor(zeros: [0]), f["ps.gz"], atol: 1e-4, rtol: 1e-4, "ps latent gradient")
        let params = decoder.namedParameters()
        for (name, p) in params {
            assertClose(p.grad ?? Tensor(zeros: [0]), f["ps.grad.\(name)"], atol: 1e-4, rtol: 1e-4, "ps grad \(name)")
        }
        XCTAssertEqual(params.count, 23)
    }

    // MARK: Finite differences

    /// The parity tests above check gradients against PyTorch; this one checks them against the
    /// forward pass itself, on a decoder without the ReLU kinks of `conv_act` (SiLU there) so
    /// float32 finite differences stay meaningful.
    func testGradientsByFiniteDifferences() {
        let config = DCAEDecoderConfig(
            latentChannels: 4, attentionHeadDim: 8, blockTypes: [.resBlock, .efficientViT],
            blockOutChannels: [8, 16], layersPerBlock: [1, 1], qkvMultiscales: [[], [3]],
            upsampleBlockType: .interpolate, convActFn: "silu")
        var rng = RandomGenerator(seed: 11)
        let decoder = DCAEDecoder(config: config, rng: &rng)
        let names = ["up_blocks.1.0.attn.to_k.weight", "up_blocks.1.0.attn.to_qkv_multiscale.0.proj_in.weight",
                     "up_blocks.1.0.conv_out.conv_depth.weight", "up_blocks.0.0.conv.weight",
                     "up_blocks.0.1.norm.weight", "norm_out.bias"]
        let params = names.compactMap { decoder.parameter(named: $0) }
        XCTAssertEqual(params.count, names.count)
        // The parameters are the module's own tensors: probes perturb them in place.
        checkGradients([randn(2, 4, 3, 3, seed: 8)] + params, eps: 1e-3, atol: 1e-2, rtol: 1e-2,
                       maxProbes: 16) { xs in decoder(xs[0]) }
    }
}
