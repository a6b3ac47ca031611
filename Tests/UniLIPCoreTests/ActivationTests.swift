import Foundation
@testable import UniLIPCore
import UniLIPTestSupport
import XCTest

final class ActivationTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("activation")
        f.check("relu") { $0[0].relu() }
        f.check("leaky_relu") { $0[0].leakyRelu(0.2) }
        f.check("leaky_relu_default") { $0[0].leakyRelu() }
        f.check("silu") { $0[0].silu() }
        f.check("gelu") { $0[0].gelu() }
        f.check("gelu_tanh") { $0[0].gelu(tanhApproximation: true) }
        f.check("sigmoid") { $0[0].sigmoid() }
        f.check("tanh") { $0[0].tanh() }
        f.check("silu_extremes") { $0[0].silu() }
        f.check("gelu_extremes") { $0[0].gelu() }
        f.check("gelu_tanh_extremes") { $0[0].gelu(tanhApproximation: true) }
        f.check("sigmoid_extremes") { $0[0].sigmoid() }
        f.check("tanh_extremes") { $0[0].tanh() }
    }

    func testFiniteDifferences() {
        // Inputs kept away from the kinks of relu/leaky relu.
        let x = randn(3, 7, scale: 2)
        for i in 0..<x.count where Swift.abs(x.pointer[i]) < 0.05 { x.pointer[i] = 0.5 }
        checkGradients([x.copy()]) { $0[0].relu() }
        checkGradients([x.copy()]) { $0[0].leakyRelu(0.1) }
        checkGradients([randn(3, 7, scale: 2)]) { $0[0].silu() }
        checkGradients([randn(3, 7, scale: 2)]) { $0[0].gelu() }
        checkGradients([randn(3, 7, scale: 2)]) { $0[0].gelu(tanhApproximation: true) }
        checkGradients([randn(3, 7, scale: 2)]) { $0[0].sigmoid() }
        checkGradients([randn(3, 7, scale: 2)]) { $0[0].tanh() }
    }

    func testLargeTensorsUseSeveralChunks() {
        // Big enough for the parallel path; compared element-wise with the scalar formula.
        let x = randn(70_001, scale: 4)
        let y = x.gelu()
        var worst: Float = 0
        for i in 0..<x.count {
            let v = x.pointer[i]
            let expected = Float(0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot())))
            worst = max(worst, abs(y.pointer[i] - expected))
        }
        XCTAssertLessThan(worst, 1e-5)
        let s = x.sigmoid()
        XCTAssertTrue(s.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testGELUKernelsAgree() throws {
        // The AVX-512 GELU against the SIMD8 one: forward and backward, extremes, NaN, and
        // lengths with tails of every size.
        try XCTSkipUnless(HeadKernels.useAVX512, "CPU without AVX-512")
        let saved = HeadKernels.useAVX512
        defer { HeadKernels.useAVX512 = saved }
        for n in [1, 15, 16, 17, 40_003] {
            let x = randn(n, scale: 5)
            if n > 16 { x.pointer[3] = 30; x.pointer[4] = -30; x.pointer[5] = 0; x.pointer[6] = .nan }
            let g = randn(n, seed: 11)
            var outputs: [([Float], [Float])] = []
            for avx512 in [true, false] {
                HeadKernels.useAVX512 = avx512
                let xv = x.copy()
                xv.requiresGrad = true
                let y = xv.gelu()
                (y * g).sum().backward()
                outputs.append((y.scalars, try XCTUnwrap(xv.grad).scalars))
            }
            for (a, b) in [(outputs[0].0, outputs[1].0), (outputs[0].1, outputs[1].1)] {
                for i in 0..<n {
                    if a[i].isNaN || b[i].isNaN {
                        XCTAssertTrue(a[i].isNaN && b[i].isNaN, "n \(n), index \(i): NaN in one path only")
                    } else {
                        XCTAssertEqual(a[i], b[i], accuracy: 2e-6 * Swift.max(1, Swift.abs(b[i])), "n \(n), index \(i)")
                    }
                }
            }
        }
    }

    func testVectorExpAndErfAccuracy() {
        var worstExp = 0.0, worstErf = 0.0
        var x: Float = -87
        while x < 88 {
            var v = SIMD8<Float>()
            for j in 0..<8 { v[j] = x + Float(j) * 0.0013 }
            let e = VectorMath.exp(v), f = VectorMath.erf(v * 0.1)
            for j in 0..<8 {
                let exact = Foundation.exp(Double(v[j]))
                worstExp = max(worstExp, abs(Double(e[j]) - exact) / exact)
                worstErf = max(worstErf, abs(Double(f[j]) - Foundation.erf(Double(v[j] * 0.1))))
            }
            x += 0.0107
        }
        XCTAssertLessThan(worstExp, 3e-7, "exp relative error")
        XCTAssertLessThan(worstErf, 1e-6, "erf absolute error")
        let special = VectorMath.exp(SIMD8<Float>(-1000, 1000, .nan, 0, -.infinity, .infinity, 1, -1))
        XCTAssertEqual(special[0], 0, accuracy: 1e-37)
        XCTAssertTrue(special[1] > 1e38 && special[1].isFinite)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], 1)
        XCTAssertEqual(special[6], Float(M_E), accuracy: 1e-6)
        XCTAssertTrue(VectorMath.erf(SIMD8<Float>(repeating: .nan))[0].isNaN)
        XCTAssertEqual(VectorMath.erf(SIMD8<Float>(repeating: 30))[0], 1)
        XCTAssertEqual(VectorMath.erf(SIMD8<Float>(repeating: -30))[0], -1)
        XCTAssertTrue(Tensor([.nan], shape: [1]).sigmoid().item.isNaN, "NaN propagates")
    }

    func testNoGraphWhenInputNeedsNoGradient() {
        let y = randn(4).relu()
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
    }
}
