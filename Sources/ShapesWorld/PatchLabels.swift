import Foundation

/// Dense per-patch targets for an encoder: which object covers each patch of a rendered scene,
/// by its shape, its colour and where its centre lies. A patch is labelled with the object
/// covering most of its pixels when objects cover at least an eighth of it, else background
/// (class 0). Shapes are 1 + `ShapeKind` index, colours 1 + `ObjectColor` index, and the centre's
/// column and row 1 + its bin among `positionBins` equal bins of the image; all in row-major
/// patch order.
public struct PatchLabels: Equatable, Sendable {
    public static let shapeClasses = ShapeKind.allCases.count + 1
    public static let colorClasses = ObjectColor.allCases.count + 1
    /// Bins of the object centre's x and y: a multiple of 3, so each bin lies in one third of
    /// the image (the position answers' grid), and fine enough (5⅓ px at 64 px) to order objects
    /// whose centres differ by a tenth of the image (the relation questions' margin).
    public static let positionBins = 12
    public static let positionClasses = positionBins + 1
    /// The class counts of every target, in order: [shapes, colours, columns, rows]. A head
    /// trains on the first n of them (`targets(_:)`).
    public static let allClasses = [shapeClasses, colorClasses, positionClasses, positionClasses]
    /// The targets' names, in `allClasses` order.
    public static let targetNames = ["shape", "color", "column", "row"]
    /// The class counts of the shape and colour targets alone.
    public static let classes = Array(allClasses.prefix(2))

    public let shapes: [Int]
    public let colors: [Int]
    /// The covering object's centre bin from the left, and from the top.
    public let columns: [Int]
    public let rows: [Int]

    /// The first `count` target arrays, in `allClasses` order.
    public func targets(_ count: Int) -> [[Int]] {
        precondition((1...Self.allClasses.count).contains(count),
                     "PatchLabels: \(count) targets asked, 1 to \(Self.allClasses.count) exist")
        return Array([shapes, colors, columns, rows].prefix(count))
    }

    /// How many targets a head trained on the first n of them has, from its output width (the
    /// sum of their class counts); nil when no prefix of `allClasses` sums to `width`.
    public static func targetCount(headWidth width: Int) -> Int? {
        (1...allClasses.count).first { allClasses.prefix($0).reduce(0, +) == width }
    }

    /// 1 + the bin of a centre coordinate in [0, 1].
    static func positionClass(_ t: Double) -> Int {
        1 + Swift.min(positionBins - 1, Swift.max(0, Int(t * Double(positionBins))))
    }

    public init(scene: Scene, size: Int, patch: Int) {
        precondition(patch > 0 && size % patch == 0, "PatchLabels: patch \(patch) must divide size \(size)")
        let owner = Renderer.objectMap(scene, size: size)
        let grid = size / patch
        var shapes = [Int](repeating: 0, count: grid * grid)
        var colors = shapes, columns = shapes, rows = shapes
        var counts = [Int](repeating: 0, count: scene.objects.count)
        for gy in 0..<grid {
            for gx in 0..<grid {
                for i in counts.indices { counts[i] = 0 }
                for y in gy * patch..<(gy + 1) * patch {
                    for x in gx * patch..<(gx + 1) * patch where owner[y * size + x] >= 0 {
                        counts[owner[y * size + x]] += 1
                    }
                }
                // The most-covering object; ties go to the one drawn later (it is on top).
                guard let best = counts.indices.max(by: { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }),
                      counts.reduce(0, +) * 8 >= patch * patch else { continue }
                let object = scene.objects[best]
                shapes[gy * grid + gx] = ShapeKind.allCases.firstIndex(of: object.shape)! + 1
                colors[gy * grid + gx] = ObjectColor.allCases.firstIndex(of: object.color)! + 1
                columns[gy * grid + gx] = Self.positionClass(object.x)
                rows[gy * grid + gx] = Self.positionClass(object.y)
            }
        }
        self.shapes = shapes
        self.colors = colors
        self.columns = columns
        self.rows = rows
    }
}
