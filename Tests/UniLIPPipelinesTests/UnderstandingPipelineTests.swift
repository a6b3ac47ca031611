import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines
import UniLIPText
import XCTest

final class UnderstandingPipelineTests: XCTestCase {
    /// A randomly initialised model folder, written the way the recipe exports trained ones.
    func makeModelFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "unilip-model-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let texts = InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 50)
        let tokenizer = try BPETrainer.train(texts: texts, vocabSize: 300)
        var rng = RandomGenerator(seed: 3)
        let model = InternVLChatModel(.tiny(vocabSize: tokenizer.vocabSize), rng: &rng)
        let clip = CLIPPretrainModel(vision: model.vision,
                                     text: CLIPTextTower(CLIPTextConfig(vocabSize: tokenizer.vocabSize), rng: &rng), rng: &rng)
        try InternVLTinyRecipe.export(model: model, tokenizer: tokenizer, textTower: clip, to: dir)
        return dir
    }

    func testLoadsAnswersAndRejectsBadInput() throws {
        let dir = try makeModelFolder()
        let pipeline = try UnderstandingPipeline(directory: dir)
        let world = ShapesWorld(seed: 0)
        let image = world.image(world.sample(.test, 0).scene)
        var options = UnderstandingOptions()
        options.maxNewTokens = 4
        _ = try pipeline.ask(image, "What color is the circle?", options: options)
        // Another size is resized to the configured 64×64.
        XCTAssertEqual(pipeline.pixels(image.resized(width: 40, height: 90)).shape, [1, 3, 64, 64])
        _ = try pipeline.ask(image.resized(width: 40, height: 90), "What shape is the red object?", options: options)
        XCTAssertThrowsError(try pipeline.ask(image, "Look: <IMG_CONTEXT>", options: options)) {
            XCTAssertTrue("\($0)".contains("reserved token"), "\($0)")
        }
        XCTAssertThrowsError(try pipeline.ask(image, String(repeating: "red circle ", count: 300), options: options)) {
            XCTAssertTrue("\($0)".contains("limit"), "\($0)")
        }
        // Greedy answers are reproducible and batched answers equal single ones.
        let questions = ["What color is the circle?", "How many objects are there?"]
        let batched = try pipeline.answer(images: [image, image], questions: questions, options: options)
        XCTAssertEqual(batched[1], try pipeline.ask(image, questions[1], options: options))
    }

    /// The recipe's language-model options change the model's shape; config.json records it, so
    /// the folder loads into a model of that shape without being told.
    func testLoadsALanguageModelOfAnotherShape() throws {
        XCTAssertEqual(Qwen2Config.tiny(vocabSize: 300), Qwen2Config(
            vocabSize: 300, hiddenSize: 128, intermediateSize: 344, numHiddenLayers: 4, numAttentionHeads: 4,
            numKeyValueHeads: 2, rmsNormEps: 1e-6, ropeTheta: 10_000, maxPositionEmbeddings: 2048,
            tieWordEmbeddings: true), "the preset's defaults")
        let dir = NSTemporaryDirectory() + "unilip-model-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tokenizer = try BPETrainer.train(texts: InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 50),
                                             vocabSize: 300)
        var recipe = InternVLTinyRecipe()
        (recipe.llmHiddenSize, recipe.llmLayers, recipe.llmHeads, recipe.llmKVHeads) = (64, 2, 4, 4)
        let (model, clip) = recipe.models(vocabSize: tokenizer.vocabSize)
        XCTAssertEqual(model.config.llmConfig.intermediateSize, 176)
        XCTAssertEqual(model.config.llmConfig.headDim, 16)
        try InternVLTinyRecipe.export(model: model, tokenizer: tokenizer, textTower: clip, to: dir)
        let pipeline = try UnderstandingPipeline(directory: dir)
        XCTAssertEqual(pipeline.model.config.llmConfig, model.config.llmConfig)
        let world = ShapesWorld(seed: 0)
        var options = UnderstandingOptions()
        options.maxNewTokens = 4
        _ = try pipeline.ask(world.image(world.sample(.test, 0).scene), "What color is the circle?", options: options)
    }

    func testMissingOrDamagedCheckpointGivesClearErrors() throws {
        XCTAssertThrowsError(try UnderstandingPipeline(directory: "/nonexistent/model")) {
            XCTAssertTrue("\($0)".contains("no config.json"), "\($0)")
        }
        let dir = try makeModelFolder()
        let weights = dir + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: weights))
        XCTAssertThrowsError(try UnderstandingPipeline(directory: dir)) {
            XCTAssertTrue("\($0)".contains("model.safetensors"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: weights)
        XCTAssertThrowsError(try UnderstandingPipeline(directory: dir)) {
            XCTAssertTrue("\($0)".contains("model.safetensors"), "\($0)")
        }
    }

    func testInvalidLanguageModelConfigThrowsInsteadOfCrashing() throws {
        let dir = try makeModelFolder()
        let file = URL(fileURLWithPath: dir + "/config.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
        var llm = try XCTUnwrap(json["llm_config"] as? [String: Any])
        llm["num_key_value_heads"] = 3
        json["llm_config"] = llm
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        XCTAssertThrowsError(try UnderstandingPipeline(directory: dir)) {
            XCTAssertTrue("\($0)".contains("config.json") && "\($0)".contains("num_key_value_heads 3"), "\($0)")
        }
    }
}
