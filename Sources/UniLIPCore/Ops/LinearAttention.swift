import Foundation

// ReLU linear attention (SANA). Both diffusers references reduce to the same math:
//   - SanaLinearAttnProcessor2_0 (SanaTransformer2DModel): q, v as [B, H, D, N], k as
//     [B, H, N, D]; relu(q), relu(k); v padded with a row of ones to [B, H, D+1, N];
//     (v_pad · k) · q, then rows [:-1] divided by row [-1] + 1e-15, in float32.
//   - SanaMultiscaleLinearAttention.apply_linear_attention (DC-AE): q, k, v all [B, H, D, N]
//     after ReLU on q and k; (v_pad · kᵀ) · q, divided the same way with eps = 1e-15.
// The padded row of ones yields the denominator Σ_m k_m · q_n, so per token n:
//   out_n = (Σ_m v_m k_mᵀ) q_n / (Σ_m k_m · q_n + eps).
// DC-AE's quadratic branch (small maps) is the same quantity computed through the N×N matrix.

extension Tensor {
    /// SANA ReLU linear attention. q, k: [B, H, N, D]; v: [B, H, N, Dv] (already projected,
    /// token-major: transpose the references' [B, H, D, N] layout). ReLU is applied to q and
    /// k inside. Returns [B, H, N, Dv]:
    /// out[b,h,n,:] = (Σ_m v_m relu(k_m)ᵀ) relu(q_n) / (Σ_m relu(k_m) · relu(q_n) + eps).
    /// eps = 1e-15 matches both diffusers references; computed in float32.
    public static func reluLinearAttention(q: Tensor, k: Tensor, v: Tensor, eps: Float = 1e-15) -> Tensor {
        precondition(q.rank == 4 && k.rank == 4 && v.rank == 4,
                     "reluLinearAttention: q, k, v must be [B, H, N, D]: \(q.shape), \(k.shape), \(v.shape)")
        precondition(k.shape == q.shape, "reluLinearAttention: k \(k.shape) vs q \(q.shape)")
        precondition(Array(v.shape.prefix(3)) == Array(q.shape.prefix(3)),
                     "reluLinearAttention: v \(v.shape) vs q \(q.shape)")
        let bh = q.shape[0] * q.shape[1], n = q.shape[2], d = q.shape[3], dv = v.shape[3]
        let qr = Tensor(uninitialized: q.shape), kr = Tensor(uninitialized: k.shape)
        Kernels.map(q.pointer, qr.pointer, q.count) { Swift.max($0, 0) }
        Kernels.map(k.pointer, kr.pointer, k.count) { Swift.max($0, 0) }
        let out = Tensor(uninitialized: [q.shape[0], q.shape[1], n, dv])
        let den = Tensor(uninitialized: [bh, n])
        let qp = qr.pointer, kp = kr.pointer, vp = v.pointer, op = out.pointer, dp = den.pointer
        Parallel.forRange(bh) { r in
            // Scratch: kv [D, Dv] and ksum [D].
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: d * dv + d)
            defer { scratch.deallocate() }
            let kv = scratch, ksum = scratch + d * dv
            for g in r {
                let qh = qp + g * n * d, kh = kp + g * n * d, vh = vp + g * n * dv, oh = op + g * n * dv
                // kv = relu(k)ᵀ v, ksum = Σ_m relu(k_m).
                HeadKernels.gemm(m: d, n: dv, k: n, alpha: 1, a: kh, ars: 1, acs: d, b: vh, ldb: dv,
                                 beta: 0, c: kv, ldc: dv)
                for c in 0..<d { ksum[c] = 0 }
                for m in 0..<n { let row = kh + m * d; for c in 0..<d { ksum[c] += row[c] } }
                HeadKernels.gemm(m: n, n: dv, k: d, alpha: 1, a: qh, ars: d, acs: 1, b: kv, ldb: dv,
                                 beta: 0, c: oh, ldc: dv)
                for t in 0..<n {
                    let qrow = qh + t * d
                    var s: Float = 0
                    for c in 0..<d { s += qrow[c] * ksum[c] }
                    s += eps
                    dp[g * n + t] = s
                    let inv = 1 / s
                    let orow = oh + t * dv
                    for c in 0..<dv { orow[c] *= inv }
                }
            }
        }

        let dq = q.detached(), dk = k.detached(), dvv = v.detached(), dout = out.detached()
        return out.recording("relu_linear_attention", [q, k, v]) { g in
            let gq = Tensor(uninitialized: dq.shape), gk = Tensor(uninitialized: dk.shape)
            let gv = Tensor(uninitialized: dvv.shape)
            let gp = g.pointer, gqp = gq.pointer, gkp = gk.pointer, gvp = gv.pointer
            let oP = dout.pointer, rq = dq.pointer, rk = dk.pointer
            let qp = qr.pointer, kp = kr.pointer, vp = dvv.pointer, dp = den.pointer
            Parallel.forRange(bh) { r in
                // Scratch: kv [D, Dv], kvᵀ [Dv, D], ksum [D], gnum [N, Dv], gden [N],
                // gkv [D, Dv], gkvᵀ [Dv, D], gksum [D].
                let size = 2 * d * dv + d + n * dv + n + 2 * d * dv + d
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: size)
                defer { scratch.deallocate() }
                let kv = scratch, kvT = kv + d * dv, ksum = kvT + d * dv, gnum = ksum + d
                let gden = gnum + n * dv, gkv = gden + n, gkvT = gkv + d * dv, gksum = gkvT + d * dv
                for h in r {
                    let qh = qp + h * n * d, kh = kp + h * n * d, vh = vp + h * n * dv
                    let gh = gp + h * n * dv, oh = oP + h * n * dv
                    HeadKernels.gemm(m: d, n: dv, k: n, alpha: 1, a: kh, ars: 1, acs: d, b: vh, ldb: dv,
                                     beta: 0, c: kv, ldc: dv)
                    HeadKernels.transpose(kv, rows: d, cols: dv, kvT)
                    for c in 0..<d { ksum[c] = 0; gksum[c] = 0 }
                    for m in 0..<n { let row = kh + m * d; for c in 0..<d { ksum[c] += row[c] } }
                    // gnum = g / den; gden = −(g · out) / den.
                    for t in 0..<n {
                        let inv = 1 / dp[h * n + t]
                        let grow = gh + t * dv, orow = oh + t * dv, gn = gnum + t * dv
                        var dot: Float = 0
                        for c in 0..<dv { gn[c] = grow[c] * inv; dot += grow[c] * orow[c] }
                        gden[t] = -dot * inv
                        let qrow = qh + t * d
                        for c in 0..<d { gksum[c] += gden[t] * qrow[c] }
                    }
                    // d relu(q) = gnum · kvᵀ + gden ⊗ ksum, then the ReLU mask.
                    let gqh = gqp + h * n * d
                    HeadKernels.gemm(m: n, n: d, k: dv, alpha: 1, a: gnum, ars: dv, acs: 1, b: kvT, ldb: d,
                                     beta: 0, c: gqh, ldc: d)
                    let rqh = rq + h * n * d
                    for t in 0..<n {
                        let row = gqh + t * d, x = rqh + t * d
                        let gd = gden[t]
                        for c in 0..<d { row[c] = x[c] > 0 ? row[c] + gd * ksum[c] : 0 }
                    }
                    // gkv = relu(q)ᵀ gnum; gv = relu(k) gkv; d relu(k) = v gkvᵀ + gksum.
                    HeadKernels.gemm(m: d, n: dv, k: n, alpha: 1, a: qh, ars: 1, acs: d, b: gnum, ldb: dv,
                                     beta: 0, c: gkv, ldc: dv)
                    HeadKernels.transpose(gkv, rows: d, cols: dv, gkvT)
                    HeadKernels.gemm(m: n, n: dv, k: d, alpha: 1, a: kh, ars: d, acs: 1, b: gkv, ldb: dv,
                                     beta: 0, c: gvp + h * n * dv, ldc: dv)
                    let gkh = gkp + h * n * d
                    HeadKernels.gemm(m: n, n: d, k: dv, alpha: 1, a: vh, ars: dv, acs: 1, b: gkvT, ldb: d,
                                     beta: 0, c: gkh, ldc: d)
                    let rkh = rk + h * n * d
                    for t in 0..<n {
                        let row = gkh + t * d, x = rkh + t * d
                        for c in 0..<d { row[c] = x[c] > 0 ? row[c] + gksum[c] : 0 }
                    }
                }
            }
            return [gq, gk, gv]
        }
    }
}
