/// Loops behind `conv2d`: im2col/col2im around BLAS for general convolutions, and a direct
/// kernel for depthwise ones. Parallel loops never call BLAS; GEMMs run between them.
enum ConvKernels {
    /// Output columns [lo, hi) of a row whose input column `o · stride + offset` lies in
    /// [0, size).
    @inline(__always)
    static func validRange(count: Int, stride: Int, offset: Int, size: Int) -> (Int, Int) {
        let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
        let last = size - 1 - offset
        let hi = last < 0 ? 0 : last / stride + 1
        let l = min(lo, count)
        return (l, max(l, min(hi, count)))
    }

    // MARK: im2col / col2im

    /// A block of the batch handled by one set of GEMMs: whole images first..<first+images,
    /// or, for a single image, its output rows rows.lowerBound..<rows.upperBound.
    struct Tile {
        let first: Int
        let images: Int
        let rows: Range<Int>
        /// Columns per image in the tile.
        let perImage: Int
        /// Columns of the tile's im2col matrix (its leading dimension).
        var columns: Int { images * perImage }
    }

    /// The tiles covering the batch, in order.
    static func tiles(_ g: Conv2dGeometry) -> [Tile] {
        var out: [Tile] = []
        let nb = g.chunk
        if nb > 1 {
            var first = 0
            while first < g.n {
                let b = min(nb, g.n - first)
                out.append(Tile(first: first, images: b, rows: 0..<g.oh, perImage: g.outPlane))
                first += b
            }
        } else {
            let block = g.pointwise ? g.oh : g.rowBlock
            for img in 0..<g.n {
                var y = 0
                while y < g.oh {
                    let y1 = min(g.oh, y + block)
                    out.append(Tile(first: img, images: 1, rows: y..<y1, perImage: (y1 - y) * g.ow))
                    y = y1
                }
            }
        }
        return out
    }

    /// Writes the im2col matrix of a tile: rows (c, ki, kj) over all input channels, columns
    /// (image, oy, ox); leading dimension `tile.columns`.
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ tile: Tile,
                       _ col: UnsafeMutablePointer<Float>) {
        let kh = g.kh, kw = g.kw, h = g.h, w = g.w, ow = g.ow
        let sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
        let inPlane = g.inPlane, cin = g.cin
        let images = tile.images, first = tile.first, per = tile.perImage, ld = tile.columns
        let y0 = tile.rows.lowerBound, y1 = tile.rows.upperBound
        let rows = cin * kh * kw
        Parallel.forRange(rows * images, grain: max(1, 8192 / max(per, 1))) { range in
            for t in range {
                let row = t / images, nl = t - row * images
                let c = row / (kh * kw), kk = row - c * kh * kw
                let ki = kk / kw, kj = kk - ki * kw
                let src = x + ((first + nl) * cin + c) * inPlane
                let dst = col + row * ld + nl * per
                let off = kj * dw - pw
                let (lo, hi) = validRange(count: ow, stride: sw, offset: off, size: w)
                for oy in y0..<y1 {
                    let d = dst + (oy - y0) * ow
                    let iy = oy * sh - ph + ki * dh
                    if iy < 0 || iy >= h || lo >= hi {
                        d.update(repeating: 0, count: ow)
                        continue
                    }
                    if lo > 0 { d.update(repeating: 0, count: lo) }
                    let s = src + iy * w + off
                    if sw == 1 {
                        (d + lo).update(from: s + lo, count: hi - lo)
                    } else {
                        for o in lo..<hi { d[o] = s[o * sw] }
                    }
                    if hi < ow { (d + hi).update(repeating: 0, count: ow - hi) }
                }
            }
        }
    }

    /// Adds a tile's im2col-shaped gradient onto its input planes. The planes are zeroed
    /// first unless `accumulate` (later row blocks of the same image).
    static func col2im(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, _ tile: Tile, accumulate: Bool,
                       _ gx: UnsafeMutablePointer<Float>) {
        let kh = g.kh, kw = g.kw, h = g.h, w = g.w, ow = g.ow
        let sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
        let inPlane = g.inPlane, cin = g.cin
        let images = tile.images, first = tile.first, per = tile.perImage, ld = tile.columns
        let y0 = tile.rows.lowerBound, y1 = tile.rows.upperBound
        Parallel.forRange(cin * images, grain: max(1, 8192 / max(per * kh * kw, 1))) { range in
            for t in range {
                let c = t / images, nl = t - c * images
                let dst = gx + ((first + nl) * cin + c) * inPlane
                if !accumulate { dst.update(repeating: 0, count: inPlane) }
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let src = col + ((c * kh + ki) * kw + kj) * ld + nl * per
                        let off = kj * dw - pw
                        let (lo, hi) = validRange(count: ow, stride: sw, offset: off, size: w)
                        if lo >= hi { continue }
                        for oy in y0..<y1 {
                            let iy = oy * sh - ph + ki * dh
                            if iy < 0 || iy >= h { continue }
                            let d = dst + iy * w + off
                            let s = src + (oy - y0) * ow
                            if sw == 1 {
                                SIMDLoops.add(s + lo, d + lo, hi - lo)
                            } else {
                                for o in lo..<hi { d[o * sw] += s[o] }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: GEMM path

    static func gemmForward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                            _ bias: UnsafePointer<Float>?, _ g: Conv2dGeometry,
                            _ out: UnsafeMutablePointer<Float>) {
        let p = g.outPlane, k = g.k, coutG = g.coutG, cout = g.cout
        let tiles = tiles(g)
        let maxColumns = tiles.map(\.columns).max() ?? 0
        let direct = g.pointwise && g.chunk == 1
        let col = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: g.cin * g.kh * g.kw * maxColumns)
        let tmp = g.chunk > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: cout * maxColumns) : nil
        defer { col?.deallocate(); tmp?.deallocate() }

        for tile in tiles {
            let ld = tile.columns, b = tile.images, first = tile.first
            let offset = tile.rows.lowerBound * g.ow
            let source: UnsafePointer<Float>
            if let col {
                im2col(x, g, tile, col)
                source = UnsafePointer(col)
            } else {
                source = x + first * g.cin * p
            }
            // One image writes straight into the output ([Cout, P] with row stride P).
            let dst = tmp ?? (out + first * cout * p + offset)
            let ldc = tmp == nil ? p : ld
            for gi in 0..<g.groups {
                BLAS.sgemm(transA: false, transB: false, m: coutG, n: ld, k: k,
                           a: weight + gi * coutG * k, lda: k,
                           b: source + gi * k * ld, ldb: ld,
                           c: dst + gi * coutG * ldc, ldc: ldc)
            }
            if let tmp {
                // [Cout, images, P] → [images, Cout, P], adding the bias on the way.
                Parallel.forRange(cout * b, grain: max(1, 8192 / max(p, 1))) { range in
                    for t in range {
                        let co = t / b, nl = t - co * b
                        let s = tmp + co * ld + nl * p
                        let d = out + ((first + nl) * cout + co) * p
                        if let bias {
                            let bv = bias[co]
                            for i in 0..<p { d[i] = s[i] + bv }
                        } else {
                            d.update(from: s, count: p)
                        }
                    }
                }
            } else if let bias {
                let base = out + first * cout * p + offset
                Parallel.forRange(cout, grain: max(1, 8192 / max(ld, 1))) { range in
                    for co in range {
                        let d = base + co * p
                        let bv = bias[co]
                        for i in 0..<ld { d[i] += bv }
                    }
                }
            }
        }
    }

    /// Input and/or weight gradients of the GEMM path. `gw` must start at zero.
    static func gemmBackward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                             _ gy: UnsafePointer<Float>, _ g: Conv2dGeometry,
                             _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
        let p = g.outPlane, k = g.k, coutG = g.coutG, cout = g.cout, cin = g.cin
        let tiles = tiles(g)
        let maxColumns = tiles.map(\.columns).max() ?? 0
        let direct = g.pointwise && g.chunk == 1
        let col = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: cin * g.kh * g.kw * maxColumns)
        let gyChunk = g.chunk > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: cout * maxColumns) : nil
        defer { col?.deallocate(); gyChunk?.deallocate() }

        for tile in tiles {
            let ld = tile.columns, b = tile.images, first = tile.first
            // Upstream gradient of the tile as [Cout, columns] with row stride ldg.
            let gyc: UnsafePointer<Float>
            let ldg: Int
            if let gyChunk {
                Parallel.forRange(cout * b, grain: max(1, 8192 / max(p, 1))) { range in
                    for t in range {
                        let co = t / b, nl = t - co * b
                        (gyChunk + co * ld + nl * p).update(from: gy + ((first + nl) * cout + co) * p, count: p)
                    }
                }
                gyc = UnsafePointer(gyChunk)
                ldg = ld
            } else {
                gyc = gy + first * cout * p + tile.rows.lowerBound * g.ow
                ldg = p
            }

            if let gw {
                let source: UnsafePointer<Float>
                if let col {
                    im2col(x, g, tile, col)
                    source = UnsafePointer(col)
                } else {
                    source = x + first * cin * p
                }
                for gi in 0..<g.groups {
                    BLAS.sgemm(transA: false, transB: true, m: coutG, n: k, k: ld,
                               a: gyc + gi * coutG * ldg, lda: ldg,
                               b: source + gi * k * ld, ldb: ld,
                               beta: 1, c: gw + gi * coutG * k, ldc: k)
                }
            }

            if let gx {
                let dcol = col ?? (gx + first * cin * p)
                for gi in 0..<g.groups {
                    BLAS.sgemm(transA: true, transB: false, m: k, n: ld, k: coutG,
                               a: weight + gi * coutG * k, lda: k,
                               b: gyc + gi * coutG * ldg, ldb: ldg,
                               c: dcol + gi * k * ld, ldc: ld)
                }
                if col != nil {
                    col2im(dcol, g, tile, accumulate: tile.rows.lowerBound > 0, gx)
                }
            }
        }
    }

    /// Σ over images and pixels of the upstream gradient, per output channel.
    static func biasGradient(_ gy: UnsafePointer<Float>, _ g: Conv2dGeometry) -> Tensor {
        let out = Tensor(uninitialized: [g.cout])
        let o = out.pointer
        let cout = g.cout, p = g.outPlane, n = g.n
        Parallel.forRange(cout, grain: max(1, 8192 / max(p * n, 1))) { range in
            for co in range {
                var s: Float = 0
                for i in 0..<n { s += SIMDLoops.sum(gy + (i * cout + co) * p, p) }
                o[co] = s
            }
        }
        return out
    }

    // MARK: Depthwise (one input channel per group)

    /// Output channel co reads input channel co / (Cout / Cin).
    static func depthwiseForward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                 _ bias: UnsafePointer<Float>?, _ g: Conv2dGeometry,
                                 _ out: UnsafeMutablePointer<Float>) {
        let kh = g.kh, kw = g.kw, h = g.h, w = g.w, oh = g.oh, ow = g.ow
        let sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
        let cin = g.cin, cout = g.cout, mult = g.cout / g.cin, p = g.outPlane, inPlane = g.inPlane
        let ranges = (0..<kw).map { kj in validRange(count: ow, stride: sw, offset: kj * dw - pw, size: w) }
        ranges.withUnsafeBufferPointer { ranges in
            Parallel.forRange(g.n * cout, grain: max(1, 4096 / max(p * kh * kw, 1))) { range in
                for t in range {
                    let img = t / cout, co = t - img * cout
                    let src = x + (img * cin + co / mult) * inPlane
                    let dst = out + t * p
                    let wk = weight + co * kh * kw
                    dst.update(repeating: bias?[co] ?? 0, count: p)
                    for oy in 0..<oh {
                        let orow = dst + oy * ow
                        for ki in 0..<kh {
                            let iy = oy * sh - ph + ki * dh
                            if iy < 0 || iy >= h { continue }
                            let irow = src + iy * w
                            for kj in 0..<kw {
                                let (lo, hi) = ranges[kj]
                                if lo >= hi { continue }
                                let wv = wk[ki * kw + kj]
                                let off = kj * dw - pw
                                if sw == 1 {
                                    SIMDLoops.axpy(wv, irow + lo + off, orow + lo, hi - lo)
                                } else {
                                    for o in lo..<hi { orow[o] += wv * irow[o * sw + off] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Input gradient (parallel over input planes) and weight gradient (parallel over output
    /// channels) of the depthwise kernel. `gw` must start at zero.
    static func depthwiseBackward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                  _ gy: UnsafePointer<Float>, _ g: Conv2dGeometry,
                                  _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
        let kh = g.kh, kw = g.kw, h = g.h, w = g.w, oh = g.oh, ow = g.ow
        let sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
        let n = g.n, cin = g.cin, cout = g.cout, mult = g.cout / g.cin, p = g.outPlane, inPlane = g.inPlane
        let ranges = (0..<kw).map { kj in validRange(count: ow, stride: sw, offset: kj * dw - pw, size: w) }
        ranges.withUnsafeBufferPointer { ranges in
            if let gx {
                Parallel.forRange(n * cin, grain: max(1, 4096 / max(p * kh * kw * mult, 1))) { range in
                    for t in range {
                        let img = t / cin, ci = t - img * cin
                        let dst = gx + t * inPlane
                        dst.update(repeating: 0, count: inPlane)
                        for m in 0..<mult {
                            let co = ci * mult + m
                            let src = gy + (img * cout + co) * p
                            let wk = weight + co * kh * kw
                            for oy in 0..<oh {
                                let grow = src + oy * ow
                                for ki in 0..<kh {
                                    let iy = oy * sh - ph + ki * dh
                                    if iy < 0 || iy >= h { continue }
                                    let drow = dst + iy * w
                                    for kj in 0..<kw {
                                        let (lo, hi) = ranges[kj]
                                        if lo >= hi { continue }
                                        let wv = wk[ki * kw + kj]
                                        let off = kj * dw - pw
                                        if sw == 1 {
                                            SIMDLoops.axpy(wv, grow + lo, drow + lo + off, hi - lo)
                                        } else {
                                            for o in lo..<hi { drow[o * sw + off] += wv * grow[o] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let gw {
                Parallel.forRange(cout, grain: max(1, 4096 / max(n * p * kh * kw, 1))) { range in
                    for co in range {
                        let ci = co / mult
                        let acc = gw + co * kh * kw
                        for img in 0..<n {
                            let src = x + (img * cin + ci) * inPlane
                            let gyp = gy + (img * cout + co) * p
                            for oy in 0..<oh {
                                let grow = gyp + oy * ow
                                for ki in 0..<kh {
                                    let iy = oy * sh - ph + ki * dh
                                    if iy < 0 || iy >= h { continue }
                                    let irow = src + iy * w
                                    for kj in 0..<kw {
                                        let (lo, hi) = ranges[kj]
                                        if lo >= hi { continue }
                                        let off = kj * dw - pw
                                        if sw == 1 {
                                            acc[ki * kw + kj] += SIMDLoops.dot(grow + lo, irow + lo + off, hi - lo)
                                        } else {
                                            var s: Float = 0
                                            for o in lo..<hi { s += grow[o] * irow[o * sw + off] }
                                            acc[ki * kw + kj] += s
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
