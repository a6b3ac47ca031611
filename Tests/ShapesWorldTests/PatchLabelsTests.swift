@testable import ShapesWorld
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

    /// Every covered patch of an object names the bins of the object's centre, not its own place:
    /// an off-centre circle's patches all say column 1 + ⌊0.3·12⌋ = 4, row 1 + ⌊0.7·12⌋ = 9.
    func testPositionLabelsNameTheObjectCentre() {
        let circle = SceneObject(shape: .circle, color: .red, size: .large, x: 0.3, y: 0.7)
        let scene = Scene(background: ShapesWorld(seed: 0).scene(.train, 0).background, objects: [circle])
        let labels = PatchLabels(scene: scene, size: 64, patch: 8)
        let covered = labels.shapes.indices.filter { labels.shapes[$0] != 0 }
        XCTAssertGreaterThan(covered.count, 4)
        XCTAssertEqual(Set(covered.map { labels.columns[$0] }), [4])
        XCTAssertEqual(Set(covered.map { labels.rows[$0] }), [9])
        XCTAssertTrue(labels.shapes.indices.filter { labels.shapes[$0] == 0 }.allSatisfy { labels.columns[$0] == 0 && labels.rows[$0] == 0 })
        XCTAssertEqual(labels.targets(4), [labels.shapes, labels.colors, labels.columns, labels.rows])
        XCTAssertEqual(labels.targets(2), [labels.shapes, labels.colors])
    }

    /// Each centre bin lies inside one third of the image, the one the position answers name, and
    /// the edges map to the first and last bins.
    func testPositionBinsNestInTheThirds() {
        let perThird = PatchLabels.positionBins / 3
        for i in 0...1000 {
            let t = Double(i) / 1000
            let bin = PatchLabels.positionClass(t) - 1
            XCTAssertTrue((0..<PatchLabels.positionBins).contains(bin))
            let object = SceneObject(shape: .circle, color: .red, size: .small, x: t, y: t)
            XCTAssertEqual(["left", "center", "right"][bin / perThird], object.column, "x \(t)")
            XCTAssertEqual(["top", "middle", "bottom"][bin / perThird], object.row, "y \(t)")
        }
        XCTAssertEqual(PatchLabels.allClasses, [PatchLabels.shapeClasses, PatchLabels.colorClasses, 13, 13])
        XCTAssertEqual(PatchLabels.targetNames.count, PatchLabels.allClasses.count)
        let two = PatchLabels.shapeClasses + PatchLabels.colorClasses
        XCTAssertEqual(PatchLabels.targetCount(headWidth: two), 2)
        XCTAssertEqual(PatchLabels.targetCount(headWidth: two + 26), 4)
        XCTAssertNil(PatchLabels.targetCount(headWidth: two + 1))
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
