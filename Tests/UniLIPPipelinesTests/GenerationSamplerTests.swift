import Foundation
import ShapesWorld
import UniLIPText
import UniLIPCore
import UniLIPModels
import UniLIPPipelines
import UniLIPTestSupport
import XCTest

final class GenerationSamplerTests: XCTestCase {
    /// A small generator: 32-wide LLM shape, 2×2 latents of 4 channels, captions of width 24.
    func generator(latentScale: Float = 1) -> UniLIPGenerator {
        let llm = Qwen2Config(vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
                              numAttentionHeads: 4, numKeyValueHeads: 2)
        let dit = SanaConfig(inChannels: 4, outChannels: 4, numAttentionHeads: 2, attentionHeadDim: 8, numLayers: 2,
                             numCrossAttentionHeads: 2, crossAttentionHeadDim: 8, crossAttentionDim: 16,
                             captionChannels: 24, sampleSize: 2)
        var rng = RandomGenerator(seed: 11)
        return UniLIPGenerator(UniLIPGeneratorConfig(numQueries: 4, connectLayers: 1, llmConfig: llm, ditConfig: dit,
                                                     latentScale: latentScale),
                               rng: &rng)
    }

    /// Random caption tokens [batch, length, 24] with the last `padding` positions masked.
    func conditioning(batch: Int, length: Int, padding: Int = 0, seed: UInt64) -> GenerationConditioning {
        var rng = RandomGenerator(seed: seed)
        var mask: [Float] = []
        for _ in 0..<batch {
            mask += [Float](repeating: 1, count: length - padding) + [Float](repeating: 0, count: padding)
        }
        return GenerationConditioning(encoderHiddenStates: Tensor.normal([batch, length, 24], rng: &rng),
                                      mask: Tensor(mask, shape: [batch, length]))
    }

    func maxError(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    func testDefaultsFollowTheReference() {
        let o = ImageGenerationOptions()
        XCTAssertEqual(o.steps, 20)
        XCTAssertEqual(o.guidanceScale, 4.5)
        XCTAssertEqual(o.sampler, .dpmSolver)
        XCTAssertNil(o.flowShift)
        XCTAssertNoThrow(try o.validate())
    }

    func testBatchedGuidanceMatchesSeparatePasses() throws {
        let g = generator()
        let cond = conditioning(batch: 2, length: 6, padding: 1, seed: 1)
        let uncond = conditioning(batch: 2, length: 3, seed: 2)   // shorter: padded when batched
        let options = ImageGenerationOptions(steps: 4, guidanceScale: 3, seed: 7)
        let sampled = try GenerationSampler(generator: g).sample(conditional: cond, unconditional: uncond, options: options)
        XCTAssertEqual(sampled.shape, [2, 4, 2, 2])

        let scheduler = DPMSolverMultistepFlowScheduler(flowShift: 3)
        var x = scheduler.initialNoise([2, 4, 2, 2], seed: 7)
        scheduler.setTimesteps(4)
        withNoGrad {
            for t in scheduler.timesteps {
                let ts = [Float](repeating: t.rounded(.towardZero), count: 2)
                let vc = g.velocity(x, timesteps: ts, conditioning: cond)
                let vu = g.velocity(x, timesteps: ts, conditioning: uncond)
                x = scheduler.step(modelOutput: FlowMatching.guided(unconditional: vu, conditional: vc, scale: 3),
                                   timestep: t, sample: x)
            }
        }
        XCTAssertLessThanOrEqual(maxError(sampled, x), 1e-4)
        // Guidance matters: scale 1 gives something else.
        var plain = options
        plain.guidanceScale = 1
        let unguided = try GenerationSampler(generator: g).sample(conditional: cond, unconditional: nil, options: plain)
        XCTAssertGreaterThan(maxError(unguided, x), 1e-3)
    }

    func testScaleOneSkipsTheUnconditionalPass() throws {
        let g = generator()
        let cond = conditioning(batch: 1, length: 5, seed: 3)
        let options = ImageGenerationOptions(steps: 3, guidanceScale: 1, seed: 5)
        let alone = try GenerationSampler(generator: g).sample(conditional: cond, unconditional: nil, options: options)
        let withNegative = try GenerationSampler(generator: g)
            .sample(conditional: cond, unconditional: conditioning(batch: 1, length: 2, seed: 4), options: options)
        XCTAssertLessThanOrEqual(maxError(alone, withNegative), 1e-6)
    }

    func testSeededSamplingIsReproducible() throws {
        let g = generator()
        let cond = conditioning(batch: 2, length: 4, seed: 5), uncond = conditioning(batch: 2, length: 4, seed: 6)
        let sampler = GenerationSampler(generator: g)
        for kind in ImageGenerationOptions.Sampler.allCases {
            let options = ImageGenerationOptions(steps: 3, seed: 123, sampler: kind)
            let a = try sampler.sample(conditional: cond, unconditional: uncond, options: options)
            let b = try sampler.sample(conditional: cond, unconditional: uncond, options: options)
            XCTAssertEqual(a.scalars, b.scalars, "\(kind)")
            XCTAssertTrue(a.scalars.allSatisfy(\.isFinite), "\(kind)")
            var other = options
            other.seed = 124
            let c = try sampler.sample(conditional: cond, unconditional: uncond, options: other)
            XCTAssertGreaterThan(maxError(a, c), 1e-3, "\(kind): the seed must matter")
        }
        // The two samplers differ.
        let dpm = try sampler.sample(conditional: cond, unconditional: uncond,
                                     options: ImageGenerationOptions(steps: 3, seed: 1, sampler: .dpmSolver))
        let euler = try sampler.sample(conditional: cond, unconditional: uncond,
                                       options: ImageGenerationOptions(steps: 3, seed: 1, sampler: .euler))
        XCTAssertGreaterThan(maxError(dpm, euler), 1e-4)
    }

    func testProgressReportsEveryStepAndFalseCancels() throws {
        let sampler = GenerationSampler(generator: generator())
        let cond = conditioning(batch: 1, length: 3, seed: 7), uncond = conditioning(batch: 1, length: 3, seed: 8)
        var seen: [(Int, Int)] = []
        _ = try sampler.sample(conditional: cond, unconditional: uncond, options: ImageGenerationOptions(steps: 4)) {
            seen.append(($0, $1))
            return true
        }
        XCTAssertEqual(seen.map(\.0), [1, 2, 3, 4])
        XCTAssertEqual(seen.map(\.1), [4, 4, 4, 4])

        var calls = 0
        XCTAssertThrowsError(try sampler.sample(conditional: cond, unconditional: uncond,
                                                options: ImageGenerationOptions(steps: 5)) { step, _ in
            calls += 1
            return step < 2
        }) { error in
            XCTAssertEqual(error as? ImageGenerationError, .cancelled(step: 2, total: 5))
        }
        XCTAssertEqual(calls, 2, "sampling must stop at the first false")
    }

    func testBadOptionsThrowClearErrors() {
        let sampler = GenerationSampler(generator: generator())
        let cond = conditioning(batch: 2, length: 3, seed: 9), uncond = conditioning(batch: 2, length: 3, seed: 10)
        func expectInvalid(_ options: ImageGenerationOptions, unconditional: GenerationConditioning?,
                           mentioning word: String, line: UInt = #line) {
            XCTAssertThrowsError(try sampler.sample(conditional: cond, unconditional: unconditional, options: options),
                                 line: line) { error in
                guard case .invalidOptions(let message)? = error as? ImageGenerationError else {
                    return XCTFail("unexpected error \(error)", line: line)
                }
                XCTAssertTrue(message.contains(word), "'\(message)' should mention \(word)", line: line)
            }
        }
        expectInvalid(ImageGenerationOptions(steps: 0), unconditional: uncond, mentioning: "steps")
        expectInvalid(ImageGenerationOptions(steps: -3), unconditional: uncond, mentioning: "steps")
        expectInvalid(ImageGenerationOptions(guidanceScale: -1), unconditional: uncond, mentioning: "guidance")
        expectInvalid(ImageGenerationOptions(guidanceScale: .nan), unconditional: uncond, mentioning: "guidance")
        expectInvalid(ImageGenerationOptions(flowShift: 0), unconditional: uncond, mentioning: "flow shift")
        expectInvalid(ImageGenerationOptions(latentHeight: 0), unconditional: uncond, mentioning: "latent height")
        expectInvalid(ImageGenerationOptions(), unconditional: nil, mentioning: "unconditional")
        expectInvalid(ImageGenerationOptions(), unconditional: conditioning(batch: 1, length: 3, seed: 1),
                      mentioning: "unconditional rows")
    }

    func testOtherLatentSizesAndTheDecodeHook() throws {
        let g = generator(latentScale: 4)
        let sampler = GenerationSampler(generator: g)
        let cond = conditioning(batch: 1, length: 3, seed: 12), uncond = conditioning(batch: 1, length: 3, seed: 13)
        let z = try sampler.sample(conditional: cond, unconditional: uncond,
                                   options: ImageGenerationOptions(steps: 2, latentHeight: 3, latentWidth: 5))
        XCTAssertEqual(z.shape, [1, 4, 3, 5])
        XCTAssertEqual(sampler.unscaled(z).scalars, z.scalars.map { $0 * 0.25 })
    }

    func testConcatenatedConditioningPadsShorterRows() {
        let a = conditioning(batch: 1, length: 2, seed: 1), b = conditioning(batch: 2, length: 4, padding: 1, seed: 2)
        let both = GenerationConditioning.concatenated([a, b])
        XCTAssertEqual(both.encoderHiddenStates.shape, [3, 4, 24])
        XCTAssertEqual(both.mask.scalars, [1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0])
        XCTAssertEqual(Array(both.encoderHiddenStates.scalars[0..<48]), a.encoderHiddenStates.scalars)
        XCTAssertTrue(both.encoderHiddenStates.scalars[48..<96].allSatisfy { $0 == 0 })
    }
}

final class GenerationPromptTests: XCTestCase {
    func template() throws -> ChatTemplate {
        let corpus = InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 30)
        return try ChatTemplate(tokenizer: try BPETrainer.train(texts: corpus, vocabSize: 300))
    }

    func testPromptsFollowTheReferenceTemplate() throws {
        let t = try template()
        let gen = t.generationPrompt("a red circle", queries: 4)
        XCTAssertEqual(t.tokenizer.decode(gen),
                       "<|im_start|>user\nGenerate an image: a red circle<|im_end|>\n<|im_start|>assistant\n<img>"
                       + String(repeating: "<IMG_CONTEXT>", count: 4))
        let edit = t.editPrompt("make it blue", referenceTokens: 3, queries: 4)
        XCTAssertEqual(t.tokenizer.decode(edit),
                       "<|im_start|>user\nEdit the image: make it blue\n<img>" + String(repeating: "<IMG_CONTEXT>", count: 3)
                       + "</img><|im_end|>\n<|im_start|>assistant\n<img>" + String(repeating: "<IMG_CONTEXT>", count: 4))
        XCTAssertTrue(t.tokenizer.decode(t.unconditionalGenerationPrompt(queries: 2)).contains("user\nGenerate an image.<|im_end|>"))
        XCTAssertTrue(t.tokenizer.decode(t.unconditionalEditPrompt(referenceTokens: 1, queries: 2))
            .contains("user\nEdit the image.\n<img><IMG_CONTEXT></img><|im_end|>"))

        // The generator's slot reader finds the reference and query slots in a padded batch.
        let (ids, mask) = t.paddedBatch([edit, gen])
        let slots = GenerationSlots(ids: ids, batch: 2, mask: mask, contextID: t.imgContext, queries: 4, referenceTokens: 3)
        XCTAssertEqual(slots.editRows, [0])
        XCTAssertEqual(slots.references[0].count, 3)
        XCTAssertEqual(slots.queries[1].last, ids.count / 2 - 1)
        XCTAssertEqual(mask.scalars.filter { $0 == 0 }.count, edit.count - gen.count)
    }

    /// Prompts → one batched LLM pass for [uncond; cond] → guided sampling → tiny DC-AE decode.
    func testTinyTextToImageEndToEnd() throws {
        let t = try template()
        var rng = RandomGenerator(seed: 0)
        let config = UniLIPGeneratorConfig.tiny(vocabSize: t.tokenizer.vocabSize)
        let llm = Qwen2Model(config.llmConfig, rng: &rng)
        llm.freeze()
        let generator = UniLIPGenerator(config, rng: &rng)
        generator.initConnector(from: llm)
        let (ids, mask) = t.paddedBatch([t.unconditionalGenerationPrompt(queries: config.numQueries),
                                         t.generationPrompt("a red circle", queries: config.numQueries)])
        let both = withNoGrad { generator.conditioning(llm: llm, ids: ids, batch: 2, mask: mask, contextID: t.imgContext) }
        XCTAssertEqual(both.encoderHiddenStates.shape, [2, ids.count / 2, config.ditConfig.captionChannels])
        let sampler = GenerationSampler(generator: generator)
        let z = try sampler.sample(conditional: both.rows(1..<2), unconditional: both.rows(0..<1),
                                   options: ImageGenerationOptions(steps: 2))
        XCTAssertEqual(z.shape, [1, 32, 4, 4])
        XCTAssertTrue(z.scalars.allSatisfy(\.isFinite))
        let decoder = DCAEDecoder(config: .tiny, rng: &rng)
        let images = sampler.decode(z, decoder: decoder, size: (56, 56))
        XCTAssertEqual(images.shape, [1, 3, 56, 56])
        XCTAssertTrue(images.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}
