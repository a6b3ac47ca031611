import CBLAS
import Dispatch
import Foundation

/// Thin wrapper over OpenBLAS's row-major `cblas_sgemm`.
public enum BLAS {
    private static let configured: Bool = {
        BLASCore.selectBestKernels()
        Parallel.setThreads(Parallel.threads)
        return true
    }()

    /// C[M,N] = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions given.
    @inline(__always)
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = configured
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        let parts = splitParts(transA: transA, m: m, n: n, k: k, beta: beta)
        if parts > 1 {
            split(parts: parts, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                  a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            call(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                 a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    @inline(__always)
    static func call(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// Whether to split a product over our own threads (`UNILIP_GEMM_SPLIT=0` turns it off).
    static let splitEnabled = ProcessInfo.processInfo.environment["UNILIP_GEMM_SPLIT"] != "0"

    /// Smallest m·n·k worth splitting: below it the hand-off costs more than it saves.
    static let splitMinimumWork = 1 << 22

    /// How many independent single-threaded GEMMs to run at once, or 1 for one OpenBLAS call.
    /// Measured on 2 cores (docs/PERFORMANCE.md, "GEMM split"): on two threads OpenBLAS loses
    /// most on products that write C from scratch (beta = 0 ran 4–30% slower than the same
    /// product accumulating onto C, the difference being `sgemm_beta`'s pass that zeroes C) and
    /// on weight gradients (A transposed, long k), where both of its threads pack the same long
    /// panels. Rows split the first kind, k the second. Only narrow outputs split by rows (n ≤ 256:
    /// a square 512³ product ran 30% slower split, each thread packing all of B) and only small
    /// ones by k (m·n ≤ 2¹⁸, so the scratch block's extra pass stays small). Products that
    /// accumulate onto C (a linear layer's bias) gained nothing from a split and stay whole.
    static func splitParts(transA: Bool, m: Int, n: Int, k: Int, beta: Float) -> Int {
        let threads = Parallel.threads
        guard splitEnabled, threads > 1, Double(m) * Double(n) * Double(k) >= Double(splitMinimumWork) else { return 1 }
        if transA { return k >= 256 * threads && m * n <= 1 << 18 ? threads : 1 }
        return beta == 0 && m >= 256 * threads && n <= 256 ? threads : 1
    }

    /// Runs `parts` GEMMs with OpenBLAS held to one thread: row blocks of C for a plain product,
    /// or slices of k for one with A transposed (each slice after the first into its own
    /// scratch block, summed into C at the end, in a fixed order).
    static func split(parts: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(Parallel.threads)) }
        if !transA {
            let per = (m + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = p * per, rows = min(m, lo + per) - lo
                guard rows > 0 else { return }
                call(transA: false, transB: transB, m: rows, n: n, k: k, alpha: alpha,
                     a: a + lo * lda, lda: lda, b: b, ldb: ldb, beta: beta, c: c + lo * ldc, ldc: ldc)
            }
            return
        }
        let per = (k + parts - 1) / parts
        let scratch = TensorStorage(count: (parts - 1) * m * n)
        let s = scratch.pointer
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = p * per, depth = min(k, lo + per) - lo
            let first = p == 0
            let out = first ? c : s + (p - 1) * m * n
            guard depth > 0 else {
                if !first { out.update(repeating: 0, count: m * n) }
                return
            }
            // A is stored [k, m]; B is [k, n], or [n, k] when transposed.
            call(transA: true, transB: transB, m: m, n: n, k: depth, alpha: alpha,
                 a: a + lo * lda, lda: lda, b: transB ? b + lo : b + lo * ldb, ldb: ldb,
                 beta: first ? beta : 0, c: out, ldc: first ? ldc : n)
        }
        for p in 1..<parts {
            let part = s + (p - 1) * m * n
            for i in 0..<m { SIMDLoops.axpy(1, part + i * n, c + i * ldc, n) }
        }
    }
}

extension Tensor {
    /// Matrix product over the last two axes: op(self) · op(b), where op transposes the last two
    /// axes when asked (no copy is made). Leading axes broadcast. When `b` is a matrix and
    /// `self` is not transposed, the leading axes fold into one GEMM.
    public func matmul(_ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let a = self
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2: \(a.shape) · \(b.shape)")
        let m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2]
        let ka = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
        let kb = transposeB ? b.shape[b.rank - 1] : b.shape[b.rank - 2]
        let n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        precondition(ka == kb, "matmul inner sizes differ: \(a.shape) · \(b.shape)")
        let k = ka

        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let out: Tensor
        if batchB.isEmpty && !transposeA {
            // Fold every leading axis of A into the row count of one GEMM.
            let rows = batchA.reduce(1, *) * m
            out = Tensor(uninitialized: batchA + [m, n])
            BLAS.sgemm(transA: false, transB: transposeB, m: rows, n: n, k: k,
                       a: a.pointer, lda: k, b: b.pointer, ldb: transposeB ? k : n,
                       c: out.pointer, ldc: n)
        } else if batchA != batchB {
            let batch = Shape.broadcast(batchA, batchB)
            let ea = a.expanded(to: batch + Array(a.shape.suffix(2)))
            let eb = b.expanded(to: batch + Array(b.shape.suffix(2)))
            return ea.matmul(eb, transposeA: transposeA, transposeB: transposeB)
        } else {
            let batch = batchA.reduce(1, *)
            out = Tensor(uninitialized: batchA + [m, n])
            for i in 0..<batch {
                BLAS.sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                           a: a.pointer + i * m * k, lda: transposeA ? m : k,
                           b: b.pointer + i * k * n, ldb: transposeB ? k : n,
                           c: out.pointer + i * m * n, ldc: n)
            }
        }
        let da = a.detached(), db = b.detached()
        return out.recording("matmul", [a, b]) { g in
            var gradA: Tensor? = nil, gradB: Tensor? = nil
            if a.requiresGrad {
                switch (transposeA, transposeB) {
                case (false, false): gradA = g.matmul(db, transposeB: true)
                case (false, true): gradA = g.matmul(db)
                case (true, false): gradA = db.matmul(g, transposeB: true)
                case (true, true): gradA = db.matmul(g, transposeA: true, transposeB: true)
                }
            }
            if b.requiresGrad {
                // With a matrix B and batched A, fold A and g so dB is one GEMM.
                let fold = db.rank == 2 && da.rank > 2 && !transposeA
                let fa = fold ? da.reshaped([-1, k]) : da
                let fg = fold ? g.reshaped([-1, n]) : g
                switch (transposeA, transposeB) {
                case (false, false): gradB = fa.matmul(fg, transposeA: true)
                case (false, true): gradB = fg.matmul(fa, transposeA: true)
                case (true, false): gradB = fa.matmul(fg)
                case (true, true): gradB = fg.matmul(fa, transposeA: true, transposeB: true)
                }
            }
            return [gradA, gradB]
        }
    }
}
