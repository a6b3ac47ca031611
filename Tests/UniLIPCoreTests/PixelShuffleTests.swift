import UniLIPCore
import UniLIPTestSupport
import XCTest

final class PixelShuffleTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("conv")
        f.check("pixel_shuffle2") { $0[0].pixelShuffle(2) }
        f.check("pixel_shuffle3") { $0[0].pixelShuffle(3) }
        f.check("pixel_unshuffle2") { $0[0].pixelUnshuffle(2) }
        f.check("pixel_unshuffle3") { $0[0].pixelUnshuffle(3) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(2, 8, 2, 3)]) { $0[0].pixelShuffle(2) }
        checkGradients([randn(1, 2, 6, 3)]) { $0[0].pixelUnshuffle(3) }
    }

    func testRoundTripAndLayout() {
        let x = randn(2, 12, 3, 5)
        assertClose(x.pixelShuffle(2).pixelUnshuffle(2), x, atol: 0, rtol: 0)
        // out[0, 0, 0, 1] comes from channel 1 (i = 0, j = 1) at (0, 0).
        let v = Tensor((0..<16).map(Float.init), shape: [1, 4, 2, 2])
        XCTAssertEqual(v.pixelShuffle(2).scalars,
                       [0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15])
    }
}
