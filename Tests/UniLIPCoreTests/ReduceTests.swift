import UniLIPCore
import UniLIPTestSupport
import XCTest

final class ReduceTests: XCTestCase {
    private func ints(_ t: Tensor) -> [Int] { t.scalars.map { Int($0) } }

    func testFullSumOfALongTensorMatchesDouble() {
        for n in [511, 512, 5_000, 70_001] {
            let x = randn(n, seed: UInt64(n))
            let exact = x.scalars.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(Double(x.sum().item), exact, accuracy: 1e-5 * max(1, abs(exact)), "n = \(n)")
        }
        var values = randn(4_000, seed: 3).scalars
        values[1_234] = .nan
        XCTAssertTrue(Tensor(values, shape: [4_000]).sum().item.isNaN)
    }

    func testGoldenValues() throws {
        let f = try Fixtures("reduce")
        f.check("mean_all") { $0[0].mean() }
        f.check("mean_axes") { $0[0].mean(axes: [0, -1]) }
        f.check("mean_keep") { $0[0].mean(axis: 1, keepDims: true) }
        f.check("max_axis") { $0[0].max(axis: 1) }
        f.check("max_last_keep") { $0[0].max(axis: -1, keepDims: true) }
        f.check("max_ties") { $0[0].max(axis: 1) }
        f.check("max_ties_dim0") { $0[0].max(axis: 0) }
        f.check("min_axis") { $0[0].min(axis: 0) }
        f.check("min_ties") { $0[0].min(axis: -1, keepDims: true) }
        f.check("max_all") { $0[0].max() }
        f.check("max_all_ties") { $0[0].max() }
        f.check("var_biased") { $0[0].variance(axes: [0, 2]) }
        f.check("var_unbiased") { $0[0].variance(axes: [-1], unbiased: true) }
        f.check("var_unbiased_keep") { $0[0].variance(axes: [1, 2], keepDims: true, unbiased: true) }
        f.check("var_biased_nchw") { $0[0].variance(axes: [0, 2, 3], keepDims: true) }
        f.check("var_mid") { $0[0].variance(axes: [1]) }
        f.check("var_long") { $0[0].variance(axes: [-1], unbiased: true) }
        let ties = f.inputs("max_ties")[0]
        XCTAssertEqual(ties.argmax(axis: 1), ints(f["max_ties.argmax"]))
        let x = f.inputs("argmax")[0]
        XCTAssertEqual(x.argmax(axis: 1), ints(f["argmax.dim1"]))
        XCTAssertEqual(x.argmax(axis: -1), ints(f["argmax.dimneg"]))
    }

    func testFiniteDifferences() {
        checkGradients([randn(3, 4)]) { $0[0].mean() }
        checkGradients([randn(2, 3, 4)]) { $0[0].mean(axes: [0, -1], keepDims: true) }
        // Random normals have no ties, so finite differences see a smooth max.
        checkGradients([randn(2, 5, 3)], eps: 1e-3) { $0[0].max(axis: 1) }
        checkGradients([randn(4, 3)], eps: 1e-3) { $0[0].min(axis: -1, keepDims: true) }
        checkGradients([randn(3, 4)], eps: 1e-3) { $0[0].max() }
        checkGradients([randn(2, 3, 4)]) { $0[0].variance(axes: [0, 2]) }
        checkGradients([randn(3, 5)]) { $0[0].variance(axes: [-1], keepDims: true, unbiased: true) }
        checkGradients([randn(2, 3, 4)]) { $0[0].variance(axes: [1], unbiased: true) }
        checkGradients([randn(2, 19)]) { $0[0].variance(axes: [1]) }
    }

    func testTiesAndWideRows() {
        let t = Tensor([1, 3, 3, 0], shape: [1, 4], requiresGrad: true)
        t.max(axis: 1).sum().backward()
        XCTAssertEqual(t.grad?.scalars, [0, 1, 0, 0], "gradient to the first maximum")
        XCTAssertEqual(t.argmax(axis: -1), [1])
        // Few outer rows with wide inner rows: the column-split path.
        let x = randn(2, 3, 5000)
        let m = x.max(axis: 1)
        let a = x.argmax(axis: 1)
        for i in [0, 17, 4999, 5000 + 123] {
            let o = i / 5000, c = i % 5000
            let col = (0..<3).map { x.pointer[(o * 3 + $0) * 5000 + c] }
            XCTAssertEqual(m.pointer[i], col.max())
            XCTAssertEqual(a[i], col.firstIndex(of: col.max() ?? 0))
        }
        XCTAssertEqual(Tensor([1, .nan, 2], shape: [3]).max(axis: 0).item.isNaN, true, "NaN propagates")
        // Long contiguous rows take the eight-lane path; compare with a plain scan.
        let rows = randn(5, 37, seed: 4)
        rows.pointer[2 * 37 + 30] = 9; rows.pointer[2 * 37 + 33] = 9  // tie, in the tail
        rows.pointer[3 * 37 + 1] = -9; rows.pointer[3 * 37 + 20] = -9
        rows.pointer[4 * 37 + 12] = .nan
        let mx = rows.max(axis: -1), mn = rows.min(axis: 1)
        let amax = rows.argmax(axis: 1)
        for r in 0..<4 {
            let row = (0..<37).map { rows.pointer[r * 37 + $0] }
            XCTAssertEqual(mx.pointer[r], row.max())
            XCTAssertEqual(mn.pointer[r], row.min())
            XCTAssertEqual(amax[r], row.firstIndex(of: row.max() ?? 0))
        }
        XCTAssertEqual(amax[2], 30, "first of tied maxima")
        XCTAssertTrue(mx.pointer[4].isNaN && mn.pointer[4].isNaN)
        XCTAssertEqual(amax[4], 12, "NaN position")
        let r3 = Tensor(Array(rows.scalars[(3 * 37)..<(4 * 37)]), shape: [37], requiresGrad: true)
        r3.min(axis: 0).backward()
        XCTAssertEqual(r3.grad?.scalars.firstIndex(of: 1), 1, "gradient to the first minimum")
    }
}
