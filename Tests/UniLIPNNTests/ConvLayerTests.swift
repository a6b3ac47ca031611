import UniLIPCore
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class ConvLayerTests: XCTestCase {
    func testConv2d() {
        var rng = RandomGenerator(seed: 2)
        let conv = Conv2d(4, 6, kernelSize: 3, stride: 2, padding: 1, groups: 2, rng: &rng)
        XCTAssertEqual(conv.weight.shape, [6, 2, 3, 3])
        XCTAssertTrue(conv.weight.scalars.allSatisfy { abs($0) <= 1 / Float(18).squareRoot() })
        XCTAssertEqual(conv(randn(1, 4, 5, 5)).shape, [1, 6, 3, 3])
        checkModule(conv, input: randn(1, 4, 5, 5)) { conv($0) }
        let dilated = Conv2d(2, 2, kernelSize: (2, 3), padding: (1, 0), dilation: (2, 1), bias: false, rng: &rng)
        checkModule(dilated, input: randn(2, 2, 4, 5)) { dilated($0) }
    }
}
