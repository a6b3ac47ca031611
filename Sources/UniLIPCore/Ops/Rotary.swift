import Foundation

// Rotary position embedding in the Qwen2 / transformers form: the two halves of each head
// vector are rotated as a pair (`rotate_half`), not interleaved.

extension Tensor {
    /// cos and sin tables [L, D] as transformers' `Qwen2RotaryEmbedding` (default rope type):
    /// inv_freq[i] = 1 / theta^(2i / D), angle = position · inv_freq (float32), repeated for both
    /// halves (emb = cat(freqs, freqs)).
    public static func rotaryCosSin(positions: [Int], headDim: Int, theta: Float) -> (cos: Tensor, sin: Tensor) {
        precondition(headDim > 0 && headDim % 2 == 0, "rotaryCosSin: head dim \(headDim) must be even")
        let half = headDim / 2
        // Two float32 roundings (theta^e, then 1/x) reproduce torch's float32 inv_freq bit for
        // bit; angles are float32 products, so large positions see the same rounding.
        let invFreq: [Float] = (0..<half).map {
            1 / Float(Foundation.pow(Double(theta), Double(Float(2 * $0) / Float(headDim))))
        }
        let l = positions.count
        let c = Tensor(uninitialized: [l, headDim]), s = Tensor(uninitialized: [l, headDim])
        for (row, pos) in positions.enumerated() {
            let cp = c.pointer + row * headDim, sp = s.pointer + row * headDim
            for i in 0..<half {
                let angle = Double(Float(pos) * invFreq[i])
                let cv = Float(Foundation.cos(angle)), sv = Float(Foundation.sin(angle))
                cp[i] = cv; cp[i + half] = cv
                sp[i] = sv; sp[i + half] = sv
            }
        }
        return (c, s)
    }

    /// x · cos + rotate_half(x) · sin, with rotate_half(x) = cat(−x₂, x₁) over the last axis.
    /// self: [B, H, L, D]; cos, sin: [L, D] or [B, L, D] (broadcast over heads, as
    /// `apply_rotary_pos_emb` with unsqueeze_dim = 1). Gradients flow to self, cos and sin.
    public func applyingRotary(cos: Tensor, sin: Tensor) -> Tensor {
        precondition(rank == 4, "applyingRotary: input must be [B, H, L, D], got \(shape)")
        let b = shape[0], h = shape[1], l = shape[2], d = shape[3]
        precondition(d % 2 == 0, "applyingRotary: head dim \(d) must be even")
        precondition(cos.shape == sin.shape, "applyingRotary: cos \(cos.shape) vs sin \(sin.shape)")
        precondition(cos.shape == [l, d] || cos.shape == [b, l, d],
                     "applyingRotary: cos/sin must be [\(l), \(d)] or [\(b), \(l), \(d)], got \(cos.shape)")
        let perBatch = cos.rank == 3
        let half = d / 2
        let out = Tensor(uninitialized: shape)
        let x = pointer, o = out.pointer, cp = cos.pointer, sp = sin.pointer
        let rowsTotal = b * h * l
        Parallel.forRange(rowsTotal, grain: Swift.max(1, Kernels.grain / Swift.max(d, 1))) { r in
            for row in r {
                let pos = row % l, batch = row / (h * l)
                let t = (perBatch ? batch * l + pos : pos) * d
                let xr = x + row * d, orow = o + row * d, c = cp + t, s = sp + t
                for i in 0..<half {
                    let x1 = xr[i], x2 = xr[i + half]
                    orow[i] = x1 * c[i] - x2 * s[i]
                    orow[i + half] = x2 * c[i + half] + x1 * s[i + half]
                }
            }
        }
        let dx = detached(), dc = cos.detached(), ds = sin.detached()
        let inputs = [self, cos, sin]
        return out.recording("rotary", inputs) { g in
            let gp = g.pointer
            var gx: Tensor? = nil
            if inputs[0].requiresGrad {
                let t = Tensor(uninitialized: dx.shape)
                let gxp = t.pointer, cp = dc.pointer, sp = ds.pointer
                Parallel.forRange(rowsTotal, grain: Swift.max(1, Kernels.grain / Swift.max(d, 1))) { r in
                    for row in r {
                        let pos = row % l, batch = row / (h * l)
                        let off = (perBatch ? batch * l + pos : pos) * d
                        let gr = gp + row * d, xr = gxp + row * d, c = cp + off, s = sp + off
                        for i in 0..<half {
                            let g1 = gr[i], g2 = gr[i + half]
                            xr[i] = g1 * c[i] + g2 * s[i + half]
                            xr[i + half] = g2 * c[i + half] - g1 * s[i]
                        }
                    }
                }
                gx = t
            }
            var gc: Tensor? = nil, gs: Tensor? = nil
            if inputs[1].requiresGrad || inputs[2].requiresGrad {
                // d/dcos = g · x and d/dsin = g · rotate_half(x), summed over heads (and batch
                // for [L, D] tables). Accumulated per table row so threads never share a row.
                let tableRows = perBatch ? b * l : l
                let tc = Tensor(zeros: dc.shape), ts = Tensor(zeros: ds.shape)
                let tcp = tc.pointer, tsp = ts.pointer, xp = dx.pointer
                Parallel.forRange(tableRows, grain: 1) { r in
                    for tr in r {
                        let pos = tr % l
                        let batches = perBatch ? (tr / l)..<(tr / l + 1) : 0..<b
                        let c = tcp + tr * d, s = tsp + tr * d
                        for batch in batches {
                            for head in 0..<h {
                                let row = (batch * h + head) * l + pos
                                let gr = gp + row * d, xr = xp + row * d
                                for i in 0..<half {
                                    let x1 = xr[i], x2 = xr[i + half]
                                    c[i] += gr[i] * x1
                                    c[i + half] += gr[i + half] * x2
                                    s[i] -= gr[i] * x2
                                    s[i + half] += gr[i + half] * x1
                                }
                            }
                        }
                    }
                }
                gc = inputs[1].requiresGrad ? tc : nil
                gs = inputs[2].requiresGrad ? ts : nil
            }
            return [gx, gc, gs]
        }
    }
}
