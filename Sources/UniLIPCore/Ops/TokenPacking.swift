/// Which positions of a padded [B, L] batch hold real tokens. Token-wise layers (projections,
/// norms, MLPs) can then run on the real tokens alone, packed as [T, F], while attention still
/// sees the padded [B, H, L, D] layout it masks. A third of a ShapesWorld chat batch is padding.
public struct TokenPacking: Sendable {
    public let batch: Int
    public let length: Int
    /// The row-major position b·L + p of each real token, in order.
    public let slots: [Int]
    /// Packed row of each position, or -1 at padding.
    let rows: [Int]

    /// From a key-padding mask [B, L]: nonzero marks a real token.
    public init(mask: Tensor) {
        precondition(mask.rank == 2, "TokenPacking: mask must be [B, L], got \(mask.shape)")
        batch = mask.shape[0]
        length = mask.shape[1]
        let m = mask.pointer
        var slots: [Int] = []
        var rows = [Int](repeating: -1, count: mask.count)
        for s in 0..<mask.count where m[s] != 0 {
            rows[s] = slots.count
            slots.append(s)
        }
        self.slots = slots
        self.rows = rows
    }

    /// Real tokens.
    public var count: Int { slots.count }
    /// True when no position is padding, so packing would only copy.
    public var isDense: Bool { slots.count == batch * length }
}

extension Tensor {
    /// [B, H, L, D] → [T, H·D]: the real tokens' rows with their heads side by side, as torch's
    /// `x.transpose(1, 2).reshape(B·L, H·D)[mask.flatten() != 0]`. Inverse of `unpackedHeads`.
    public func packedHeads(_ packing: TokenPacking) -> Tensor {
        precondition(rank == 4 && shape[0] == packing.batch && shape[2] == packing.length,
                     "packedHeads: input \(shape) for a [\(packing.batch), H, \(packing.length), D] packing")
        let h = shape[1], d = shape[3], l = packing.length
        let out = Tensor(uninitialized: [packing.count, h * d])
        let src = pointer, dst = out.pointer
        packing.slots.withUnsafeBufferPointer { slots in
            Parallel.forRange(slots.count, grain: Swift.max(1, Kernels.grain / Swift.max(h * d, 1))) { r in
                for t in r {
                    let b = slots[t] / l, p = slots[t] % l
                    for head in 0..<h {
                        (dst + (t * h + head) * d).update(from: src + ((b * h + head) * l + p) * d, count: d)
                    }
                }
            }
        }
        return out.recording("packed_heads", [self]) { g in [g.unpackedHeads(packing, heads: h)] }
    }

    /// [T, H·D] → [B, H, L, D] with zeros at padded positions. Inverse of `packedHeads`.
    public func unpackedHeads(_ packing: TokenPacking, heads h: Int) -> Tensor {
        precondition(rank == 2 && shape[0] == packing.count && h > 0 && shape[1] % h == 0,
                     "unpackedHeads: input \(shape) for \(packing.count) tokens of \(h) heads")
        let d = shape[1] / h, l = packing.length
        let out = Tensor(uninitialized: [packing.batch, h, l, d])
        let src = pointer, dst = out.pointer
        packing.rows.withUnsafeBufferPointer { rows in
            // One (batch, head) plane of L·D floats per iteration.
            Parallel.forRange(packing.batch * h, grain: Swift.max(1, Kernels.grain / Swift.max(l * d, 1))) { r in
                for plane in r {
                    let b = plane / h, head = plane % h
                    for p in 0..<l {
                        let o = dst + (plane * l + p) * d
                        let t = rows[b * l + p]
                        if t < 0 { o.update(repeating: 0, count: d) } else { o.update(from: src + (t * h + head) * d, count: d) }
                    }
                }
            }
        }
        return out.recording("unpacked_heads", [self]) { g in [g.packedHeads(packing)] }
    }

    /// [B, L, F] → [T, F]: the real tokens' rows.
    public func packedTokens(_ packing: TokenPacking) -> Tensor {
        precondition(rank == 3, "packedTokens: input must be [B, L, F], got \(shape)")
        return reshaped([shape[0], 1, shape[1], shape[2]]).packedHeads(packing)
    }

    /// [T, F] → [B, L, F] with zeros at padded positions.
    public func unpackedTokens(_ packing: TokenPacking) -> Tensor {
        unpackedHeads(packing, heads: 1).reshaped([packing.batch, packing.length, shape[1]])
    }
}
