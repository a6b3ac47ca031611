import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines
import UniLIPText
import XCTest

/// A random-weight generation model on 16 px images: the micro autoencoder (2×2 latents of 8
/// channels), a 24-wide two-layer LLM, 4 queries, a one-layer DiT.
enum MicroGeneration {
    static func model() throws -> GenerationModel {
        let corpus = InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 30)
        let tokenizer = try BPETrainer.train(texts: corpus, vocabSize: 300)
        var rng = RandomGenerator(seed: 4)
        let llm = Qwen2Config(vocabSize: tokenizer.vocabSize, hiddenSize: 24, intermediateSize: 32, numHiddenLayers: 2,
                              numAttentionHeads: 2, numKeyValueHeads: 1)
        let chat = InternVLChatModel(InternVLChatConfig(vision: MicroAutoencoder.vision, llm: llm, imageSize: 16), rng: &rng)
        let autoencoder = MicroAutoencoder.model(seed: 6)
        try chat.useEncoder(of: autoencoder)
        let dit = SanaConfig(inChannels: 8, outChannels: 8, numAttentionHeads: 2, attentionHeadDim: 8, numLayers: 1,
                             numCrossAttentionHeads: 2, crossAttentionHeadDim: 8, crossAttentionDim: 16,
                             captionChannels: 16, sampleSize: 2)
        let generator = UniLIPGenerator(UniLIPGeneratorConfig(numQueries: 4, connectLayers: 1, llmConfig: llm, ditConfig: dit),
                                        rng: &rng)
        generator.initConnector(from: chat.language.model)
        return try GenerationModel(generator: generator, mllm: chat, autoencoder: autoencoder, tokenizer: tokenizer)
    }
}

final class GenerationPipelineTests: XCTestCase {
    static var shared: GenerationPipeline?

    func pipeline() throws -> GenerationPipeline {
        if let p = Self.shared { return p }
        let p = GenerationPipeline(model: try MicroGeneration.model())
        Self.shared = p
        return p
    }

    let world = ShapesWorld(seed: 0)

    func testGenerateAndEditGiveImagesOfTheModelSizeReproducibly() throws {
        let p = try pipeline()
        XCTAssertEqual(p.model.referenceTokenCount, 4)
        let prompts = ["a small red circle on a striped background.", "There is one object: a blue square."]
        let options = ImageGenerationOptions(steps: 2, seed: 3)
        let a = try p.generate(prompts, options: options)
        XCTAssertEqual(a.map { [$0.width, $0.height, $0.channels] }, [[16, 16, 3], [16, 16, 3]])
        XCTAssertEqual(try p.generate(prompts, options: options), a)
        var other = options
        other.seed = 4
        XCTAssertNotEqual(try p.generate(prompts, options: other), a, "the seed must matter")
        var unguided = options
        unguided.guidanceScale = 1
        XCTAssertEqual(try p.generate(prompts, options: unguided).count, 2)

        // Edit inputs of another size are resized to the model's 16 px.
        let before = world.image(world.sample(.test, 0).scene)
        XCTAssertEqual(p.referencePixels([before]).shape, [1, 3, 16, 16])
        let edited = try p.edit([before, before.resized(width: 20, height: 30)],
                                instructions: ["Make the red circle blue.", "Remove the green square."], options: options)
        XCTAssertEqual(edited.map { [$0.width, $0.height] }, [[16, 16], [16, 16]])
        XCTAssertEqual(try p.edit([before, before.resized(width: 20, height: 30)],
                                  instructions: ["Make the red circle blue.", "Remove the green square."], options: options), edited)
        // The reference image matters.
        let blank = Image(width: 64, height: 64, channels: 3, fill: 128)
        XCTAssertNotEqual(try p.edit([blank], instructions: ["Make the red circle blue."], options: options)[0], edited[0])
    }

    func testRequestErrorsAreClear() throws {
        let p = try pipeline()
        let options = ImageGenerationOptions(steps: 2)
        func expect(_ body: @autoclosure () throws -> [Image], mentioning word: String, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { error in
                XCTAssertTrue("\(error)".contains(word), "'\(error)' should mention \(word)", line: line)
            }
        }
        expect(try p.generate(["  "], options: options), mentioning: "empty")
        expect(try p.generate(["a red circle.", ""], options: options), mentioning: "prompt 2 is empty")
        expect(try p.generate([], options: options), mentioning: "no prompts")
        expect(try p.generate(["a <img> circle"], options: options), mentioning: "reserved token")
        expect(try p.generate([String(repeating: "a red circle and ", count: 100)], options: options), mentioning: "the limit is 256")
        p.maxPromptTokens = 3
        expect(try p.generate(["a small red circle on a striped background."], options: options), mentioning: "the limit is 3")
        p.maxPromptTokens = 256
        expect(try p.generate(["a red circle."], options: ImageGenerationOptions(steps: 0)), mentioning: "steps")
        expect(try p.generate(["a red circle."], options: ImageGenerationOptions(steps: -2)), mentioning: "steps")
        let image = world.image(world.sample(.test, 1).scene)
        expect(try p.edit([image, image], instructions: ["Remove the red circle."], options: options), mentioning: "2 images for 1 instructions")
        expect(try p.edit([image], instructions: [" \n"], options: options), mentioning: "the instruction is empty")
        expect(try p.edit([image], instructions: ["Remove it."], options: ImageGenerationOptions(steps: 0)), mentioning: "steps")
        XCTAssertThrowsError(try p.generate(["a red circle."], options: ImageGenerationOptions(steps: 0))) {
            guard case .invalidOptions? = $0 as? ImageGenerationError else { return XCTFail("\($0)") }
        }
    }

    func testFalseFromProgressCancels() throws {
        let p = try pipeline()
        var seen: [Int] = []
        XCTAssertThrowsError(try p.generate(["a red circle."], options: ImageGenerationOptions(steps: 4)) { step, total in
            seen.append(step)
            XCTAssertEqual(total, 4)
            return step < 2
        }) { XCTAssertEqual($0 as? ImageGenerationError, .cancelled(step: 2, total: 4)) }
        XCTAssertEqual(seen, [1, 2])
        let image = world.image(world.sample(.test, 2).scene)
        XCTAssertThrowsError(try p.edit([image], instructions: ["Remove the red circle."],
                                        options: ImageGenerationOptions(steps: 3)) { _, _ in false }) {
            XCTAssertEqual($0 as? ImageGenerationError, .cancelled(step: 1, total: 3))
        }
    }

    func testEvaluationsRunEndToEnd() throws {
        let p = try pipeline()
        let small = ShapesWorld(seed: 0, resolution: 16)
        let specs = Array(GenerationEvaluation.specs(.colors, count: 2, world: small))
        let result = try GenerationEvaluation.evaluate(p, specs: specs, samples: 2, options: ImageGenerationOptions(steps: 1))
        XCTAssertEqual(result.images.map(\.count), [2, 2])
        XCTAssertEqual(result.score.total[.colors], 4)
        XCTAssertEqual(result.ignoringShape.total[.colors], 4)
        XCTAssertEqual(GenerationEvaluation.grid(result.images).width, 2 * 32 + 2)
        XCTAssertEqual(GenerationEvaluation.grid(result.images, breaks: [1]).width, 2 * 32 + 8)
        let cases = EditingEvaluation.cases(world: small, scenes: 1)
        let (edits, outputs) = try EditingEvaluation.evaluate(p, cases: cases, options: ImageGenerationOptions(steps: 1))
        XCTAssertEqual(outputs.count, cases.count)
        XCTAssertEqual(edits.total.values.reduce(0, +), cases.count)
        let table = EditingEvaluation.table([("micro", edits)])
        XCTAssertTrue(table.contains("| micro |"), table)
    }
}

final class GenerationBenchmarkTests: XCTestCase {
    let world = ShapesWorld(seed: 0)

    func testPromptsAreDeterministicInDistributionAndHoldOutEveryFourth() {
        for c in GenerationCategory.allCases {
            let a = GenerationEvaluation.specs(c, count: 12, world: world)
            let b = GenerationEvaluation.specs(c, count: 12, world: world)
            XCTAssertEqual(a.map(\.prompt), b.map(\.prompt), "\(c)")
            XCTAssertEqual(Set(a.map(\.prompt)).count, 12, "\(c): prompts should differ")
            for s in a {
                XCTAssertEqual(s.heldOut, s.index % 4 == 3, "\(c) \(s.index): \(s.prompt)")
                // Every phrasing is one of the captions the world writes for that scene.
                var rng = RandomGenerator(seed: 0)
                let captions = Captioner.captions(for: s.scene, rng: &rng)
                XCTAssertTrue(captions.contains(s.prompt) || c == .twoObjects || c == .colorAttribution || c == .counting,
                              "\(c): \(s.prompt)")
                for o in s.scene.objects { XCTAssertTrue(s.prompt.contains("\(o.color.rawValue) \(o.shape.rawValue)"), s.prompt) }
            }
        }
        XCTAssertTrue(GenerationEvaluation.specs(.counting, count: 8, world: world).allSatisfy { $0.prompt.hasPrefix("There are ") })
        XCTAssertTrue(GenerationEvaluation.specs(.position, count: 8, world: world).allSatisfy { $0.prompt.contains(" at the ") })
    }

    /// Rendering the intended scene must pass, and a scene that breaks the prompt must fail.
    func testScoringPassesRenderedScenesAndFailsWrongOnes() {
        func rate(_ values: [Bool]) -> Double { Double(values.filter { $0 }.count) / Double(values.count) }
        for c in GenerationCategory.allCases {
            let specs = GenerationEvaluation.specs(c, count: 40, world: world)
            let right = rate(specs.map { $0.check(world.image($0.scene)) })
            XCTAssertGreaterThanOrEqual(right, 0.95, "\(c): rendered intended scenes pass only \(right)")
            // Every shape moved on by one kind.
            let shifted = rate(specs.map { s in
                var scene = s.scene
                for i in scene.objects.indices {
                    let k = ShapeKind.allCases.firstIndex(of: scene.objects[i].shape) ?? 0
                    scene.objects[i].shape = ShapeKind.allCases[(k + 1) % ShapeKind.allCases.count]
                }
                return s.check(world.image(scene))
            })
            XCTAssertLessThanOrEqual(shifted, 0.05, "\(c): scenes with other shapes pass \(shifted)")
            // With shapes ignored, the intended scene and the reshaped one both pass.
            XCTAssertGreaterThanOrEqual(rate(specs.map { $0.check(world.image($0.scene), ignoringShape: true) }), 0.95, "\(c)")
            let shiftedLoose = rate(specs.map { s in
                var scene = s.scene
                for i in scene.objects.indices { scene.objects[i].shape = scene.objects[i].shape == .square ? .circle : .square }
                return s.check(world.image(scene), ignoringShape: true)
            })
            XCTAssertGreaterThanOrEqual(shiftedLoose, 0.95, "\(c): shapes must not matter when ignored")
        }
        // An object the prompt does not name fails every category.
        for c in GenerationCategory.allCases {
            let extra = GenerationEvaluation.specs(c, count: 20, world: world).map { s -> Bool? in
                var scene = s.scene
                guard let color = ObjectColor.allCases.first(where: { !scene.usedColors.contains($0) }) else { return nil }
                // A small square in a free cell, overlapping nothing.
                let thirds: [Double] = [1.0 / 6, 0.5, 5.0 / 6]
                var cell: (Double, Double)? = nil
                for y in thirds {
                    for x in thirds where cell == nil {
                        let free = scene.objects.allSatisfy { o in
                            let dx: Double = o.x - x, dy: Double = o.y - y
                            return (dx * dx + dy * dy).squareRoot() > o.size.radius + 0.1
                        }
                        if free { cell = (x, y) }
                    }
                }
                guard let cell else { return nil }
                scene.objects.append(SceneObject(shape: .square, color: color, size: .small, x: cell.0, y: cell.1))
                return s.check(world.image(scene))
            }.compactMap { $0 }
            XCTAssertGreaterThan(extra.count, 10, "\(c)")
            XCTAssertEqual(extra.filter { $0 }.count, 0, "\(c)")
        }
        // Position: the object in another cell fails.
        let moved = GenerationEvaluation.specs(.position, count: 40, world: world).map { s -> Bool in
            var scene = s.scene
            scene.objects[0].x = scene.objects[0].x < 0.5 ? 0.8 : 0.2
            scene.objects[0].size = .small
            return s.check(world.image(scene))
        }
        XCTAssertEqual(moved.filter { $0 }.count, 0)
        let movedLoose = GenerationEvaluation.specs(.position, count: 40, world: world).map { s -> Bool in
            var scene = s.scene
            scene.objects[0].x = scene.objects[0].x < 0.5 ? 0.8 : 0.2
            scene.objects[0].size = .small
            return s.check(world.image(scene), ignoringShape: true)
        }
        XCTAssertEqual(movedLoose.filter { $0 }.count, 0, "position still counts when shapes are ignored")
        // Colour attribution: swapping the colours breaks both bindings.
        let swapped = GenerationEvaluation.specs(.colorAttribution, count: 40, world: world).map { s -> Bool in
            var scene = s.scene
            (scene.objects[0].color, scene.objects[1].color) = (scene.objects[1].color, scene.objects[0].color)
            return s.check(world.image(scene))
        }
        XCTAssertEqual(swapped.filter { $0 }.count, 0)
        // Counting: one object fewer fails.
        let fewer = GenerationEvaluation.specs(.counting, count: 40, world: world).map { s -> Bool in
            var scene = s.scene
            scene.objects.removeLast()
            return s.check(world.image(scene))
        }
        XCTAssertEqual(fewer.filter { $0 }.count, 0)
    }

    func testScoreAveragesCategoriesAndKeepsHeldOutApart() {
        let specs = GenerationEvaluation.allSpecs(perCategory: 4, world: world)
        var score = GenerationScore()
        for s in specs { score.add(s, s.category == .counting || s.heldOut) }
        XCTAssertEqual(score.score(.counting), 1)
        XCTAssertEqual(score.score(.position), 0)
        XCTAssertEqual(score.overall, 1.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(score.heldOut, 1)
        XCTAssertEqual(score.heldOutTotal.values.reduce(0, +), 6)
        XCTAssertEqual(score.total.values.reduce(0, +), 18)
        let table = GenerationEvaluation.table([("m", score)])
        XCTAssertTrue(table.contains("| m | in distribution | 0.0% | 0.0% | 100.0% | 0.0% | 0.0% | 0.0% | 16.7% |"), table)
        XCTAssertTrue(table.contains("| m | held-out combinations | 100.0% | 100.0% | 100.0% | 100.0% | 100.0% | 100.0% | 100.0% |"), table)
    }

    /// The edit rule: the rendered target passes, the unedited input fails.
    func testEditRulePassesTargetsAndFailsInputs() {
        let cases = EditingEvaluation.cases(world: world, scenes: 40)
        var after = EditingScore(), before = EditingScore()
        for c in cases {
            let ok = EditingEvaluation.outcome(c.after, for: c)
            after.add(c.edit.type, ok)
            before.add(c.edit.type, EditingEvaluation.outcome(c.before, for: c))
            if let p = ok.preservedPSNR { XCTAssertEqual(p, 100, "the rendered target keeps the unchanged pixels exactly") }
        }
        for t in EditType.allCases {
            XCTAssertGreaterThan(after.total[t] ?? 0, 5, "\(t)")
            XCTAssertGreaterThanOrEqual(after.success(t), 0.9, "\(t): rendered targets pass only \(after.success(t))")
            XCTAssertLessThanOrEqual(before.success(t), 0.1, "\(t): unedited inputs pass \(before.success(t))")
            XCTAssertGreaterThanOrEqual(after.success(t, ignoringShape: true), 0.9, "\(t)")
            if t != .replace {
                XCTAssertLessThanOrEqual(before.success(t, ignoringShape: true), 0.1, "\(t): unedited inputs pass with shapes ignored")
            }
        }
        XCTAssertTrue(after.psnr(.background).isNaN || (after.psnrCount[.background] ?? 0) < (after.total[.background] ?? 0))
        XCTAssertFalse(after.psnr(.recolor).isNaN)
    }

    /// Failure reasons: none on the rendered targets, the edit left undone on the inputs, and a
    /// misplaced object named by the row or column it got wrong.
    func testFailureReasonsNameWhatTheOutputGotWrong() throws {
        let cases = EditingEvaluation.cases(world: world, scenes: 40)
        let clean = cases.filter { EditingEvaluation.outcome($0.after, for: $0).failures.isEmpty }.count
        XCTAssertGreaterThanOrEqual(Double(clean), 0.9 * Double(cases.count))
        func reasons(on input: EditType) -> [[String]] {
            cases.filter { $0.edit.type == input }.map { EditingEvaluation.outcome($0.before, for: $0).failures }
        }
        for (type, expected) in [(EditType.move, "not moved"), (.add, "missing"), (.remove, "extra"),
                                 (.background, "background unchanged")] {
            let all = reasons(on: type)
            let named = all.filter { $0.contains(expected) }.count
            XCTAssertGreaterThanOrEqual(Double(named), 0.9 * Double(all.count), "\(type): \(all.prefix(5))")
        }
        let scene = try XCTUnwrap(cases.first?.edit.before)
        func placed(_ x: Double, _ y: Double) -> Scene {
            Scene(background: scene.background, objects: [SceneObject(shape: .square, color: .red, size: .medium, x: x, y: y)])
        }
        let before = placed(0.5, 0.5), target = placed(1.0 / 6, 1.0 / 6)
        let low = 1.0 / 6, high = 5.0 / 6
        let outputs: [(x: Double, y: Double, reasons: [String])] = [
            (low, high, ["row"]), (high, low, ["column"]), (high, high, ["row and column"]),
            (0.5, 0.5, ["not moved"]), (low, low, []),
        ]
        for o in outputs {
            let parsed = SceneParser.parse(world.image(placed(o.x, o.y)))
            XCTAssertEqual(EditingEvaluation.misses(parsed, before: before, after: target), o.reasons, "\(o.x), \(o.y)")
        }
    }
}
