import Foundation
import UniLIPIO

/// An object recovered from pixels.
public struct ParsedObject: Equatable, Sendable {
    public let shape: ShapeKind
    public let color: ObjectColor
    public let size: SizeClass
    /// Bounding-box centre in [0, 1] image coordinates.
    public let x: Double
    public let y: Double
    public let pixelCount: Int

    public var column: String { x < 1.0 / 3 ? "left" : (x < 2.0 / 3 ? "center" : "right") }
    public var row: String { y < 1.0 / 3 ? "top" : (y < 2.0 / 3 ? "middle" : "bottom") }
}

/// Recovers the objects of a ShapesWorld image without learning: pixels are matched to the
/// saturated palette, the largest 4-connected component of each colour is one object, and the
/// shape is the one whose drawn outline (`Renderer.inside`), fitted to the component's box over a
/// few scales and sub-pixel shifts, overlaps it best (IoU). Fitting whole outlines rather than
/// thresholding how full the box is keeps squares square when a decoder rounds their corners.
public enum SceneParser {
    /// Largest RGB distance for a pixel to count as a palette colour.
    public static let colorTolerance = 80.0
    /// Smallest component, as a fraction of the area of the smallest object class.
    public static let minAreaFraction = 0.3

    public static func parse(_ input: Image) -> [ParsedObject] {
        let image = input.channels == 3 ? input : input.rgb()
        let (w, h) = (image.width, image.height)
        let palette = ObjectColor.allCases
        var label = [Int8](repeating: -1, count: w * h)
        for i in 0..<(w * h) {
            let r = Double(image.pixels[i * 3]), g = Double(image.pixels[i * 3 + 1]), b = Double(image.pixels[i * 3 + 2])
            guard Swift.max(r, g, b) - Swift.min(r, g, b) >= 80 else { continue }
            var best = -1
            var bestDistance = colorTolerance * colorTolerance
            for (k, c) in palette.enumerated() {
                let (pr, pg, pb) = c.rgb
                let d = (r - Double(pr)) * (r - Double(pr)) + (g - Double(pg)) * (g - Double(pg)) + (b - Double(pb)) * (b - Double(pb))
                if d < bestDistance { bestDistance = d; best = k }
            }
            label[i] = Int8(best)
        }
        let side = Double(Swift.min(w, h))
        let smallArea = SizeClass.small.radius * side * 2 * SizeClass.small.radius * side * 2 * 0.5
        var out: [ParsedObject] = []
        for (k, color) in palette.enumerated() {
            guard let component = largestComponent(label, Int8(k), w, h),
                  Double(component.count) >= smallArea * minAreaFraction else { continue }
            out.append(describe(component, color: color, width: w, height: h))
        }
        return out
    }

    static func largestComponent(_ label: [Int8], _ k: Int8, _ w: Int, _ h: Int) -> [Int]? {
        var seen = [Bool](repeating: false, count: w * h)
        var best: [Int]? = nil
        for start in 0..<(w * h) where label[start] == k && !seen[start] {
            var stack = [start]
            var members: [Int] = []
            seen[start] = true
            while let p = stack.popLast() {
                members.append(p)
                let x = p % w, y = p / w
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && ny >= 0 && nx < w && ny < h {
                    let q = ny * w + nx
                    if label[q] == k && !seen[q] { seen[q] = true; stack.append(q) }
                }
            }
            if members.count > (best?.count ?? 0) { best = members }
        }
        return best
    }

    static func describe(_ pixels: [Int], color: ObjectColor, width w: Int, height h: Int) -> ParsedObject {
        var (minX, maxX, minY, maxY) = (Int.max, Int.min, Int.max, Int.min)
        for p in pixels {
            let x = p % w, y = p / w
            minX = Swift.min(minX, x); maxX = Swift.max(maxX, x)
            minY = Swift.min(minY, y); maxY = Swift.max(maxY, y)
        }
        let bw = maxX - minX + 1, bh = maxY - minY + 1
        var mask = [Bool](repeating: false, count: bw * bh)
        for p in pixels { mask[(p / w - minY) * bw + (p % w - minX)] = true }
        let (shape, fitted) = bestFit(mask: mask, width: bw, height: bh, area: pixels.count)
        // The fitted radius undoes the shape's drawn extent and what blur took off the edges.
        let radius = fitted / Double(Swift.min(w, h))
        let size: SizeClass = radius < 0.105 ? .small : (radius < 0.15 ? .medium : .large)
        return ParsedObject(shape: shape, color: color, size: size,
                            x: (Double(minX + maxX) + 1) / 2 / Double(w),
                            y: (Double(minY + maxY) + 1) / 2 / Double(h), pixelCount: pixels.count)
    }

    /// Drawn extent of each shape's box in units of its radius (see `Renderer.inside`).
    static let extentFactor: [ShapeKind: Double] = [.square: 1.8, .circle: 2.0, .diamond: 2.1, .triangle: 2.0]
    /// Scales of the fitted radius around the box's: blur shrinks a thresholded mask, most at corners.
    static let fitScales = [0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2]
    /// Sub-pixel shifts of the fitted centre.
    static let fitShifts = [-1.0, -0.5, 0, 0.5, 1.0]

    /// The shape whose outline best overlaps `mask` (a component's box, row-major, `area` pixels
    /// set), and its radius in pixels.
    static func bestFit(mask: [Bool], width bw: Int, height bh: Int, area: Int) -> (shape: ShapeKind, radius: Double) {
        var best = (shape: ShapeKind.circle, radius: 0.0, iou: -1.0)
        for shape in ShapeKind.allCases {
            let base = Double(Swift.max(bw, bh)) / extentFactor[shape, default: 2]
            // The triangle's box is centred 0.05 r above its centre (it spans dy in [-1, 0.9]).
            let lift = shape == .triangle ? 0.05 : 0
            for scale in fitScales {
                let r = base * scale
                for sx in fitShifts {
                    for sy in fitShifts {
                        let cx = Double(bw) / 2 + sx, cy = Double(bh) / 2 + sy + lift * r
                        let iou = overlap(mask, bw, bh, area: area, shape: shape, cx: cx, cy: cy, r: r)
                        if iou > best.iou { best = (shape, r, iou) }
                    }
                }
            }
        }
        return (best.shape, best.radius)
    }

    /// IoU of `mask` with the shape drawn at (cx, cy) with radius r, in the box's pixel frame.
    static func overlap(_ mask: [Bool], _ bw: Int, _ bh: Int, area: Int, shape: ShapeKind,
                        cx: Double, cy: Double, r: Double) -> Double {
        var inter = 0, drawn = 0
        let lo = Int(floor(cy - r - 1)), hi = Int(ceil(cy + r + 1))
        let left = Int(floor(cx - r - 1)), right = Int(ceil(cx + r + 1))
        for y in lo...hi {
            for x in left...right {
                guard Renderer.inside(shape, (Double(x) + 0.5 - cx) / r, (Double(y) + 0.5 - cy) / r) else { continue }
                drawn += 1
                if x >= 0 && y >= 0 && x < bw && y < bh && mask[y * bw + x] { inter += 1 }
            }
        }
        return Double(inter) / Double(area + drawn - inter)
    }
}

/// Per-attribute agreement between parsed objects and a scene graph.
public struct ParseScore: Sendable {
    public var objects = 0
    public var found = 0
    public var shape = 0
    public var size = 0
    public var position = 0
    public var spurious = 0
    public var scenes = 0
    public var exactScenes = 0

    public init() {}

    /// Adds one image: objects are matched by colour (colours are unique in a scene).
    public mutating func add(parsed: [ParsedObject], truth: Scene) {
        scenes += 1
        var exact = parsed.count == truth.objects.count
        for o in truth.objects {
            objects += 1
            guard let p = parsed.first(where: { $0.color == o.color }) else { exact = false; continue }
            found += 1
            let okShape = p.shape == o.shape, okSize = p.size == o.size
            let okPosition = p.row == o.row && p.column == o.column
            shape += okShape ? 1 : 0
            size += okSize ? 1 : 0
            position += okPosition ? 1 : 0
            if !(okShape && okSize && okPosition) { exact = false }
        }
        spurious += parsed.filter { p in !truth.objects.contains { $0.color == p.color } }.count
        exactScenes += exact ? 1 : 0
    }

    public func rate(_ n: Int) -> Double { objects == 0 ? 0 : Double(n) / Double(objects) }
    public var sceneAccuracy: Double { scenes == 0 ? 0 : Double(exactScenes) / Double(scenes) }

    public var summary: String {
        func pct(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
        return "found \(pct(rate(found))), shape \(pct(rate(shape))), size \(pct(rate(size))), position \(pct(rate(position))), "
            + "spurious \(spurious), exact scenes \(pct(sceneAccuracy))"
    }
}
