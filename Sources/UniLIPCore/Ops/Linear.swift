extension Tensor {
    /// y = x·Wᵀ + b for x [..., in], weight [out, in], bias [out] (PyTorch's `F.linear`).
    /// The bias is written into the output first and the GEMM accumulates onto it (beta = 1),
    /// so the bias costs no extra pass; leading axes of x fold into one GEMM.
    public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        precondition(weight.rank == 2 && rank >= 1 && shape[rank - 1] == weight.shape[1],
                     "linear: input \(shape) with weight \(weight.shape)")
        guard let bias else { return rank == 1 ? reshaped([1, shape[0]]).matmul(weight, transposeB: true).reshaped([weight.shape[0]])
                                               : matmul(weight, transposeB: true) }
        let n = weight.shape[0], k = weight.shape[1]
        precondition(bias.shape == [n], "linear: bias \(bias.shape) for weight \(weight.shape)")
        let rows = count / k
        let outShape = Array(shape.dropLast()) + [n]
        let out = Tensor(uninitialized: outShape)
        let b = bias.pointer, o = out.pointer
        Parallel.forRange(rows, grain: Swift.max(1, Kernels.grain / Swift.max(n, 1))) { r in
            for row in r { (o + row * n).update(from: b, count: n) }
        }
        BLAS.sgemm(transA: false, transB: true, m: rows, n: n, k: k, a: pointer, lda: k,
                   b: weight.pointer, ldb: k, beta: 1, c: o, ldc: n)
        let x = detached(), w = weight.detached()
        let inputShape = shape
        return out.recording("linear", [self, weight, bias]) { g in
            let g2 = g.reshaped([rows, n])
            let gx = self.requiresGrad ? g2.matmul(w).reshaped(inputShape) : nil
            let gw = weight.requiresGrad ? g2.matmul(x.reshaped([rows, k]), transposeA: true) : nil
            let gb = bias.requiresGrad ? g2.sum(axis: 0) : nil
            return [gx, gw, gb]
        }
    }
}
