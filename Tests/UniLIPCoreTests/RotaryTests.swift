import UniLIPCore
import UniLIPTestSupport
import XCTest

final class RotaryTests: XCTestCase {
    let positions = [0, 1, 2, 3, 7, 100, 511, 1023, 4095]

    func testCosSinTablesMatchQwen2() throws {
        let f = try Fixtures("attention")
        for (name, dim, theta) in [("rope_table_64", 64, Float(1_000_000)), ("rope_table_16", 16, Float(10_000))] {
            let (c, s) = Tensor.rotaryCosSin(positions: positions, headDim: dim, theta: theta)
            assertClose(c, f["\(name).cos"], atol: 2e-6, rtol: 0, "\(name) cos")
            assertClose(s, f["\(name).sin"], atol: 2e-6, rtol: 0, "\(name) sin")
        }
    }

    func testGoldenValues() throws {
        let f = try Fixtures("attention")
        f.check("rope_apply") { $0[0].applyingRotary(cos: $0[1], sin: $0[2]) }
        f.check("rope_apply_batch") { $0[0].applyingRotary(cos: $0[1], sin: $0[2]) }
    }

    func testFiniteDifferences() {
        let (c, s) = Tensor.rotaryCosSin(positions: [5, 6, 7], headDim: 6, theta: 10_000)
        checkGradients([randn(2, 2, 3, 6), c, s]) { $0[0].applyingRotary(cos: $0[1], sin: $0[2]) }
        checkGradients([randn(2, 2, 3, 6), randn(2, 3, 6, seed: 2), randn(2, 3, 6, seed: 3)]) {
            $0[0].applyingRotary(cos: $0[1], sin: $0[2])
        }
    }

    func testRotationPreservesPairNormsAndRelativePosition() {
        // ⟨R(m)q, R(n)k⟩ depends only on m − n.
        let q = randn(1, 1, 1, 8, seed: 1), k = randn(1, 1, 1, 8, seed: 2)
        func dot(_ m: Int, _ n: Int) -> Float {
            let (cq, sq) = Tensor.rotaryCosSin(positions: [m], headDim: 8, theta: 10_000)
            let (ck, sk) = Tensor.rotaryCosSin(positions: [n], headDim: 8, theta: 10_000)
            return (q.applyingRotary(cos: cq, sin: sq) * k.applyingRotary(cos: ck, sin: sk)).sum().item
        }
        XCTAssertEqual(dot(3, 1), dot(12, 10), accuracy: 1e-4)
        let x = randn(1, 1, 1, 8, seed: 3)
        let (c, s) = Tensor.rotaryCosSin(positions: [17], headDim: 8, theta: 10_000)
        XCTAssertEqual(x.applyingRotary(cos: c, sin: s).square().sum().item, x.square().sum().item, accuracy: 1e-4)
    }
}
