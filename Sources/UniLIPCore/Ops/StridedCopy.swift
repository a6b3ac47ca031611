/// The one copy kernel behind permute, slice, concat, pad and repeat (and their backward passes).
extension Kernels {
    /// Side of the square tiles used when the copy transposes two axes.
    static let transposeTile = 32

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
        let rows = dims.count == 1 ? 1 : dims[..<(rank - 1)].reduce(1, *)
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
    /// rank-2 and the destination along axis rank-1. Works on square tiles so that both the
    /// reads and the writes stay within a few cache lines.
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
                let r0 = rt * tile, r1 = Swift.min(rowsN, r0 + tile)
                var c0 = 0
                while c0 < colsN {
                    let c1 = Swift.min(colsN, c0 + tile)
                    for row in r0..<r1 {
                        let s = src + so + row
                        let d = dst + dO + row * dRow
                        for c in c0..<c1 { d[c] = s[c * sCol] }
                    }
                    c0 = c1
                }
            }
        }
    }
}
