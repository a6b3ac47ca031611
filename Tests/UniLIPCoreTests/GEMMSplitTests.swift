@testable import UniLIPCore
import XCTest

/// `BLAS.sgemm` may split a product over our own threads (row blocks, or slices of k when A is
/// transposed); each split must give OpenBLAS's single-call result, strides and beta included.
final class GEMMSplitTests: XCTestCase {
    /// Row-major [rows, cols] with leading dimension `ld` ≥ cols (the padding holds junk).
    func random(_ rows: Int, _ cols: Int, ld: Int, seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<rows * ld).map { _ in rng.normal() }
    }

    func testSplitsMatchOneCall() {
        let (m, n, k) = (67, 45, 131)
        for transA in [false, true] {
            for transB in [false, true] {
                for beta: Float in [0, 0.5] {
                    for parts in [2, 3] {
                        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 5
                        let a = random(transA ? k : m, transA ? m : k, ld: lda, seed: 1)
                        let b = random(transB ? n : k, transB ? k : n, ld: ldb, seed: 2)
                        let c0 = random(m, n, ld: ldc, seed: 3)
                        var expected = c0, got = c0
                        a.withUnsafeBufferPointer { a in
                            b.withUnsafeBufferPointer { b in
                                expected.withUnsafeMutableBufferPointer { c in
                                    BLAS.call(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75,
                                              a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                              beta: beta, c: c.baseAddress!, ldc: ldc)
                                }
                                got.withUnsafeMutableBufferPointer { c in
                                    BLAS.split(parts: parts, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75,
                                               a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                               beta: beta, c: c.baseAddress!, ldc: ldc)
                                }
                            }
                        }
                        let worst = zip(expected, got).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThan(worst, 1e-4, "transA \(transA) transB \(transB) beta \(beta) parts \(parts)")
                        // The padding between rows of C is never written.
                        for i in 0..<m { for j in n..<ldc { XCTAssertEqual(got[i * ldc + j], c0[i * ldc + j]) } }
                    }
                }
            }
        }
    }

    func testSplitRule() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        Parallel.setThreads(2)
        // Weight gradients (A transposed, long k) split over k; fresh outputs split over rows.
        XCTAssertEqual(BLAS.splitParts(transA: true, m: 384, n: 128, k: 4160, beta: 0), 2)
        XCTAssertEqual(BLAS.splitParts(transA: false, m: 4160, n: 128, k: 384, beta: 0), 2)
        // Accumulating products (a bias already in C), short k and small products stay whole.
        XCTAssertEqual(BLAS.splitParts(transA: false, m: 4160, n: 384, k: 128, beta: 1), 1)
        XCTAssertEqual(BLAS.splitParts(transA: true, m: 4096, n: 4096, k: 64, beta: 0), 1)
        XCTAssertEqual(BLAS.splitParts(transA: false, m: 64, n: 64, k: 64, beta: 0), 1)
        // Wide or large outputs: OpenBLAS's own threads share the packed panels.
        XCTAssertEqual(BLAS.splitParts(transA: false, m: 512, n: 512, k: 512, beta: 0), 1)
        XCTAssertEqual(BLAS.splitParts(transA: true, m: 1024, n: 1024, k: 1024, beta: 0), 1)
        Parallel.setThreads(1)
        XCTAssertEqual(BLAS.splitParts(transA: true, m: 384, n: 128, k: 4160, beta: 0), 1)
    }

    func testMatmulGradientsThroughSplitProducts() {
        // Large enough that both the forward (rows) and the weight gradient (k) split.
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        Parallel.setThreads(2)
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.normal([1024, 96], rng: &rng), w = Tensor.normal([64, 96], rng: &rng, requiresGrad: true)
        let g = Tensor.normal([1024, 64], rng: &rng)
        XCTAssertEqual(BLAS.splitParts(transA: true, m: 64, n: 96, k: 1024, beta: 0), 2)
        (x.matmul(w, transposeB: true) * g).sum().backward()
        // dW = gᵀ·x by a plain triple loop in Double.
        var worst: Double = 0
        let gw = w.grad!.scalars, xs = x.scalars, gs = g.scalars
        for i in 0..<64 {
            for j in 0..<96 {
                var s = 0.0
                for r in 0..<1024 { s += Double(gs[r * 64 + i]) * Double(xs[r * 96 + j]) }
                worst = max(worst, abs(s - Double(gw[i * 96 + j])))
            }
        }
        XCTAssertLessThan(worst, 1e-3)
    }
}
