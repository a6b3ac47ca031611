extension Tensor {
    /// y = x·Wᵀ + b for x [..., in], weight [out, in], bias [out] (PyTorch's `F.linear`).
    /// The bias is written into the output first and the GEMM accumulates onto it (beta = 1),
    /// so the bias costs no extra pass; leading axes of x fold into one GEMM.
    public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
        precondition(weight.rank == 2 && rank >= 1 && shape[rank - 1] == weight.shape[1],
                     "linear: input \(shape) with weight \(weight.shape)")
        if let stored = weight.stored { return linear(stored: stored, weight: weight, bias: bias) }
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

    /// Elements of a stored weight decoded per block: 16 MB of Float32 scratch at most.
    static let storedBlockElements = 1 << 22

    /// `linear` with a weight kept in its stored dtype: blocks of output rows are decoded into
    /// one pooled scratch buffer, each block's GEMM writing its own output columns, so the
    /// Float32 weight never exists whole.
    private func linear(stored: StoredValues, weight: Tensor, bias: Tensor?) -> Tensor {
        let n = weight.shape[0], k = weight.shape[1]
        if let bias { precondition(bias.shape == [n], "linear: bias \(bias.shape) for weight \(weight.shape)") }
        let rows = count / k
        let out = Tensor(uninitialized: Array(shape.dropLast()) + [n])
        let o = out.pointer
        if let bias {
            let b = bias.pointer
            Parallel.forRange(rows, grain: Swift.max(1, Kernels.grain / Swift.max(n, 1))) { r in
                for row in r { (o + row * n).update(from: b, count: n) }
            }
        }
        let block = Swift.max(1, Swift.min(n, Self.storedBlockElements / Swift.max(k, 1)))
        let scratch = TensorStorage(count: block * k)
        var start = 0
        while start < n {
            let m = Swift.min(block, n - start)
            stored.decode(start * k ..< (start + m) * k, into: scratch.pointer)
            BLAS.sgemm(transA: false, transB: true, m: rows, n: m, k: k, a: pointer, lda: k,
                       b: scratch.pointer, ldb: k, beta: bias == nil ? 0 : 1, c: o + start, ldc: n)
            start += m
        }
        let inputShape = shape
        return out.recording("linear", bias.map { [self, $0] } ?? [self]) { g in
            let g2 = g.reshaped([rows, n])
            let gx = self.requiresGrad ? g2.matmul(weight.decoded()).reshaped(inputShape) : nil
            guard let bias else { return [gx] }
            return [gx, bias.requiresGrad ? g2.sum(axis: 0) : nil]
        }
    }
}
