/// The one copy kernel behind permute, slice, concat, pad and repeat (and their backward passes).
extension Kernels {
    /// Side of the square tiles used when the copy transposes two axes.
    static let transposeTile = 16

    /// Copies an n-d block: `dst[Σ iₖ·dstStrides[k]] = src[Σ iₖ·srcStrides[k]]` for every index
    /// in `shape`. Source strides may be zero (broadcast); destination elements must be distinct.
    ///
    /// Unit axes are dropped and neighbouring axes that are contiguous in both operands are
    /// merged first, so most copies become a few long `memcpy` rows. When the innermost written
    /// axis is strided in the source but the next one is not (a transpose of the last two axes),
    /// the copy runs in cache-sized tiles.
    public static func stridedCopy(shape: [Int], src: UnsafePointer<Float>, srcStrides: [Int],
                                   dst: UnsafeMutablePointer<Float>, dstStrides: [Int]) {
        precondition(shape.count == srcStrides.count && shape.count == dstStrides.count,
                     "stridedCopy: shape \(shape), strides \(srcStrides) and \(dstStrides) differ in rank")
        var dims: [Int] = [], ss: [Int] = [], ds: [Int] = []
        for k in 0..<shape.count {
            let n = shape[k]
            if n == 0 { return }
            if n == 1 { continue }
            let last = dims.count - 1
            if last >= 0 && ss[last] == srcStrides[k] * n && ds[last] == dstStrides[k] * n {
                dims[last] *= n
                ss[last] = srcStrides[k]
                ds[last] = dstStrides[k]
            } else {
                dims.append(n); ss.append(srcStrides[k]); ds.append(dstStrides[k])
            }
        }
        let rank = dims.count
        if rank == 0 {
            dst[0] = src[0]
            return
        }
        if rank == 1 {
            let s = ss[0], d = ds[0]
            Parallel.forRange(dims[0], grain: grain) { r in
                if s == 1 && d == 1 {
                    (dst + r.lowerBound).update(from: src + r.lowerBound, count: r.count)
                } else {
                    for i in r { dst[i * d] = src[i * s] }
                }
            }
            return
        }
        if ds[rank - 1] == 1 && ss[rank - 2] == 1 && ss[rank - 1] != 1
            && dims[rank - 1] >= 8 && dims[rank - 2] >= 8 {
            tiledTranspose(dims, ss, ds, src, dst)
            return
        }

        let inner = dims[rank - 1], sIn = ss[rank - 1], dIn = ds[rank - 1]
        let rows = dims[..<(rank - 1)].reduce(1, *)
        let outerRank = rank - 1
        Parallel.forRange(rows, grain: Swift.max(1, grain / inner)) { r in
            // Odometer over the outer axes, started at the chunk's first row.
            var idx = [Int](repeating: 0, count: outerRank)
            var so = 0, dO = 0
            var rem = r.lowerBound
            var k = outerRank - 1
            while k >= 0 {
                idx[k] = rem % dims[k]
                rem /= dims[k]
                so += idx[k] * ss[k]
                dO += idx[k] * ds[k]
                k -= 1
            }
            for _ in r {
                let s = src + so, d = dst + dO
                if sIn == 1 && dIn == 1 {
                    d.update(from: s, count: inner)
                } else {
                    for j in 0..<inner { d[j * dIn] = s[j * sIn] }
                }
                var a = outerRank - 1
                while a >= 0 {
                    idx[a] += 1
                    so += ss[a]
                    dO += ds[a]
                    if idx[a] < dims[a] { break }
                    so -= ss[a] * dims[a]
                    dO -= ds[a] * dims[a]
                    idx[a] = 0
                    a -= 1
                }
            }
        }
    }

    /// Copy whose last two (merged) axes are a transpose: the source is contiguous along axis
    /// rank-2 and the destination along axis rank-1. Works on square tiles, and inside them on
    /// 8×8 blocks transposed in registers (eight vector loads, eight vector stores).
    private static func tiledTranspose(_ dims: [Int], _ ss: [Int], _ ds: [Int],
                                       _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
        let rank = dims.count
        let rowsN = dims[rank - 2], colsN = dims[rank - 1]
        let sCol = ss[rank - 1], dRow = ds[rank - 2]
        let tile = transposeTile
        let rowTiles = (rowsN + tile - 1) / tile
        let batch = dims[..<(rank - 2)].reduce(1, *)
        let items = batch * rowTiles
        Parallel.forRange(items, grain: Swift.max(1, grain / (tile * colsN))) { r in
            for item in r {
                let b = item / rowTiles, rt = item % rowTiles
                var so = 0, dO = 0
                var rem = b
                var k = rank - 3
                while k >= 0 {
                    let i = rem % dims[k]
                    rem /= dims[k]
                    so += i * ss[k]
                    dO += i * ds[k]
                    k -= 1
                }
                let s = src + so, d = dst + dO
                let r0 = rt * tile, r1 = Swift.min(rowsN, r0 + tile)
                let r8 = r0 + (r1 - r0) / 8 * 8
                var c0 = 0
                while c0 < colsN {
                    let c1 = Swift.min(colsN, c0 + tile)
                    let c8 = c0 + (c1 - c0) / 8 * 8
                    var row = r0
                    while row < r8 {
                        var col = c0
                        while col < c8 {
                            transpose8x8(s + row + col * sCol, sCol, d + row * dRow + col, dRow)
                            col += 8
                        }
                        for rr in row..<(row + 8) {
                            for cc in c8..<c1 { d[rr * dRow + cc] = s[rr + cc * sCol] }
                        }
                        row += 8
                    }
                    for rr in r8..<r1 {
                        for cc in c0..<c1 { d[rr * dRow + cc] = s[rr + cc * sCol] }
                    }
                    c0 = c1
                }
            }
        }
    }

    /// dst[i·dStride + k] = src[k·sStride + i] for i, k in 0..<8.
    @inline(__always)
    static func transpose8x8(_ src: UnsafePointer<Float>, _ sStride: Int,
                             _ dst: UnsafeMutablePointer<Float>, _ dStride: Int) {
        let raw = UnsafeRawPointer(src)
        let a0 = raw.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
        let a1 = raw.loadUnaligned(fromByteOffset: sStride * 4, as: SIMD8<Float>.self)
        let a2 = raw.loadUnaligned(fromByteOffset: 2 * sStride * 4, as: SIMD8<Float>.self)
        let a3 = raw.loadUnaligned(fromByteOffset: 3 * sStride * 4, as: SIMD8<Float>.self)
        let a4 = raw.loadUnaligned(fromByteOffset: 4 * sStride * 4, as: SIMD8<Float>.self)
        let a5 = raw.loadUnaligned(fromByteOffset: 5 * sStride * 4, as: SIMD8<Float>.self)
        let a6 = raw.loadUnaligned(fromByteOffset: 6 * sStride * 4, as: SIMD8<Float>.self)
        let a7 = raw.loadUnaligned(fromByteOffset: 7 * sStride * 4, as: SIMD8<Float>.self)
        for i in 0..<8 {
            let column = SIMD8<Float>(a0[i], a1[i], a2[i], a3[i], a4[i], a5[i], a6[i], a7[i])
            UnsafeMutableRawPointer(dst + i * dStride).storeBytes(of: column, as: SIMD8<Float>.self)
        }
    }
}
