import Foundation
import UniLIPCore
import UniLIPIO

/// Dataset splits. Train, validation and test draw from disjoint seed streams and never contain
/// a held-out (colour, shape) combination; `heldOut` scenes contain at least one.
public enum Split: String, Codable, CaseIterable, Sendable {
    case train, validation, test, heldOut

    var streamTag: UInt64 {
        switch self {
        case .train: return 0x7472_6169
        case .validation: return 0x7661_6C69
        case .test: return 0x7465_7374
        case .heldOut: return 0x686F_6C64
        }
    }
}

/// One generated example: the scene graph, its texts and its edits.
public struct WorldSample: Sendable {
    public let split: Split
    public let index: Int
    public let scene: Scene
    public let captions: [String]
    public let questions: [QuestionAnswer]
    public let edits: [Edit]
}

/// The procedural world. Deterministic: the same (seed, split, index) always gives the same sample.
public struct ShapesWorld: Sendable {
    /// (colour, shape) pairs that never appear in train, validation or test scenes.
    public static let heldOutPairs: [(color: ObjectColor, shape: ShapeKind)] = [
        (.red, .triangle), (.blue, .circle), (.green, .diamond), (.yellow, .square),
    ]

    public var seed: UInt64
    public var resolution: Int
    public var maxObjects: Int

    public init(seed: UInt64 = 0, resolution: Int = 64, maxObjects: Int = 4) {
        precondition(resolution >= 16, "ShapesWorld resolution must be at least 16 (got \(resolution))")
        precondition((1...4).contains(maxObjects), "maxObjects must be 1…4")
        self.seed = seed
        self.resolution = resolution
        self.maxObjects = maxObjects
    }

    public static func isHeldOut(_ color: ObjectColor, _ shape: ShapeKind) -> Bool {
        heldOutPairs.contains { $0.color == color && $0.shape == shape }
    }

    func rng(_ split: Split, _ index: Int, salt: UInt64 = 0) -> RandomGenerator {
        var mixer = RandomGenerator(seed: seed ^ (split.streamTag &* 0x9E37_79B9_7F4A_7C15))
        let base = mixer.next()
        return RandomGenerator(seed: base ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03) ^ salt)
    }

    public func sample(_ split: Split, _ index: Int) -> WorldSample {
        var r = rng(split, index)
        let scene = makeScene(split: split, rng: &r)
        var textRNG = rng(split, index, salt: 0x7465_7874)
        var editRNG = rng(split, index, salt: 0x6564_6974)
        return WorldSample(
            split: split, index: index, scene: scene,
            captions: Captioner.captions(for: scene, rng: &textRNG),
            questions: Captioner.questions(for: scene, rng: &textRNG),
            edits: Editor.edits(for: scene, allowHeldOut: split == .heldOut, rng: &editRNG))
    }

    /// Scene `index` of a split alone (the same scene `sample` returns, without its texts).
    public func scene(_ split: Split, _ index: Int) -> Scene {
        var r = rng(split, index)
        return makeScene(split: split, rng: &r)
    }

    public func image(_ scene: Scene) -> Image { Renderer.render(scene, size: resolution) }

    // MARK: Scene sampling

    func makeScene(split: Split, rng: inout RandomGenerator) -> Scene {
        let background = Self.randomBackground(rng: &rng)
        for _ in 0..<64 {
            let n = 1 + rng.int(maxObjects)
            var colors = ObjectColor.allCases
            var objects: [SceneObject] = []
            for _ in 0..<n {
                let color = colors.remove(at: rng.int(colors.count))
                var shape = ShapeKind.allCases[rng.int(ShapeKind.allCases.count)]
                if split != .heldOut {
                    while Self.isHeldOut(color, shape) { shape = ShapeKind.allCases[rng.int(ShapeKind.allCases.count)] }
                }
                let size = SizeClass.allCases[rng.int(SizeClass.allCases.count)]
                guard let (x, y) = Self.freePosition(size: size, avoiding: objects, rng: &rng) else { continue }
                objects.append(SceneObject(shape: shape, color: color, size: size, x: x, y: y))
            }
            guard !objects.isEmpty else { continue }
            if split == .heldOut {
                // Turn one object into a held-out combination whose colour is still free.
                let i = rng.int(objects.count)
                let others = Set(objects.enumerated().filter { $0.offset != i }.map(\.element.color))
                let options = Self.heldOutPairs.filter { !others.contains($0.color) }
                guard !options.isEmpty else { continue }
                let pick = options[rng.int(options.count)]
                objects[i].color = pick.color
                objects[i].shape = pick.shape
            }
            return Scene(background: background, objects: objects)
        }
        preconditionFailure("ShapesWorld could not place any object")  // one object always fits
    }

    static func randomBackground(rng: inout RandomGenerator) -> Background {
        func tone() -> [UInt8] {
            let base = 70 + rng.int(120)
            return (0..<3).map { _ in UInt8(base + rng.int(31) - 15) }
        }
        let kind = BackgroundKind.allCases[rng.int(BackgroundKind.allCases.count)]
        return Background(kind: kind, tone1: tone(), tone2: tone(), period: 3 + Double(rng.int(7)),
                          angle: Double(rng.uniform()) * .pi, noiseSeed: rng.next(),
                          noise: 3 + Double(rng.int(10)))
    }

    /// A centre for an object of `size` that keeps it inside the image, overlapping others at
    /// most slightly, and away from the thirds' boundaries (so position words are unambiguous).
    static func freePosition(size: SizeClass, avoiding others: [SceneObject],
                             rng: inout RandomGenerator) -> (Double, Double)? {
        let r = size.radius
        for _ in 0..<200 {
            let x = r + Double(rng.uniform()) * (1 - 2 * r)
            let y = r + Double(rng.uniform()) * (1 - 2 * r)
            guard nearThirds(x) == false && nearThirds(y) == false else { continue }
            let clear = others.allSatisfy { o in
                let d = ((o.x - x) * (o.x - x) + (o.y - y) * (o.y - y)).squareRoot()
                return d >= (o.size.radius + r) * 0.95
            }
            if clear { return (x, y) }
        }
        return nil
    }

    static func nearThirds(_ v: Double) -> Bool {
        Swift.abs(v - 1.0 / 3) < 0.035 || Swift.abs(v - 2.0 / 3) < 0.035
    }
}
