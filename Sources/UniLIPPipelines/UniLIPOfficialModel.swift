import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPText

/// A published UniLIP checkpoint folder that cannot be used, with the file and the field or
/// tensor at fault.
public struct OfficialModelError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// How a published checkpoint is loaded.
public struct OfficialLoadOptions: Sendable, Equatable {
    /// BF16/F16 weight matrices stay as the mapped file bytes and are decoded per use (about
    /// half the memory of Float32); false converts everything to Float32 at load.
    public var keepStored = true
    /// Smaller tensors are converted at load (decoding them per use would cost more than it saves).
    public var minimumStoredElements = 1 << 16

    public init(keepStored: Bool = true, minimumStoredElements: Int = 1 << 16) {
        self.keepStored = keepStored
        self.minimumStoredElements = minimumStoredElements
    }

    /// The defaults, with `UNILIP_STORED_WEIGHTS=0` converting everything to Float32 at load.
    public static func fromEnvironment() -> OfficialLoadOptions {
        OfficialLoadOptions(keepStored: ProcessInfo.processInfo.environment["UNILIP_STORED_WEIGHTS"] != "0")
    }
}

/// A published UniLIP folder (`kanashi6/UniLIP-1B`, `-3B`, as `save_pretrained` writes
/// `UniLIP_InternVLForCausalLM`): config.json (model_type `unilip_internvl`), model.safetensors
/// or shards with model.safetensors.index.json, tokenizer.json.
///
/// One strict load fills one set of modules (`UniLIPOfficialModules`); the understanding model,
/// the autoencoder and the generation model view the same tensors.
public final class UniLIPOfficialModel {
    public let directory: String
    public let config: UniLIPOfficialConfig
    public let modules: UniLIPOfficialModules
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    /// What the strict load matched (every tensor used, every parameter found).
    public let report: LoadReport

    public static let configFile = "config.json"
    public static let tokenizerFile = "tokenizer.json"

    /// Checkpoint key → parameter name, for the layouts transformers has saved this model in.
    /// The current one (`model.vision_tower.*`, `model.multi_modal_projector.*`,
    /// `model.language_model.*`, `lm_head.*`) passes unchanged; the older top-level
    /// `vision_tower.*` / `multi_modal_projector.*` and `language_model.model.*` +
    /// `language_model.lm_head.*` are mapped onto it.
    public static let renameRules: RenameRules = [
        .prefix(from: "vision_tower.", to: "model.vision_tower."),
        .prefix(from: "multi_modal_projector.", to: "model.multi_modal_projector."),
        .prefix(from: "language_model.model.", to: "model.language_model."),
        .prefix(from: "language_model.lm_head.", to: "lm_head."),
    ]

    /// True when `directory` holds a config.json whose model_type is `unilip_internvl`.
    public static func isOfficialFolder(_ directory: String) -> Bool {
        let file = (directory as NSString).appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: file),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["model_type"] as? String == UniLIPOfficialConfig.modelType
    }

    /// The validated config.json of a folder; errors name the file and the field.
    public static func config(in directory: String) throws -> UniLIPOfficialConfig {
        let file = (directory as NSString).appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: file) else {
            throw OfficialModelError("\(directory): no \(configFile) — not a UniLIP model folder")
        }
        return try config(file: file)
    }

    /// A config.json file in the published layout, validated.
    public static func config(file: String) throws -> UniLIPOfficialConfig {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw OfficialModelError("\(file): cannot read")
        }
        let config: UniLIPOfficialConfig
        do {
            config = try JSONDecoder().decode(UniLIPOfficialConfig.self, from: data)
        } catch let error as DecodingError {
            throw OfficialModelError("\(file): \(Self.describe(error))")
        } catch {
            throw OfficialModelError("\(file): \(error)")
        }
        do { try config.validate() } catch { throw OfficialModelError("\(file): \(error)") }
        return config
    }

    public init(directory: String, options: OfficialLoadOptions = .fromEnvironment()) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let config = try Self.config(in: directory)
        let tokenizerPath = path(Self.tokenizerFile)
        guard FileManager.default.fileExists(atPath: tokenizerPath) else {
            throw OfficialModelError("\(directory): no \(Self.tokenizerFile) (the tokenizer saved with the checkpoint)")
        }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer(contentsOf: tokenizerPath) } catch { throw OfficialModelError("\(tokenizerPath): \(error)") }
        guard tokenizer.vocabSize <= config.textConfig.vocabSize else {
            throw OfficialModelError("\(tokenizerPath): \(tokenizer.vocabSize) tokens but text_config.vocab_size is \(config.textConfig.vocabSize)")
        }
        do { template = try ChatTemplate(tokenizer: tokenizer) } catch { throw OfficialModelError("\(tokenizerPath): \(error)") }
        if let id = config.imageTokenId, id != template.imgContext {
            throw OfficialModelError("\(path(Self.configFile)): image_token_id is \(id) but \(Self.tokenizerFile) has <IMG_CONTEXT> = \(template.imgContext)")
        }
        let checkpoint = try Checkpoint(path: directory)
        var rng = RandomGenerator.unfilled
        let modules = try UniLIPOfficialModules(config, rng: &rng)
        modules.freeze()
        let minimum = options.minimumStoredElements, keep = options.keepStored
        report = try checkpoint.load(into: modules.namedTensors(), options: LoadOptions(rules: Self.renameRules)) { name, t in
            keep && name.hasSuffix(".weight") && t.rank >= 2 && t.count >= minimum
        }
        modules.eval()
        self.directory = directory
        self.config = config
        self.modules = modules
        self.tokenizer = tokenizer
    }

    // MARK: Task views (sharing the loaded tensors)

    public var chat: InternVLChatModel { modules.chat }
    public var autoencoder: UniLIPAutoencoder { modules.autoencoder }
    public var generator: UniLIPGenerator { modules.generator }

    /// Understanding with InternVL's dynamic tiling (`maxTiles` tiles + thumbnail; 1 or nil:
    /// one resized image).
    public func understandingPipeline(maxTiles: Int? = 12) -> UnderstandingPipeline {
        let pipeline = UnderstandingPipeline(model: chat, tokenizer: tokenizer, template: template, directory: directory)
        pipeline.maxTiles = maxTiles
        return pipeline
    }

    public func reconstructionPipeline() -> ReconstructionPipeline {
        ReconstructionPipeline(model: autoencoder, directory: directory)
    }

    public func generationModel() throws -> GenerationModel {
        try GenerationModel(generator: generator, mllm: chat, autoencoder: autoencoder, tokenizer: tokenizer,
                            directory: directory)
    }

    public func generationPipeline() throws -> GenerationPipeline { GenerationPipeline(model: try generationModel()) }

    // MARK: Autoencoder-only checkpoints

    /// The autoencoder of a preset (`unilip-1b`, `unilip-3b`) filled strictly from UniLIP's
    /// autoencoder-only checkpoint (`1b_unilip.pth` / `2b_unilip.pth`: `encoder.*`, `mlp1.*`,
    /// `down_blocks.*`, `down_mlp.*`, `decoder.*`), or from a safetensors file with those names.
    public static func autoencoder(checkpoint path: String, preset: String) throws -> UniLIPAutoencoder {
        guard let config = UniLIPOfficialConfig.preset(named: preset) else {
            throw OfficialModelError("unknown preset '\(preset)' (unilip-1b or unilip-3b)")
        }
        return try autoencoder(checkpoint: path, config: config)
    }

    /// `autoencoder(checkpoint:preset:)` for the architecture of any published-layout config.
    public static func autoencoder(checkpoint path: String, config: UniLIPOfficialConfig) throws -> UniLIPAutoencoder {
        var rng = RandomGenerator.unfilled
        let model = UniLIPAutoencoder(try config.autoencoder(), rng: &rng)
        _ = try Checkpoint.load(path, into: model.namedTensors())
        model.freeze()
        model.eval()
        return model
    }

    /// "field 'a.b': reason" for a JSON decoding error.
    static func describe(_ error: DecodingError) -> String {
        func field(_ path: [CodingKey], _ key: CodingKey? = nil) -> String {
            let parts = (path + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return parts.isEmpty ? "the top level" : "field '" + parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
        }
        switch error {
        case let .keyNotFound(key, context): return "\(field(context.codingPath, key)) is missing"
        case let .typeMismatch(type, context): return "\(field(context.codingPath)) is not a valid \(type): \(context.debugDescription)"
        case let .valueNotFound(type, context): return "\(field(context.codingPath)) is null, expected \(type)"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not valid JSON (\(context.underlyingError.map { "\($0)" } ?? context.debugDescription))"
                : "\(field(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
