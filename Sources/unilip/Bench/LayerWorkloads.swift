import UniLIPCore

extension CoreWorkloads {
    /// (a) ViT block, (b) 3×3 conv and (c) attention, each as in Tools/reference/bench_core.py.
    /// The workloads whose names contain `only` (all when nil).
    static func layerWorkloads(repeats: Int, only: String? = nil) -> [BenchResult] {
        let all: [(String, () -> Double)] = [
            ("vit block fwd+bwd", { vitBlock(repeats: repeats) }),
            ("vit block gemms", { vitBlockGEMMs(repeats: repeats) }),
            ("conv3x3 fwd+bwd", { conv(repeats: repeats) }),
            ("attention fwd", { attention(repeats: repeats, backward: false) }),
            ("attention fwd+bwd", { attention(repeats: repeats, backward: true) }),
        ]
        return all.filter { workload in only.map { workload.0.contains($0) } ?? true }.map { BenchResult(name: $0.0, value: $0.1(), unit: "ms") }
    }

    /// Pre-norm ViT block: batch 32, 64 tokens, width 256, 4 heads, MLP 1024, forward+backward.
    static func vitBlock(repeats: Int) -> Double {
        let (b, n, c, heads, hidden) = (32, 64, 256, 4, 1024)
        var rng = RandomGenerator(seed: 3)
        func param(_ shape: [Int], std: Float = 0.02) -> Tensor {
            Tensor.normal(shape, std: std, rng: &rng, requiresGrad: true)
        }
        let x = Tensor.normal([b, n, c], rng: &rng, requiresGrad: true)
        let ln1w = Tensor(repeating: 1, shape: [c], requiresGrad: true), ln1b = Tensor(zeros: [c], requiresGrad: true)
        let ln2w = Tensor(repeating: 1, shape: [c], requiresGrad: true), ln2b = Tensor(zeros: [c], requiresGrad: true)
        let qkvW = param([3 * c, c]), qkvB = param([3 * c])
        let projW = param([c, c]), projB = param([c])
        let fc1W = param([hidden, c]), fc1B = param([hidden])
        let fc2W = param([c, hidden]), fc2B = param([c])
        let params = [x, ln1w, ln1b, ln2w, ln2b, qkvW, qkvB, projW, projB, fc1W, fc1B, fc2W, fc2B]
        return medianMilliseconds(repeats: repeats) {
            for p in params { p.zeroGrad() }
            let h = x.layerNorm(weight: ln1w, bias: ln1b, eps: 1e-6)
            let qkv = h.linear(weight: qkvW, bias: qkvB)
                .reshaped([b, n, 3, heads, c / heads]).permuted([0, 2, 3, 1, 4])
            let a = Tensor.scaledDotProductAttention(qkv: qkv).transposed(1, 2).reshaped([b, n, c])
            let x1 = x + a.linear(weight: projW, bias: projB)
            let m = x1.layerNorm(weight: ln2w, bias: ln2b, eps: 1e-6).linear(weight: fc1W, bias: fc1B).gelu()
            let y = x1 + m.linear(weight: fc2W, bias: fc2B)
            y.sum().backward()
        }
    }

    /// The ViT block's 12 GEMMs alone (no bias): each linear layer's forward x·Wᵀ, input
    /// gradient g·W and weight gradient gᵀ·x, at the block's shapes (2,048 rows, width 256,
    /// MLP 1024). Separates BLAS speed from everything else the block does.
    static func vitBlockGEMMs(repeats: Int) -> Double {
        let (rows, c, hidden) = (32 * 64, 256, 1024)
        var rng = RandomGenerator(seed: 6)
        let layers = [(c, 3 * c), (c, c), (c, hidden), (hidden, c)].map { (inner, outer) in
            (x: Tensor.normal([rows, inner], rng: &rng), w: Tensor.normal([outer, inner], rng: &rng),
             g: Tensor.normal([rows, outer], rng: &rng))
        }
        return medianMilliseconds(repeats: repeats) {
            withNoGrad {
                for l in layers {
                    _ = l.x.matmul(l.w, transposeB: true)
                    _ = l.g.matmul(l.w)
                    _ = l.g.matmul(l.x, transposeA: true)
                }
            }
        }
    }

    /// 3×3 conv, batch 8, 64→64 channels, 64×64, padding 1, forward+backward.
    static func conv(repeats: Int) -> Double {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.normal([8, 64, 64, 64], rng: &rng, requiresGrad: true)
        let w = Tensor.normal([64, 64, 3, 3], std: 0.05, rng: &rng, requiresGrad: true)
        let bias = Tensor.normal([64], rng: &rng, requiresGrad: true)
        return medianMilliseconds(repeats: repeats) {
            for p in [x, w, bias] { p.zeroGrad() }
            x.conv2d(w, bias: bias, stride: 1, padding: 1).sum().backward()
        }
    }

    /// Attention over 1024 tokens, 8 heads of 64, batch 1.
    static func attention(repeats: Int, backward: Bool) -> Double {
        var rng = RandomGenerator(seed: 5)
        let q = Tensor.normal([1, 8, 1024, 64], rng: &rng, requiresGrad: backward)
        let k = Tensor.normal([1, 8, 1024, 64], rng: &rng, requiresGrad: backward)
        let v = Tensor.normal([1, 8, 1024, 64], rng: &rng, requiresGrad: backward)
        return medianMilliseconds(repeats: repeats) {
            if backward {
                for p in [q, k, v] { p.zeroGrad() }
                Tensor.scaledDotProductAttention(q: q, k: k, v: v).sum().backward()
            } else {
                _ = withNoGrad { Tensor.scaledDotProductAttention(q: q, k: k, v: v) }
            }
        }
    }
}
