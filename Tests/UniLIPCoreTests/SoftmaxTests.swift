import UniLIPCore
import UniLIPTestSupport
import XCTest

final class SoftmaxTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("activation")
        f.check("softmax_last") { $0[0].softmax() }
        f.check("softmax_axis1") { $0[0].softmax(axis: 1) }
        f.check("softmax_axis0") { $0[0].softmax(axis: 0) }
        f.check("softmax_wide_inner") { $0[0].softmax(axis: -2) }
        f.check("softmax_large") { $0[0].softmax(axis: -1) }
        f.check("log_softmax_last") { $0[0].logSoftmax() }
        f.check("log_softmax_axis1") { $0[0].logSoftmax(axis: 1) }
        f.check("log_softmax_wide_inner") { $0[0].logSoftmax(axis: 1) }
        f.check("log_softmax_large", atol: 1e-4) { $0[0].logSoftmax(axis: 1) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(3, 5)]) { $0[0].softmax() }
        checkGradients([randn(2, 4, 3)]) { $0[0].softmax(axis: 1) }
        checkGradients([randn(4, 3)]) { $0[0].softmax(axis: 0) }
        checkGradients([randn(3, 5)]) { $0[0].logSoftmax() }
        checkGradients([randn(2, 4, 3)]) { $0[0].logSoftmax(axis: -2) }
    }

    func testRowsSumToOneAndStayFinite() {
        let x = Tensor([1000, 0, -1000, 999], shape: [1, 4])
        let y = x.softmax()
        XCTAssertEqual(y.scalars.reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertTrue(y.scalars.allSatisfy { $0.isFinite })
        let l = x.logSoftmax()
        XCTAssertTrue(l.scalars.allSatisfy { $0.isFinite })
        XCTAssertEqual(l.pointer[0], -Float(log1p(exp(-1.0))), accuracy: 1e-5)

        let big = randn(3, 700, 5, scale: 3).softmax(axis: 1)
        for o in 0..<3 {
            for i in 0..<5 {
                var s: Float = 0
                for k in 0..<700 { s += big.pointer[(o * 700 + k) * 5 + i] }
                XCTAssertEqual(s, 1, accuracy: 1e-4)
            }
        }
    }
}
