/// Storage element types found in checkpoints. Compute is always Float32.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    public var byteSize: Int { self == .f32 ? 4 : 2 }

    /// Converts `count` stored elements at `src` (any alignment) into Float32 at `dst`.
    public func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                for i in r {
                    let bits = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                    dst[i] = Float(Float16(bitPattern: bits))
                }
            }
        case .bf16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                for i in r {
                    let bits = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                    dst[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            }
        }
    }

    /// Converts Float32 values to this type's bytes (round to nearest even).
    public func encode(_ src: UnsafePointer<Float>, count: Int) -> [UInt8] {
        if count == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: count * byteSize)
        bytes.withUnsafeMutableBytes { raw in
            switch self {
            case .f32:
                raw.baseAddress!.copyMemory(from: src, byteCount: count * 4)
            case .f16:
                for i in 0..<count {
                    raw.storeBytes(of: Float16(src[i]).bitPattern, toByteOffset: i * 2, as: UInt16.self)
                }
            case .bf16:
                for i in 0..<count {
                    raw.storeBytes(of: DType.bf16Bits(src[i]), toByteOffset: i * 2, as: UInt16.self)
                }
            }
        }
        return bytes
    }

    /// Float32 → BF16 bits with round-to-nearest-even; NaN stays NaN.
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
