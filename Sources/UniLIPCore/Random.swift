import Foundation

/// A seeded random source (xoshiro256** seeded by SplitMix64). The same seed gives the same
/// sequence on every run and machine.
public struct RandomGenerator: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }

    /// Standard normal (Box–Muller, one value per call for a simple, reproducible stream).
    public mutating func normal() -> Float {
        let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(Swift.max(u1, 1e-300))).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Normal(mean, std) truncated to [a, b] (absolute bounds), by rejection.
    public mutating func truncatedNormal(mean: Float = 0, std: Float = 1, a: Float = -2, b: Float = 2) -> Float {
        precondition(a < b, "truncatedNormal: empty interval")
        for _ in 0..<1000 {
            let v = mean + std * normal()
            if v >= a && v <= b { return v }
        }
        return Swift.min(Swift.max(mean, a), b)
    }

    /// Uniform integer in 0..<n.
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

extension Tensor {
    public static func uniform(_ shape: [Int], _ lo: Float = 0, _ hi: Float = 1,
                               rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.pointer[i] = rng.uniform(lo, hi) }
        t.requiresGrad = requiresGrad
        return t
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                              rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.pointer[i] = mean + std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, a: Float = -2, b: Float = 2,
                                       rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.pointer[i] = rng.truncatedNormal(mean: mean, std: std, a: a, b: b) }
        t.requiresGrad = requiresGrad
        return t
    }
}
