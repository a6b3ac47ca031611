import CKernels
import Foundation

/// Stride-1 convolutions without an im2col matrix. With the input zero-padded into rows of
/// Wp = W + 2·pw columns, kernel tap (ki, kj) reads the padded planes at one fixed offset, and
/// outputs come out "wide" (Wp columns per row, the last Wp − ow discarded).
/// - With AVX-512 (`ownKernel`): one padded copy; a C kernel sums all kH·kW taps of each output
///   tile in registers, reading the copy in place (no packing), column chunk by column chunk,
///   each chunk stored to the output from a small buffer. The weight gradient is one product
///   per (column chunk, tap) against the chunk's pixel-major upstream gradient.
/// - Otherwise (OpenBLAS): kW copies of each padded channel, copy kj shifted by kj·dw, so kernel
///   row ki is one GEMM [Cout, Cin·kW] × [Cin·kW, columns] starting ki·dh rows into the buffer.
/// The input gradient is the same kind of convolution of the upstream gradient (padded by
/// (k−1)·d − p) with the flipped, transposed kernel, so no col2im. Against im2col this avoids
/// writing and re-reading a kH·kW-times larger matrix in every pass.
extension ConvKernels {
    /// nil: choose by shape; true/false force the path where it applies (tests, and
    /// `UNILIP_CONV_SHIFTED=0|1`).
    nonisolated(unsafe) static var shiftedOverride: Bool? = {
        switch ProcessInfo.processInfo.environment["UNILIP_CONV_SHIFTED"] {
        case "0": return false
        case "1": return true
        default: return nil
        }
    }()

    /// Run the products on the AVX-512 kernels (reading the padded input in place, split over
    /// our threads) instead of OpenBLAS, whose packing of the big operand costs a quarter of the
    /// time when Cout is small. On by default where AVX-512 is present; `UNILIP_CONV_OWN=0` or
    /// tests turn it off.
    nonisolated(unsafe) static var ownKernel =
        HeadKernels.useAVX512 && ProcessInfo.processInfo.environment["UNILIP_CONV_OWN"] != "0"

    /// Whether `g` runs on the shifted path.
    static func useShifted(_ g: Conv2dGeometry) -> Bool {
        guard g.sh == 1 && g.sw == 1 && !g.depthwise && !g.pointwise,
              g.ph <= (g.kh - 1) * g.dh && g.pw <= (g.kw - 1) * g.dw else { return false }
        if let forced = shiftedOverride { return forced }
        // Small channel counts make each GEMM too thin; small images waste too many columns
        // on padding.
        let padded = (g.h + 2 * g.ph) * (g.w + 2 * g.pw)
        return g.cinG >= 16 && g.coutG >= 16 && 4 * padded <= 5 * g.outPlane
    }

    /// Layout of a tile of images: per source channel, kW rows of `ld` floats, row kj holding
    /// the `images` padded planes (hp × wp each) read from offset kj·dw, zero past their end;
    /// or (single) one row of `singleLD` floats.
    struct ShiftLayout {
        let hp, wp, outH, outW, images: Int
        let kh, kw, dh, dw: Int
        var plane: Int { hp * wp }
        /// GEMM columns: every image's padded plane, the last one only up to its output rows.
        var columns: Int { (images - 1) * plane + outH * wp }
        var ld: Int { images * plane }
        /// Row stride of a single padded copy: the last taps read (kW − 1)·dw past the planes.
        var singleLD: Int { images * plane + (kw - 1) * dw }
        /// Offset of tap (ki, kj) = (t / kW, t % kW) in a single padded copy.
        func tapOffset(_ t: Int) -> Int { (t / kw) * dh * wp + (t % kw) * dw }
        /// Offset of kernel row ki's B matrix.
        func shift(_ ki: Int) -> Int { ki * dh * wp }

        init(height: Int, width: Int, pad: (Int, Int), images: Int, g: Conv2dGeometry) {
            hp = height + 2 * pad.0; wp = width + 2 * pad.1
            kh = g.kh; kw = g.kw; dh = g.dh; dw = g.dw
            outH = hp - (kh - 1) * dh; outW = wp - (kw - 1) * dw
            self.images = images
        }
    }

    /// Images per tile: enough GEMM columns for BLAS, with bounded buffers.
    static func shiftedImages(plane: Int, rows: Int, n: Int) -> Int {
        var nb = min(n, max(1, 4096 / max(plane, 1)))
        while nb > 1 && rows * nb * plane > Conv2dGeometry.maxColumnFloats { nb /= 2 }
        return max(nb, 1)
    }

    /// Writes images first..<first+L.images of src ([N, channels, height, width]) as padded,
    /// kj-shifted rows.
    static func padPlanes(_ src: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                          pad: (Int, Int), first: Int, _ L: ShiftLayout, _ dst: UnsafeMutablePointer<Float>,
                          single: Bool = false) {
        let images = L.images, plane = L.plane, wp = L.wp, inPlane = height * width
        let kw = L.kw, dw = L.dw
        // single: one copy per channel with a zero tail for the taps' overreach (row stride
        // `singleLD`), for the tap-sum kernel.
        let copies = single ? 1 : kw, ld = single ? L.singleLD : L.ld
        let (ph, pw) = pad
        Parallel.forRange(channels, grain: max(1, 16384 / max(ld * copies, 1))) { range in
            for c in range {
                let base = dst + c * copies * ld
                for nl in 0..<images {
                    let s = src + ((first + nl) * channels + c) * inPlane
                    let d = base + nl * plane
                    d.update(repeating: 0, count: ph * wp + pw)
                    for y in 0..<height {
                        let row = d + (ph + y) * wp + pw
                        row.update(from: s + y * width, count: width)
                        if y + 1 < height { (row + width).update(repeating: 0, count: 2 * pw) }
                    }
                    (d + (ph + height - 1) * wp + pw + width).update(repeating: 0, count: pw + ph * wp)
                }
                if single {
                    (base + images * plane).update(repeating: 0, count: ld - images * plane)
                    continue
                }
                for kj in 1..<max(kw, 1) {
                    let o = kj * dw
                    (base + kj * ld).update(from: base + o, count: ld - o)
                    (base + kj * ld + ld - o).update(repeating: 0, count: o)
                }
            }
        }
    }

    /// dst[N, groups·mG, outH, outW] = Σ kernel rows W_ki · shifted padded source, plus bias.
    /// weights: [kH][groups·mG][cG·kW] (inner order channel, kj), or with `ownKernel`
    /// [kH·kW][groups·mG][cG]; the source has groups·cG channels.
    static func shiftedConv(_ src: UnsafePointer<Float>, n: Int, channels: Int, height: Int, width: Int,
                            pad: (Int, Int), g: Conv2dGeometry, rowsPerGroup mG: Int,
                            weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            _ dst: UnsafeMutablePointer<Float>) {
        let groups = g.groups, cG = channels / groups, m = mG * groups, kw = g.kw, kk = cG * kw
        let probe = ShiftLayout(height: height, width: width, pad: pad, images: 1, g: g)
        let nb = shiftedImages(plane: probe.plane, rows: max(channels * kw, m), n: n)
        let full = ShiftLayout(height: height, width: width, pad: pad, images: nb, g: g)
        let padded = Scratch(floats: channels * kw * full.ld)
        let wide = Scratch(floats: ownKernel ? 1 : m * full.columns)
        defer { padded.release(); wide.release() }
        var first = 0
        while first < n {
            let L = ShiftLayout(height: height, width: width, pad: pad, images: min(nb, n - first), g: g)
            let ld = L.ld, cols = L.columns
            if ownKernel {
                // One padded copy; the kernel sums all taps of a C tile in registers, reading the
                // copy in place at each tap's offset (no packing, no kW copies). Column chunks
                // split over threads.
                padPlanes(src, channels: channels, height: height, width: width, pad: pad, first: first, L,
                          padded.p, single: true)
                // Chunks of ~256 columns (17 uneven ones would leave one thread 20% short).
                let chunk = equalChunk(columns: cols, widest: 256)
                let taps = g.kh * kw, sld = L.singleLD, pp = UnsafePointer(padded.p), f = first
                let offsets = (0..<taps).map { L.tapOffset($0) }
                offsets.withUnsafeBufferPointer { offsets in
                    Parallel.forRange((cols + chunk - 1) / chunk) { range in
                        // Each chunk's wide rows go to a small buffer and straight on to the
                        // output while still in L2, instead of through a full-size wide matrix.
                        let tile = Scratch(floats: m * chunk)
                        defer { tile.release() }
                        for t in range {
                            let j0 = t * chunk, nj = min(chunk, cols - j0)
                            for gi in 0..<groups {
                                unilip_conv_avx512(mG, nj, cG, taps, weights + gi * mG * cG, m * cG, cG,
                                                   pp + gi * cG * sld + j0, sld, offsets.baseAddress,
                                                   tile.p + gi * mG * chunk, chunk)
                            }
                            storeWideColumns(tile.p, ld: chunk, rows: m, columns: j0..<(j0 + nj), L, firstImage: f,
                                             bias: bias, dst)
                        }
                    }
                }
                first += L.images
                continue
            }
            padPlanes(src, channels: channels, height: height, width: width, pad: pad, first: first, L, padded.p)
            for ki in 0..<g.kh {
                for gi in 0..<groups {
                    BLAS.sgemm(transA: false, transB: false, m: mG, n: cols, k: kk,
                               a: weights + ki * m * kk + gi * mG * kk, lda: kk,
                               b: padded.p + gi * kk * ld + L.shift(ki), ldb: ld,
                               beta: ki == 0 ? 0 : 1, c: wide.p + gi * mG * cols, ldc: cols)
                }
            }
            // Wide rows → output planes, adding the bias.
            let images = L.images, plane = L.plane, wp = L.wp, oh = L.outH, ow = L.outW
            let w = UnsafePointer(wide.p), f = first
            Parallel.forRange(m * images, grain: max(1, 16384 / max(oh * ow, 1))) { range in
                for t in range {
                    let row = t / images, nl = t - row * images
                    let s = w + row * cols + nl * plane
                    let d = dst + ((f + nl) * m + row) * oh * ow
                    for y in 0..<oh {
                        let sr = s + y * wp, dr = d + y * ow
                        if let bias {
                            let bv = bias[row]
                            for x in 0..<ow { dr[x] = sr[x] + bv }
                        } else {
                            dr.update(from: sr, count: ow)
                        }
                    }
                }
            }
            first += L.images
        }
    }

    /// Width of column chunks of at most about `widest` columns, a multiple of 16, cut so that
    /// their count is a multiple of the thread count and every thread gets the same work.
    static func equalChunk(columns: Int, widest: Int) -> Int {
        let threads = Parallel.threads
        let count = ((columns + widest - 1) / widest + threads - 1) / threads * threads
        return ((columns + count - 1) / count + 15) / 16 * 16
    }

    /// Walks wide columns `columns` one wide row at a time: `body(image, y, x, j, kept, end)`
    /// for the run j..<end inside one wide row, whose first `kept` columns are output pixels
    /// (image, y, x…) and the rest padding (kept = 0 below outH).
    @inline(__always)
    static func forEachWideRun(_ columns: Range<Int>, _ L: ShiftLayout,
                               _ body: (_ image: Int, _ y: Int, _ x: Int, _ j: Int, _ kept: Int, _ end: Int) -> Void) {
        let plane = L.plane, wp = L.wp, oh = L.outH, ow = L.outW
        var j = columns.lowerBound
        while j < columns.upperBound {
            let image = j / plane, rest = j - image * plane, y = rest / wp, x = rest - y * wp
            let end = min(columns.upperBound, j + wp - x)
            let kept = y < oh && x < ow ? min(end, j + ow - x) - j : 0
            body(image, y, x, j, kept, end)
            j = end
        }
    }

    /// Copies wide columns `columns` of `rows` rows (row r at src + r·ld, column j at offset
    /// j − columns.lowerBound) to their output pixels, adding the bias; columns past a row's
    /// outW or below outH are padding and dropped.
    static func storeWideColumns(_ src: UnsafePointer<Float>, ld: Int, rows: Int, columns: Range<Int>,
                                 _ L: ShiftLayout, firstImage: Int, bias: UnsafePointer<Float>?,
                                 _ dst: UnsafeMutablePointer<Float>) {
        let oh = L.outH, ow = L.outW
        forEachWideRun(columns, L) { image, y, x, j, kept, _ in
            for r in 0..<rows {
                let s = src + r * ld + (j - columns.lowerBound)
                let d = dst + (((firstImage + image) * rows + r) * oh + y) * ow + x
                if let bias {
                    let bv = bias[r]
                    for i in 0..<kept { d[i] = s[i] + bv }
                } else {
                    d.update(from: s, count: kept)
                }
            }
        }
    }

    /// The inverse layout for the weight gradient: dst[(j − columns.lowerBound)·rows + r] =
    /// src's pixel of wide column j in channel r, zero for padding columns.
    static func loadWideColumnsTransposed(_ src: UnsafePointer<Float>, rows: Int, columns: Range<Int>,
                                          _ L: ShiftLayout, firstImage: Int, _ dst: UnsafeMutablePointer<Float>) {
        let oh = L.outH, ow = L.outW
        forEachWideRun(columns, L) { image, y, x, j, kept, end in
            let d = dst + (j - columns.lowerBound) * rows
            let s = src + (firstImage + image) * rows * oh * ow + y * ow + x
            let plane = oh * ow, rows8 = rows / 8 * 8, kept8 = kept / 8 * 8
            // 8×8 blocks transposed in registers; the ragged edges one by one.
            for r in stride(from: 0, to: rows8, by: 8) {
                for i in stride(from: 0, to: kept8, by: 8) {
                    Kernels.transpose8x8(s + r * plane + i, plane, d + i * rows + r, rows)
                }
            }
            for i in 0..<kept {
                for r in (i < kept8 ? rows8 : 0)..<rows { d[i * rows + r] = s[r * plane + i] }
            }
            (d + kept * rows).update(repeating: 0, count: (end - j - kept) * rows)
        }
    }

    static func shiftedForward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                               _ bias: UnsafePointer<Float>?, _ g: Conv2dGeometry,
                               _ out: UnsafeMutablePointer<Float>) {
        let kh = g.kh, kw = g.kw, cout = g.cout, cinG = g.cinG
        // [Cout, CinG, kH, kW] → [kH, Cout, CinG, kW].
        let wf = Scratch(floats: kh * cout * cinG * kw)
        defer { wf.release() }
        let own = ownKernel
        for co in 0..<cout {
            for ci in 0..<cinG {
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let v = weight[((co * cinG + ci) * kh + ki) * kw + kj]
                        if own {  // [kH·kW, Cout, CinG]
                            wf.p[((ki * kw + kj) * cout + co) * cinG + ci] = v
                        } else {
                            wf.p[((ki * cout + co) * cinG + ci) * kw + kj] = v
                        }
                    }
                }
            }
        }
        shiftedConv(x, n: g.n, channels: g.cin, height: g.h, width: g.w, pad: (g.ph, g.pw), g: g,
                    rowsPerGroup: g.coutG, weights: wf.p, bias: bias, out)
    }

    /// Input and/or weight gradients on the shifted path. `gw` must start at zero.
    static func shiftedBackward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                _ gy: UnsafePointer<Float>, _ g: Conv2dGeometry,
                                _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
        let kh = g.kh, kw = g.kw, cout = g.cout, cin = g.cin, cinG = g.cinG, coutG = g.coutG
        let groups = g.groups
        if let gx {
            // Flipped, transposed kernel: [kH, Cin, CoutG, kW], entry (ki, ci, co, kj) being
            // W[co, ci, kH−1−ki, kW−1−kj].
            let wt = Scratch(floats: kh * cin * coutG * kw)
            defer { wt.release() }
            let own = ownKernel
            for gi in 0..<groups {
                for o in 0..<coutG {
                    for c in 0..<cinG {
                        let s = weight + ((gi * coutG + o) * cinG + c) * kh * kw
                        for ki in 0..<kh {
                            for kj in 0..<kw {
                                let v = s[(kh - 1 - ki) * kw + (kw - 1 - kj)]
                                if own {  // [kH·kW, Cin, CoutG]
                                    wt.p[((ki * kw + kj) * cin + gi * cinG + c) * coutG + o] = v
                                } else {
                                    wt.p[((ki * cin + gi * cinG + c) * coutG + o) * kw + kj] = v
                                }
                            }
                        }
                    }
                }
            }
            let pad = ((kh - 1) * g.dh - g.ph, (kw - 1) * g.dw - g.pw)
            shiftedConv(gy, n: g.n, channels: cout, height: g.oh, width: g.ow, pad: pad, g: g,
                        rowsPerGroup: cinG, weights: wt.p, bias: nil, gx)
        }
        guard let gw else { return }
        let kk = cinG * kw
        let probe = ShiftLayout(height: g.h, width: g.w, pad: (g.ph, g.pw), images: 1, g: g)
        let nb = shiftedImages(plane: probe.plane, rows: max(cin * kw, cout), n: g.n)
        let full = ShiftLayout(height: g.h, width: g.w, pad: (g.ph, g.pw), images: nb, g: g)
        let padded = Scratch(floats: cin * kw * full.ld)
        let wide = Scratch(floats: ownKernel ? 1 : cout * full.columns)
        let gwt = Scratch(floats: kh * cin * kw * coutG)
        defer { padded.release(); wide.release(); gwt.release() }
        let accumulator = kh * cin * kw * coutG
        gwt.p.update(repeating: 0, count: accumulator)
        // Further threads' weight-gradient sums (own-kernel path), added to gwt at the end.
        let extraParts = ownKernel ? Parallel.threads - 1 : 0
        let partials = Scratch(floats: extraParts * accumulator)
        defer { partials.release() }
        partials.p.update(repeating: 0, count: extraParts * accumulator)
        var first = 0
        while first < g.n {
            let L = ShiftLayout(height: g.h, width: g.w, pad: (g.ph, g.pw), images: min(nb, g.n - first), g: g)
            let ld = L.ld, cols = L.columns
            padPlanes(x, channels: cin, height: g.h, width: g.w, pad: (g.ph, g.pw), first: first, L, padded.p,
                      single: ownKernel)
            let images = L.images, plane = L.plane, wp = L.wp, oh = g.oh, ow = g.ow, f = first
            let w = wide.p
            if ownKernel {
                // One product per (column chunk, tap) on the single padded copy (rows ci at the
                // tap's offset) against the chunk's upstream gradient, pixel-major ([columns,
                // Cout], zero in discarded columns) so the kernel reads it as a row-major B;
                // written to rows (ci, kj) of the kernel row's result. A chunk's gradient and
                // padded input stay in L2 across all its taps. Each thread runs a contiguous run
                // of products, summed into its own accumulator.
                let taps = kh * kw, sld = L.singleLD
                // Equal chunks, so every thread gets whole chunks of the same width (3 uneven
                // chunks over 2 threads left one with 57% of the work and both loading the
                // middle chunk).
                let widest = max(128, min(2048, 196_608 / max(cinG + coutG, 1))) / 16 * 16
                let chunk = equalChunk(columns: cols, widest: widest)
                let items = (cols + chunk - 1) / chunk * taps * groups
                let parts = min(Parallel.threads, items), per = (items + parts - 1) / parts
                let pp = UnsafePointer(padded.p), gp = gwt.p, extra = partials.p
                Parallel.forRange(parts) { range in
                    let tile = Scratch(floats: chunk * cout)
                    defer { tile.release() }
                    for part in range {
                        let acc = part == 0 ? gp : extra + (part - 1) * accumulator
                        var loaded = -1
                        for item in min(items, part * per)..<min(items, (part + 1) * per) {
                            let c = item / (taps * groups), rest = item - c * taps * groups
                            let tap = rest / groups, gi = rest - tap * groups
                            let ki = tap / kw, kj = tap - ki * kw, j0 = c * chunk, nj = min(chunk, cols - j0)
                            if c != loaded {
                                loadWideColumnsTransposed(gy, rows: cout, columns: j0..<(j0 + nj), L, firstImage: f,
                                                          tile.p)
                                loaded = c
                            }
                            HeadKernels.gemm(m: cinG, n: coutG, k: nj, alpha: 1,
                                             a: pp + gi * cinG * sld + L.tapOffset(tap) + j0, ars: sld, acs: 1,
                                             b: tile.p + gi * coutG, ldb: cout, beta: 1,
                                             c: acc + ((ki * cin + gi * cinG) * kw + kj) * coutG, ldc: kw * coutG)
                        }
                    }
                }
            } else {
                // Upstream gradient in wide rows, zero in the discarded columns.
                Parallel.forRange(cout * images, grain: max(1, 16384 / max(plane, 1))) { range in
                    for t in range {
                        let co = t / images, nl = t - co * images
                        let s = gy + ((f + nl) * cout + co) * oh * ow
                        let d = w + co * cols + nl * plane
                        d.update(repeating: 0, count: nl == images - 1 ? oh * wp : plane)
                        for y in 0..<oh { (d + y * wp).update(from: s + y * ow, count: ow) }
                    }
                }
                // Transposed product (padded rows × wideᵀ): BLAS then packs the big padded rows
                // with its contiguous copy instead of the transposing one.
                for ki in 0..<kh {
                    for gi in 0..<groups {
                        BLAS.sgemm(transA: false, transB: true, m: kk, n: coutG, k: cols,
                                   a: padded.p + gi * kk * ld + L.shift(ki), lda: ld,
                                   b: wide.p + gi * coutG * cols, ldb: cols,
                                   beta: 1, c: gwt.p + (ki * cin + gi * cinG) * kw * coutG, ldc: coutG)
                    }
                }
            }
            first += L.images
        }
        for part in 0..<extraParts {
            let src = partials.p + part * accumulator
            for i in 0..<accumulator { gwt.p[i] += src[i] }
        }
        // [kH, Cin, kW, CoutG] → [Cout, CinG, kH, kW].
        for gi in 0..<groups {
            for o in 0..<coutG {
                for c in 0..<cinG {
                    let d = gw + ((gi * coutG + o) * cinG + c) * kh * kw
                    for ki in 0..<kh {
                        for kj in 0..<kw {
                            d[ki * kw + kj] += gwt.p[((ki * cin + gi * cinG + c) * kw + kj) * coutG + o]
                        }
                    }
                }
            }
        }
    }
}

/// A pooled float buffer for kernel temporaries (reused across calls instead of faulting in
/// fresh pages each time).
struct Scratch {
    let p: UnsafeMutablePointer<Float>
    let bytes: Int

    init(floats: Int) {
        bytes = max(floats, 1) * MemoryLayout<Float>.stride
        p = StoragePool.allocate(byteCount: bytes).bindMemory(to: Float.self, capacity: max(floats, 1))
    }

    func release() { StoragePool.release(UnsafeMutableRawPointer(p), byteCount: bytes) }
}
