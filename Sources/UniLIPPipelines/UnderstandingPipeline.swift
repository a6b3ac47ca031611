import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPText

/// Settings for answering questions about images.
public struct UnderstandingOptions: Sendable {
    /// Longest answer, in tokens.
    public var maxNewTokens = 48
    /// 0 answers greedily; above 0 samples with this temperature and `topP`.
    public var temperature: Float = 0
    public var topP: Float = 1
    public var seed: UInt64 = 0
    /// Longest accepted question, in tokens.
    public var maxPromptTokens = 256
    /// Questions answered per batch.
    public var batchSize = 32

    public init() {}
}

public struct UnderstandingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Loads a model folder (config.json, model.safetensors, tokenizer.json) and answers questions.
public final class UnderstandingPipeline {
    public let model: InternVLChatModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public let directory: String
    /// Largest number of tiles an image is cut into (InternVL's dynamic preprocessing: tiles of
    /// the model's input size plus a thumbnail, `imageTokens` tokens each); nil or 1 feeds each
    /// image as one resized tile. InternVL3's chat uses 12.
    public var maxTiles: Int?

    /// The validated config.json of an InternVL model folder.
    public static func config(in directory: String) throws -> InternVLChatConfig {
        let file = (directory as NSString).appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: file) else {
            throw UnderstandingError("\(directory): no config.json — not a model folder (train one with `unilip train understanding`)")
        }
        do {
            let config = try JSONDecoder().decode(InternVLChatConfig.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            try config.validate()
            return config
        } catch {
            throw UnderstandingError("\(file): \(error)")
        }
    }

    public init(directory: String) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let config = try Self.config(in: directory)
        tokenizer = try Tokenizer(contentsOf: path("tokenizer.json"))
        guard tokenizer.vocabSize <= config.llmConfig.vocabSize else {
            throw UnderstandingError("\(directory): tokenizer has \(tokenizer.vocabSize) tokens but the model \(config.llmConfig.vocabSize)")
        }
        template = try ChatTemplate(tokenizer: tokenizer)
        var rng = RandomGenerator(seed: 0)
        model = InternVLChatModel(config, rng: &rng)
        _ = try Checkpoint.load(path("model.safetensors"), into: model.namedTensors())
        model.eval()
        self.directory = directory
    }

    /// A pipeline over a loaded model (for example the understanding view of a published UniLIP folder).
    public init(model: InternVLChatModel, tokenizer: Tokenizer, template: ChatTemplate, directory: String = "<memory>") {
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.directory = directory
    }

    /// Pixels [1, 3, S, S] for an image, resized to the model's input size when it differs.
    public func pixels(_ image: Image) -> Tensor {
        let size = model.config.forceImageSize
        let rgb = image.rgb()
        let fitted = rgb.width == size && rgb.height == size ? rgb : rgb.resized(width: size, height: size, filter: .bicubic)
        return UnderstandingData.pixels([fitted])
    }

    /// The prompt ids for a question, rejecting text that smuggles in special tokens.
    func promptIDs(_ question: String, options: UnderstandingOptions, tiles: Int = 1) throws -> [Int] {
        for added in tokenizer.addedTokens where question.contains(added.content) {
            throw UnderstandingError("the question contains the reserved token \(added.content)")
        }
        let imageTokens = tiles * model.config.imageTokens
        let ids = template.prompt(question, imageTokens: imageTokens)
        guard ids.count <= options.maxPromptTokens + imageTokens else {
            throw UnderstandingError("the question is \(ids.count - imageTokens) tokens; the limit is \(options.maxPromptTokens)")
        }
        return ids
    }

    /// The tiles of an image as normalised pixels [T, 3, S, S] (T = 1 without tiling).
    public func tilePixels(_ image: Image) -> Tensor {
        guard let maxTiles, maxTiles > 1 else { return pixels(image) }
        let tiled = DynamicTiling.tile(image.rgb(), tileSize: model.config.forceImageSize, maxTiles: maxTiles)
        return UnderstandingData.pixels(tiled.tiles)
    }

    public func ask(_ image: Image, _ question: String, options: UnderstandingOptions = UnderstandingOptions()) throws -> String {
        try answer(images: [image], questions: [question], options: options)[0]
    }

    public func describe(_ image: Image, options: UnderstandingOptions = UnderstandingOptions()) throws -> String {
        try ask(image, UnderstandingData.describePrompt, options: options)
    }

    /// Answers question i about image i, in batches of left-padded prompts.
    public func answer(images: [Image], questions: [String], options: UnderstandingOptions = UnderstandingOptions()) throws -> [String] {
        precondition(images.count == questions.count, "one question per image")
        if let maxTiles, maxTiles > 1 {
            // Images differ in tile count, so each question runs on its own.
            return try zip(images, questions).map { image, question in
                let pixels = tilePixels(image)
                let prompt = try promptIDs(question, options: options, tiles: pixels.shape[0])
                return answerTiled(pixels: pixels, prompt: prompt, options: options)
            }
        }
        let prompts = try questions.map { try promptIDs($0, options: options) }
        return answer(pixels: images.map(pixels), prompts: prompts, options: options)
    }

    /// One answer for the tiles [T, 3, S, S] of one image, whose tokens fill the prompt's one
    /// `<img>` block in tile order.
    func answerTiled(pixels: Tensor, prompt: [Int], options: UnderstandingOptions) -> String {
        var rng = RandomGenerator(seed: options.seed)
        let generation = GenerationOptions(maxNewTokens: options.maxNewTokens, temperature: options.temperature,
                                           topP: options.topP, stopTokens: [template.imEnd])
        let tokens = withNoGrad { () -> [Int] in
            let perTile = model.imageTokens(pixels)
            let imageTokens = perTile.reshaped([1, perTile.shape[0] * perTile.shape[1], perTile.shape[2]])
            let embeddings = model.inputEmbeddings(ids: prompt, batch: 1, imageTokens: imageTokens, contextID: template.imgContext)
            return model.language.generate(embeddings: embeddings, keyPadding: Tensor(repeating: 1, shape: [1, prompt.count]),
                                           options: generation, rng: &rng).first ?? []
        }
        return tokenizer.decode(tokens.filter { $0 != template.imEnd }, skipSpecial: true)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Batched generation for pre-tokenised prompts and per-image pixels [1, 3, S, S].
    func answer(pixels: [Tensor], prompts: [[Int]], options: UnderstandingOptions) -> [String] {
        var rng = RandomGenerator(seed: options.seed)
        let generation = GenerationOptions(maxNewTokens: options.maxNewTokens, temperature: options.temperature,
                                           topP: options.topP, stopTokens: [template.imEnd])
        var out: [String] = []
        var start = 0
        while start < prompts.count {
            let end = Swift.min(prompts.count, start + Swift.max(1, options.batchSize))
            let rows = Array(prompts[start..<end])
            let length = rows.map(\.count).max() ?? 0
            var ids: [Int] = [], mask: [Float] = []
            for r in rows {
                ids += [Int](repeating: template.pad, count: length - r.count) + r
                mask += [Float](repeating: 0, count: length - r.count) + [Float](repeating: 1, count: r.count)
            }
            let batch = Tensor.concat(Array(pixels[start..<end]), axis: 0)
            let generated = model.generate(pixels: batch, ids: ids, batch: rows.count,
                                           mask: Tensor(mask, shape: [rows.count, length]),
                                           contextID: template.imgContext, options: generation, rng: &rng)
            out += generated.map { tokens in
                tokenizer.decode(tokens.filter { $0 != template.imEnd }, skipSpecial: true)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            start = end
        }
        return out
    }
}
