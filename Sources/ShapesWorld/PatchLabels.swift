import Foundation

/// Dense per-patch targets for an encoder: which shape and colour cover each patch of a
/// rendered scene. A patch is labelled with the object covering most of its pixels when objects
/// cover at least an eighth of it, else background (class 0). Shapes are 1 + `ShapeKind` index
/// and colours 1 + `ObjectColor` index, both in row-major patch order.
public struct PatchLabels: Equatable, Sendable {
    public static let shapeClasses = ShapeKind.allCases.count + 1
    public static let colorClasses = ObjectColor.allCases.count + 1
    /// The class counts of the targets, in order: [shapes, colours].
    public static let classes = [shapeClasses, colorClasses]

    public let shapes: [Int]
    public let colors: [Int]

    public init(scene: Scene, size: Int, patch: Int) {
        precondition(patch > 0 && size % patch == 0, "PatchLabels: patch \(patch) must divide size \(size)")
        let owner = Renderer.objectMap(scene, size: size)
        let grid = size / patch
        var shapes = [Int](repeating: 0, count: grid * grid)
        var colors = shapes
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
            }
        }
        self.shapes = shapes
        self.colors = colors
    }
}
