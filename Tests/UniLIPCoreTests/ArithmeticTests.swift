import UniLIPCore
import UniLIPTestSupport
import XCTest

final class ArithmeticTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("arithmetic")
        f.check("add_bcast") { $0[0] + $0[1] }
        f.check("sub_bcast") { $0[0] - $0[1] }
        f.check("mul_bcast") { $0[0] * $0[1] }
        f.check("div_bcast") { $0[0] / $0[1] }
        f.check("scalar_ops") { ($0[0] * 3 + 1) / 2 - 0.5 }
        f.check("pow") { $0[0].pow(3) }
        f.check("sqrt_exp_log") { $0[0].sqrt() + $0[0].exp() + $0[0].log() }
        f.check("abs_clamp") { $0[0].abs() + $0[0].clamped(-0.5, 0.5) }
        f.check("sum_all") { $0[0].sum() }
        f.check("sum_axes") { $0[0].sum(axes: [0, 2]) }
        f.check("sum_keep") { $0[0].sum(axis: -1, keepDims: true) }
        f.check("matmul_2d", atol: 1e-4) { $0[0].matmul($0[1]) }
        f.check("matmul_fold", atol: 1e-4) { $0[0].matmul($0[1]) }
        f.check("matmul_batched", atol: 1e-4) { $0[0].matmul($0[1]) }
        f.check("matmul_bcast", atol: 1e-4) { $0[0].matmul($0[1]) }
        f.check("matmul_tb", atol: 1e-4) { $0[0].matmul($0[1], transposeB: true) }
        f.check("matmul_ta", atol: 1e-4) { $0[0].matmul($0[1], transposeA: true) }
        f.check("matmul_tatb", atol: 1e-4) { $0[0].matmul($0[1], transposeA: true, transposeB: true) }
        f.check("linear_bias", atol: 1e-4) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        f.check("linear_vector", atol: 1e-4) { $0[0].linear(weight: $0[1], bias: $0[2]) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(2, 3, 4), randn(3, 1, seed: 2)]) { $0[0] + $0[1] }
        checkGradients([randn(2, 3, 4), randn(4, seed: 2)]) { $0[0] - $0[1] }
        checkGradients([randn(2, 1, 4), randn(3, 1, seed: 2)]) { $0[0] * $0[1] }
        checkGradients([randn(2, 3), randn(3, seed: 2).abs() + 1]) { $0[0] / $0[1] }
        checkGradients([randn(5).abs() + 0.5]) { $0[0].pow(2.5) + $0[0].sqrt() + $0[0].log() + $0[0].exp() }
        checkGradients([randn(2, 3, 4)]) { $0[0].sum(axes: [0, 2]) }
        checkGradients([randn(2, 3, 4)]) { $0[0].sum() * 2 }
        checkGradients([randn(2, 3, 5), randn(5, 4, seed: 2)]) { $0[0].matmul($0[1]) }
        checkGradients([randn(2, 3, 5), randn(4, 5, seed: 2), randn(4, seed: 3)]) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        checkGradients([randn(2, 5, 3), randn(2, 4, 5, seed: 2)]) {
            $0[0].matmul($0[1], transposeA: true, transposeB: true)
        }
    }

    /// Every broadcast layout of the four ops (rows against a vector, per-row values, scalars on
    /// either side, odd widths that leave SIMD tails) equals the op on expanded operands.
    func testBroadcastLayoutsMatchExpandedOperands() {
        let cases: [([Int], [Int])] = [([3, 5, 13], [13]), ([13], [3, 5, 13]), ([3, 5, 13], [3, 5, 1]), ([3, 5, 1], [3, 5, 13]),
                                       ([1], [4, 19]), ([4, 19], [1]), ([5, 1], [1, 11]), ([2, 1, 9], [2, 6, 9]), ([6, 1], [6, 3])]
        for (i, (sa, sb)) in cases.enumerated() {
            let a = randn(sa.reduce(1, *), seed: UInt64(2 * i + 1)).reshaped(sa)
            let b = (randn(sb.reduce(1, *), seed: UInt64(2 * i + 2)).reshaped(sb) * 0.5) + 2  // no division by ~0
            let shape = Shape.broadcast(sa, sb)
            let ea = a.expanded(to: shape).scalars, eb = b.expanded(to: shape).scalars
            let ops: [(String, (Tensor, Tensor) -> Tensor, (Float, Float) -> Float)] = [
                ("+", { $0 + $1 }, { $0 + $1 }), ("-", { $0 - $1 }, { $0 - $1 }),
                ("*", { $0 * $1 }, { $0 * $1 }), ("/", { $0 / $1 }, { $0 / $1 })]
            for (name, op, scalar) in ops {
                let out = op(a, b)
                XCTAssertEqual(out.shape, shape)
                XCTAssertEqual(out.scalars, zip(ea, eb).map { scalar($0, $1) }, "\(sa) \(name) \(sb)")
            }
        }
    }

    func testExpandedMatchesBroadcastAndSumsBack() {
        let cases: [([Int], [Int])] = [([], [2, 3]), ([1], [5]), ([3, 1], [2, 3, 4]), ([4], [3, 4]), ([2, 1, 3], [2, 5, 3])]
        for (i, (from, to)) in cases.enumerated() {
            let a = randn(from.reduce(1, *), seed: UInt64(i + 1)).reshaped(from)
            let expanded = a.expanded(to: to)
            XCTAssertEqual(expanded.shape, to)
            XCTAssertEqual(expanded.scalars, (a + Tensor(zeros: to)).scalars, "\(from) → \(to)")
        }
        let weights = randn(2, 3, 4, seed: 8)
        checkGradients([randn(3, 1, seed: 7)]) { $0[0].expanded(to: [2, 3, 4]) * weights }
    }

    func testAutogradAccumulatesAndFreesGraph() {
        let x = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let y = (x * x).sum()
        y.backward()
        XCTAssertEqual(x.grad?.scalars, [2, 4, 6])
        XCTAssertTrue(y.isLeaf, "graph freed after backward")
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [5, 7, 9], "gradients accumulate")
        x.zeroGrad()
        XCTAssertNil(x.grad)
    }

    func testNoGradAndDetach() {
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = withNoGrad { x * 2 }
        XCTAssertFalse(y.requiresGrad)
        let z = (x.detached() * x).sum()
        z.backward()
        XCTAssertEqual(x.grad?.scalars, [1, 2], "detached branch passes no gradient")
    }

    func testEmptyTensors() {
        let e = Tensor([], shape: [0, 3])
        XCTAssertEqual((e + e).shape, [0, 3])
        XCTAssertEqual(e.sum().item, 0)
    }

    func testDiamondGraphGetsBothPaths() {
        let x = Tensor([3], shape: [1], requiresGrad: true)
        let a = x * 2
        let y = (a * a + a).sum()  // 4x² + 2x → 8x + 2
        y.backward()
        XCTAssertEqual(x.grad?.item, 26)
    }
}
