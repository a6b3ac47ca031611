import UniLIPCore
import UniLIPTestSupport
import XCTest

final class NormTests: XCTestCase {
    func testLayerNormGolden() throws {
        let f = try Fixtures("norm")
        f.check("layer_norm") { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        f.check("layer_norm_plain") { $0[0].layerNorm(weight: nil, bias: nil) }
        f.check("layer_norm_weight_only") { $0[0].layerNorm(weight: $0[1], bias: nil, eps: 1e-6) }
        // Inputs near 40 with std 0.5: float32 rounding of the centred values limits agreement.
        f.check("layer_norm_offset", atol: 2e-4, rtol: 1e-3) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
    }

    func testRMSNormGolden() throws {
        let f = try Fixtures("norm")
        f.check("rms_norm") { $0[0].rmsNorm(weight: $0[1]) }
        f.check("rms_norm_plain") { $0[0].rmsNorm(weight: nil) }
        f.check("rms_norm_eps") { $0[0].rmsNorm(weight: $0[1], eps: 1e-2) }
    }

    func testChannelRMSNormGolden() throws {
        let f = try Fixtures("norm")
        f.check("rms_norm_2d") { $0[0].rmsNormChannels(weight: $0[1], bias: $0[2]) }
        f.check("rms_norm_2d_wide") { $0[0].rmsNormChannels(weight: $0[1], bias: $0[2]) }
        f.check("rms_norm_2d_plain") { $0[0].rmsNormChannels(weight: nil, bias: nil) }
        f.check("rms_norm_2d_weight_only") { $0[0].rmsNormChannels(weight: $0[1], bias: nil) }
    }

    func testGroupNormGolden() throws {
        let f = try Fixtures("norm")
        f.check("group_norm") { $0[0].groupNorm(groups: 3, weight: $0[1], bias: $0[2]) }
        f.check("group_norm_plain") { $0[0].groupNorm(groups: 2, weight: nil, bias: nil) }
        f.check("group_norm_2d_input") { $0[0].groupNorm(groups: 3, weight: $0[1], bias: $0[2], eps: 1e-6) }
        f.check("group_norm_offset", atol: 2e-4, rtol: 1e-3) {
            $0[0].groupNorm(groups: 4, weight: $0[1], bias: $0[2])
        }
    }

    func testFiniteDifferences() {
        checkGradients([randn(3, 7), randn(7, seed: 2), randn(7, seed: 3)]) {
            $0[0].layerNorm(weight: $0[1], bias: $0[2])
        }
        checkGradients([randn(2, 3, 5)]) { $0[0].layerNorm(weight: nil, bias: nil) }
        checkGradients([randn(3, 9), randn(9, seed: 2)]) { $0[0].rmsNorm(weight: $0[1]) }
        checkGradients([randn(4, 6)]) { $0[0].rmsNorm(weight: nil) }
        checkGradients([randn(2, 5, 3, 2), randn(5, seed: 2), randn(5, seed: 3)]) {
            $0[0].rmsNormChannels(weight: $0[1], bias: $0[2])
        }
        checkGradients([randn(2, 4, 3)]) { $0[0].rmsNormChannels(weight: nil, bias: nil) }
        checkGradients([randn(2, 6, 2, 3), randn(6, seed: 2), randn(6, seed: 3)]) {
            $0[0].groupNorm(groups: 3, weight: $0[1], bias: $0[2])
        }
        checkGradients([randn(2, 4, 5)]) { $0[0].groupNorm(groups: 1, weight: nil, bias: nil) }
    }

    func testWeightGradientOnlyWhenInputIsConstant() {
        // The input takes no gradient; weight and bias still get theirs, summed over rows.
        let x = randn(64, 33)
        let w = randn(33, seed: 2), b = randn(33, seed: 3)
        w.requiresGrad = true
        b.requiresGrad = true
        x.layerNorm(weight: w, bias: b).sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertEqual(b.grad?.scalars ?? [], [Float](repeating: 64, count: 33))
        XCTAssertEqual(w.grad?.shape, [33])
    }

    func testLargeInputsMatchSmallPath() {
        // Many rows exercise the multi-chunk split; each row must equal the single-row result.
        let x = randn(300, 130, scale: 2)
        let w = randn(130, seed: 4)
        let all = x.rmsNorm(weight: w)
        let row = Tensor(Array(x.scalars[(17 * 130)..<(18 * 130)]), shape: [1, 130]).rmsNorm(weight: w)
        for j in 0..<130 { XCTAssertEqual(all.pointer[17 * 130 + j], row.pointer[j], accuracy: 1e-6) }
        let img = randn(2, 8, 30, 30)
        let y = img.rmsNormChannels(weight: nil, bias: nil)
        // Per pixel, mean of squares over channels is 1/(1+eps/ms) ≈ 1.
        var ms: Float = 0
        for c in 0..<8 { let v = y.pointer[(1 * 8 + c) * 900 + 777]; ms += v * v }
        XCTAssertEqual(ms / 8, 1, accuracy: 1e-3)
    }
}
