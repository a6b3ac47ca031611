import CBLAS
import UniLIPCore

/// The workloads of `unilip bench core`. `Tools/reference/bench_core.py` times the same work in
/// PyTorch; keep the two in step.
enum CoreWorkloads {
    /// sgemm GFLOP/s: raw `cblas_sgemm` and `Tensor.matmul` on the same n×n×n product.
    static func sgemm(n: Int, repeats: Int) -> [BenchResult] {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.normal([n, n], rng: &rng), b = Tensor.normal([n, n], rng: &rng)
        let c = Tensor(zeros: [n, n])
        let flops = 2 * Double(n) * Double(n) * Double(n)
        let raw = medianMilliseconds(repeats: repeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, a.pointer, Int32(n), b.pointer, Int32(n), 0, c.pointer, Int32(n))
        }
        let ours = medianMilliseconds(repeats: repeats) { _ = withNoGrad { a.matmul(b) } }
        return [
            BenchResult(name: "sgemm \(n) openblas", value: flops / raw / 1e6, unit: "GFLOP/s"),
            BenchResult(name: "sgemm \(n) matmul", value: flops / ours / 1e6, unit: "GFLOP/s"),
        ]
    }

}
