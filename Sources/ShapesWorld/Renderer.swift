import Foundation
import UniLIPCore
import UniLIPIO

/// Draws scenes. Pure function of the scene and the resolution.
public enum Renderer {
    public static func render(_ scene: Scene, size: Int = 64) -> Image {
        var px = background(scene.background, size: size)
        for object in scene.objects { draw(object, into: &px, size: size) }
        return Image(width: size, height: size, channels: 3, pixels: px)
    }

    static func background(_ bg: Background, size: Int) -> [UInt8] {
        var px = [UInt8](repeating: 0, count: size * size * 3)
        var rng = RandomGenerator(seed: bg.noiseSeed)
        let scale = Double(size) / 64
        let period = bg.period * scale
        let (ca, sa) = (cos(bg.angle), sin(bg.angle))
        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) * ca + Double(y) * sa
                let v = -Double(x) * sa + Double(y) * ca
                let mix: Double
                switch bg.kind {
                case .noise: mix = Double(rng.uniform())
                case .gradient: mix = Swift.min(Swift.max((u / Double(size) + 0.5) * 0.8, 0), 1)
                case .stripes: mix = Int(floor(u / period)) & 1 == 0 ? 0 : 1
                case .checker: mix = (Int(floor(u / period)) + Int(floor(v / period))) & 1 == 0 ? 0 : 1
                case .waves: mix = 0.5 + 0.25 * sin(2 * .pi * u / period) + 0.25 * sin(2 * .pi * v / (period * 1.7))
                }
                let jitter = (Double(rng.uniform()) - 0.5) * 2 * bg.noise
                for c in 0..<3 {
                    let value = Double(bg.tone1[c]) * (1 - mix) + Double(bg.tone2[c]) * mix + jitter
                    px[(y * size + x) * 3 + c] = UInt8(Swift.min(Swift.max(value.rounded(), 0), 255))
                }
            }
        }
        return px
    }

    /// Whether pixel centre (px, py), in units of the half-extent around the object centre, is inside.
    static func inside(_ shape: ShapeKind, _ dx: Double, _ dy: Double) -> Bool {
        switch shape {
        case .circle: return dx * dx + dy * dy <= 1
        case .square: return Swift.abs(dx) <= 0.9 && Swift.abs(dy) <= 0.9
        case .diamond: return Swift.abs(dx) + Swift.abs(dy) <= 1.05
        case .triangle:
            // Apex up, base down, spanning dy in [-1, 0.9].
            guard dy >= -1 && dy <= 0.9 else { return false }
            return Swift.abs(dx) <= (dy + 1) / 1.9 * 1.05
        }
    }

    static func draw(_ object: SceneObject, into px: inout [UInt8], size: Int) {
        let (cr, cg, cb) = object.color.rgb
        forEachPixel(of: object, size: size) { p in
            px[p * 3] = cr
            px[p * 3 + 1] = cg
            px[p * 3 + 2] = cb
        }
    }

    /// Per pixel (row-major), the index in `scene.objects` of the object drawn there last, or −1
    /// for background: what `render` paints, as labels.
    public static func objectMap(_ scene: Scene, size: Int = 64) -> [Int] {
        var owner = [Int](repeating: -1, count: size * size)
        for (k, object) in scene.objects.enumerated() {
            forEachPixel(of: object, size: size) { owner[$0] = k }
        }
        return owner
    }

    /// Calls `body` with the row-major index of every pixel whose centre lies inside the object.
    static func forEachPixel(of object: SceneObject, size: Int, _ body: (Int) -> Void) {
        let r = object.size.radius * Double(size)
        let cx = object.x * Double(size), cy = object.y * Double(size)
        let lo = Swift.max(0, Int(floor(cy - r - 1))), hi = Swift.min(size - 1, Int(ceil(cy + r + 1)))
        let left = Swift.max(0, Int(floor(cx - r - 1))), right = Swift.min(size - 1, Int(ceil(cx + r + 1)))
        guard lo <= hi && left <= right else { return }
        for y in lo...hi {
            for x in left...right {
                let dx = (Double(x) + 0.5 - cx) / r, dy = (Double(y) + 0.5 - cy) / r
                if inside(object.shape, dx, dy) { body(y * size + x) }
            }
        }
    }
}
