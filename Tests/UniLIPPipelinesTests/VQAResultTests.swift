import ShapesWorld
import UniLIPCore
import UniLIPPipelines
import XCTest

final class VQAResultTests: XCTestCase {
    /// Scoring by type and by object count, and telling a position answer that names another
    /// object's cell (a binding error) from one that names no object's cell.
    func testScoresByObjectCountAndSpotsAnotherObjectsCell() throws {
        let world = ShapesWorld(seed: 0)
        var k = 0
        while world.scene(.test, k).objects.count != 3 { k += 1 }
        var scene = world.scene(.test, k)
        scene.objects[0].x = 0.1; scene.objects[0].y = 0.1   // top left
        scene.objects[1].x = 0.9; scene.objects[1].y = 0.9   // bottom right
        scene.objects[2].x = 0.5; scene.objects[2].y = 0.5   // center
        var rng = RandomGenerator(seed: 1)
        let qas = Captioner.questions(for: scene, rng: &rng)
        let positions = qas.filter { $0.type == .position }
        XCTAssertEqual(positions.map(\.answer), ["top left", "bottom right", "center"])
        var result = VQAResult()
        result.add(positions[0], scene: scene, answer: "top left")       // right
        result.add(positions[1], scene: scene, answer: "center")         // the third object's cell
        result.add(positions[2], scene: scene, answer: "top right")      // no object there
        let size = try XCTUnwrap(qas.first { $0.type == .size })
        result.add(size, scene: scene, answer: size.answer)
        XCTAssertEqual(result.byType.accuracy("position"), 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(result.byObjectCount.total["position 3"], 3)
        XCTAssertEqual(result.byObjectCount.correct["position 3"], 1)
        XCTAssertEqual(result.byObjectCount.total["size 3"], 1)
        XCTAssertEqual(result.wrongPositions, 2)
        XCTAssertEqual(result.wrongPositionsOfAnotherObject, 1)
        XCTAssertEqual(result.byType.overall, 0.5, accuracy: 1e-12)
    }
}
