import Foundation
import UniLIPCore

/// Image-quality metrics on images with values in [0, 1] (data range 1), given as [N, C, H, W]
/// or [C, H, W] tensors. Values only: no graph is recorded.
///
/// Identical inputs give PSNR = +∞ and SSIM = 1; the batch means below are then +∞ and 1 too.
public enum ImageMetrics {
    /// PSNR of each image: 10·log10(1 / MSE), MSE over all channels and pixels. +∞ when equal.
    public static func psnrPerImage(_ a: Tensor, _ b: Tensor) -> [Float] {
        let (n, c, h, w) = dims(a, b, "psnr")
        let per = c * h * w
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let pa = a.pointer + i * per, pb = b.pointer + i * per
            var sum = 0.0
            var j = 0
            // Float partial sums in blocks keep the loop vectorised; blocks add up in Double.
            while j < per {
                let end = min(per, j + 4096)
                var s: Float = 0
                for k in j..<end { let d = pa[k] - pb[k]; s += d * d }
                sum += Double(s)
                j = end
            }
            let mse = sum / Double(per)
            out[i] = mse == 0 ? .infinity : Float(10 * log10(1 / mse))
        }
        return out
    }

    /// Mean PSNR over the batch (a single value for [C, H, W]).
    public static func psnr(_ a: Tensor, _ b: Tensor) -> Float {
        let v = psnrPerImage(a, b)
        return v.reduce(0, +) / Float(v.count)
    }

    /// Gaussian window of SSIM: σ = 1.5, radius 5 (11 taps), as in Wang et al. 2004.
    public static let ssimSigma: Double = 1.5
    public static let ssimRadius = 5

    /// SSIM of each image, the mean over channels of each channel's mean SSIM map over the valid
    /// region (pixels at least 5 from every edge), with an 11-tap Gaussian window (σ 1.5),
    /// K1 = 0.01, K2 = 0.03, data range 1 and population covariances. This equals
    /// `skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=1, channel_axis=0)`. Needs H, W ≥ 11.
    public static func ssimPerImage(_ a: Tensor, _ b: Tensor) -> [Float] {
        let (n, c, h, w) = dims(a, b, "ssim")
        let win = 2 * ssimRadius + 1
        precondition(h >= win && w >= win, "ssim needs images of at least \(win)×\(win), got \(h)×\(w)")
        var weights = (0..<win).map { k -> Double in
            let x = Double(k - ssimRadius)
            return exp(-0.5 * x * x / (ssimSigma * ssimSigma))
        }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        // Tasks are (plane, block of output rows), so that a single image still uses every thread;
        // each block refilters the 10 rows it shares with the next one.
        let planes = n * c, ho = h - win + 1, wo = w - win + 1
        let blocksPerPlane = min(max(1, (2 * Parallel.threads + planes - 1) / planes), max(1, ho / 16))
        let rowsPerBlock = (ho + blocksPerPlane - 1) / blocksPerPlane
        var sums = [Double](repeating: 0, count: planes * blocksPerPlane)
        let pa = a.pointer, pb = b.pointer
        sums.withUnsafeMutableBufferPointer { sums in
            let sums = sums
            Parallel.forRange(planes * blocksPerPlane, grain: 1) { range in
                for task in range {
                    let p = task / blocksPerPlane, blk = task % blocksPerPlane
                    let r0 = blk * rowsPerBlock, r1 = min(ho, r0 + rowsPerBlock)
                    if r0 < r1 {
                        sums[task] = ssimRows(pa + p * h * w, pb + p * h * w, w: w, rows: r0..<r1, weights: weights)
                    }
                }
            }
        }
        return (0..<n).map { i in
            let lo = i * c * blocksPerPlane, hi = (i + 1) * c * blocksPerPlane
            return Float(sums[lo..<hi].reduce(0, +) / Double(c * ho * wo))
        }
    }

    /// Mean SSIM over the batch (a single value for [C, H, W]).
    public static func ssim(_ a: Tensor, _ b: Tensor) -> Float {
        let v = ssimPerImage(a, b)
        return v.reduce(0, +) / Float(v.count)
    }

    /// Sum of the SSIM map over output rows `rows` of one plane (output row r is centred on
    /// input row r + 5). Only the valid region is filtered, so no padding is needed. Moments are
    /// kept in Double: the variances E[x²] − E[x]² cancel badly in Float on flat regions, where
    /// they are compared with C2 = 9e-4.
    static func ssimRows(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, w: Int, rows: Range<Int>,
                         weights: [Double]) -> Double {
        typealias V = SIMD4<Double>
        let taps = weights.count
        let wo = w - taps + 1
        let nv = (wo + 3) / 4              // vectors per row
        let inRows = rows.count + taps - 1
        let padded = nv * 4 + taps - 1     // input row length in Double, zero beyond w
        // Horizontal pass: five moments (x, y, x², y², xy) per input row, as vectors.
        let moments = UnsafeMutablePointer<V>.allocate(capacity: 5 * inRows * nv)
        defer { moments.deallocate() }
        let line = UnsafeMutablePointer<Double>.allocate(capacity: 2 * padded)
        defer { line.deallocate() }
        line.initialize(repeating: 0, count: 2 * padded)
        let xd = UnsafeRawPointer(line), yd = UnsafeRawPointer(line + padded)
        weights.withUnsafeBufferPointer { wt in
            for i in 0..<inRows {
                let r = rows.lowerBound + i
                for j in 0..<w { line[j] = Double(x[r * w + j]); line[padded + j] = Double(y[r * w + j]) }
                let o = 5 * i * nv
                for v in 0..<nv {
                    var sx = V(), sy = V(), sxx = V(), syy = V(), sxy = V()
                    for k in 0..<taps {
                        let wk = V(repeating: wt[k])
                        let xv = xd.loadUnaligned(fromByteOffset: (4 * v + k) * 8, as: V.self)
                        let yv = yd.loadUnaligned(fromByteOffset: (4 * v + k) * 8, as: V.self)
                        let wx = wk * xv, wy = wk * yv
                        sx += wx; sy += wy
                        sxx += wx * xv; syy += wy * yv; sxy += wx * yv
                    }
                    moments[o + v] = sx
                    moments[o + nv + v] = sy
                    moments[o + 2 * nv + v] = sxx
                    moments[o + 3 * nv + v] = syy
                    moments[o + 4 * nv + v] = sxy
                }
            }
        }
        // Vertical pass and the SSIM map. Lanes past the last valid column are masked out.
        let c1 = V(repeating: 0.01 * 0.01), c2 = V(repeating: 0.03 * 0.03)
        var lastMask = V(repeating: 0)
        for lane in 0..<(wo - 4 * (nv - 1)) { lastMask[lane] = 1 }
        var total = V()
        weights.withUnsafeBufferPointer { wt in
            for i in 0..<rows.count {
                for v in 0..<nv {
                    var mx = V(), my = V(), exx = V(), eyy = V(), exy = V()
                    for k in 0..<taps {
                        let wk = V(repeating: wt[k])
                        let o = 5 * (i + k) * nv + v
                        mx += wk * moments[o]
                        my += wk * moments[o + nv]
                        exx += wk * moments[o + 2 * nv]
                        eyy += wk * moments[o + 3 * nv]
                        exy += wk * moments[o + 4 * nv]
                    }
                    let vx = exx - mx * mx, vy = eyy - my * my, vxy = exy - mx * my
                    let num = (2 * mx * my + c1) * (2 * vxy + c2)
                    let den = (mx * mx + my * my + c1) * (vx + vy + c2)
                    total += v == nv - 1 ? (num / den) * lastMask : num / den
                }
            }
        }
        return total.sum()
    }

    static func dims(_ a: Tensor, _ b: Tensor, _ name: String) -> (Int, Int, Int, Int) {
        precondition(a.shape == b.shape, "\(name): shapes differ, \(a.shape) vs \(b.shape)")
        precondition(a.rank == 3 || a.rank == 4, "\(name) needs [N, C, H, W] or [C, H, W], got \(a.shape)")
        precondition(a.count > 0, "\(name) of an empty tensor \(a.shape)")
        return a.rank == 4 ? (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
                           : (1, a.shape[0], a.shape[1], a.shape[2])
    }
}
