import ShapesWorld
import UniLIPCore
import UniLIPIO
import XCTest

final class PatchLabelsTests: XCTestCase {
    /// The object map marks exactly the pixels `render` paints with each object's colour, and
    /// leaves the background's pixels alone.
    func testObjectMapMatchesRendering() {
        let world = ShapesWorld(seed: 0)
        for i in 0..<30 {
            var scene = world.scene(.train, i)
            let image = Renderer.render(scene, size: 64)
            let owner = Renderer.objectMap(scene, size: 64)
            scene.objects = []
            let background = Renderer.render(scene, size: 64)
            let objects = world.scene(.train, i).objects
            for p in 0..<64 * 64 {
                let rgb = (0..<3).map { image.pixels[p * 3 + $0] }
                if owner[p] >= 0 {
                    let c = objects[owner[p]].color.rgb
                    XCTAssertEqual(rgb, [c.0, c.1, c.2], "scene \(i) pixel \(p)")
                } else {
                    XCTAssertEqual(rgb, (0..<3).map { background.pixels[p * 3 + $0] }, "scene \(i) pixel \(p)")
                }
            }
        }
    }

    /// A large square at the centre spans pixels 22…41: patches it fills, or covers a quarter of,
    /// take its labels; a patch it only touches at a 2×2 corner stays background.
    func testLabelsOfOneSquare() {
        let square = SceneObject(shape: .square, color: .blue, size: .large, x: 0.5, y: 0.5)
        let scene = Scene(background: ShapesWorld(seed: 0).scene(.train, 0).background, objects: [square])
        let labels = PatchLabels(scene: scene, size: 64, patch: 8)
        let squareClass = ShapeKind.allCases.firstIndex(of: .square)! + 1
        let blueClass = ObjectColor.allCases.firstIndex(of: .blue)! + 1
        XCTAssertEqual(labels.shapes.count, 64)
        XCTAssertEqual(labels.shapes[3 * 8 + 3], squareClass, "filled")
        XCTAssertEqual(labels.colors[3 * 8 + 3], blueClass)
        XCTAssertEqual(labels.shapes[2 * 8 + 3], squareClass, "a quarter covered")
        XCTAssertEqual(labels.shapes[2 * 8 + 2], 0, "4 of 64 pixels")
        XCTAssertEqual(labels.shapes[0], 0)
        XCTAssertEqual(labels.colors[0], 0)
        XCTAssertEqual(labels.shapes.filter { $0 != 0 }.count, 12, "4×4 patches less the corners")
    }

    /// Where two objects overlap, the one drawn later owns the pixels, as on screen.
    func testLaterObjectOwnsOverlap() {
        let under = SceneObject(shape: .circle, color: .red, size: .large, x: 0.5, y: 0.5)
        let over = SceneObject(shape: .diamond, color: .green, size: .large, x: 0.5, y: 0.5)
        let scene = Scene(background: ShapesWorld(seed: 0).scene(.train, 0).background, objects: [under, over])
        XCTAssertEqual(Renderer.objectMap(scene, size: 64)[32 * 64 + 32], 1)
        let labels = PatchLabels(scene: scene, size: 64, patch: 8)
        XCTAssertEqual(labels.colors[3 * 8 + 3], ObjectColor.allCases.firstIndex(of: .green)! + 1)
    }
}
