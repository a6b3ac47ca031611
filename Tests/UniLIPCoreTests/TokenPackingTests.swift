import UniLIPCore
import UniLIPTestSupport
import XCTest

final class TokenPackingTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("shape")
        let packing = TokenPacking(mask: f["packing.mask"])
        XCTAssertEqual(packing.count, 7)
        f.check("packed_heads") { $0[0].packedHeads(packing) }
        f.check("unpacked_heads") { $0[0].unpackedHeads(packing, heads: 2) }
    }

    func testFiniteDifferences() {
        let packing = TokenPacking(mask: Tensor([1, 1, 0, 1, 0, 0], shape: [2, 3]))
        checkGradients([randn(2, 3, 3, 4)]) { $0[0].packedHeads(packing) }
        checkGradients([randn(3, 12)]) { $0[0].unpackedHeads(packing, heads: 3) }
        checkGradients([randn(2, 3, 5)]) { $0[0].packedTokens(packing) * 2 }
        checkGradients([randn(3, 5)]) { $0[0].unpackedTokens(packing) }
    }

    func testRoundTripKeepsRealTokensAndZeroesPadding() {
        let mask = Tensor([0, 1, 1, 1, 1, 0, 1, 0], shape: [2, 4])
        let packing = TokenPacking(mask: mask)
        XCTAssertEqual(packing.slots, [1, 2, 3, 4, 6])
        XCTAssertFalse(packing.isDense)
        let x = randn(2, 4, 6)
        let packed = x.packedTokens(packing)
        XCTAssertEqual(packed.shape, [5, 6])
        let back = packed.unpackedTokens(packing)
        XCTAssertEqual(back.shape, [2, 4, 6])
        for s in 0..<8 {
            for c in 0..<6 {
                let expected: Float = mask.pointer[s] != 0 ? x.pointer[s * 6 + c] : 0
                XCTAssertEqual(back.pointer[s * 6 + c], expected)
            }
        }
        XCTAssertTrue(TokenPacking(mask: Tensor(repeating: 1, shape: [2, 3])).isDense)
    }
}
