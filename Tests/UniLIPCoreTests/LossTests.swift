import UniLIPCore
import UniLIPTestSupport
import XCTest

final class LossTests: XCTestCase {
    private func targets(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    func testGoldenValues() throws {
        let f = try Fixtures("loss")
        f.check("cross_entropy_ignore") { crossEntropy($0[0], self.targets($0[1])) }
        f.check("cross_entropy") { crossEntropy($0[0], self.targets($0[1])) }
        f.check("cross_entropy_ignore_zero") { crossEntropy($0[0], self.targets($0[1]), ignoreIndex: 0) }
        f.check("cross_entropy_large", atol: 1e-4) { crossEntropy($0[0], self.targets($0[1])) }
        f.check("mse") { mseLoss($0[0], $0[1]) }
        f.check("l1") { l1Loss($0[0], $0[1]) }
        f.check("weighted_cross_entropy") { weightedCrossEntropy($0[0], self.targets($0[1]), weights: $0[2].scalars) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(5, 4)]) { crossEntropy($0[0], [1, -100, 3, 0, 2]) }
        checkGradients([randn(5, 4)]) { weightedCrossEntropy($0[0], [1, -100, 3, 0, 2], weights: [0.5, 9, 1, 0.25, 2]) }
        checkGradients([randn(3, 4), randn(3, 4, seed: 2)]) { mseLoss($0[0], $0[1]) }
        checkGradients([randn(3, 4), randn(3, 4, seed: 2)]) { l1Loss($0[0], $0[1]) }
    }

    func testAllIgnoredGivesNaNAndZeroGradient() {
        let x = randn(2, 3)
        x.requiresGrad = true
        let loss = crossEntropy(x, [-100, -100])
        XCTAssertTrue(loss.item.isNaN)
        loss.backward()
        XCTAssertEqual(x.grad?.scalars ?? [], [Float](repeating: 0, count: 6))
    }

    /// Equal weights give plain cross entropy, value and gradient; every row ignored gives NaN.
    func testWeightedCrossEntropyWithEqualWeightsIsCrossEntropy() {
        let t = [2, -100, 0, 1]
        let x = randn(4, 3, scale: 2)
        x.requiresGrad = true
        let weighted = weightedCrossEntropy(x, t, weights: [3, 3, 3, 3])
        weighted.backward()
        let g = x.grad?.scalars ?? []
        x.grad = nil
        let plain = crossEntropy(x, t)
        plain.backward()
        XCTAssertEqual(weighted.item, plain.item, accuracy: 1e-6)
        for (a, b) in zip(g, x.grad?.scalars ?? []) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertTrue(weightedCrossEntropy(x, [-100, -100, -100, -100], weights: [1, 1, 1, 1]).item.isNaN)
    }

    func testCrossEntropyMatchesLogSoftmax() {
        let x = randn(6, 9, scale: 3)
        let t = [0, 8, 4, 4, 2, 7]
        let lsm = x.logSoftmax()
        var expected: Float = 0
        for (i, c) in t.enumerated() { expected -= lsm.pointer[i * 9 + c] }
        XCTAssertEqual(crossEntropy(x, t).item, expected / 6, accuracy: 1e-5)
    }
}
