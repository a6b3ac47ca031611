import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines
import XCTest

/// End-to-end parity with the reference implementation (Tools/reference/unilip_official.py,
/// float64 from the same BF16 weights) on the small published-layout fixture: the folder is
/// loaded with the public loader and each task runs on the stored inputs and noise. Every
/// intermediate the reference stores is compared too, so a mismatch names its stage.
final class OfficialParityTests: XCTestCase {
    static let fixtureDirectory: String = {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return here.appendingPathComponent("Fixtures/unilip_official").path
    }()

    static var cached: (UniLIPOfficialModel, SafetensorsFile)?

    func load() throws -> (UniLIPOfficialModel, SafetensorsFile) {
        if let c = Self.cached { return c }
        // Every weight matrix stays BF16 and is decoded per use (the fixture's tensors are all
        // below the default size threshold), so parity covers that path.
        let model = try UniLIPOfficialModel(directory: Self.fixtureDirectory,
                                            options: OfficialLoadOptions(keepStored: true, minimumStoredElements: 1))
        let reference = try SafetensorsFile(path: (Self.fixtureDirectory as NSString).appendingPathComponent("reference.safetensors"))
        Self.cached = (model, reference)
        return (model, reference)
    }

    func maxAbs(_ a: Tensor, _ b: Tensor, _ label: String) -> Float {
        XCTAssertEqual(a.shape, b.shape, label)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
    }

    func meanAbs(_ a: Tensor, _ b: Tensor, _ label: String) -> Float {
        XCTAssertEqual(a.count, b.count, label)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.reduce(0, +) / Float(max(a.count, 1))
    }

    func report(_ label: String, _ value: Float) {
        print(String(format: "parity %@: %.3g", label, value))
    }

    func ids(_ reference: SafetensorsFile, _ name: String) throws -> [Int] {
        try reference.tensor(name).scalars.map { Int($0) }
    }

    /// An HWC uint8 image stored as floats.
    func image(_ reference: SafetensorsFile, _ name: String) throws -> Image {
        let t = try reference.tensor(name)
        return Image(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: t.scalars.map { UInt8($0) })
    }

    /// [1, 3, H, W] in [0, 1] → HWC, as the reference stores images.
    func hwc(_ t: Tensor) -> Tensor { t.reshaped([t.shape[1], t.shape[2], t.shape[3]]).permuted([1, 2, 0]) }

    func testLoadsTheFixtureStrictlyWithStoredBF16() throws {
        let (model, _) = try load()
        XCTAssertTrue(model.report.isClean, "\(model.report)")
        XCTAssertTrue(model.modules.namedTensors().contains { !$0.1.isResident }, "weight matrices stay BF16")
        XCTAssertEqual(model.template.imgContext, model.config.imageTokenId)
    }

    func testGenerate() throws {
        let (model, ref) = try load()
        let pipeline = try model.generationPipeline()
        let caption = ref.metadata["caption"] ?? ""
        let n = model.config.numQueries
        // Stage 1: prompt ids (the reference appends the queries as embeddings, not ids).
        let cond = model.template.generationPrompt(caption, queries: n), uncond = model.template.unconditionalGenerationPrompt(queries: n)
        XCTAssertEqual(Array(cond.dropLast(n)), try ids(ref, "generate.cond_ids"))
        XCTAssertEqual(Array(uncond.dropLast(n)), try ids(ref, "generate.uncond_ids"))
        // Stage 2: the DiT conditioning of each row.
        for (row, name) in [(cond, "generate.cond"), (uncond, "generate.uncond")] {
            let c = withNoGrad {
                model.generator.conditioning(model: model.chat, ids: row, batch: 1, mask: Tensor(repeating: 1, shape: [1, row.count]),
                                             contextID: model.template.imgContext)
            }
            let d = maxAbs(c.encoderHiddenStates, try ref.tensor(name), name)
            report(name, d)
            XCTAssertLessThanOrEqual(d, 1e-3, name)
        }
        // Stage 3: the schedule.
        let scheduler = DPMSolverMultistepFlowScheduler(numTrainTimesteps: 1000, flowShift: model.config.scheduler.flowShift)
        scheduler.setTimesteps(20)
        XCTAssertEqual(scheduler.timesteps, try ref.tensor("generate.timesteps").scalars)
        // Stage 4: sampling and decoding through the pipeline, from the stored noise.
        let options = ImageGenerationOptions()   // the reference's: 20 steps, CFG 4.5
        let noise = try ref.tensor("generate.noise")
        let (latents, pixels) = try pipeline.generateTensors([caption], options: options, noise: noise)
        let dl = maxAbs(latents, try ref.tensor("generate.latent"), "latent")
        report("generate.latent max abs", dl)
        XCTAssertLessThanOrEqual(dl, 1e-3)
        let di = meanAbs(hwc(pixels), try ref.tensor("generate.image"), "image")
        report("generate.image MAE", di)
        XCTAssertLessThanOrEqual(di, 1 / 255)
        let u8 = try pipeline.generate([caption], options: options, noise: noise)[0]
        let du = meanAbs(Tensor(u8.pixels.map(Float.init), shape: [u8.pixels.count]), try ref.tensor("generate.image_u8"), "u8") / 255
        report("generate.image_u8 MAE", du)
        XCTAssertLessThanOrEqual(du, 1 / 255)
    }

    func testEdit() throws {
        let (model, ref) = try load()
        let pipeline = try model.generationPipeline()
        let instruction = ref.metadata["instruction"] ?? ""
        let n = model.config.numQueries, refs = try model.generationModel().referenceTokenCount
        let input = try image(ref, "edit.input_u8")
        // Stage 1: reference pixels and their mlp1 tokens.
        let pixels = pipeline.referencePixels([input])
        let dp = maxAbs(pixels, try ref.tensor("edit.pixel_values"), "pixel_values")
        XCTAssertLessThanOrEqual(dp, 1e-5)
        let tokens = withNoGrad { model.chat.imageTokens(pixels) }
        let dt = maxAbs(tokens, try ref.tensor("edit.image_tokens"), "image_tokens")
        report("edit.image_tokens", dt)
        XCTAssertLessThanOrEqual(dt, 1e-3)
        // Stage 2: prompt ids and conditioning.
        let cond = model.template.editPrompt(instruction, referenceTokens: refs, queries: n)
        let uncond = model.template.unconditionalEditPrompt(referenceTokens: refs, queries: n)
        XCTAssertEqual(Array(cond.dropLast(n)), try ids(ref, "edit.cond_ids"))
        XCTAssertEqual(Array(uncond.dropLast(n)), try ids(ref, "edit.uncond_ids"))
        for (row, name) in [(cond, "edit.cond"), (uncond, "edit.uncond")] {
            let c = withNoGrad {
                model.generator.conditioning(model: model.chat, ids: row, batch: 1, mask: Tensor(repeating: 1, shape: [1, row.count]),
                                             contextID: model.template.imgContext, referencePixels: pixels)
            }
            let d = maxAbs(c.encoderHiddenStates, try ref.tensor(name), name)
            report(name, d)
            XCTAssertLessThanOrEqual(d, 1e-3, name)
        }
        // Stage 3: sampling and decoding.
        let options = ImageGenerationOptions()
        let noise = try ref.tensor("edit.noise")
        let (latents, images) = try pipeline.editTensors([input], instructions: [instruction], options: options, noise: noise)
        let dl = maxAbs(latents, try ref.tensor("edit.latent"), "latent")
        report("edit.latent max abs", dl)
        XCTAssertLessThanOrEqual(dl, 1e-3)
        let di = meanAbs(hwc(images), try ref.tensor("edit.image"), "image")
        report("edit.image MAE", di)
        XCTAssertLessThanOrEqual(di, 1 / 255)
        let u8 = try pipeline.edit([input], instructions: [instruction], options: options, noise: noise)[0]
        let du = meanAbs(Tensor(u8.pixels.map(Float.init), shape: [u8.pixels.count]), try ref.tensor("edit.image_u8"), "u8") / 255
        report("edit.image_u8 MAE", du)
        XCTAssertLessThanOrEqual(du, 1 / 255)
    }

    func testReconstruct() throws {
        let (model, ref) = try load()
        let pipeline = model.reconstructionPipeline()
        let input = try image(ref, "reconstruct.input_u8")
        let pixels = input.rgb().tensor(mean: Image.imagenetMean, std: Image.imagenetStd)
        XCTAssertLessThanOrEqual(maxAbs(pixels, try ref.tensor("reconstruct.pixel_values"), "pixels"), 1e-5)
        let tokens = withNoGrad { model.autoencoder.understandingTokens(pixels) }
        let dt = maxAbs(tokens, try ref.tensor("reconstruct.image_tokens"), "tokens")
        report("reconstruct.image_tokens", dt)
        XCTAssertLessThanOrEqual(dt, 1e-3)
        let z = withNoGrad { model.autoencoder.encode(pixels) }
        let dz = maxAbs(z, try ref.tensor("reconstruct.z"), "z")
        report("reconstruct.z max abs", dz)
        XCTAssertLessThanOrEqual(dz, 1e-3)
        let decoded = withNoGrad { model.autoencoder.decoder(z) }
        let dd = maxAbs(decoded, try ref.tensor("reconstruct.decoded"), "decoded")
        report("reconstruct.decoded max abs", dd)
        XCTAssertLessThanOrEqual(dd, 1e-3)
        let unit = pipeline.reconstruct(unit: input.rgb().tensor())
        let di = meanAbs(hwc(unit), try ref.tensor("reconstruct.image"), "image")
        report("reconstruct.image MAE", di)
        XCTAssertLessThanOrEqual(di, 1 / 255)
        let result = try pipeline.reconstruct(input)
        let du = meanAbs(Tensor(result.image.pixels.map(Float.init), shape: [result.image.pixels.count]),
                         try ref.tensor("reconstruct.image_u8"), "u8") / 255
        report("reconstruct.image_u8 MAE", du)
        XCTAssertLessThanOrEqual(du, 1 / 255)
    }

    func testUnderstand() throws {
        let (model, ref) = try load()
        let pipeline = model.understandingPipeline()
        let question = ref.metadata["question"] ?? ""
        let input = try image(ref, "understand.image_u8")
        let pixels = pipeline.pixels(input)
        XCTAssertLessThanOrEqual(maxAbs(pixels, try ref.tensor("understand.pixel_values"), "pixels"), 1e-5)
        let prompt = model.template.prompt(question, imageTokens: model.chat.config.imageTokens)
        XCTAssertEqual(prompt, try ids(ref, "understand.ids"))
        let logits = withNoGrad { () -> Tensor in
            let e = model.chat.inputEmbeddings(ids: prompt, batch: 1, imageTokens: model.chat.imageTokens(pixels),
                                               contextID: model.template.imgContext)
            let all = model.chat.language(embeddings: e).logits
            return all.sliced(axis: 1, start: prompt.count - 1, end: prompt.count).reshaped([all.shape[2]])
        }
        let expected = try ref.tensor("understand.logits")
        let d = maxAbs(logits, expected, "logits")
        report("understand.logits max abs", d)
        XCTAssertLessThanOrEqual(d, 1e-3 * max(1, expected.scalars.map(abs).max() ?? 1))
        var rng = RandomGenerator(seed: 0)
        let greedy = model.chat.generate(pixels: pixels, ids: prompt, batch: 1, mask: Tensor(repeating: 1, shape: [1, prompt.count]),
                                         contextID: model.template.imgContext,
                                         options: GenerationOptions(maxNewTokens: 8), rng: &rng)
        XCTAssertEqual(greedy.first, try ids(ref, "understand.greedy_ids"))
        // The user-facing call answers (text up to <|im_end|>).
        XCTAssertNoThrow(try pipeline.ask(input, question))
    }
}

final class OfficialTilingTests: XCTestCase {
    func testTilingFeedsEveryTileAndReducesToThePlainPathForOneTile() throws {
        let model = try UniLIPOfficialModel(directory: OfficialParityTests.fixtureDirectory)
        let ref = try SafetensorsFile(path: (OfficialParityTests.fixtureDirectory as NSString).appendingPathComponent("reference.safetensors"))
        let t = try ref.tensor("understand.image_u8")
        let square = Image(width: t.shape[1], height: t.shape[0], channels: 3, pixels: t.scalars.map { UInt8($0) })
        let tiled = model.understandingPipeline(maxTiles: 12), plain = model.understandingPipeline(maxTiles: nil)
        var options = UnderstandingOptions()
        options.maxNewTokens = 6
        // A square image at the tile size is one tile without a thumbnail: the same answer.
        XCTAssertEqual(tiled.tilePixels(square).shape[0], 1)
        XCTAssertEqual(try tiled.ask(square, "What color is the circle?", options: options),
                       try plain.ask(square, "What color is the circle?", options: options))
        // A 2:1 image is two tiles and a thumbnail.
        let wide = square.resized(width: 2 * square.width, height: square.height, filter: .bicubic)
        XCTAssertEqual(tiled.tilePixels(wide).shape, [3, 3, square.height, square.width])
        XCTAssertNoThrow(try tiled.ask(wide, "What color is the circle?", options: options))
    }
}
