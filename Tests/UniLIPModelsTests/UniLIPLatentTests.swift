import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

/// UniLIP's token → latent path and output post-processing (Tools/reference/fixtures/dcae.py).
final class UniLIPLatentTests: XCTestCase {
    func testNamesShapesAndInit() {
        var rng = RandomGenerator(seed: 0)
        let latent = UniLIPLatent(dim: 64, rng: &rng)
        let tensors = latent.namedTensors()
        XCTAssertEqual(tensors.map(\.0).prefix(6), [
            "down_blocks.0.mlp.0.weight", "down_blocks.0.mlp.0.bias",
            "down_blocks.0.mlp.1.weight", "down_blocks.0.mlp.1.bias",
            "down_blocks.0.mlp.3.weight", "down_blocks.0.mlp.3.bias"])
        XCTAssertEqual(tensors.map(\.0).suffix(6), [
            "down_mlp.0.weight", "down_mlp.0.bias", "down_mlp.1.weight", "down_mlp.1.bias",
            "down_mlp.3.weight", "down_mlp.3.bias"])
        XCTAssertEqual(tensors.count, 3 * 6 + 6)
        XCTAssertEqual(latent.tensor(named: "down_blocks.2.mlp.1.weight")?.shape, [64, 64])
        XCTAssertEqual(latent.tensor(named: "down_mlp.1.weight")?.shape, [32, 64])
        XCTAssertEqual(latent.tensor(named: "down_mlp.3.weight")?.shape, [32, 32])
        XCTAssertEqual((latent.downBlocks[0] as? UniLIPDownBlock)?.mlp.layers.count, 4)

        // LayerNorms at 1 / 0, Linear biases 0, Linear weights trunc-normal with std 0.02.
        for (name, t) in tensors {
            if name.hasSuffix("0.weight") {
                XCTAssertTrue(t.scalars.allSatisfy { $0 == 1 }, name)
            } else if name.hasSuffix(".bias") {
                XCTAssertTrue(t.scalars.allSatisfy { $0 == 0 }, name)
            }
        }
        let w = latent.tensor(named: "down_blocks.1.mlp.1.weight")?.scalars ?? []
        let std = (w.reduce(0) { $0 + $1 * $1 } / Float(w.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
        XCTAssertTrue(w.allSatisfy { abs($0) <= 2 })
    }

    func testEpsilonsFollowTheReference() {
        var rng = RandomGenerator(seed: 0)
        let latent = UniLIPLatent(dim: 8, rng: &rng)
        let blockNorm = (latent.downBlocks[1] as? UniLIPDownBlock)?.mlp.layers[0] as? LayerNorm
        XCTAssertEqual(blockNorm?.eps, 1e-6)
        XCTAssertEqual((latent.downMLP.layers[0] as? LayerNorm)?.eps, 1e-5)
    }

    func testMatchesReference() throws {
        var rng = RandomGenerator(seed: 1)
        let latent = UniLIPLatent(dim: 16, rng: &rng)
        let path = Fixtures.directory.appendingPathComponent("dcae.safetensors").path
        let report = try Checkpoint(path: path).load(
            into: latent.namedTensors(prefix: "latent"),
            options: LoadOptions(rules: [.drop(pattern: "^(?!latent\\.down_)")]))
        XCTAssertTrue(report.isClean, "\(report)")
        XCTAssertEqual(report.loaded.count, 24)
        let f = try Fixtures("dcae")
        let x = f["latent.x"]
        x.requiresGrad = true
        let z = latent(x, height: 2, width: 3)
        assertClose(z, f["latent.z"], atol: 1e-5, rtol: 1e-4, "latent forward")
        (z * f["latent.gy"]).sum().backward()
        assertClose(x.grad ?? Tensor(zeros: [0]), f["latent.gx"], atol: 1e-5, rtol: 1e-4, "latent input gradient")
    }

    func testGradientsByFiniteDifferences() {
        var rng = RandomGenerator(seed: 2)
        let latent = UniLIPLatent(dim: 8, latentChannels: 4, rng: &rng)
        // Larger weights than the init so every layer matters to the probe.
        for (_, p) in latent.namedParameters() {
            for i in 0..<p.count { p.pointer[i] += rng.normal() * 0.3 }
        }
        guard let w = latent.parameter(named: "down_blocks.1.mlp.1.weight"),
              let b = latent.parameter(named: "down_mlp.3.bias") else { return XCTFail("parameters missing") }
        checkGradients([randn(2, 6, 8, seed: 4), w, b]) { xs in latent(xs[0], height: 3, width: 2) }
    }

    // MARK: Post-processing

    func testResizeMatchesReference() throws {
        let f = try Fixtures("dcae")
        f.check("resize") { xs in UniLIPLatent.resize(xs[0], to: (14, 14)) }
        let x = randn(1, 3, 8, 8)
        XCTAssertTrue(UniLIPLatent.resize(x, to: (8, 8)) === x)
    }

    func testDecodeResizesToTheImageSize() {
        var rng = RandomGenerator(seed: 4)
        let config = DCAEDecoderConfig(latentChannels: 4, attentionHeadDim: 8, blockTypes: [.resBlock, .resBlock],
                                       blockOutChannels: [4, 8], layersPerBlock: [1, 1], qkvMultiscales: [[], []])
        let decoder = DCAEDecoder(config: config, rng: &rng)
        let z = randn(1, 4, 4, 4)
        let full = withNoGrad { decoder(z) }
        XCTAssertEqual(full.shape, [1, 3, 8, 8])
        let resized = withNoGrad { UniLIPLatent.decode(z, decoder: decoder, size: (7, 7)) }
        assertClose(resized, full.interpolate(size: (7, 7), mode: .bilinear), "decode + resize")
        // An image of 5×6 padded to 8×8 (stride 2 encoder), decoded at stride 2 → 8×8, cropped.
        let p = UniLIPLatent.Padding(height: 5, width: 6, multiple: 8)
        let cropped = withNoGrad { UniLIPLatent.decode(z, decoder: decoder, padding: p, encoderStride: 2) }
        XCTAssertEqual(cropped.shape, [1, 3, 5, 6])
        assertClose(cropped, full.sliced(axis: 2, start: 1, end: 6).sliced(axis: 3, start: 1, end: 7), "decode + crop")
    }

    func testPaddingSplitsSymmetrically() {
        XCTAssertEqual(UniLIPLatent.Padding(height: 10, width: 9, multiple: 7),
                       UniLIPLatent.Padding(top: 2, bottom: 2, left: 2, right: 3))
        XCTAssertEqual(UniLIPLatent.Padding(height: 256, width: 250, multiple: 28),
                       UniLIPLatent.Padding(top: 12, bottom: 12, left: 1, right: 1))
        XCTAssertTrue(UniLIPLatent.Padding(height: 448, width: 224, multiple: 28).isZero)
    }

    func testReflectPadAndUnpadMatchReference() throws {
        let f = try Fixtures("dcae")
        f.check("reflect_pad") { xs in
            let (padded, p) = UniLIPLatent.reflectPad(xs[0], multiple: 7)
            XCTAssertEqual(p, UniLIPLatent.Padding(top: 2, bottom: 2, left: 2, right: 3))
            return padded
        }
        f.check("unpad") { xs in
            UniLIPLatent.unpad(xs[0], padding: UniLIPLatent.Padding(top: 2, bottom: 2, left: 2, right: 3),
                               encoderStride: 7, decoderStride: 8)
        }
    }
}
