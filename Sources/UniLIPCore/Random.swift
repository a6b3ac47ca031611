import Foundation

/// A seeded random source (xoshiro256** seeded by SplitMix64). The same seed gives the same
/// sequence on every run and machine.
public struct RandomGenerator: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    /// False for `unfilled`: the random tensor constructors then return uninitialised tensors.
    public private(set) var fillsValues = true

    /// A generator for building modules whose every parameter a checkpoint will replace:
    /// `Tensor.uniform`, `normal` and `truncatedNormal` skip drawing and leave the memory
    /// untouched (so never resident until written).
    public static var unfilled: RandomGenerator {
        var g = RandomGenerator(seed: 0)
        g.fillsValues = false
        return g
    }

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
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        let v = lo + (hi - lo) * uniform()
        // Rounding can land exactly on hi; keep the interval half-open.
        return v < hi ? v : (hi > lo ? hi.nextDown : lo)
    }

    /// Standard normal (Box–Muller, one value per call for a simple, reproducible stream).
    public mutating func normal() -> Float {
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        return Float((-2 * Foundation.log(Swift.max(u1, 1e-300))).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Normal(mean, std) truncated to [a, b] (absolute bounds, as torch.nn.init.trunc_normal_).
    ///
    /// Exact rejection sampling whose proposal suits the interval, so far-tail or narrow
    /// intervals stay cheap: plain normal draws when the interval holds a good share of the
    /// mass, a uniform proposal for narrow intervals, and an exponential proposal (Robert, 1995)
    /// for wide one-sided tails.
    public mutating func truncatedNormal(mean: Float = 0, std: Float = 1, a: Float = -2, b: Float = 2) -> Float {
        precondition(a < b, "truncatedNormal: empty interval [\(a), \(b)]")
        precondition(std > 0, "truncatedNormal: std must be positive, got \(std)")
        let lo = (Double(a) - Double(mean)) / Double(std)
        let hi = (Double(b) - Double(mean)) / Double(std)
        let z = hi <= 0 ? -standardTruncatedNormal(-hi, -lo) : standardTruncatedNormal(lo, hi)
        // Rounding to Float can step just outside the bounds; clamp that last ulp.
        return Swift.min(Swift.max(Float(Double(mean) + Double(std) * z), a), b)
    }

    /// Standard normal truncated to [lo, hi] with hi > 0.
    private mutating func standardTruncatedNormal(_ lo: Double, _ hi: Double) -> Double {
        if lo <= 0 && Swift.min(hi, 1) - Swift.max(lo, -1) >= 0.5 {
            // The interval holds at least ~19 % of the mass: draw until one lands inside.
            while true {
                let v = Double(normal())
                if v >= lo && v <= hi { return v }
            }
        }
        let width = hi - lo
        if lo <= 0 || width * (lo + width / 2) < 1 {
            // Narrow interval: uniform proposal, accepted with exp((m² − z²)/2), where m is the
            // point of the interval nearest zero. The acceptance rate is at least 1/e.
            let m2 = lo > 0 ? lo * lo : 0
            while true {
                let z = lo + width * uniformDouble()
                if uniformDouble() <= Foundation.exp((m2 - z * z) / 2) { return z }
            }
        }
        // Wide tail above lo > 0: shifted exponential proposal with the optimal rate.
        let rate = (lo + (lo * lo + 4).squareRoot()) / 2
        while true {
            let z = lo - Foundation.log(1 - uniformDouble()) / rate
            if z > hi { continue }
            let d = z - rate
            if uniformDouble() <= Foundation.exp(-d * d / 2) { return z }
        }
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    @inline(__always)
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform integer in 0..<n, without modulo bias (Lemire's multiply-and-reject).
    public mutating func int(_ n: Int) -> Int {
        precondition(n > 0, "int(_:) needs a positive bound, got \(n)")
        let bound = UInt64(n)
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = next().multipliedFullWidth(by: bound) }
        }
        return Int(product.high)
    }
}

extension Tensor {
    public static func uniform(_ shape: [Int], _ lo: Float = 0, _ hi: Float = 1,
                               rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        guard rng.fillsValues else { t.requiresGrad = requiresGrad; return t }
        for i in 0..<t.count { t.pointer[i] = rng.uniform(lo, hi) }
        t.requiresGrad = requiresGrad
        return t
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                              rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        guard rng.fillsValues else { t.requiresGrad = requiresGrad; return t }
        for i in 0..<t.count { t.pointer[i] = mean + std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, a: Float = -2, b: Float = 2,
                                       rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        guard rng.fillsValues else { t.requiresGrad = requiresGrad; return t }
        for i in 0..<t.count { t.pointer[i] = rng.truncatedNormal(mean: mean, std: std, a: a, b: b) }
        t.requiresGrad = requiresGrad
        return t
    }
}
