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
        let planes = n * c
        var planeMeans = [Double](repeating: 0, count: planes)
        planeMeans.withUnsafeMutableBufferPointer { means in
            let means = means
            Parallel.forRange(planes, grain: 1) { range in
                for p in range {
                    means[p] = ssimPlane(a.pointer + p * h * w, b.pointer + p * h * w, h: h, w: w, weights: weights)
                }
            }
        }
        return (0..<n).map { i in
            Float(planeMeans[(i * c)..<((i + 1) * c)].reduce(0, +) / Double(c))
        }
    }

    /// Mean SSIM over the batch (a single value for [C, H, W]).
    public static func ssim(_ a: Tensor, _ b: Tensor) -> Float {
        let v = ssimPerImage(a, b)
        return v.reduce(0, +) / Float(v.count)
    }

    /// Mean SSIM of one channel plane. Only the valid region is filtered, so no padding is
    /// needed. Moments are kept in Double: the variances E[x²] − E[x]² cancel badly in Float
    /// on flat regions, where they are compared with C2 = 9e-4.
    static func ssimPlane(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, h: Int, w: Int,
                          weights: [Double]) -> Double {
        let taps = weights.count
        let wo = w - taps + 1, ho = h - taps + 1
        // Horizontal pass: five moments (x, y, x², y², xy) per row over the valid columns.
        let rowBuf = UnsafeMutablePointer<Double>.allocate(capacity: 5 * h * wo)
        defer { rowBuf.deallocate() }
        rowBuf.initialize(repeating: 0, count: 5 * h * wo)
        let hx = rowBuf, hy = rowBuf + h * wo, hxx = rowBuf + 2 * h * wo
        let hyy = rowBuf + 3 * h * wo, hxy = rowBuf + 4 * h * wo
        let xd = UnsafeMutablePointer<Double>.allocate(capacity: 2 * w)
        defer { xd.deallocate() }
        let yd = xd + w
        weights.withUnsafeBufferPointer { wt in
            for r in 0..<h {
                for j in 0..<w { xd[j] = Double(x[r * w + j]); yd[j] = Double(y[r * w + j]) }
                let o = r * wo
                for k in 0..<taps {
                    let wk = wt[k]
                    for j in 0..<wo {
                        let xv = xd[j + k], yv = yd[j + k]
                        hx[o + j] += wk * xv
                        hy[o + j] += wk * yv
                        hxx[o + j] += wk * xv * xv
                        hyy[o + j] += wk * yv * yv
                        hxy[o + j] += wk * xv * yv
                    }
                }
            }
        }
        // Vertical pass, one output row at a time, then the SSIM map summed.
        let col = UnsafeMutablePointer<Double>.allocate(capacity: 5 * wo)
        defer { col.deallocate() }
        let ux = col, uy = col + wo, uxx = col + 2 * wo, uyy = col + 3 * wo, uxy = col + 4 * wo
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        var total = 0.0
        weights.withUnsafeBufferPointer { wt in
            for r in 0..<ho {
                col.update(repeating: 0, count: 5 * wo)
                for k in 0..<taps {
                    let wk = wt[k], o = (r + k) * wo
                    for j in 0..<wo {
                        ux[j] += wk * hx[o + j]
                        uy[j] += wk * hy[o + j]
                        uxx[j] += wk * hxx[o + j]
                        uyy[j] += wk * hyy[o + j]
                        uxy[j] += wk * hxy[o + j]
                    }
                }
                for j in 0..<wo {
                    let mx = ux[j], my = uy[j]
                    let vx = uxx[j] - mx * mx, vy = uyy[j] - my * my, vxy = uxy[j] - mx * my
                    let num = (2 * mx * my + c1) * (2 * vxy + c2)
                    let den = (mx * mx + my * my + c1) * (vx + vy + c2)
                    total += num / den
                }
            }
        }
        return total / Double(ho * wo)
    }

    static func dims(_ a: Tensor, _ b: Tensor, _ name: String) -> (Int, Int, Int, Int) {
        precondition(a.shape == b.shape, "\(name): shapes differ, \(a.shape) vs \(b.shape)")
        precondition(a.rank == 3 || a.rank == 4, "\(name) needs [N, C, H, W] or [C, H, W], got \(a.shape)")
        precondition(a.count > 0, "\(name) of an empty tensor \(a.shape)")
        return a.rank == 4 ? (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
                           : (1, a.shape[0], a.shape[1], a.shape[2])
    }
}
