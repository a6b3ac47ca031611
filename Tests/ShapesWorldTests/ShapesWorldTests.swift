import ShapesWorld
import UniLIPCore
import UniLIPIO
import XCTest

final class ShapesWorldTests: XCTestCase {
    let world = ShapesWorld(seed: 0)

    func testDeterministic() {
        let a = world.sample(.train, 17), b = world.sample(.train, 17)
        XCTAssertEqual(a.scene, b.scene)
        XCTAssertEqual(a.captions, b.captions)
        XCTAssertEqual(a.questions, b.questions)
        XCTAssertEqual(world.image(a.scene), world.image(b.scene))
        XCTAssertNotEqual(world.sample(.train, 18).scene, a.scene)
        XCTAssertNotEqual(ShapesWorld(seed: 1).sample(.train, 17).scene, a.scene)
    }

    func testSplitsDisjointAndHeldOutCombinations() {
        var seen = Set<String>()
        for i in 0..<300 {
            for split in [Split.train, .validation, .test] {
                let s = world.sample(split, i)
                XCTAssertFalse(s.scene.objects.contains { ShapesWorld.isHeldOut($0.color, $0.shape) }, "\(split) \(i)")
                for e in s.edits {
                    XCTAssertFalse(e.after.objects.contains { ShapesWorld.isHeldOut($0.color, $0.shape) },
                                   "\(split) \(i) \(e.type) creates a held-out combination")
                }
                seen.insert("\(split)" + String(describing: s.scene))
            }
            let h = world.sample(.heldOut, i)
            XCTAssertTrue(h.scene.objects.contains { ShapesWorld.isHeldOut($0.color, $0.shape) }, "held-out \(i)")
        }
        XCTAssertEqual(seen.count, 900, "scenes repeat across splits or indices")
    }

    func testScenesAreValid() {
        for i in 0..<200 {
            let s = world.sample(.train, i).scene
            XCTAssertTrue((1...4).contains(s.objects.count))
            XCTAssertEqual(Set(s.objects.map(\.color)).count, s.objects.count, "colours unique in a scene")
            for o in s.objects {
                XCTAssertGreaterThanOrEqual(o.x, o.size.radius - 1e-9)
                XCTAssertLessThanOrEqual(o.x, 1 - o.size.radius + 1e-9)
            }
        }
    }

    func testEditsChangeOnlyWhatTheySay() {
        var types = Set<EditType>()
        for i in 0..<100 {
            let s = world.sample(.train, i)
            for e in s.edits {
                types.insert(e.type)
                XCTAssertEqual(e.before, s.scene)
                switch e.type {
                case .background:
                    XCTAssertEqual(e.after.objects, e.before.objects)
                    XCTAssertNotEqual(e.after.background.kind, e.before.background.kind)
                case .add:
                    XCTAssertEqual(Array(e.after.objects.prefix(e.before.objects.count)), e.before.objects)
                    XCTAssertEqual(e.after.objects.count, e.before.objects.count + 1)
                case .remove:
                    XCTAssertEqual(e.after.objects.count, e.before.objects.count - 1)
                case .recolor, .replace, .move:
                    XCTAssertEqual(e.after.background, e.before.background)
                    XCTAssertEqual(e.after.objects.count, e.before.objects.count)
                    let changed = zip(e.after.objects, e.before.objects).filter { $0 != $1 }
                    XCTAssertEqual(changed.count, 1, "\(e.type) changes one object")
                }
            }
        }
        XCTAssertEqual(types, Set(EditType.allCases), "every edit type occurs")
    }

    func testTextsCoverEveryQuestionType() {
        var types = Set<QuestionType>()
        for i in 0..<50 {
            let s = world.sample(.train, i)
            XCTAssertEqual(s.captions.count, 4)
            for c in s.captions { for o in s.scene.objects { XCTAssertTrue(c.contains(o.color.rawValue), c) } }
            for q in s.questions { types.insert(q.type) }
        }
        XCTAssertEqual(types, Set(QuestionType.allCases))
    }

    func testUneditedPixelsIdentical() {
        // A recolour changes only pixels of the recoloured object.
        let s = world.sample(.test, 3)
        guard let e = s.edits.first(where: { $0.type == .recolor }) else { return XCTFail("no recolour edit") }
        let a = world.image(e.before), b = world.image(e.after)
        var changed = 0
        for i in 0..<(a.width * a.height) where a.pixels[(3 * i)..<(3 * i + 3)] != b.pixels[(3 * i)..<(3 * i + 3)] {
            changed += 1
        }
        XCTAssertGreaterThan(changed, 0)
        XCTAssertLessThan(changed, a.width * a.height / 4)
    }

    /// Two 3×3 box blurs (one for small shapes) round a square's corners and fill a diamond's;
    /// fitting whole outlines still names every shape and size.
    func testParserNamesShapesUnderHeavyBlur() {
        let background = world.sample(.test, 0).scene.background
        for shape in ShapeKind.allCases {
            for size in SizeClass.allCases {
                let object = SceneObject(shape: shape, color: .red, size: size, x: 0.45, y: 0.55)
                var image = ParserBenchmark.boxBlur(world.image(Scene(background: background, objects: [object])))
                // A small shape blurred twice is a blob of some 10 pixels across: no shape left to name.
                if size != .small { image = ParserBenchmark.boxBlur(image) }
                let parsed = SceneParser.parse(image)
                XCTAssertEqual(parsed.count, 1, "\(size) \(shape)")
                XCTAssertEqual(parsed.first?.shape, shape, "\(size) \(shape)")
                XCTAssertEqual(parsed.first?.size, size, "\(size) \(shape)")
                XCTAssertEqual(parsed.first.map { "\($0.row) \($0.column)" }, "middle center", "\(size) \(shape)")
            }
        }
    }

    /// The parser's own accuracy on clean and degraded renders (numbers printed for the docs).
    func testParserAccuracy() {
        for degradation in ParserBenchmark.Degradation.allCases {
            let score = ParserBenchmark.score(world: world, split: .test, scenes: 300, degradation: degradation)
            print("parser \(degradation.rawValue): \(score.summary)")
            XCTAssertGreaterThan(score.rate(score.found), 0.97, degradation.rawValue)
            XCTAssertGreaterThan(score.rate(score.shape), 0.96, degradation.rawValue)
            XCTAssertGreaterThan(score.rate(score.size), 0.98, degradation.rawValue)
            XCTAssertGreaterThan(score.rate(score.position), 0.95, degradation.rawValue)
        }
    }
}
