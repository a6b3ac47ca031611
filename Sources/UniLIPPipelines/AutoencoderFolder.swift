import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN

/// An autoencoder model folder: config.json (`UniLIPAutoencoderConfig`) + model.safetensors with
/// the reference names (`encoder.*`, `mlp1.*`, `down_blocks.*`, `down_mlp.*`, `decoder.*`).
public enum AutoencoderFolder {
    static func path(_ directory: String, _ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    public static func config(in directory: String) throws -> UniLIPAutoencoderConfig {
        let file = path(directory, "config.json")
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TrainingError("\(directory): no config.json — not a model folder")
        }
        let config: UniLIPAutoencoderConfig
        do {
            config = try JSONDecoder().decode(UniLIPAutoencoderConfig.self, from: data)
        } catch {
            let type = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["model_type"] as? String
            if let type, type != "unilip_autoencoder" {
                throw TrainingError("\(directory) holds a model of type \(type), not a UniLIP autoencoder (train one with `unilip train autoencoder`)")
            }
            throw TrainingError("\(file): not an autoencoder config (\(error))")
        }
        do { try config.validate() } catch { throw TrainingError("\(file): \(error)") }
        return config
    }

    /// Loads a folder strictly: a checkpoint of another architecture lists its mismatched keys.
    public static func load(_ directory: String) throws -> UniLIPAutoencoder {
        let config = try config(in: directory)
        var rng = RandomGenerator(seed: 0)
        let model = UniLIPAutoencoder(config, rng: &rng)
        _ = try Checkpoint.load(path(directory, "model.safetensors"), into: model.namedTensors())
        model.eval()
        return model
    }

    /// Writes config.json and F16 weights (`weights` overrides the model's own tensors, e.g. the EMA).
    public static func save(_ model: UniLIPAutoencoder, weights: [String: Tensor]? = nil, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let tensors = weights ?? Dictionary(uniqueKeysWithValues: model.namedTensors().map { ($0.0, $0.1) })
        try SafetensorsWriter.write(tensors, to: path(directory, "model.safetensors"), dtype: .f16)
        try AtomicFile.write(try encoder.encode(model.config), to: path(directory, "config.json"))
    }

    /// Names of an InternVL checkpoint's encoder and `mlp1` in the autoencoder.
    static let fromInternVL: RenameRules = [.prefix(from: "vision_model.", to: "encoder."),
                                            .drop(pattern: "^language_model\\.")]

    /// Copies an InternVL model folder's encoder and `mlp1` into `model` (strictly: every
    /// encoder-side tensor must be there with its shape).
    public static func loadEncoder(fromInternVL directory: String, into model: UniLIPAutoencoder) throws {
        let encoderSide = model.namedTensors().filter { name, _ in
            UniLIPAutoencoder.encoderPrefixes.contains { Module.name(name, isUnder: $0) }
        }
        _ = try Checkpoint.load(path(directory, "model.safetensors"), into: encoderSide,
                                options: LoadOptions(rules: fromInternVL))
    }

    /// The frozen original encoder + `mlp1` of an InternVL model folder (the distillation
    /// teacher and the perceptual network).
    public static func teacher(fromInternVL directory: String, config: UniLIPAutoencoderConfig) throws -> DistillationTeacher {
        var rng = RandomGenerator(seed: 0)
        let encoder = InternViT(config: config.visionConfig, rng: &rng)
        let mlp1 = InternVLProjector(visionHidden: config.visionConfig.hiddenSize, llmHidden: config.llmHiddenSize, rng: &rng)
        let holder = Module()
        holder.child("encoder", encoder)
        holder.child("mlp1", mlp1)
        _ = try Checkpoint.load(path(directory, "model.safetensors"), into: holder.namedTensors(),
                                options: LoadOptions(rules: fromInternVL))
        holder.eval()
        return DistillationTeacher(encoder: encoder, mlp1: mlp1)
    }
}

extension InternVLChatModel {
    /// Puts an autoencoder's encoder and `mlp1` into this MLLM in place of its own, leaving the
    /// language model untouched (how UniLIP is dropped into InternVL3).
    public func useEncoder(of autoencoder: UniLIPAutoencoder) throws {
        let pairs: [(Module, Module, String)] = [(autoencoder.encoder, vision, "encoder"), (autoencoder.mlp1, projector, "mlp1")]
        for (source, target, label) in pairs {
            let from = Dictionary(uniqueKeysWithValues: source.namedTensors().map { ($0.0, $0.1) })
            for (name, t) in target.namedTensors() {
                guard let s = from[name], s.shape == t.shape else {
                    throw TrainingError("the autoencoder's \(label).\(name) does not fit this MLLM (\(from[name]?.shape ?? []) vs \(t.shape))")
                }
                t.assign(s)
            }
        }
    }
}
