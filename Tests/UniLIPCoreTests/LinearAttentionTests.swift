import UniLIPCore
import UniLIPTestSupport
import XCTest

final class LinearAttentionTests: XCTestCase {
    /// Random values kept at least `gap` away from zero (off the ReLU kink).
    func offZero(_ shape: Int..., seed: UInt64, gap: Float = 0.1) -> Tensor {
        let t = randn(shape.reduce(1, *), seed: seed)
        for i in 0..<t.count { t.pointer[i] += t.pointer[i] < 0 ? -gap : gap }
        return t.reshaped(shape)
    }

    func testGoldenValues() throws {
        let f = try Fixtures("attention")
        f.check("linattn_sana") { Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2]) }
        f.check("linattn_dcae") { Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2]) }
        f.check("linattn_dcae_quadratic") { Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2]) }
        f.check("linattn_zero_rows") { Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2]) }
    }

    func testFiniteDifferences() {
        checkGradients([offZero(2, 2, 6, 4, seed: 1), offZero(2, 2, 6, 4, seed: 2), randn(2, 2, 6, 5, seed: 3)],
                       eps: 1e-2, atol: 2e-2) {
            Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2])
        }
        checkGradients([offZero(1, 1, 9, 16, seed: 4), offZero(1, 1, 9, 16, seed: 5), randn(1, 1, 9, 24, seed: 6)],
                       eps: 1e-2, atol: 2e-2) {
            Tensor.reluLinearAttention(q: $0[0], k: $0[1], v: $0[2])
        }
    }

    func testNegativeInputsGiveZerosNotNaN() {
        let q = Tensor(repeating: -1, shape: [1, 1, 3, 4], requiresGrad: true)
        let k = randn(1, 1, 3, 4, seed: 2), v = randn(1, 1, 3, 4, seed: 3)
        k.requiresGrad = true; v.requiresGrad = true
        let y = Tensor.reluLinearAttention(q: q, k: k, v: v)
        XCTAssertEqual(y.scalars, [Float](repeating: 0, count: y.count))
        y.sum().backward()
        for p in [q, k, v] { XCTAssertFalse(p.grad?.scalars.contains { !$0.isFinite } ?? true) }
    }
}
