/// The procedural image world: scenes of 1–4 flat, saturated shapes on muted, textured
/// backgrounds. Object colours are saturated and backgrounds are not, so a scene can be parsed
/// back from pixels without learning (see `SceneParser`).

public enum ShapeKind: String, Codable, CaseIterable, Sendable {
    case circle, square, triangle, diamond
}

public enum ObjectColor: String, Codable, CaseIterable, Sendable {
    case red, green, blue, yellow, purple, orange, cyan

    /// sRGB values, far apart and fully saturated.
    public var rgb: (UInt8, UInt8, UInt8) {
        switch self {
        case .red: return (225, 35, 35)
        case .green: return (35, 185, 55)
        case .blue: return (40, 75, 230)
        case .yellow: return (235, 215, 35)
        case .purple: return (150, 50, 205)
        case .orange: return (245, 135, 25)
        case .cyan: return (30, 200, 215)
        }
    }
}

public enum SizeClass: String, Codable, CaseIterable, Sendable {
    case small, medium, large

    /// Half the shape's extent as a fraction of the image side.
    public var radius: Double {
        switch self {
        case .small: return 0.085
        case .medium: return 0.125
        case .large: return 0.175
        }
    }
}

public struct SceneObject: Codable, Equatable, Sendable {
    public var shape: ShapeKind
    public var color: ObjectColor
    public var size: SizeClass
    /// Centre in [0, 1] image coordinates (x to the right, y down).
    public var x: Double
    public var y: Double

    public init(shape: ShapeKind, color: ObjectColor, size: SizeClass, x: Double, y: Double) {
        self.shape = shape
        self.color = color
        self.size = size
        self.x = x
        self.y = y
    }

    /// Horizontal third: left, center or right.
    public var column: String { x < 1.0 / 3 ? "left" : (x < 2.0 / 3 ? "center" : "right") }
    /// Vertical third: top, middle or bottom.
    public var row: String { y < 1.0 / 3 ? "top" : (y < 2.0 / 3 ? "middle" : "bottom") }

    /// A short name such as "red circle".
    public var name: String { "\(color.rawValue) \(shape.rawValue)" }
}

public enum BackgroundKind: String, Codable, CaseIterable, Sendable {
    case noise, gradient, stripes, checker, waves
}

/// A muted background: two low-saturation tones combined by a pattern, plus fine noise.
public struct Background: Codable, Equatable, Sendable {
    public var kind: BackgroundKind
    public var tone1: [UInt8]
    public var tone2: [UInt8]
    /// Pattern period in pixels at 64×64 (scaled with resolution).
    public var period: Double
    /// Pattern angle in radians.
    public var angle: Double
    /// Seed of the per-pixel noise.
    public var noiseSeed: UInt64
    /// Amplitude of the per-pixel noise, in 8-bit levels.
    public var noise: Double

    /// The name used in captions, such as "striped".
    public var adjective: String {
        switch kind {
        case .noise: return "grainy"
        case .gradient: return "gradient"
        case .stripes: return "striped"
        case .checker: return "checkered"
        case .waves: return "wavy"
        }
    }
}

/// A scene graph: a background and objects drawn in order (later ones on top).
public struct Scene: Codable, Equatable, Sendable {
    public var background: Background
    public var objects: [SceneObject]

    public init(background: Background, objects: [SceneObject]) {
        self.background = background
        self.objects = objects
    }

    public func objects(with shape: ShapeKind) -> [SceneObject] { objects.filter { $0.shape == shape } }
    public func object(with color: ObjectColor) -> SceneObject? { objects.first { $0.color == color } }
    public var usedColors: Set<ObjectColor> { Set(objects.map(\.color)) }
}
