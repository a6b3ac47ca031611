// Pixel shuffle / unshuffle (NCHW), as torch.nn.functional.pixel_shuffle / pixel_unshuffle:
// [N, C·r², H, W] ↔ [N, C, H·r, W·r] with out[n, c, h·r+i, w·r+j] = in[n, c·r²+i·r+j, h, w].

extension Tensor {
    /// [N, C·r², H, W] → [N, C, H·r, W·r].
    public func pixelShuffle(_ r: Int) -> Tensor {
        precondition(rank == 4, "pixelShuffle: input must be [N, C, H, W], got \(shape)")
        precondition(r >= 1 && shape[1] % (r * r) == 0,
                     "pixelShuffle: \(shape[1]) channels not divisible by \(r)²")
        let n = shape[0], c = shape[1] / (r * r), h = shape[2], w = shape[3]
        let out = Tensor(uninitialized: [n, c, h * r, w * r])
        Tensor.shuffleKernel(pointer, out.pointer, n: n, c: c, h: h, w: w, r: r, shuffle: true)
        return out.recording("pixel_shuffle", [self]) { g in [g.pixelUnshuffle(r)] }
    }

    /// [N, C, H·r, W·r] → [N, C·r², H, W].
    public func pixelUnshuffle(_ r: Int) -> Tensor {
        precondition(rank == 4, "pixelUnshuffle: input must be [N, C, H, W], got \(shape)")
        precondition(r >= 1 && shape[2] % r == 0 && shape[3] % r == 0,
                     "pixelUnshuffle: spatial size \(shape[2])×\(shape[3]) not divisible by \(r)")
        let n = shape[0], c = shape[1], h = shape[2] / r, w = shape[3] / r
        let out = Tensor(uninitialized: [n, c * r * r, h, w])
        Tensor.shuffleKernel(out.pointer, pointer, n: n, c: c, h: h, w: w, r: r, shuffle: false)
        return out.recording("pixel_unshuffle", [self]) { g in [g.pixelShuffle(r)] }
    }

    /// Moves values between the packed layout [N, C·r², H, W] and the spatial layout
    /// [N, C, H·r, W·r]: packed → spatial when `shuffle`, else spatial → packed.
    /// Work is split over rows of the spatial layout.
    static func shuffleKernel(_ packed: UnsafeMutablePointer<Float>, _ spatial: UnsafeMutablePointer<Float>,
                              n: Int, c: Int, h: Int, w: Int, r: Int, shuffle: Bool) {
        let rows = n * c * h * r
        let rowLength = w * r
        Parallel.forRange(rows, grain: Swift.max(1, Kernels.grain / Swift.max(rowLength, 1))) { range in
            for row in range {
                let y = row % (h * r), plane = row / (h * r)  // plane = n·C + c
                let hh = y / r, i = y - hh * r
                let srow = spatial + row * rowLength
                for j in 0..<r {
                    let prow = packed + ((plane * r * r + i * r + j) * h + hh) * w
                    if shuffle {
                        for x in 0..<w { srow[x * r + j] = prow[x] }
                    } else {
                        for x in 0..<w { prow[x] = srow[x * r + j] }
                    }
                }
            }
        }
    }
}
