import UniLIPCore
import UniLIPIO

/// Measures the scene parser on renders of a split, clean and degraded the way generated images
/// are (pixel noise, blur), so its own error is known before it scores models.
public enum ParserBenchmark {
    public enum Degradation: String, CaseIterable, Sendable {
        case clean, noisy, blurredNoisy = "blurred+noisy"
    }

    public static func score(world: ShapesWorld, split: Split, scenes: Int, degradation: Degradation,
                             noise: Double = 10, seed: UInt64 = 9) -> ParseScore {
        var rng = RandomGenerator(seed: seed)
        func degrade(_ image: Image) -> Image {
            var img = image
            if degradation == .blurredNoisy { img = boxBlur(img) }
            if degradation != .clean { img = addNoise(img, sigma: noise, rng: &rng) }
            return img
        }
        return score(world: world, split: split, scenes: scenes, transform: degrade, misread: { _, _ in })
    }

    /// The parser on `transform` of each render of scenes 0..<scenes (a degradation, or an
    /// autoencoder's reconstruction); `misread(i, image)` sees each image not read exactly.
    public static func score(world: ShapesWorld, split: Split, scenes: Int, transform: (Image) throws -> Image,
                             misread: (Int, Image) throws -> Void) rethrows -> ParseScore {
        var score = ParseScore()
        for i in 0..<scenes {
            let scene = world.sample(split, i).scene
            let image = try transform(world.image(scene))
            let exact = score.exactScenes
            score.add(parsed: SceneParser.parse(image), truth: scene)
            if score.exactScenes == exact { try misread(i, image) }
        }
        return score
    }

    /// Gaussian pixel noise with standard deviation `sigma` (8-bit levels), clamped.
    public static func addNoise(_ img: Image, sigma: Double, rng: inout RandomGenerator) -> Image {
        var out = img
        for j in 0..<out.pixels.count {
            let v = Double(out.pixels[j]) + Double(rng.normal()) * sigma
            out.pixels[j] = UInt8(Swift.min(Swift.max(v.rounded(), 0), 255))
        }
        return out
    }

    /// 3×3 box blur (edges average the pixels that exist).
    public static func boxBlur(_ img: Image) -> Image {
        var out = img
        let c = img.channels
        for y in 0..<img.height {
            for x in 0..<img.width {
                for ch in 0..<c {
                    var sum = 0, n = 0
                    for yy in Swift.max(0, y - 1)...Swift.min(img.height - 1, y + 1) {
                        for xx in Swift.max(0, x - 1)...Swift.min(img.width - 1, x + 1) {
                            sum += Int(img.pixels[(yy * img.width + xx) * c + ch])
                            n += 1
                        }
                    }
                    out.pixels[(y * img.width + x) * c + ch] = UInt8(sum / n)
                }
            }
        }
        return out
    }
}
