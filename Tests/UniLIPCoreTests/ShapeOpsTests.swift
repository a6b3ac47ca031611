import UniLIPCore
import UniLIPTestSupport
import XCTest

final class ShapeOpsTests: XCTestCase {
    func testGoldenValues() throws {
        let f = try Fixtures("shape")
        f.check("permute_3d") { $0[0].permuted([2, 0, 1]) }
        f.check("permute_neg") { $0[0].permuted([-1, 1, -2, 0]) }
        f.check("permute_last2") { $0[0].permuted([0, 1, 3, 2]) }
        f.check("permute_heads") { $0[0].permuted([0, 2, 1, 3]) }
        f.check("transpose_neg") { $0[0].transposed(-1, -3) }
        f.check("transpose_big") { $0[0].transposed(0, 1) }
        f.check("unsqueeze_squeeze") { $0[0].unsqueezed(-1).unsqueezed(0).squeezed(2) * 2 }
        f.check("slice_step") { $0[0].sliced(axis: 1, start: 1, end: 7, step: 2) }
        f.check("slice_neg") { $0[0].sliced(axis: -1, start: -4, end: -1) }
        f.check("slice_clamp") { $0[0].sliced(axis: 0, start: -10, end: 2) }
        f.check("slice_step3") { $0[0].sliced(axis: 2, start: 0, end: Int.max, step: 3) }
        f.check("chunk_3") { xs in
            Tensor.concat(xs[0].chunked(3, axis: 1).enumerated().map { $0.element * Float($0.offset + 1) }, axis: 1)
        }
        f.check("chunk_neg") { xs in
            Tensor.concat(xs[0].chunked(2, axis: -1).enumerated().map { $0.element * Float($0.offset + 1) }, axis: -1)
        }
        f.check("concat_3") { Tensor.concat($0, axis: 1) }
        f.check("concat_neg") { Tensor.concat($0, axis: -1) }
        f.check("concat_0") { Tensor.concat($0, axis: 0) }
        f.check("stack_0") { Tensor.stack($0, axis: 0) }
        f.check("stack_neg") { Tensor.stack($0, axis: -1) }
        f.check("pad_zeros") { $0[0].padded([1, 2, 0, 3]) }
        f.check("pad_value") { $0[0].padded([2, 0], value: 1.5) }
        f.check("pad_crop") { $0[0].padded([-1, 2, 1, -2]) }
        f.check("pad_reflect_nchw") { $0[0].padded([2, 1, 1, 3], mode: .reflect) }
        f.check("pad_reflect_1d") { $0[0].padded([3, 2], mode: .reflect) }
        f.check("repeat_interleave") { $0[0].repeatInterleaved(3, axis: 1) }
        f.check("repeat_interleave_neg") { $0[0].repeatInterleaved(2, axis: -1) }
        f.check("repeat") { $0[0].repeated([2, 1, 3]) }
        f.check("repeat_lead") { $0[0].repeated([2, 3, 1]) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(2, 3, 4)]) { $0[0].permuted([2, 0, 1]) }
        checkGradients([randn(2, 9, 10)]) { $0[0].transposed(-1, -2) }
        checkGradients([randn(3, 1, 4)]) { $0[0].unsqueezed(0).squeezed(2) }
        checkGradients([randn(3, 8, 2)]) { $0[0].sliced(axis: 1, start: -7, end: 7, step: 2) }
        checkGradients([randn(2, 7)]) { xs in
            Tensor.concat(xs[0].chunked(3, axis: -1).enumerated().map { $0.element * Float($0.offset + 1) }, axis: -1)
        }
        checkGradients([randn(2, 3), randn(2, 1, seed: 2), randn(2, 4, seed: 3)]) { Tensor.concat($0, axis: 1) }
        checkGradients([randn(2, 3), randn(2, 3, seed: 2), randn(2, 3, seed: 3)]) { Tensor.stack($0, axis: 1) }
        checkGradients([randn(1, 2, 4, 5)]) { $0[0].padded([1, 2, 2, 0], value: 0.5) }
        checkGradients([randn(2, 4, 5)]) { $0[0].padded([-1, 1, 0, -2]) }
        checkGradients([randn(1, 2, 4, 5)]) { $0[0].padded([3, 2, 1, 3], mode: .reflect) }
        checkGradients([randn(2, 3)]) { $0[0].repeatInterleaved(2, axis: 0) }
        checkGradients([randn(2, 3)]) { $0[0].repeated([2, 2, 3]) }
    }

    func testTiledTransposeMatchesNaiveLoop() {
        // Sizes that are not multiples of the tile, batched, to cover the tile edges.
        let x = randn(3, 37, 70)
        let y = x.permuted([0, 2, 1])
        XCTAssertEqual(y.shape, [3, 70, 37])
        for b in 0..<3 { for i in 0..<37 { for j in 0..<70 {
            XCTAssertEqual(y.pointer[(b * 70 + j) * 37 + i], x.pointer[(b * 37 + i) * 70 + j])
        } } }
        // Power-of-two sizes, where long strides alias in the cache.
        let p = randn(64, 128, seed: 5)
        let pt = p.transposed(0, 1)
        for i in [0, 1, 31, 32, 63] { for j in [0, 5, 64, 127] {
            XCTAssertEqual(pt.pointer[j * 64 + i], p.pointer[i * 128 + j])
        } }
        // Attention layout [B, H, T, D] → [B, H, D, T] and back is the identity.
        let q = randn(2, 3, 33, 16)
        XCTAssertEqual(q.permuted([0, 1, 3, 2]).permuted([0, 1, 3, 2]).scalars, q.scalars)
        XCTAssertEqual(q.permuted([0, 2, 1, 3]).permuted([0, 2, 1, 3]).scalars, q.scalars)
    }

    func testLargeCopiesSplitAcrossThreads() {
        // Big enough that the copy kernel runs in several chunks.
        let x = randn(64, 1000)
        let parts = x.chunked(4, axis: 0)
        XCTAssertEqual(parts.map(\.shape), Array(repeating: [16, 1000], count: 4))
        XCTAssertEqual(Tensor.concat(parts, axis: 0).scalars, x.scalars)
        let cols = x.chunked(3, axis: 1)
        XCTAssertEqual(cols.map { $0.shape[1] }, [334, 334, 332])
        XCTAssertEqual(Tensor.concat(cols, axis: 1).scalars, x.scalars)
    }

    func testShapesAndEdgeCases() {
        let x = Tensor((0..<6).map(Float.init), shape: [2, 3])
        XCTAssertEqual(x.sliced(axis: 1, start: 2, end: 1).shape, [2, 0], "empty slice")
        XCTAssertEqual(x.sliced(axis: 1, start: 0, end: 3, step: 2).scalars, [0, 2, 3, 5])
        XCTAssertEqual(x.chunked(5, axis: 1).count, 3, "torch.chunk may return fewer pieces")
        XCTAssertEqual(x.squeezed(0).shape, [2, 3], "squeeze of a non-unit axis is a no-op")
        XCTAssertEqual(x.unsqueezed(2).shape, [2, 3, 1])
        XCTAssertEqual(x.unsqueezed(-1).shape, [2, 3, 1])
        XCTAssertEqual(x.permuted([0, 1]).scalars, x.scalars)
        XCTAssertFalse(x.permuted([0, 1]).storage === x.storage, "permute always copies")
        XCTAssertFalse(x.padded([0, 0], mode: .reflect).storage === x.storage, "pad always copies")
        XCTAssertEqual(x.padded([1, 1], mode: .reflect).scalars, [1, 0, 1, 2, 1, 4, 3, 4, 5, 4])
        XCTAssertEqual(x.padded([0, 0, 1, 0], value: 9).scalars, [9, 9, 9, 0, 1, 2, 3, 4, 5])
        XCTAssertEqual(x.repeated([1, 2]).scalars, [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        XCTAssertEqual(x.repeatInterleaved(2, axis: 0).scalars, [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
    }
}
