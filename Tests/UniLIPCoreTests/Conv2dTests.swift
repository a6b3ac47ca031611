@testable import UniLIPCore
import UniLIPTestSupport
import XCTest

final class Conv2dTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("conv")
        let tol: Float = 1e-4
        f.check("basic", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1)) }
        f.check("nobias", atol: tol) { $0[0].conv2d($0[1]) }
        f.check("strided", atol: tol) {
            $0[0].conv2d($0[1], bias: $0[2], stride: (2, 3), padding: (1, 2), dilation: (2, 1))
        }
        f.check("stride2_pad1", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], stride: 2, padding: 1) }
        f.check("grouped", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 2) }
        f.check("pointwise", atol: tol) { $0[0].conv2d($0[1], bias: $0[2]) }
        f.check("pointwise_grouped", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], groups: 3) }
        f.check("pointwise_strided", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], stride: 2, padding: 0) }
        f.check("depthwise3", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 4) }
        f.check("depthwise5_s2", atol: tol) { $0[0].conv2d($0[1], stride: 2, padding: 2, groups: 3) }
        f.check("depthwise_dilated", atol: tol) {
            $0[0].conv2d($0[1], bias: $0[2], padding: (2, 1), dilation: (2, 1), groups: 2)
        }
        f.check("depthwise_mult2", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 3) }
        f.check("large_3x3", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1)) }
        f.check("large_pointwise", atol: tol) { $0[0].conv2d($0[1], bias: $0[2]) }
        f.check("large_pointwise_grouped", atol: tol) { $0[0].conv2d($0[1], bias: $0[2], groups: 2) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(2, 3, 5, 6), randn(4, 3, 3, 3, seed: 2), randn(4, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1))
        }
        checkGradients([randn(2, 2, 7, 6), randn(3, 2, 2, 3, seed: 2), randn(3, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], stride: (2, 1), padding: (1, 2), dilation: (1, 2))
        }
        checkGradients([randn(1, 4, 5, 5), randn(6, 2, 3, 3, seed: 2)]) {
            $0[0].conv2d($0[1], stride: 1, padding: 1, groups: 2)
        }
        checkGradients([randn(2, 6, 3, 4), randn(6, 2, 1, 1, seed: 2), randn(6, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], groups: 3)
        }
        checkGradients([randn(2, 3, 6, 5), randn(3, 1, 3, 3, seed: 2), randn(3, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 3)
        }
        checkGradients([randn(1, 2, 9, 8), randn(4, 1, 5, 5, seed: 2)]) {
            $0[0].conv2d($0[1], stride: 2, padding: 2, groups: 2)
        }
        // One image per GEMM (≥ 1024 output pixels), with and without im2col.
        checkGradients([randn(2, 2, 32, 32), randn(2, 2, 3, 3, seed: 2), randn(2, seed: 3)], maxProbes: 16) {
            $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1))
        }
        checkGradients([randn(2, 2, 32, 32), randn(3, 2, 1, 1, seed: 2)], maxProbes: 16) { $0[0].conv2d($0[1]) }
    }

    /// Small im2col bounds split images into row blocks; results must not change.
    func testRowBlocksMatchWholeImages() throws {
        let f = try Fixtures("conv")
        let saved = Conv2dGeometry.maxColumnFloats
        defer { Conv2dGeometry.maxColumnFloats = saved }
        for bound in [1, 200, 5000] {
            Conv2dGeometry.maxColumnFloats = bound
            f.check("large_3x3", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1)) }
            f.check("strided", atol: 1e-4) {
                $0[0].conv2d($0[1], bias: $0[2], stride: (2, 3), padding: (1, 2), dilation: (2, 1))
            }
            f.check("grouped", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 2) }
            f.check("pointwise_grouped", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], groups: 3) }
            f.check("pointwise_strided", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], stride: 2, padding: 0) }
        }
        Conv2dGeometry.maxColumnFloats = 100
        checkGradients([randn(2, 2, 7, 6), randn(3, 2, 3, 3, seed: 2), randn(3, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], stride: (1, 2), padding: (1, 1))
        }
    }

    func testIntOverloadMatchesTuple() {
        let x = randn(1, 2, 6, 6), w = randn(3, 2, 3, 3, seed: 2)
        let a = x.conv2d(w, stride: 2, padding: 1, dilation: 1)
        let b = x.conv2d(w, stride: (2, 2), padding: (1, 1), dilation: (1, 1))
        XCTAssertEqual(a.shape, [1, 3, 3, 3])
        assertClose(a, b, atol: 0, rtol: 0)
    }

    func testGradientsOnlyWhereRequested() {
        let x = randn(1, 2, 4, 4), w = randn(2, 2, 3, 3, seed: 2, scale: 1)
        w.requiresGrad = true
        let y = x.conv2d(w, padding: (1, 1))
        y.sum().backward()
        XCTAssertNil(x.grad)
        XCTAssertEqual(w.grad?.shape, [2, 2, 3, 3])
    }
}
