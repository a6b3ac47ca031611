import UniLIPCore
import UniLIPTestSupport
import XCTest

final class IndexingTests: XCTestCase {
    private func ints(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    func testGoldenValues() throws {
        let f = try Fixtures("shape")
        f.check("index_select") { $0[0].indexSelect(axis: 1, [2, 0, 2, 3]) }
        f.check("index_select_last") { $0[0].indexSelect(axis: -1, [1, 1, 0]) }
        let gi = f["gather_dim1.index"]
        f.check("gather_dim1") { $0[0].gather(axis: 1, self.ints(gi), indexShape: gi.shape) }
        let gi0 = f["gather_dim0.index"]
        f.check("gather_dim0") { $0[0].gather(axis: 0, self.ints(gi0), indexShape: gi0.shape) }
        f.check("where_bcast") { Tensor.select($0[0], $0[1], $0[2]) }
        f.check("where_full") { Tensor.select($0[0], $0[1], $0[2]) }
        f.check("masked_fill_bcast") { $0[0].maskedFill($0[1], -3) }
        f.check("masked_fill_self_bcast") { $0[0].maskedFill($0[1], 2) }
        let ids = f["embedding.ids"]
        f.check("embedding") { Tensor.embedding($0[0], ids: self.ints(ids), shape: ids.shape) }
    }

    func testFiniteDifferences() {
        checkGradients([randn(2, 4, 3)]) { $0[0].indexSelect(axis: 1, [3, 0, 3, 1, 3]) }
        checkGradients([randn(3, 4)]) { $0[0].indexSelect(axis: -1, [0, 0, 2]) }
        checkGradients([randn(3, 4, 2)]) {
            $0[0].gather(axis: 1, [0, 3, 3, 1, 2, 2, 0, 0, 1, 3, 3, 3], indexShape: [3, 2, 2])
        }
        checkGradients([randn(3, 4)]) { $0[0].gather(axis: 0, [2, 2, 0, 1, 1, 1], indexShape: [2, 3]) }
        let mask = Tensor([1, 0, 1], shape: [3, 1])
        checkGradients([randn(2, 3, 4), randn(4, seed: 2)]) { Tensor.select(mask, $0[0], $0[1]) }
        checkGradients([randn(3, 4)]) { $0[0].maskedFill(mask, 5) }
        checkGradients([randn(6, 3)]) { Tensor.embedding($0[0], ids: [5, 0, 5, 2], shape: [2, 2]) }
    }

    func testEmbeddingScatterAddsRepeatedIds() {
        let w = Tensor((0..<6).map(Float.init), shape: [3, 2], requiresGrad: true)
        let y = Tensor.embedding(w, ids: [2, 0, 2], shape: [3])
        XCTAssertEqual(y.shape, [3, 2])
        XCTAssertEqual(y.scalars, [4, 5, 0, 1, 4, 5])
        y.sum().backward()
        XCTAssertEqual(w.grad?.scalars, [1, 1, 0, 0, 2, 2])
    }

    func testLargeIndexSelectBackwardSplitsColumns() {
        // One outer slab with wide rows takes the column-split backward path.
        let w = randn(50, 4096)
        w.requiresGrad = true
        let ids = [3, 7, 3, 49, 0, 3]
        let y = w.indexSelect(axis: 0, ids)
        let gy = randn(6, 4096, seed: 3)
        y.backward(gy)
        guard let g = w.grad else { return XCTFail("no gradient") }
        for c in [0, 1, 2047, 4095] {
            XCTAssertEqual(g.pointer[3 * 4096 + c], gy.pointer[c] + gy.pointer[2 * 4096 + c] + gy.pointer[5 * 4096 + c],
                           accuracy: 1e-5)
            XCTAssertEqual(g.pointer[1 * 4096 + c], 0)
        }
    }

    func testSelectWithScalarBranches() {
        let m = Tensor([0, 1, 0, 1], shape: [4])
        let out = Tensor.select(m, Tensor(scalar: 1), Tensor(scalar: -1))
        XCTAssertEqual(out.scalars, [-1, 1, -1, 1])
    }
}
