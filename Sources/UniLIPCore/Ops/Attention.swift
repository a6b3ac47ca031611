import CKernels
import Foundation

// Scaled-dot-product attention, flash-attention style: query blocks are processed one at a time
// per (batch, key/value head) and only each row's log-sum-exp is kept for backward, which
// recomputes the score blocks. Memory stays O(block × Lk).

/// Small dense kernels for per-head matrices, where one BLAS call per head costs more in
/// overhead than it saves. They run inside parallel loops (BLAS never does).
enum HeadKernels {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func finish(_ acc: SIMD8<Float>, _ c: UnsafeMutablePointer<Float>, alpha: Float, beta: Float) {
        if beta == 0 {
            store8(acc * alpha, c)
        } else {
            store8((acc * alpha).addingProduct(load8(c), SIMD8(repeating: beta)), c)
        }
    }

    /// Whether `gemm` runs the AVX-512 kernel (twice the lanes of the SIMD8 code below), chosen
    /// from the CPU at start-up; `UNILIP_AVX512=0` or tests turn it off.
    nonisolated(unsafe) static var useAVX512: Bool =
        unilip_has_avx512() != 0 && ProcessInfo.processInfo.environment["UNILIP_AVX512"] != "0"

    /// C[m,n] = alpha · A·B + beta · C with A(i,p) = a[i·ars + p·acs] (so A or Aᵀ, row-major),
    /// B row-major [k, n] with leading dimension ldb. beta = 0 never reads C.
    /// Column panels are the outer loop so a 16-wide panel of B stays in L1 across all rows.
    static func gemm(m: Int, n: Int, k: Int, alpha: Float,
                     a: UnsafePointer<Float>, ars: Int, acs: Int,
                     b: UnsafePointer<Float>, ldb: Int,
                     beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if useAVX512 {
            unilip_gemm_avx512(m, n, k, alpha, a, ars, acs, b, ldb, beta, c, ldc)
            return
        }
        var j = 0
        while j + 16 <= n {
            var i = 0
            while i + 4 <= m {
                let a0 = a + i * ars, a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars
                var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
                var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
                var bp = b + j
                var off = 0
                for _ in 0..<k {
                    let b0 = load8(bp), b1 = load8(bp + 8)
                    let x0 = SIMD8<Float>(repeating: a0[off]), x1 = SIMD8<Float>(repeating: a1[off])
                    let x2 = SIMD8<Float>(repeating: a2[off]), x3 = SIMD8<Float>(repeating: a3[off])
                    c00 = c00.addingProduct(x0, b0); c01 = c01.addingProduct(x0, b1)
                    c10 = c10.addingProduct(x1, b0); c11 = c11.addingProduct(x1, b1)
                    c20 = c20.addingProduct(x2, b0); c21 = c21.addingProduct(x2, b1)
                    c30 = c30.addingProduct(x3, b0); c31 = c31.addingProduct(x3, b1)
                    bp += ldb
                    off += acs
                }
                let cp = c + i * ldc + j
                finish(c00, cp, alpha: alpha, beta: beta); finish(c01, cp + 8, alpha: alpha, beta: beta)
                finish(c10, cp + ldc, alpha: alpha, beta: beta); finish(c11, cp + ldc + 8, alpha: alpha, beta: beta)
                finish(c20, cp + 2 * ldc, alpha: alpha, beta: beta)
                finish(c21, cp + 2 * ldc + 8, alpha: alpha, beta: beta)
                finish(c30, cp + 3 * ldc, alpha: alpha, beta: beta)
                finish(c31, cp + 3 * ldc + 8, alpha: alpha, beta: beta)
                i += 4
            }
            while i < m {
                let a0 = a + i * ars
                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>()
                var bp = b + j
                var off = 0
                for _ in 0..<k {
                    let x = SIMD8<Float>(repeating: a0[off])
                    c0 = c0.addingProduct(x, load8(bp)); c1 = c1.addingProduct(x, load8(bp + 8))
                    bp += ldb
                    off += acs
                }
                let cp = c + i * ldc + j
                finish(c0, cp, alpha: alpha, beta: beta); finish(c1, cp + 8, alpha: alpha, beta: beta)
                i += 1
            }
            j += 16
        }
        if j + 8 <= n {
            var i = 0
            while i + 4 <= m {
                let a0 = a + i * ars, a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars
                var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                var bp = b + j
                var off = 0
                for _ in 0..<k {
                    let b0 = load8(bp)
                    c0 = c0.addingProduct(SIMD8(repeating: a0[off]), b0)
                    c1 = c1.addingProduct(SIMD8(repeating: a1[off]), b0)
                    c2 = c2.addingProduct(SIMD8(repeating: a2[off]), b0)
                    c3 = c3.addingProduct(SIMD8(repeating: a3[off]), b0)
                    bp += ldb
                    off += acs
                }
                let cp = c + i * ldc + j
                finish(c0, cp, alpha: alpha, beta: beta); finish(c1, cp + ldc, alpha: alpha, beta: beta)
                finish(c2, cp + 2 * ldc, alpha: alpha, beta: beta); finish(c3, cp + 3 * ldc, alpha: alpha, beta: beta)
                i += 4
            }
            while i < m {
                let a0 = a + i * ars
                var c0 = SIMD8<Float>()
                var bp = b + j
                var off = 0
                for _ in 0..<k {
                    c0 = c0.addingProduct(SIMD8(repeating: a0[off]), load8(bp))
                    bp += ldb
                    off += acs
                }
                finish(c0, c + i * ldc + j, alpha: alpha, beta: beta)
                i += 1
            }
            j += 8
        }
        if j < n {
            scalarBlock(rows: 0..<m, cols: j..<n, k: k, alpha: alpha, a: a, ars: ars, acs: acs,
                        b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    @inline(never)
    static func scalarBlock(rows: Range<Int>, cols: Range<Int>, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, ars: Int, acs: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in rows {
            for j in cols {
                var s: Float = 0
                for p in 0..<k { s += a[i * ars + p * acs] * b[p * ldb + j] }
                let cp = c + i * ldc + j
                cp.pointee = beta == 0 ? alpha * s : alpha * s + beta * cp.pointee
            }
        }
    }

    /// C = alpha · op(A)·B + beta · C through BLAS (sequential callers) or the SIMD kernel
    /// (inside parallel loops). op(A) is A [m,k] or, with transA, the transpose of A [k,m].
    @inline(__always)
    static func mm(blas: Bool, transA: Bool, m: Int, n: Int, k: Int, alpha: Float,
                   a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                   beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if blas {
            BLAS.sgemm(transA: transA, transB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                       b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            gemm(m: m, n: n, k: k, alpha: alpha, a: a, ars: transA ? 1 : lda, acs: transA ? lda : 1,
                 b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// dst[c, r] = src[r, c] for a [rows, cols] matrix; dst rows are `ld` apart (default rows).
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, _ dst: UnsafeMutablePointer<Float>,
                          ld: Int? = nil) {
        let ld = ld ?? rows
        var r0 = 0
        while r0 < rows {
            let r1 = Swift.min(rows, r0 + 32)
            for c in 0..<cols {
                let d = dst + c * ld
                for r in r0..<r1 { d[r] = src[r * cols + c] }
            }
            r0 = r1
        }
    }

    /// e^x for eight lanes and x ≤ 88 (Cephes-style polynomial, ~1 ulp). Results below 2⁻¹²⁶
    /// flush to exactly 0 (x = -88 gives exponent bits 0), so masked (-inf) scores get zero
    /// weight. One mask, used once: reused SIMD masks compile lane by lane.
    @inline(__always)
    static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -88)
        let xc = x.replacing(with: lo, where: x .< lo)
        // Round x·log2(e) to the nearest integer with the 1.5·2²³ trick.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let shifted = xc * 1.442_695_04 + magic
        let n = shifted - magic
        var r = xc.addingProduct(n, SIMD8(repeating: -0.693_359_375))
        r = r.addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8(repeating: 1.398_199_95e-3).addingProduct(SIMD8(repeating: 1.987_569_15e-4), r)
        p = SIMD8(repeating: 8.333_451_9e-3).addingProduct(p, r)
        p = SIMD8(repeating: 4.166_579_6e-2).addingProduct(p, r)
        p = SIMD8(repeating: 1.666_666_55e-1).addingProduct(p, r)
        p = SIMD8(repeating: 5.000_000_1e-1).addingProduct(p, r)
        let r2 = r * r
        let y = (r + 1).addingProduct(p, r2)
        let bits = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let pow2 = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * pow2
    }
}

extension Tensor {
    /// Kernel choice for attention: BLAS per head sequentially, or SIMD kernels in a parallel
    /// loop over (batch, kv head); `auto` picks by size. Tests force each path.
    enum AttentionBackend { case auto, blas, simd }
    nonisolated(unsafe) static var attentionBackend: AttentionBackend = {
        switch ProcessInfo.processInfo.environment["UNILIP_ATTENTION_BACKEND"] {
        case "blas": return .blas
        case "simd": return .simd
        default: return .auto
        }
    }()

    /// Query rows per block for the SIMD kernels.
    static let attentionBlock = 64
    /// Score-block budget (floats) for the BLAS path: its blocks take as many query rows as fit
    /// (at least `attentionBlock`, at most 512), so each GEMM is big enough for OpenBLAS's
    /// threads while the block stays in L2. Settable for tests.
    nonisolated(unsafe) static var attentionBLASScoreFloats = 1 << 18

    /// Softmax attention, equal to `torch.nn.functional.scaled_dot_product_attention`.
    ///
    /// - q: [B, H, Lq, D]; k: [B, Hkv, Lk, D]; v: [B, Hkv, Lk, Dv], with H a multiple of Hkv
    ///   (grouped-query attention: query head h reads key/value head h / (H / Hkv), as
    ///   transformers' `repeat_kv`).
    /// - mask: additive, broadcastable to [B, H, Lq, Lk] (may hold -inf); takes a gradient.
    /// - causal: query i sees keys j ≤ i + (Lk − Lq), i.e. aligned bottom-right so the last
    ///   query sees every key (KV-cache decoding, as transformers). With Lq == Lk this is
    ///   torch's `is_causal`; torch aligns top-left when Lq ≠ Lk.
    /// - keyPadding: [B, Lk], 1 = keep, 0 = padded key.
    /// - scale: defaults to 1/√D.
    ///
    /// A query row whose keys are all masked gives a zero output and zero gradients (torch's
    /// SDPA gives NaN there).
    ///
    /// Work runs in blocks of 64 query rows; scores never exist beyond one block × Lk per
    /// worker, and backward recomputes them from the saved per-row log-sum-exp. Only a mask
    /// that requires a gradient costs a full [B, H, Lq, Lk] buffer (its gradient).
    /// - skipPaddedQueries: with keyPadding and Lq == Lk, query rows after a batch row's last
    ///   real token are not computed: zero output and no gradient. For callers that drop those
    ///   rows (packed batches).
    public static func scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor? = nil,
                                                 causal: Bool = false, keyPadding: Tensor? = nil,
                                                 scale: Float? = nil, skipPaddedQueries: Bool = false) -> Tensor {
        precondition(q.rank == 4 && k.rank == 4 && v.rank == 4,
                     "attention: q, k, v must be [B, H, L, D]: \(q.shape), \(k.shape), \(v.shape)")
        let b = q.shape[0], h = q.shape[1], lq = q.shape[2], d = q.shape[3]
        let hkv = k.shape[1], lk = k.shape[2], dv = v.shape[3]
        precondition(k.shape[0] == b && v.shape[0] == b, "attention: batch sizes differ")
        precondition(k.shape[3] == d, "attention: key dim \(k.shape[3]) vs query dim \(d)")
        precondition(v.shape[1] == hkv && v.shape[2] == lk, "attention: key \(k.shape) and value \(v.shape) differ")
        precondition(hkv > 0 && h % hkv == 0, "attention: \(h) query heads not a multiple of \(hkv) key heads")
        var geo = AttentionGeometry(b: b, h: h, hkv: hkv, lq: lq, lk: lk, d: d, dv: dv,
                                    scale: scale ?? 1 / Float(d).squareRoot(), causal: causal,
                                    mask: mask, keyPadding: keyPadding)
        if skipPaddedQueries { geo.skipPaddedQueries() }
        return run(geo, sources: [q, k, v], q: (0, 0), k: (1, 0), v: (2, 0), mask: mask,
                   name: "scaled_dot_product_attention")
    }

    /// Self-attention over a fused projection [B, 3, H, L, D] (q, k, v stacked on axis 1, as
    /// `qkv(x).reshaped([B, L, 3, H, D]).permuted([0, 2, 3, 1, 4])`); output [B, H, L, D].
    /// Equal to slicing q, k, v out and calling `scaledDotProductAttention(q:k:v:…)`, without
    /// the slices' copies or the three full-size gradients they send back.
    public static func scaledDotProductAttention(qkv: Tensor, mask: Tensor? = nil, causal: Bool = false,
                                                 keyPadding: Tensor? = nil, scale: Float? = nil,
                                                 skipPaddedQueries: Bool = false) -> Tensor {
        precondition(qkv.rank == 5 && qkv.shape[1] == 3, "attention: fused qkv must be [B, 3, H, L, D], got \(qkv.shape)")
        let b = qkv.shape[0], h = qkv.shape[2], l = qkv.shape[3], d = qkv.shape[4]
        let plane = h * l * d
        var geo = AttentionGeometry(b: b, h: h, hkv: h, lq: l, lk: l, d: d, dv: d,
                                    scale: scale ?? 1 / Float(d).squareRoot(), causal: causal,
                                    mask: mask, keyPadding: keyPadding)
        (geo.qBatch, geo.kBatch, geo.vBatch) = (3 * plane, 3 * plane, 3 * plane)
        if skipPaddedQueries { geo.skipPaddedQueries() }
        return run(geo, sources: [qkv], q: (0, 0), k: (0, plane), v: (0, 2 * plane), mask: mask,
                   name: "scaled_dot_product_attention_qkv")
    }

    /// Forward of `geo` with q, k and v read at (source index, float offset) inside `sources`,
    /// recording one gradient function for the sources (and the mask): each source that needs a
    /// gradient gets one zeroed tensor, q, k and v's gradients landing at the same offsets.
    private static func run(_ geo: AttentionGeometry, sources: [Tensor], q: (Int, Int), k: (Int, Int),
                            v: (Int, Int), mask: Tensor?, name: String) -> Tensor {
        let out = Tensor(uninitialized: [geo.b, geo.h, geo.lq, geo.dv])
        let lse = Tensor(uninitialized: [geo.b, geo.h, geo.lq])
        func at(_ tensors: [Tensor], _ place: (Int, Int)) -> UnsafeMutablePointer<Float> { tensors[place.0].pointer + place.1 }
        geo.forward(q: at(sources, q), k: at(sources, k), v: at(sources, v), out: out.pointer, lse: lse.pointer)

        let inputs = sources + (mask.map { [$0] } ?? [])
        let saved = sources.map { $0.detached() }, dout = out.detached()
        let needs = inputs.map(\.requiresGrad)
        return out.recording(name, inputs) { g in
            let grads = saved.indices.map { needs[$0] ? Tensor(zeros: saved[$0].shape) : nil }
            func gradAt(_ place: (Int, Int)) -> UnsafeMutablePointer<Float>? { grads[place.0].map { $0.pointer + place.1 } }
            let gmask = mask != nil && needs[sources.count] ? Tensor(uninitialized: [geo.b, geo.h, geo.lq, geo.lk]) : nil
            geo.backward(q: at(saved, q), k: at(saved, k), v: at(saved, v), out: dout.pointer, lse: lse.pointer,
                         gOut: g.pointer, gq: gradAt(q), gk: gradAt(k), gv: gradAt(v), gMask: gmask?.pointer)
            guard let mask = geo.mask else { return grads }
            return grads + [gmask?.sumTo(mask.shape)]
        }
    }
}

/// Sizes and masking of one attention call, with the blocked forward and backward kernels.
struct AttentionGeometry {
    let b, h, hkv, lq, lk, d, dv: Int
    let scale: Float
    let causal: Bool
    let mask: Tensor?
    let maskStrides: [Int]

    /// Floats from one batch row of q, k, v to the next: contiguous [B, H, L, D] tensors by
    /// default; three times that for a fused [B, 3, H, L, D] projection.
    var qBatch, kBatch, vBatch: Int
    /// Per batch row: 0 for real keys, -inf for padded ones (added to each score row).
    let paddingBias: [Float]?
    /// Per batch row: how many leading query rows to compute; the rest get zero output and no
    /// gradient (`skipPaddedQueries`). nil computes all.
    var queryRows: [Int]?

    /// Checks the masks' shapes and keeps detached copies.
    init(b: Int, h: Int, hkv: Int, lq: Int, lk: Int, d: Int, dv: Int, scale: Float, causal: Bool,
         mask: Tensor?, keyPadding: Tensor?) {
        if let mask {
            precondition(mask.rank <= 4, "attention: mask rank \(mask.rank) > 4")
            precondition(Shape.broadcast(mask.shape, [b, h, lq, lk]) == [b, h, lq, lk],
                         "attention: mask \(mask.shape) does not broadcast to \([b, h, lq, lk])")
        }
        if let keyPadding {
            precondition(keyPadding.shape == [b, lk], "attention: keyPadding \(keyPadding.shape) must be \([b, lk])")
        }
        self.b = b; self.h = h; self.hkv = hkv; self.lq = lq; self.lk = lk; self.d = d; self.dv = dv
        self.scale = scale; self.causal = causal
        self.mask = mask?.detached()
        maskStrides = mask.map { Shape.broadcastStrides($0.shape, to: [b, h, lq, lk]) } ?? [0, 0, 0, 0]
        qBatch = h * lq * d; kBatch = hkv * lk * d; vBatch = hkv * lk * dv
        paddingBias = keyPadding.map { p in (0..<(b * lk)).map { p.pointer[$0] == 0 ? -Float.infinity : 0 } }
    }

    /// Limits each batch row's queries to those up to its last real key (self-attention whose
    /// caller drops padded rows).
    mutating func skipPaddedQueries() {
        guard let paddingBias, lq == lk else { return }
        queryRows = (0..<b).map { r in
            var last = lk
            while last > 0 && paddingBias[r * lk + last - 1] != 0 { last -= 1 }
            return last
        }
    }

    var groups: Int { b * hkv }
    /// Leading dimension of key-length buffers: padded so rows are not a multiple of 1 KiB
    /// apart (such strides alias in L1 and stall the column-wise GEMM walks).
    var ld: Int {
        let r = (lk + 15) / 16 * 16
        return r % 256 == 0 ? r + 16 : r
    }
    var rep: Int { h / hkv }

    /// Query rows per block.
    func block(blas: Bool) -> Int {
        var rows = Tensor.attentionBlock
        if blas { rows = Swift.max(rows, Swift.min(512, Tensor.attentionBLASScoreFloats / ld)) }
        return Swift.min(rows, Swift.max(lq, 1))
    }

    /// Per-head SIMD kernels in a parallel loop over (batch, kv head) when there are enough
    /// heads to share out and each is small; otherwise BLAS per head, sequentially.
    var useBLAS: Bool {
        switch Tensor.attentionBackend {
        case .blas: return true
        case .simd: return false
        case .auto:
            let threads = Parallel.threads
            if threads == 1 { return lk * d >= 1 << 20 }
            return groups < threads || lk * Swift.max(d, dv) > 1 << 20
        }
    }

    /// Runs `body(group, blas, scratch)` for every group, either sequentially with BLAS or in a
    /// parallel loop with the SIMD kernels. Scratch holds `floats` floats per worker.
    func forEachGroup(floats: Int, _ body: (Int, Bool, UnsafeMutablePointer<Float>) -> Void) {
        if useBLAS {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: floats)
            defer { scratch.deallocate() }
            for g in 0..<groups { body(g, true, scratch) }
        } else {
            Parallel.forRange(groups) { r in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: floats)
                defer { scratch.deallocate() }
                for g in r { body(g, false, scratch) }
            }
        }
    }

    /// Row loop over a block: parallel when the groups run sequentially (BLAS mode).
    @inline(__always)
    func rows(_ count: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
        if parallel { Parallel.forRange(count, grain: 4, body) } else { body(0..<count) }
    }

    /// Adds the mask and sets disallowed scores to -inf for block row `i` (global query index).
    @inline(__always)
    func applyMask(_ s: UnsafeMutablePointer<Float>, batch: Int, head: Int, i: Int) {
        if let mask {
            let mp = mask.pointer + batch * maskStrides[0] + head * maskStrides[1] + i * maskStrides[2]
            if maskStrides[3] == 1 {
                for j in 0..<lk { s[j] += mp[j] }
            } else {
                let m = mp[0]
                for j in 0..<lk { s[j] += m }
            }
        }
        if let paddingBias, lk > 0 {
            paddingBias.withUnsafeBufferPointer { SIMDLoops.add($0.baseAddress! + batch * lk, s, lk) }
        }
        if causal {
            let first = Swift.max(0, i + (lk - lq) + 1)
            if first < lk { (s + first).update(repeating: -.infinity, count: lk - first) }
        }
    }

    /// In-place exp(s − max) of one row; returns its log-sum-exp and 1/Σ (+inf and 0 for a fully
    /// masked row, whose weights become 0). The caller scales the output row by 1/Σ.
    @inline(__always)
    func softmaxRow(_ s: UnsafeMutablePointer<Float>) -> (lse: Float, inv: Float) {
        if HeadKernels.useAVX512 {
            let m = unilip_max_avx512(s, lk)
            if m == -.infinity || m.isNaN {
                s.update(repeating: 0, count: lk)
                return (.infinity, 0)
            }
            let sum = unilip_exp_shift_avx512(s, lk, m)
            return (m + Foundation.log(sum), 1 / sum)
        }
        var j = 0
        var mv = SIMD8<Float>(repeating: -.infinity)
        while j + 8 <= lk {
            let x = HeadKernels.load8(s + j)
            mv.replace(with: x, where: mv .< x)
            j += 8
        }
        var m = mv.max()
        while j < lk { m = Swift.max(m, s[j]); j += 1 }
        if m == -.infinity || m.isNaN {
            for j in 0..<lk { s[j] = 0 }
            return (.infinity, 0)
        }
        let mvec = SIMD8<Float>(repeating: m)
        var sv = SIMD8<Float>()
        j = 0
        while j + 8 <= lk {
            let e = HeadKernels.exp8(HeadKernels.load8(s + j) - mvec)
            HeadKernels.store8(e, s + j)
            sv += e
            j += 8
        }
        var sum = sv.sum()
        while j < lk { let e = Foundation.exp(s[j] - m); s[j] = e; sum += e; j += 1 }
        return (m + Foundation.log(sum), 1 / sum)
    }

    /// p = exp(s − lse) in place (0 where s = -inf or the row is fully masked).
    @inline(__always)
    func probabilitiesRow(_ s: UnsafeMutablePointer<Float>, lse: Float) {
        if lse == .infinity {
            for j in 0..<lk { s[j] = 0 }
            return
        }
        if HeadKernels.useAVX512 {
            _ = unilip_exp_shift_avx512(s, lk, lse)
            return
        }
        let l = SIMD8<Float>(repeating: lse)
        var j = 0
        while j + 8 <= lk { HeadKernels.store8(HeadKernels.exp8(HeadKernels.load8(s + j) - l), s + j); j += 8 }
        while j < lk { s[j] = Foundation.exp(s[j] - lse); j += 1 }
    }

    func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                 out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        let blk = block(blas: useBLAS)
        let ld = self.ld
        forEachGroup(floats: d * ld + blk * ld + blk) { g, blas, scratch in
            let batch = g / hkv, kvh = g % hkv
            let kh = k + batch * kBatch + kvh * lk * d, vh = v + batch * vBatch + kvh * lk * dv
            let kt = scratch, s = scratch + d * ld, inv = s + blk * ld
            HeadKernels.transpose(kh, rows: lk, cols: d, kt, ld: ld)
            for head in (kvh * rep)..<((kvh + 1) * rep) {
                let qh = q + batch * qBatch + head * lq * d
                let oh = out + (batch * h + head) * lq * dv
                let lh = lse + (batch * h + head) * lq
                let end = queryRows?[batch] ?? lq
                if end < lq {
                    (oh + end * dv).update(repeating: 0, count: (lq - end) * dv)
                    (lh + end).update(repeating: .infinity, count: lq - end)
                }
                var i0 = 0
                while i0 < end {
                    let n = Swift.min(blk, end - i0)
                    HeadKernels.mm(blas: blas, transA: false, m: n, n: lk, k: d, alpha: scale,
                                   a: qh + i0 * d, lda: d, b: kt, ldb: ld, beta: 0, c: s, ldc: ld)
                    rows(n, parallel: blas) { r in
                        for i in r {
                            let row = s + i * ld
                            applyMask(row, batch: batch, head: head, i: i0 + i)
                            (lh[i0 + i], inv[i]) = softmaxRow(row)
                        }
                    }
                    if lk == 0 {
                        for x in 0..<(n * dv) { oh[i0 * dv + x] = 0 }
                    } else {
                        HeadKernels.mm(blas: blas, transA: false, m: n, n: dv, k: lk, alpha: 1,
                                       a: s, lda: ld, b: vh, ldb: dv, beta: 0, c: oh + i0 * dv, ldc: dv)
                        for i in 0..<n {
                            let o = oh + (i0 + i) * dv, f = inv[i]
                            for c in 0..<dv { o[c] *= f }
                        }
                    }
                    i0 += n
                }
            }
        }
    }

    func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                  out: UnsafePointer<Float>, lse: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                  gq: UnsafeMutablePointer<Float>?, gk: UnsafeMutablePointer<Float>?,
                  gv: UnsafeMutablePointer<Float>?, gMask: UnsafeMutablePointer<Float>?) {
        let needScores = gq != nil || gk != nil || gMask != nil
        let blk = block(blas: useBLAS)
        // Scratch: Kᵀ, Vᵀ, P block, dP block, row dots.
        let ld = self.ld
        forEachGroup(floats: d * ld + dv * ld + 2 * blk * ld + blk) { g, blas, scratch in
            let batch = g / hkv, kvh = g % hkv
            let kOffset = batch * kBatch + kvh * lk * d, vOffset = batch * vBatch + kvh * lk * dv
            let kh = k + kOffset, vh = v + vOffset
            let kt = scratch, vt = scratch + d * ld
            let p = vt + dv * ld, dp = p + blk * ld, delta = dp + blk * ld
            HeadKernels.transpose(kh, rows: lk, cols: d, kt, ld: ld)
            HeadKernels.transpose(vh, rows: lk, cols: dv, vt, ld: ld)
            for head in (kvh * rep)..<((kvh + 1) * rep) {
                let base = batch * h + head, qOffset = batch * qBatch + head * lq * d
                let qh = q + qOffset, oh = out + base * lq * dv, goh = gOut + base * lq * dv
                let lh = lse + base * lq
                let end = queryRows?[batch] ?? lq
                var i0 = 0
                while i0 < end {
                    let n = Swift.min(blk, end - i0)
                    let qb = qh + i0 * d, gob = goh + i0 * dv
                    HeadKernels.mm(blas: blas, transA: false, m: n, n: lk, k: d, alpha: scale,
                                   a: qb, lda: d, b: kt, ldb: ld, beta: 0, c: p, ldc: ld)
                    rows(n, parallel: blas) { r in
                        for i in r {
                            let row = p + i * ld
                            applyMask(row, batch: batch, head: head, i: i0 + i)
                            probabilitiesRow(row, lse: lh[i0 + i])
                            var dot: Float = 0
                            let o = oh + (i0 + i) * dv, go = gob + i * dv
                            for c in 0..<dv { dot += o[c] * go[c] }
                            delta[i] = dot
                        }
                    }
                    if let gv {
                        HeadKernels.mm(blas: blas, transA: true, m: lk, n: dv, k: n, alpha: 1,
                                       a: p, lda: ld, b: gob, ldb: dv, beta: 1, c: gv + vOffset, ldc: dv)
                    }
                    if needScores {
                        HeadKernels.mm(blas: blas, transA: false, m: n, n: lk, k: dv, alpha: 1,
                                       a: gob, lda: dv, b: vt, ldb: ld, beta: 0, c: dp, ldc: ld)
                        rows(n, parallel: blas) { r in
                            for i in r {
                                let pr = p + i * ld, dr = dp + i * ld
                                let di = delta[i]
                                for j in 0..<lk { dr[j] = pr[j] * (dr[j] - di) }
                                if let gMask {
                                    (gMask + (base * lq + i0 + i) * lk).update(from: dr, count: lk)
                                }
                            }
                        }
                        if let gq {
                            HeadKernels.mm(blas: blas, transA: false, m: n, n: d, k: lk, alpha: scale,
                                           a: dp, lda: ld, b: kh, ldb: d, beta: 0, c: gq + qOffset + i0 * d, ldc: d)
                        }
                        if let gk {
                            HeadKernels.mm(blas: blas, transA: true, m: lk, n: d, k: n, alpha: scale,
                                           a: dp, lda: ld, b: qb, ldb: d, beta: 1, c: gk + kOffset, ldc: d)
                        }
                    }
                    i0 += n
                }
            }
        }
    }
}
