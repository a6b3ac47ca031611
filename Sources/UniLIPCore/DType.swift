/// Storage element types found in checkpoints. Compute is always Float32.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    public var byteSize: Int { self == .f32 ? 4 : 2 }

    /// Size in bits of every element type the safetensors format defines, so that files holding
    /// integer or 8-bit tensors can still be listed and validated. Nil for names not in the format.
    public static func bitSize(ofSafetensorsName name: String) -> Int? {
        switch name {
        case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0": return 8
        case "U16", "I16", "F16", "BF16": return 16
        case "U32", "I32", "F32": return 32
        case "U64", "I64", "F64", "C64": return 64
        case "F6_E2M3", "F6_E3M2": return 6
        case "F4": return 4
        default: return nil
        }
    }

    /// Converts `count` stored elements at `src` (any alignment) into Float32 at `dst`.
    public func decode(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        switch self {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                // Eight at a time so the conversion compiles to vcvtph2ps.
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let bits = src.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)
                    let wide = SIMD8<Float>(unsafeBitCast(bits, to: SIMD8<Float16>.self))
                    UnsafeMutableRawPointer(dst + i).storeBytes(of: wide, as: SIMD8<Float>.self)
                    i += 8
                }
                while i < r.upperBound {
                    let bits = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                    dst[i] = Float(Float16(bitPattern: UInt16(littleEndian: bits)))
                    i += 1
                }
            }
        case .bf16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                for i in r {
                    let bits = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)
                    dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
                }
            }
        }
    }

    /// Converts `count` Float32 values into this type's little-endian bytes at `dst`
    /// (`count * byteSize` bytes, any alignment). F16 and BF16 round to nearest even;
    /// values beyond the F16 range become ±inf; NaN stays NaN.
    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        guard count > 0 else { return }
        switch self {
        case .f32:
            dst.copyMemory(from: src, byteCount: count * 4)
        case .f16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                // Eight at a time so the conversion compiles to vcvtps2ph (round to nearest even).
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let x = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self)
                    let bits = unsafeBitCast(SIMD8<Float16>(x), to: SIMD8<UInt16>.self)
                    dst.storeBytes(of: bits, toByteOffset: i * 2, as: SIMD8<UInt16>.self)
                    i += 8
                }
                while i < r.upperBound {
                    dst.storeBytes(of: Float16(src[i]).bitPattern.littleEndian, toByteOffset: i * 2, as: UInt16.self)
                    i += 1
                }
            }
        case .bf16:
            Parallel.forRange(count, grain: Kernels.grain) { r in
                for i in r {
                    dst.storeBytes(of: DType.bf16Bits(src[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
            }
        }
    }

    /// Converts Float32 values to this type's bytes (round to nearest even).
    public func encode(_ src: UnsafePointer<Float>, count: Int) -> [UInt8] {
        if count == 0 { return [] }
        var bytes = [UInt8](repeating: 0, count: count * byteSize)
        bytes.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress { encode(src, count: count, into: base) }
        }
        return bytes
    }

    /// Float32 → BF16 bits with round-to-nearest-even; NaN stays a (quiet) NaN of the same sign.
    @inlinable
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// BF16 bits → Float32 (exact).
    @inlinable
    public static func float(bf16Bits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
