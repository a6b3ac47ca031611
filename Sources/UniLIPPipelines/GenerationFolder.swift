import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPText

/// Which base MLLM and autoencoder a generation folder builds on, as paths relative to it.
public struct GenerationComponents: Codable, Sendable, Equatable {
    /// The InternVL model folder whose LLM (frozen) reads the prompts.
    public var mllm: String
    /// The UniLIP autoencoder folder: its encoder + `mlp1` replace the MLLM's, and its decoder
    /// turns generated latents into pixels.
    public var autoencoder: String

    public init(mllm: String, autoencoder: String) {
        self.mllm = mllm
        self.autoencoder = autoencoder
    }
}

/// Everything generation and editing need, loaded from a generation folder:
///
///     FOLDER/config.json        UniLIPGeneratorConfig
///     FOLDER/model.safetensors  latent_queries, llm_connector.*, projector.*, dit.*
///     FOLDER/components.json    {"mllm": "../internvl-tiny", "autoencoder": "../unilip-tiny"}
///
/// The MLLM is returned with the autoencoder's encoder and `mlp1` in place of its own (UniLIP
/// replaces InternVL's encoder), so edit references are read with UniLIP's understanding tokens.
public final class GenerationModel {
    public let generator: UniLIPGenerator
    public let mllm: InternVLChatModel
    public let autoencoder: UniLIPAutoencoder
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public let directory: String

    public static let componentsFile = "components.json"

    public init(generator: UniLIPGenerator, mllm: InternVLChatModel, autoencoder: UniLIPAutoencoder,
                tokenizer: Tokenizer, directory: String = "<memory>") throws {
        mllm.freeze()
        autoencoder.freeze()
        self.generator = generator
        self.mllm = mllm
        self.autoencoder = autoencoder
        self.tokenizer = tokenizer
        template = try ChatTemplate(tokenizer: tokenizer)
        self.directory = directory
    }

    /// The MLLM (with the autoencoder's encoder swapped in) and the autoencoder of `components`,
    /// resolved against `directory`.
    public static func loadComponents(_ components: GenerationComponents, relativeTo directory: String) throws
        -> (InternVLChatModel, UniLIPAutoencoder, Tokenizer) {
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") ? p : ((directory as NSString).appendingPathComponent(p) as NSString).standardizingPath
        }
        let understanding = try UnderstandingPipeline(directory: resolve(components.mllm))
        let autoencoder = try AutoencoderFolder.load(resolve(components.autoencoder))
        try understanding.model.useEncoder(of: autoencoder)
        understanding.model.eval()
        return (understanding.model, autoencoder, understanding.tokenizer)
    }

    /// The generation head of a folder alone (config.json and model.safetensors), in eval mode.
    /// `addingTextEmbeddingOffset` turns `text_embedding_offset` on for a head trained without it
    /// (the table starts at zero, so the head computes what it did); every other tensor must be there.
    public static func loadGenerator(directory: String, addingTextEmbeddingOffset: Bool = false) throws -> UniLIPGenerator {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        guard let configData = FileManager.default.contents(atPath: path("config.json")) else {
            throw TrainingError("\(directory): no config.json — not a generation model folder (train one with `unilip train generation`)")
        }
        let config: UniLIPGeneratorConfig
        do {
            config = try JSONDecoder().decode(UniLIPGeneratorConfig.self, from: configData)
            try config.validate()
        } catch {
            throw TrainingError("\(path("config.json")): not a generation config (\(error))")
        }
        var used = config
        let adding = addingTextEmbeddingOffset && !config.textEmbeddingOffset
        if adding { used.textEmbeddingOffset = true }
        var rng = RandomGenerator(seed: 0)
        let generator = UniLIPGenerator(used, rng: &rng)
        let report = try Checkpoint.load(path("model.safetensors"), into: generator.namedTensors(),
                                         options: LoadOptions(allowMissing: adding))
        if adding && report.missing != ["text_embedding_offset"] {
            throw TrainingError("\(path("model.safetensors")): missing \(report.missing.filter { $0 != "text_embedding_offset" }.joined(separator: ", "))")
        }
        generator.eval()
        return generator
    }

    public convenience init(directory: String) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let generator = try Self.loadGenerator(directory: directory)
        guard let componentsData = FileManager.default.contents(atPath: path(Self.componentsFile)) else {
            throw TrainingError("\(directory): no \(Self.componentsFile) naming the MLLM and autoencoder folders")
        }
        let components: GenerationComponents
        do {
            components = try JSONDecoder().decode(GenerationComponents.self, from: componentsData)
        } catch {
            throw TrainingError("\(path(Self.componentsFile)): \(error)")
        }
        let (mllm, autoencoder, tokenizer) = try Self.loadComponents(components, relativeTo: directory)
        try self.init(generator: generator, mllm: mllm, autoencoder: autoencoder, tokenizer: tokenizer,
                      directory: directory)
    }

    /// Writes config.json, F16 weights (`weights` overrides the generator's own, e.g. the EMA)
    /// and components.json.
    public static func save(_ generator: UniLIPGenerator, weights: [String: Tensor]? = nil,
                            components: GenerationComponents, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let tensors = weights ?? Dictionary(uniqueKeysWithValues: generator.namedTensors().map { ($0.0, $0.1) })
        try SafetensorsWriter.write(tensors, to: path("model.safetensors"), dtype: .f16)
        try AtomicFile.write(try encoder.encode(generator.config), to: path("config.json"))
        try AtomicFile.write(try encoder.encode(components), to: path(componentsFile))
    }

    /// Latent grid of the autoencoder at its image size (4×4 for the tiny preset).
    public var latentGrid: (Int, Int) {
        autoencoder.latentGrid(height: autoencoder.config.imageSize, width: autoencoder.config.imageSize)
    }

    /// Reference-image understanding tokens the edit prompt carries: one per latent cell.
    public var referenceTokenCount: Int { latentGrid.0 * latentGrid.1 }
}
