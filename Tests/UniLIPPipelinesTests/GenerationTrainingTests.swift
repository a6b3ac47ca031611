import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPPipelines
import UniLIPText
import XCTest

final class GenerationTrainingTests: XCTestCase {
    let world = ShapesWorld(seed: 0, resolution: 16)

    func tempDir() -> String {
        let p = NSTemporaryDirectory() + "unilip-gen-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    static let tokenizer: Tokenizer? = {
        let corpus = InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 30)
        return try? BPETrainer.train(texts: corpus, vocabSize: 300)
    }()

    func chatConfig(_ tokenizer: Tokenizer) -> InternVLChatConfig {
        InternVLChatConfig(vision: MicroAutoencoder.vision,
                           llm: Qwen2Config(vocabSize: tokenizer.vocabSize, hiddenSize: 24, intermediateSize: 32,
                                            numHiddenLayers: 2, numAttentionHeads: 2, numKeyValueHeads: 1),
                           imageSize: 16)
    }

    /// A micro generation model: 16 px images, 2×2 latents of 8 channels, 4 queries.
    func model(seed: UInt64 = 0) throws -> GenerationModel {
        let tokenizer = try XCTUnwrap(Self.tokenizer)
        var rng = RandomGenerator(seed: 7)
        let chat = InternVLChatModel(chatConfig(tokenizer), rng: &rng)
        var dit = SanaConfig.tiny
        dit.inChannels = 8
        dit.outChannels = 8
        dit.sampleSize = 2
        dit.numLayers = 1
        dit.numAttentionHeads = 2
        dit.attentionHeadDim = 8
        dit.numCrossAttentionHeads = 2
        dit.crossAttentionHeadDim = 8
        dit.crossAttentionDim = 16
        dit.captionChannels = 16
        let config = UniLIPGeneratorConfig(numQueries: 4, connectLayers: 1, llmConfig: chat.config.llmConfig,
                                           ditConfig: dit, latentScale: 2)
        var grng = RandomGenerator(seed: seed)
        return try GenerationModel(generator: UniLIPGenerator(config, rng: &grng), mllm: chat,
                                   autoencoder: MicroAutoencoder.model(), tokenizer: tokenizer)
    }

    func options(steps: Int = 4) -> GenerationTrainingOptions {
        GenerationTrainingOptions(schedule: TrainingSchedule(steps: steps, batchSize: 3, learningRate: 1e-3, warmupSteps: 1,
                                                             weightDecay: 0, emaDecay: 0.99, checkpointEvery: 2, logEvery: 1))
    }

    func testBatchesAreTaskHomogeneousAndAFunctionOfTheStep() throws {
        let m = try model()
        var o = options()
        var tasks = Set<String>()
        for step in 0..<12 {
            let b = GenerationTraining.batch(step: step, options: o, world: world, template: m.template, queries: 4,
                                             referenceTokens: m.referenceTokenCount)
            tasks.insert(b.task.rawValue)
            let rows = b.ids.count / 3
            let contexts = (0..<3).map { r in b.ids[(r * rows)..<((r + 1) * rows)].filter { $0 == m.template.imgContext }.count }
            XCTAssertEqual(contexts, [Int](repeating: b.task == .editing ? 4 + m.referenceTokenCount : 4, count: 3))
            XCTAssertEqual(b.referencePixels?.shape, b.task == .editing ? [3, 3, 16, 16] : nil)
            let again = GenerationTraining.batch(step: step, options: o, world: world, template: m.template, queries: 4,
                                                 referenceTokens: m.referenceTokenCount)
            XCTAssertEqual(b.ids, again.ids)
            XCTAssertEqual(b.targetPixels.scalars, again.targetPixels.scalars)
        }
        XCTAssertEqual(tasks, ["generation", "editing"])
        o.conditionDropout = 1
        o.editFraction = 0
        let dropped = GenerationTraining.batch(step: 0, options: o, world: world, template: m.template, queries: 4,
                                               referenceTokens: m.referenceTokenCount)
        let uncond = m.template.unconditionalGenerationPrompt(queries: 4)
        XCTAssertEqual(Array(dropped.ids.suffix(uncond.count)), uncond)
    }

    func testPlacedCaptionFractionPicksThePhrasingThatPlacesObjects() throws {
        let m = try model(), tokenizer = try XCTUnwrap(Self.tokenizer)
        var o = options()
        o.editFraction = 0
        o.conditionDropout = 0
        func placedRows(_ fraction: Double) -> Int {
            o.placedCaptionFraction = fraction
            var placed = 0
            for step in 0..<8 {
                let b = GenerationTraining.batch(step: step, options: o, world: world, template: m.template, queries: 4,
                                                 referenceTokens: m.referenceTokenCount)
                let rows = b.ids.count / 3
                for r in 0..<3 where tokenizer.decode(Array(b.ids[(r * rows)..<((r + 1) * rows)])).contains(" at the ") {
                    placed += 1
                }
            }
            return placed
        }
        XCTAssertEqual(placedRows(1), 24, "every caption should place its objects")
        XCTAssertLessThan(placedRows(0), 20, "uniform phrasings place objects in about a quarter of the rows")
        o.placedCaptionFraction = 1.5
        XCTAssertThrowsError(try o.validate())
    }

    func testTrainingTouchesOnlyTheHeadAndResumesExactly() throws {
        let straight = try model()
        let frozenBefore = straight.mllm.namedTensors().map { $0.1.scalars } + straight.autoencoder.namedTensors().map { $0.1.scalars }
        let exported = try GenerationTraining.train(straight, options: options(), world: world, run: try RunDirectory(tempDir()))
        XCTAssertEqual(straight.mllm.namedTensors().map { $0.1.scalars } + straight.autoencoder.namedTensors().map { $0.1.scalars },
                       frozenBefore, "the frozen MLLM or autoencoder changed")

        let dir = tempDir()
        try GenerationTraining.train(try model(), options: options(), world: world, run: try RunDirectory(dir),
                                     progress: { $0.step < 2 })
        let resumed = try model(seed: 99)  // a different init: everything must come from the checkpoint
        let again = try GenerationTraining.train(resumed, options: options(), world: world, run: try RunDirectory(dir))
        for ((name, a), (_, b)) in zip(straight.generator.namedTensors(), resumed.generator.namedTensors()) {
            XCTAssertEqual(a.scalars, b.scalars, "\(name) differs after resume")
        }
        XCTAssertEqual(exported.mapValues(\.scalars), again.mapValues(\.scalars))
    }

    func testStartingFromTrainedWeightsKeepsTheirConnector() throws {
        var o = options(steps: 1)
        o.schedule.learningRate = 1e-9  // one step that barely moves anything
        func maxChange(_ a: [[Float]], _ b: [[Float]]) -> Float {
            zip(a, b).flatMap { zip($0, $1).map { abs($0 - $1) } }.max() ?? 0
        }
        let fresh = try model(), started = try model()
        let before = started.generator.llmConnector.namedTensors().map { $0.1.scalars }
        try GenerationTraining.train(fresh, options: o, world: world, run: try RunDirectory(tempDir()))
        try GenerationTraining.train(started, options: o, world: world, run: try RunDirectory(tempDir()), initConnector: false)
        XCTAssertLessThan(maxChange(started.generator.llmConnector.namedTensors().map { $0.1.scalars }, before), 1e-6)
        // A fresh head copies the LLM's last layer over its random connector.
        XCTAssertGreaterThan(maxChange(fresh.generator.llmConnector.namedTensors().map { $0.1.scalars }, before), 1e-2)
    }

    func testTrainingFlowShiftDrawsMoreNearPureNoiseLevels() throws {
        var o = options(steps: 2)
        for bad in [0, -1, Double.nan, .infinity] {
            o.trainingFlowShift = bad
            XCTAssertThrowsError(try o.validate(), "shift \(bad) accepted")
        }
        o.trainingFlowShift = 3
        XCTAssertNoThrow(try o.validate())
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(o)) as? [String: Any]
        XCTAssertEqual(json?["training_flow_shift"] as? Double, 3)

        // σ = s·u / (1 + (s − 1)·u) with u logit-normal: P(σ > 0.9) is P(u > 0.9) ≈ 1.4% at
        // shift 1 and P(u > 0.75) ≈ 13.6% at shift 3.
        func shareAboveNinety(_ shift: Double) -> Double {
            var rng = RandomGenerator(seed: 1)
            let sigmas = FlowMatching.sampleTimesteps(batch: 20_000, schedule: FlowMatchEulerScheduler(shift: shift),
                                                      rng: &rng).sigmas
            return Double(sigmas.filter { $0 > 0.9 }.count) / 20_000
        }
        XCTAssertEqual(shareAboveNinety(1), 0.014, accuracy: 0.004)
        XCTAssertEqual(shareAboveNinety(3), 0.136, accuracy: 0.01)

        // The option reaches the loss: the same steps at shift 3 train other weights than at shift 1.
        func trained(_ shift: Double) throws -> [[Float]] {
            var options = options(steps: 2)
            options.trainingFlowShift = shift
            let m = try model()
            try GenerationTraining.train(m, options: options, world: world, run: try RunDirectory(tempDir()))
            return m.generator.namedTensors().map { $0.1.scalars }
        }
        XCTAssertNotEqual(try trained(1), try trained(3))
    }

    func testFolderRoundTripWithRelativeComponents() throws {
        let root = tempDir()
        let m = try model()
        let mllmDir = root + "/Models/mllm", aeDir = root + "/Models/ae", genDir = root + "/Models/gen"
        try FileManager.default.createDirectory(atPath: mllmDir, withIntermediateDirectories: true)
        try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: m.mllm.namedTensors().map { ($0.0, $0.1) }),
                                    to: mllmDir + "/model.safetensors")
        try JSONEncoder().encode(m.mllm.config).write(to: URL(fileURLWithPath: mllmDir + "/config.json"))
        try m.tokenizer.jsonData().write(to: URL(fileURLWithPath: mllmDir + "/tokenizer.json"))
        try AutoencoderFolder.save(m.autoencoder, to: aeDir)
        let components = GenerationComponents(mllm: GenerationTraining.relativePath(from: genDir, to: mllmDir),
                                              autoencoder: GenerationTraining.relativePath(from: genDir, to: aeDir))
        XCTAssertEqual(components, GenerationComponents(mllm: "../mllm", autoencoder: "../ae"))
        try GenerationModel.save(m.generator, components: components, to: genDir)
        let loaded = try GenerationModel(directory: genDir)
        XCTAssertEqual(loaded.generator.config, m.generator.config)
        XCTAssertEqual(loaded.referenceTokenCount, 4)
        // The MLLM reads images with the autoencoder's encoder.
        let pixels = AutoencoderTraining.batch(world: world, step: 0, size: 1).pixels
        let a = loaded.mllm.imageTokens(pixels).scalars, b = loaded.autoencoder.understandingTokens(pixels).scalars
        XCTAssertEqual(a, b)
        try FileManager.default.removeItem(atPath: genDir + "/components.json")
        XCTAssertThrowsError(try GenerationModel(directory: genDir)) { XCTAssertTrue("\($0)".contains("components.json"), "\($0)") }
    }

    func testTextEmbeddingOffsetIsAddedToAHeadTrainedWithoutIt() throws {
        let m = try model()
        let dir = tempDir()
        let components = GenerationComponents(mllm: "../mllm", autoencoder: "../ae")
        try GenerationModel.save(m.generator, components: components, to: dir)
        let plain = try GenerationModel.loadGenerator(directory: dir)
        XCTAssertNil(plain.textEmbeddingOffset)
        let added = try GenerationModel.loadGenerator(directory: dir, addingTextEmbeddingOffset: true)
        XCTAssertTrue(added.config.textEmbeddingOffset)
        XCTAssertEqual(try XCTUnwrap(added.textEmbeddingOffset).scalars.map(abs).max(), 0)
        let old = Dictionary(uniqueKeysWithValues: plain.namedTensors().map { ($0.0, $0.1.scalars) })
        for (name, t) in added.namedTensors() where name != "text_embedding_offset" {
            XCTAssertEqual(t.scalars, old[name], name)
        }
        // Only the offset may be missing.
        var partial = Dictionary(uniqueKeysWithValues: m.generator.namedTensors().map { ($0.0, $0.1) })
        partial["projector.bias"] = nil
        try SafetensorsWriter.write(partial, to: dir + "/model.safetensors")
        XCTAssertThrowsError(try GenerationModel.loadGenerator(directory: dir, addingTextEmbeddingOffset: true)) {
            XCTAssertTrue("\($0)".contains("projector.bias"), "\($0)")
        }
        // The offset trains at its own rate.
        var options = GenerationTrainingOptions.tiny
        options.textEmbeddingOffsetLRScale = 0
        XCTAssertThrowsError(try options.validate())
    }

    func testLatentScaleIsTheInverseStd() throws {
        let m = try model()
        let s = GenerationTraining.latentScale(m.autoencoder, world: world, count: 8)
        let z = withNoGrad { m.autoencoder.encode(UnderstandingData.pixels((0..<8).map { world.image(world.scene(.train, $0)) })) } * s
        let v = z.scalars.map(Double.init)
        let mean = v.reduce(0, +) / Double(v.count)
        let std = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        XCTAssertEqual(std, 1, accuracy: 1e-3)
    }
}
