import Foundation

// Resizing of NCHW images, as torch.nn.functional.interpolate (recompute_scale_factor unset).
//
// Every mode is separable: each axis becomes a table of (input index, weight) taps per output
// index, computed with PyTorch's float formulas, and the image is resampled along W, then H.
// The backward pass applies the transposed tables in reverse order.

public enum InterpolationMode: Sendable {
    case nearest, nearestExact, bilinear, bicubic
}

/// Taps of one axis: output o reads index[o·taps + t] with weight[o·taps + t].
struct ResampleAxis {
    let inSize: Int
    let outSize: Int
    let taps: Int
    let index: [Int]
    let weight: [Float]
    /// Output equals input along this axis; the pass is skipped.
    let identity: Bool

    init(inSize: Int, outSize: Int, mode: InterpolationMode, alignCorners: Bool, antialias: Bool,
         scale: Double?) {
        self.inSize = inSize
        self.outSize = outSize
        let fixedScale = ResampleAxis.areaScale(inSize, outSize, alignCorners, scale)
        var index: [Int] = []
        var weight: [Float] = []
        switch mode {
        case .nearest:
            taps = 1
            identity = inSize == outSize
            for o in 0..<outSize {
                let i: Int
                if outSize == inSize { i = o }
                else if outSize == 2 * inSize { i = o >> 1 }
                else { i = Swift.min(Int((fixedScale * Float(o)).rounded(.down)), inSize - 1) }
                index.append(i)
                weight.append(1)
            }
        case .nearestExact:
            taps = 1
            identity = inSize == outSize && (scale == nil || scale == 1)
            for o in 0..<outSize {
                let real = Swift.max(fixedScale * (Float(o) + 0.5) - 0.5, 0)
                let i = Swift.min(Int(Float(Double(real) + 0.5).rounded(.down)), inSize - 1)
                index.append(i)
                weight.append(1)
            }
        case .bilinear where !antialias:
            taps = 2
            identity = inSize == outSize
            for o in 0..<outSize {
                if inSize == outSize {
                    index += [o, o]
                    weight += [1, 0]
                    continue
                }
                let real = alignCorners ? fixedScale * Float(o)
                    : Swift.max(fixedScale * (Float(o) + 0.5) - 0.5, 0)
                let i0 = Swift.min(Int(real.rounded(.down)), inSize - 1)
                let l1 = Swift.min(Swift.max(real - Float(i0), 0), 1)
                index += [i0, i0 + (i0 < inSize - 1 ? 1 : 0)]
                weight += [1 - l1, l1]
            }
        case .bicubic where !antialias:
            taps = 4
            identity = inSize == outSize && (alignCorners || scale == nil || scale == 1)
            for o in 0..<outSize {
                let real = alignCorners ? fixedScale * Float(o) : fixedScale * (Float(o) + 0.5) - 0.5
                let i0 = Swift.min(Int(real.rounded(.down)), inSize - 1)
                let t = Swift.min(Swift.max(real - Float(i0), 0), 1)
                let a: Float = -0.75
                let x2 = 1 - t
                weight += [ResampleAxis.cubic2(t + 1, a), ResampleAxis.cubic1(t, a),
                           ResampleAxis.cubic1(x2, a), ResampleAxis.cubic2(x2 + 1, a)]
                for j in 0..<4 { index.append(Swift.min(Swift.max(i0 - 1 + j, 0), inSize - 1)) }
            }
        case .bilinear, .bicubic:
            // PyTorch's antialiased (Pillow-style) filter: support widened by the downscale
            // factor, weights normalised over the taps inside the image.
            let cubic = mode == .bicubic
            let interp: Float = cubic ? 4 : 2
            let s = fixedScale
            let support: Float = s >= 1 ? (interp * 0.5) * s : interp * 0.5
            let maxTaps = Int(support.rounded(.up)) * 2 + 1
            taps = maxTaps
            identity = inSize == outSize
            let invscale: Float = s >= 1 ? Float(1.0 / Double(s)) : 1
            var wt = [Float](repeating: 0, count: maxTaps)
            for o in 0..<outSize {
                let center = Float(Double(s) * (Double(o) + 0.5))
                let xmin = Swift.max(Int(Double(center - support) + 0.5), 0)
                var xsize = Swift.min(Int(Double(center + support) + 0.5), inSize) - xmin
                xsize = Swift.min(Swift.max(xsize, 0), maxTaps)
                var total: Float = 0
                for j in 0..<maxTaps {
                    var v: Float = 0
                    if j < xsize {
                        let x = Float((Double(Float(j + xmin) - center) + 0.5) * Double(invscale))
                        v = cubic ? ResampleAxis.keysCubic(x) : Swift.max(0, 1 - Swift.abs(x))
                    }
                    wt[j] = v
                    total += v
                }
                for j in 0..<maxTaps {
                    weight.append(total != 0 ? wt[j] / total : wt[j])
                    index.append(Swift.min(xmin + Swift.min(j, Swift.max(xsize - 1, 0)), inSize - 1))
                }
            }
        }
        self.index = index
        self.weight = weight
    }

    /// PyTorch's area_pixel_compute_scale in float.
    static func areaScale(_ inSize: Int, _ outSize: Int, _ alignCorners: Bool, _ scale: Double?) -> Float {
        if alignCorners {
            return outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        }
        if let scale, scale > 0 { return Float(1.0 / scale) }
        return Float(inSize) / Float(outSize)
    }

    @inline(__always)
    static func cubic1(_ x: Float, _ a: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }

    @inline(__always)
    static func cubic2(_ x: Float, _ a: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }

    /// Keys cubic with a = -0.5, the antialiasing filter of PyTorch (and Pillow).
    static func keysCubic(_ x: Float) -> Float {
        let ax = Swift.abs(x)
        if ax < 1 { return cubic1(ax, -0.5) }
        if ax < 2 { return cubic2(ax, -0.5) }
        return 0
    }
}

extension Tensor {
    /// Resizes [N, C, H, W] to `size` (height, width), as torch.nn.functional.interpolate.
    public func interpolate(size: (Int, Int), mode: InterpolationMode, alignCorners: Bool = false,
                            antialias: Bool = false) -> Tensor {
        resample(size: size, scale: nil, mode: mode, alignCorners: alignCorners, antialias: antialias)
    }

    /// Resizes by `scale` on both axes: the output size is ⌊size · scale⌋ and, as in PyTorch
    /// without recompute_scale_factor, coordinates map through 1/scale.
    public func interpolate(scale: Float, mode: InterpolationMode, alignCorners: Bool = false,
                            antialias: Bool = false) -> Tensor {
        precondition(rank == 4, "interpolate: input must be [N, C, H, W], got \(shape)")
        precondition(scale > 0, "interpolate: scale must be positive, got \(scale)")
        let s = Double(scale)
        let size = (Int((Double(shape[2]) * s).rounded(.down)), Int((Double(shape[3]) * s).rounded(.down)))
        return resample(size: size, scale: s, mode: mode, alignCorners: alignCorners, antialias: antialias)
    }

    private func resample(size: (Int, Int), scale: Double?, mode: InterpolationMode,
                          alignCorners: Bool, antialias: Bool) -> Tensor {
        precondition(rank == 4, "interpolate: input must be [N, C, H, W], got \(shape)")
        precondition(size.0 > 0 && size.1 > 0, "interpolate: output size \(size) must be positive")
        precondition(shape[2] > 0 && shape[3] > 0, "interpolate: empty input \(shape)")
        let nearest = mode == .nearest || mode == .nearestExact
        precondition(!(nearest && alignCorners), "interpolate: alignCorners needs bilinear or bicubic mode")
        precondition(!(nearest && antialias), "interpolate: antialias needs bilinear or bicubic mode")
        let ay = ResampleAxis(inSize: shape[2], outSize: size.0, mode: mode, alignCorners: alignCorners,
                              antialias: antialias, scale: scale)
        let ax = ResampleAxis(inSize: shape[3], outSize: size.1, mode: mode, alignCorners: alignCorners,
                              antialias: antialias, scale: scale)
        let planes = shape[0] * shape[1]
        let out = Resample.forward(self, planes: planes, ay: ay, ax: ax)
        let inShape = shape
        return out.recording("interpolate", [self]) { g in
            [Resample.backward(g, planes: planes, ay: ay, ax: ax, inputShape: inShape)]
        }
    }
}

/// Separable resampling loops over planes of [planes, H, W].
enum Resample {
    static func forward(_ x: Tensor, planes: Int, ay: ResampleAxis, ax: ResampleAxis) -> Tensor {
        let h = ay.inSize, oh = ay.outSize, ow = ax.outSize
        // Along W: [planes, H, W] → [planes, H, OW].
        let mid = ax.identity ? x.detached() : alongRows(x.pointer, rows: planes * h, ax)
        let midShape = [x.shape[0], x.shape[1], h, ow]
        if ay.identity {
            return ax.identity ? x.copy() : Tensor(shape: midShape, storage: mid.storage)
        }
        // Along H: each output row is a weighted sum of rows of `mid`.
        let out = Tensor(uninitialized: [x.shape[0], x.shape[1], oh, ow])
        let src = mid.pointer, dst = out.pointer, taps = ay.taps
        ay.index.withUnsafeBufferPointer { index in
            ay.weight.withUnsafeBufferPointer { weight in
                Parallel.forRange(planes * oh, grain: max(1, Kernels.grain / max(ow * taps, 1))) { range in
                    for row in range {
                        let plane = row / oh, o = row - plane * oh
                        let d = dst + row * ow
                        d.update(repeating: 0, count: ow)
                        for t in 0..<taps {
                            let wv = weight[o * taps + t]
                            if wv == 0 { continue }
                            SIMDLoops.axpy(wv, src + (plane * h + index[o * taps + t]) * ow, d, ow)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Resamples every row of `src` ([rows, axis.inSize]) into [rows, axis.outSize].
    static func alongRows(_ src: UnsafePointer<Float>, rows: Int, _ axis: ResampleAxis) -> Tensor {
        let w = axis.inSize, ow = axis.outSize, taps = axis.taps
        let out = Tensor(uninitialized: [rows, ow])
        let dst = out.pointer
        axis.index.withUnsafeBufferPointer { index in
            axis.weight.withUnsafeBufferPointer { weight in
                Parallel.forRange(rows, grain: max(1, Kernels.grain / max(ow * taps, 1))) { range in
                    for row in range {
                        let s = src + row * w, d = dst + row * ow
                        if taps == 1 {
                            for o in 0..<ow { d[o] = s[index[o]] }
                            continue
                        }
                        for o in 0..<ow {
                            var acc: Float = 0
                            for t in 0..<taps { acc += weight[o * taps + t] * s[index[o * taps + t]] }
                            d[o] = acc
                        }
                    }
                }
            }
        }
        return out
    }

    static func backward(_ g: Tensor, planes: Int, ay: ResampleAxis, ax: ResampleAxis,
                         inputShape: [Int]) -> Tensor {
        let h = ay.inSize, w = ax.inSize, oh = ay.outSize, ow = ax.outSize
        // Transpose of the H pass: [planes, OH, OW] → [planes, H, OW].
        var mid = g
        if !ay.identity {
            mid = Tensor(uninitialized: [planes, h, ow])
            let src = g.pointer, dst = mid.pointer, taps = ay.taps
            ay.index.withUnsafeBufferPointer { index in
                ay.weight.withUnsafeBufferPointer { weight in
                    Parallel.forRange(planes, grain: max(1, Kernels.grain / max(oh * ow * taps, 1))) { range in
                        for plane in range {
                            let d = dst + plane * h * ow
                            d.update(repeating: 0, count: h * ow)
                            for o in 0..<oh {
                                let s = src + (plane * oh + o) * ow
                                for t in 0..<taps {
                                    let wv = weight[o * taps + t]
                                    if wv == 0 { continue }
                                    SIMDLoops.axpy(wv, s, d + index[o * taps + t] * ow, ow)
                                }
                            }
                        }
                    }
                }
            }
        }
        // Transpose of the W pass, row by row: [planes, H, OW] → [planes, H, W].
        if ax.identity {
            return ay.identity ? g.copy().reshaped(inputShape) : Tensor(shape: inputShape, storage: mid.storage)
        }
        let gx = Tensor(uninitialized: inputShape)
        let src = mid.pointer, dst = gx.pointer, taps = ax.taps
        ax.index.withUnsafeBufferPointer { index in
            ax.weight.withUnsafeBufferPointer { weight in
                Parallel.forRange(planes * h, grain: max(1, Kernels.grain / max(ow * taps, 1))) { range in
                    for row in range {
                        let s = src + row * ow, d = dst + row * w
                        d.update(repeating: 0, count: w)
                        for o in 0..<ow {
                            let gv = s[o]
                            for t in 0..<taps { d[index[o * taps + t]] += weight[o * taps + t] * gv }
                        }
                    }
                }
            }
        }
        return gx
    }
}
