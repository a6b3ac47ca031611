import UniLIPCore
import UniLIPNN

/// The patch discriminator of UniLIP's GAN loss (the TiTok / MaskGIT design): conv 5×5 +
/// LeakyReLU(0.1); three stages of conv 3×3 → blur-pool ↓2 (kernel [1,3,3,1]) → GroupNorm(32)
/// → LeakyReLU(0.1); conv 1×1 + LeakyReLU; conv 5×5 to one logit per patch. Widths are
/// base × (1, 1, 2, 4) (128 in the reference). The reference max-pools the last map to 16×16;
/// at ShapesWorld's 64 px the map is already 8×8, so the logits are used at their own size.
public final class PatchDiscriminator: Module, UnaryLayer {
    public let baseChannels: Int
    let convIn: Conv2d
    let stages: [(conv: Conv2d, norm: GroupNorm)]
    let convMid: Conv2d
    let convOut: Conv2d
    /// The fixed blur kernel [C, 1, 4, 4] per width, built on first use.
    private var blurKernels: [Int: Tensor] = [:]

    public init(baseChannels: Int = 128, rng: inout RandomGenerator) {
        precondition(baseChannels > 0 && baseChannels % 32 == 0, "PatchDiscriminator: width must be a multiple of 32 (GroupNorm(32))")
        self.baseChannels = baseChannels
        let widths = [baseChannels, baseChannels, 2 * baseChannels, 4 * baseChannels]
        convIn = Conv2d(3, widths[0], kernelSize: 5, padding: 2, rng: &rng)
        stages = (0..<3).map { i in
            (Conv2d(widths[i], widths[i + 1], kernelSize: 3, padding: 1, rng: &rng),
             GroupNorm(groups: 32, channels: widths[i + 1]))
        }
        convMid = Conv2d(widths[3], widths[3], kernelSize: 1, rng: &rng)
        convOut = Conv2d(widths[3], 1, kernelSize: 5, padding: 2, rng: &rng)
        super.init()
        child("conv_in", convIn)
        child("blocks", ModuleList(stages.map { s in
            let m = Module()
            m.child("conv", s.conv)
            m.child("norm", s.norm)
            return m
        }))
        child("conv_mid", convMid)
        child("conv_out", convOut)
    }

    /// Images in [−1, 1], [B, 3, H, W] (H, W multiples of 8) → patch logits [B, 1, H/8, W/8].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == 3 && x.shape[2] % 8 == 0 && x.shape[3] % 8 == 0,
                     "PatchDiscriminator: images must be [B, 3, H, W] with H, W multiples of 8, got \(x.shape)")
        var h = convIn(x).leakyRelu(0.1)
        for s in stages {
            h = s.norm(blurDown(s.conv(h))).leakyRelu(0.1)
        }
        return convOut(convMid(h).leakyRelu(0.1))
    }

    /// Anti-aliased ↓2: depthwise [1,3,3,1]ᵀ[1,3,3,1]/64, stride 2, padding 1.
    func blurDown(_ x: Tensor) -> Tensor {
        let c = x.shape[1]
        let kernel: Tensor
        if let k = blurKernels[c] {
            kernel = k
        } else {
            let taps: [Float] = [1, 3, 3, 1]
            var w = [Float]()
            for _ in 0..<c { for a in taps { for b in taps { w.append(a * b / 64) } } }
            kernel = Tensor(w, shape: [c, 1, 4, 4])
            blurKernels[c] = kernel
        }
        return x.conv2d(kernel, stride: (2, 2), padding: (1, 1), groups: c)
    }
}
