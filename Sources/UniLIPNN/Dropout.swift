import UniLIPCore

/// Zeroes each element with probability `p` in training and scales the rest by 1/(1−p);
/// the identity in eval mode. Draws from its own seeded generator.
public final class Dropout: Module, UnaryLayer {
    public let p: Float
    public var rng: RandomGenerator

    public init(_ p: Float, rng: RandomGenerator = RandomGenerator(seed: 0)) {
        precondition(p >= 0 && p < 1, "Dropout: p = \(p) outside [0, 1)")
        self.p = p
        self.rng = rng
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard training, p > 0 else { return x }
        let mask = Tensor(uninitialized: x.shape)
        let keep = 1 / (1 - p)
        let m = mask.pointer
        for i in 0..<mask.count { m[i] = rng.uniform() < p ? 0 : keep }
        return x * mask
    }
}
