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

    /// The shifted (per-kernel-row GEMM) path against the fixtures and the im2col path, on
    /// every stride-1 shape it accepts: padding below (k−1)·d, dilation, groups, non-square
    /// kernels, several images per tile and one image per tile.
    func testShiftedPathMatchesIm2col() throws {
        let saved = ConvKernels.shiftedOverride, savedBound = Conv2dGeometry.maxColumnFloats
        defer { ConvKernels.shiftedOverride = saved; Conv2dGeometry.maxColumnFloats = savedBound }
        let f = try Fixtures("conv")
        ConvKernels.shiftedOverride = true
        f.check("basic", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1)) }
        f.check("nobias", atol: 1e-4) { $0[0].conv2d($0[1]) }
        f.check("grouped", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 2) }
        f.check("large_3x3", atol: 1e-4) { $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1)) }
        XCTAssertTrue(ConvKernels.useShifted(Conv2dGeometry(input: [2, 4, 9, 9], weight: [6, 2, 3, 3],
                                                             stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 2)))
        checkGradients([randn(2, 4, 6, 5), randn(6, 2, 3, 3, seed: 2), randn(6, seed: 3)]) {
            $0[0].conv2d($0[1], bias: $0[2], padding: (1, 1), groups: 2)
        }
        checkGradients([randn(1, 3, 7, 6), randn(2, 3, 2, 3, seed: 2)]) {
            $0[0].conv2d($0[1], padding: (1, 2), dilation: (2, 1))
        }
        let cases: [(x: [Int], w: [Int], pad: (Int, Int), dil: (Int, Int), groups: Int)] = [
            ([3, 5, 11, 9], [7, 5, 3, 3], (1, 1), (1, 1), 1),
            ([2, 6, 8, 10], [4, 3, 3, 3], (0, 1), (1, 1), 2),
            ([2, 3, 9, 12], [5, 3, 3, 2], (2, 0), (2, 1), 1),
            ([1, 4, 13, 7], [4, 4, 5, 5], (2, 2), (1, 1), 1),
            ([5, 2, 4, 4], [3, 2, 3, 3], (1, 1), (1, 1), 1),
            // Over 2,048 columns: the weight gradient's products run in several column chunks.
            ([3, 24, 30, 30], [24, 24, 3, 3], (1, 1), (1, 1), 1),
        ]
        func normal(_ shape: [Int], seed: UInt64) -> Tensor {
            var rng = RandomGenerator(seed: seed)
            return Tensor.normal(shape, rng: &rng)
        }
        let savedOwn = ConvKernels.ownKernel
        defer { ConvKernels.ownKernel = savedOwn }
        for (i, c) in cases.enumerated() {
            for bound in [savedBound, 100] {
                Conv2dGeometry.maxColumnFloats = bound
                var results: [[Tensor]] = []
                // im2col; shifted with BLAS; shifted with the AVX-512 kernel where present.
                for (shifted, own) in [(false, false), (true, false), (true, savedOwn)] {
                    ConvKernels.shiftedOverride = shifted
                    ConvKernels.ownKernel = own
                    let x = normal(c.x, seed: UInt64(10 + i)), w = normal(c.w, seed: UInt64(20 + i))
                    let b = normal([c.w[0]], seed: UInt64(30 + i))
                    for t in [x, w, b] { t.requiresGrad = true }
                    let y = x.conv2d(w, bias: b, stride: (1, 1), padding: c.pad, dilation: c.dil, groups: c.groups)
                    y.backward(normal(y.shape, seed: UInt64(40 + i)))
                    results.append([y.detached(), try XCTUnwrap(x.grad), try XCTUnwrap(w.grad), try XCTUnwrap(b.grad)])
                }
                for r in results.dropFirst() {
                    for (a, b) in zip(results[0], r) { assertClose(a, b, atol: 1e-4, rtol: 1e-4, "case \(i)") }
                }
            }
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
