import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPPipelines
import XCTest

/// A micro autoencoder on 16 px images: patch 4 (encoder stride 8), 2×2 latents of 8 channels,
/// a 4-stage ResBlock decoder (×8).
enum MicroAutoencoder {
    static let vision = InternViTConfig(patchSize: 4, imageSize: 16, qkvBias: true, hiddenSize: 16, numAttentionHeads: 2,
                                        intermediateSize: 32, qkNormalization: false, numHiddenLayers: 2,
                                        normType: "layer_norm", initializerFactor: 1, useFlashAttn: false)
    static let decoder = DCAEDecoderConfig(latentChannels: 8, attentionHeadDim: 8,
                                           blockTypes: [.resBlock, .resBlock, .resBlock, .resBlock],
                                           blockOutChannels: [8, 8, 16, 16], layersPerBlock: [1, 1, 1, 1],
                                           qkvMultiscales: [[], [], [], []])
    static let config = UniLIPAutoencoderConfig(vision: vision, llmHiddenSize: 24, decoder: decoder, imageSize: 16,
                                                latentChannels: 8, downBlocks: 2)

    static func model(seed: UInt64 = 1) -> UniLIPAutoencoder {
        var rng = RandomGenerator(seed: seed)
        return UniLIPAutoencoder(config, rng: &rng)
    }

    static func teacher() -> DistillationTeacher {
        let original = model(seed: 1)
        return DistillationTeacher(encoder: original.encoder, mlp1: original.mlp1)
    }
}

final class AutoencoderTrainingTests: XCTestCase {
    func tempDir() -> String {
        let p = NSTemporaryDirectory() + "unilip-ae-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    let world = ShapesWorld(seed: 0, resolution: 16)

    func options(stage: Int, steps: Int = 6, gan: Int? = nil) -> AutoencoderTrainingOptions {
        var o = AutoencoderTrainingOptions(stage: stage, schedule: TrainingSchedule(
            steps: steps, batchSize: 2, learningRate: 1e-3, warmupSteps: 2, weightDecay: 1e-4, emaDecay: 0.999,
            checkpointEvery: 2, logEvery: 1))
        o.gan = gan.map { GANOptions(startStep: $0) }
        return o
    }

    /// Trains straight through, and again stopped after 3 steps and resumed in a new process-like
    /// setting (fresh model and teacher); both must end bit-identical.
    func checkResumeIsExact(_ o: AutoencoderTrainingOptions) throws -> (start: UniLIPAutoencoder, end: UniLIPAutoencoder) {
        let teacher = MicroAutoencoder.teacher()
        let straight = MicroAutoencoder.model()
        let exported = try AutoencoderTraining.train(straight, options: o, world: world, teacher: teacher,
                                                     perceptual: EncoderFeatureDistance(encoder: teacher.encoder),
                                                     run: try RunDirectory(tempDir()))
        let dir = tempDir()
        let first = MicroAutoencoder.model()
        try AutoencoderTraining.train(first, options: o, world: world, teacher: teacher,
                                      perceptual: EncoderFeatureDistance(encoder: teacher.encoder),
                                      run: try RunDirectory(dir), progress: { $0.step < 3 })
        let resumed = MicroAutoencoder.model()
        let again = try AutoencoderTraining.train(resumed, options: o, world: world, teacher: MicroAutoencoder.teacher(),
                                                  perceptual: EncoderFeatureDistance(encoder: MicroAutoencoder.teacher().encoder),
                                                  run: try RunDirectory(dir))
        for ((name, a), (_, b)) in zip(straight.namedTensors(), resumed.namedTensors()) {
            XCTAssertEqual(a.scalars, b.scalars, "\(name) differs after resume")
        }
        XCTAssertEqual(exported.mapValues(\.scalars), again.mapValues(\.scalars), "EMA export differs after resume")
        return (MicroAutoencoder.model(), straight)
    }

    func testStage1FreezesEncoderSideAndResumesExactly() throws {
        let (start, end) = try checkResumeIsExact(options(stage: 1))
        let before = Dictionary(uniqueKeysWithValues: start.namedTensors().map { ($0.0, $0.1.scalars) })
        for (name, t) in end.namedTensors() {
            let frozen = name.hasPrefix("encoder.") || name.hasPrefix("mlp1.")
            if frozen { XCTAssertEqual(t.scalars, before[name], "\(name) moved in stage 1") }
        }
        XCTAssertNotEqual(end.namedTensors().first { $0.0 == "decoder.conv_out.weight" }?.1.scalars,
                          before["decoder.conv_out.weight"])
    }

    func testDecoderOnlyKeepsTheLatentFixedAndResumesExactly() throws {
        var o = options(stage: 1)
        o.decoderOnly = true
        let (start, end) = try checkResumeIsExact(o)
        let before = Dictionary(uniqueKeysWithValues: start.namedTensors().map { ($0.0, $0.1.scalars) })
        for (name, t) in end.namedTensors() where !name.hasPrefix("decoder.") {
            XCTAssertEqual(t.scalars, before[name], "\(name) moved in decoder-only training")
        }
        let pixels = AutoencoderTraining.batch(world: world, step: 0, size: 2).pixels
        XCTAssertEqual(withNoGrad { end.encode(pixels) }.scalars, withNoGrad { start.encode(pixels) }.scalars)
        XCTAssertNotEqual(end.namedTensors().first { $0.0 == "decoder.conv_out.weight" }?.1.scalars,
                          before["decoder.conv_out.weight"])
        let shipped = AutoencoderTrainingOptions.tinyDecoderOnly()
        XCTAssertNoThrow(try shipped.validate())
        XCTAssertTrue(shipped.decoderOnly && shipped.stage == 1)
        var bad = options(stage: 2)
        bad.decoderOnly = true
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("stage-1"), "\($0)") }
    }

    func testStage2TrainsEverythingWithGANAndResumesExactly() throws {
        let (start, end) = try checkResumeIsExact(options(stage: 2, gan: 2))
        let before = Dictionary(uniqueKeysWithValues: start.namedTensors().map { ($0.0, $0.1.scalars) })
        let moved = end.namedTensors().filter { $0.0.hasPrefix("encoder.") && $0.1.scalars != before[$0.0] }
        XCTAssertFalse(moved.isEmpty, "stage 2 left the encoder unchanged")
    }

    func testStage2UsesLowerEncoderLearningRateAndNeedsTeacher() throws {
        let model = MicroAutoencoder.model()
        XCTAssertThrowsError(try AutoencoderTraining.train(model, options: options(stage: 2), world: world, teacher: nil,
                                                           perceptual: nil, run: try RunDirectory(tempDir()))) {
            XCTAssertTrue("\($0)".contains("teacher"), "\($0)")
        }
        var bad = options(stage: 3)
        XCTAssertThrowsError(try bad.validate())
        bad = options(stage: 2)
        bad.distillWeight = -1
        XCTAssertThrowsError(try bad.validate())
        let groups = ParameterGroup.decaySplit(model.namedParameters(), lr: 1, weightDecay: 0.1,
                                               scaled: UniLIPAutoencoder.encoderPrefixes.map { ($0, 0.1) })
        for g in groups where g.name.hasPrefix("encoder.") || g.name.hasPrefix("mlp1.") {
            XCTAssertEqual(g.baseLR, 0.1, accuracy: 1e-7)
        }
    }

    func testDistillationLossIsZeroAtTheTeacherAndGrowsAway() {
        let teacher = MicroAutoencoder.teacher()
        let student = MicroAutoencoder.model()
        let pixels = AutoencoderTraining.batch(world: world, step: 0, size: 2).pixels
        XCTAssertEqual(mseLoss(student.understandingTokens(pixels), teacher.tokens(pixels)).item, 0)
        let other = MicroAutoencoder.model(seed: 9)
        XCTAssertGreaterThan(mseLoss(other.understandingTokens(pixels), teacher.tokens(pixels)).item, 1e-4)
    }

    func testEncoderFeatureDistance() {
        let teacher = MicroAutoencoder.teacher()
        let distance = EncoderFeatureDistance(encoder: teacher.encoder)
        let unit = AutoencoderTraining.batch(world: world, step: 0, size: 2).unit
        XCTAssertEqual(distance(unit, unit).item, 0, accuracy: 1e-6)
        let noisy = Tensor((unit + 0.2).scalars, shape: unit.shape, requiresGrad: true)
        let d = distance(noisy, unit)
        XCTAssertGreaterThan(d.item, 1e-4)
        d.backward()
        XCTAssertNotNil(noisy.grad, "no gradient reaches the reconstruction")
        XCTAssertTrue(teacher.encoder.namedParameters().allSatisfy { $0.1.grad == nil }, "the frozen encoder got gradients")
    }

    func testFolderRoundTripAndClearErrors() throws {
        let dir = tempDir()
        let model = MicroAutoencoder.model(seed: 4)
        try AutoencoderFolder.save(model, to: dir)
        let loaded = try AutoencoderFolder.load(dir)
        for ((name, a), (_, b)) in zip(model.namedTensors(), loaded.namedTensors()) {
            let err = zip(a.scalars, b.scalars).map { abs($0 - $1) / Swift.max(1, abs($0)) }.max() ?? 0
            XCTAssertLessThan(err, 1e-3, "\(name) lost more than F16 rounding")
        }
        // Another architecture's weights under this config: every mismatch is reported.
        var other = MicroAutoencoder.config
        other.llmHiddenSize = 32
        var rng = RandomGenerator(seed: 0)
        let wrong = UniLIPAutoencoder(other, rng: &rng)
        try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: wrong.namedTensors().map { ($0.0, $0.1) }),
                                    to: dir + "/model.safetensors")
        XCTAssertThrowsError(try AutoencoderFolder.load(dir)) { error in
            XCTAssertTrue("\(error)".contains("mlp1.1.weight"), "\(error)")
        }
        try Data(#"{"model_type": "internvl_chat"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        XCTAssertThrowsError(try AutoencoderFolder.load(dir)) { XCTAssertTrue("\($0)".contains("internvl_chat"), "\($0)") }
        XCTAssertThrowsError(try AutoencoderFolder.load(tempDir())) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }
    }

    func testReconstructAnySizeAndTooSmallImages() throws {
        let pipeline = ReconstructionPipeline(model: MicroAutoencoder.model())
        let odd = Image(width: 13, height: 19, channels: 3, fill: 90)
        let out = try pipeline.reconstruct(odd)
        XCTAssertEqual([out.image.width, out.image.height], [13, 19])
        XCTAssertTrue(out.psnr.isFinite)
        XCTAssertThrowsError(try pipeline.reconstruct(Image(width: 4, height: 30, channels: 3))) {
            XCTAssertTrue("\($0)".contains("too small"), "\($0)")
        }
    }

    func testUseEncoderPutsTheEncoderIntoTheMLLM() throws {
        var rng = RandomGenerator(seed: 2)
        let chat = InternVLChatModel(InternVLChatConfig(vision: MicroAutoencoder.vision,
                                                        llm: Qwen2Config(vocabSize: 40, hiddenSize: 24, intermediateSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1),
                                                        imageSize: 16), rng: &rng)
        let ae = MicroAutoencoder.model(seed: 5)
        try chat.useEncoder(of: ae)
        let pixels = AutoencoderTraining.batch(world: world, step: 1, size: 2).pixels
        XCTAssertEqual(chat.vision.imageTokens(pixels, projector: chat.projector).scalars,
                       ae.understandingTokens(pixels).scalars)
    }

    func testFrechetDistance() {
        // Independent coordinates: FD = ‖Δμ‖² + Σ (σ₁ + σ₂ − 2√(σ₁σ₂)) with sample variances.
        var rng = RandomGenerator(seed: 3)
        let n = 400, d = 3
        let a = (0..<(n * d)).map { _ in Double(rng.normal()) }
        let b = (0..<(n * d)).map { i in Double(rng.normal()) * [1, 2, 0.5][i % d] + [1, 0, -2][i % d] }
        let (m1, c1) = FrechetDistance.statistics(a, dim: d)
        let (m2, c2) = FrechetDistance.statistics(b, dim: d)
        var diag1 = [Double](repeating: 0, count: d * d), diag2 = diag1
        var expected = 0.0
        for j in 0..<d {
            diag1[j * d + j] = c1[j * d + j]
            diag2[j * d + j] = c2[j * d + j]
            expected += (m1[j] - m2[j]) * (m1[j] - m2[j]) + c1[j * d + j] + c2[j * d + j]
                - 2 * (c1[j * d + j] * c2[j * d + j]).squareRoot()
        }
        XCTAssertEqual(FrechetDistance.distance(mean1: m1, cov1: diag1, mean2: m2, cov2: diag2), expected, accuracy: 1e-9)
        XCTAssertEqual(FrechetDistance.distance(a, a, dim: d), 0, accuracy: 1e-9)
        XCTAssertGreaterThan(FrechetDistance.distance(a, b, dim: d), 4)
    }

    func testMarkdownSectionsKeepHandWrittenText() throws {
        let file = tempDir() + ".md"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: file) }
        try MarkdownSections.write("table A", section: "a", to: file)
        try Data((try String(contentsOfFile: file, encoding: .utf8) + "\nnotes by hand\n").utf8)
            .write(to: URL(fileURLWithPath: file))
        try MarkdownSections.write("table B", section: "b", to: file)
        try MarkdownSections.write("table A2", section: "a", to: file)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.contains("table A2") && !text.contains("table A\n") && text.contains("table B"))
        XCTAssertTrue(text.contains("notes by hand"))
    }
}
