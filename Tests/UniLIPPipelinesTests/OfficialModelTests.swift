import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPPipelines
import UniLIPText
import XCTest

/// Random-weight checkpoints in the published UniLIP layout at micro size: 16 px images,
/// 4 px patches (2×2 latents of 32 channels), a 24-wide LLM, 4 queries, a one-layer DiT and a
/// ×8 decoder.
enum MicroOfficial {
    static let vision = InternViTConfig(patchSize: 4, imageSize: 16, qkvBias: true, hiddenSize: 16, numAttentionHeads: 2,
                                        intermediateSize: 32, qkNormalization: false, numHiddenLayers: 2,
                                        normType: "layer_norm", initializerFactor: 1, useFlashAttn: false)
    static let decoder = DCAEDecoderConfig(latentChannels: 32, attentionHeadDim: 8,
                                           blockTypes: [.resBlock, .resBlock, .efficientViT, .efficientViT],
                                           blockOutChannels: [8, 16, 32, 32], layersPerBlock: [1, 1, 1, 1],
                                           qkvMultiscales: [[], [], [5], [5]])
    static let dit = SanaConfig(inChannels: 32, outChannels: 32, numAttentionHeads: 2, attentionHeadDim: 8, numLayers: 1,
                                numCrossAttentionHeads: 2, crossAttentionHeadDim: 8, crossAttentionDim: 16,
                                captionChannels: 16, sampleSize: 2)

    static func tokenizer() throws -> Tokenizer {
        let corpus = InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 30)
        return try BPETrainer.train(texts: corpus, vocabSize: 300)
    }

    static func config(vocabSize: Int) -> UniLIPOfficialConfig {
        let llm = Qwen2Config(vocabSize: vocabSize, hiddenSize: 24, intermediateSize: 32, numHiddenLayers: 2,
                              numAttentionHeads: 2, numKeyValueHeads: 1)
        return UniLIPOfficialConfig(vision: vision, text: llm, numQueries: 4, connectLayers: 1, unilipFactor: 1.5,
                                    dit: dit, decoder: decoder, scheduler: OfficialSchedulerConfig())
    }

    /// Names in the older transformers layout.
    static func legacyName(_ name: String) -> String {
        for (from, to) in [("model.vision_tower.", "vision_tower."), ("model.multi_modal_projector.", "multi_modal_projector."),
                           ("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head.")]
        where name.hasPrefix(from) {
            return to + name.dropFirst(from.count)
        }
        return name
    }

    /// Writes config.json, tokenizer.json and BF16 weights (one file, or `shards` files with an
    /// index) of a random model to `directory`.
    @discardableResult
    static func write(to directory: String, seed: UInt64 = 7, shards: Int = 1, legacy: Bool = false) throws -> UniLIPOfficialConfig {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let tokenizer = try tokenizer()
        let config = config(vocabSize: tokenizer.vocabSize)
        var rng = RandomGenerator(seed: seed)
        let modules = try UniLIPOfficialModules(config, rng: &rng)
        var tensors: [String: Tensor] = [:]
        for (name, t) in modules.namedTensors() { tensors[legacy ? legacyName(name) : name] = t }
        if shards == 1 {
            try SafetensorsWriter.write(tensors, to: path("model.safetensors"), dtype: .bf16)
        } else {
            let names = tensors.keys.sorted()
            var weightMap: [String: String] = [:]
            for s in 0..<shards {
                let file = String(format: "model-%05d-of-%05d.safetensors", s + 1, shards)
                let part = names.enumerated().filter { $0.offset % shards == s }.map(\.element)
                try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: part.map { ($0, tensors[$0]!) }),
                                            to: path(file), dtype: .bf16)
                for n in part { weightMap[n] = file }
            }
            let index = try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": weightMap], options: [.sortedKeys])
            try index.write(to: URL(fileURLWithPath: path("model.safetensors.index.json")))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(config).write(to: URL(fileURLWithPath: path("config.json")))
        try tokenizer.jsonData().write(to: URL(fileURLWithPath: path("tokenizer.json")))
        return config
    }

    static func temporaryDirectory(_ label: String) -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("unilip-official-\(label)-\(UUID().uuidString)")
        return dir
    }
}

final class OfficialModelTests: XCTestCase {
    var directories: [String] = []

    override func tearDown() {
        for d in directories { try? FileManager.default.removeItem(atPath: d) }
        directories = []
    }

    func folder(_ label: String, shards: Int = 1, legacy: Bool = false) throws -> String {
        let dir = MicroOfficial.temporaryDirectory(label)
        directories.append(dir)
        try MicroOfficial.write(to: dir, shards: shards, legacy: legacy)
        return dir
    }

    static let allStored = OfficialLoadOptions(keepStored: true, minimumStoredElements: 1)
    static let allFloat = OfficialLoadOptions(keepStored: false)

    /// Outputs of the four tasks on fixed inputs: understanding logits, a reconstruction, a
    /// generated and an edited image.
    func outputs(_ model: UniLIPOfficialModel) throws -> [String: Tensor] {
        let world = ShapesWorld(seed: 0)
        let image = world.image(world.sample(.test, 0).scene)
        var out: [String: Tensor] = [:]
        let understanding = model.understandingPipeline()
        let pixels = understanding.pixels(image)
        let ids = model.template.prompt("What is in the image?", imageTokens: model.chat.config.imageTokens)
        out["logits"] = withNoGrad {
            let e = model.chat.inputEmbeddings(ids: ids, batch: 1, imageTokens: model.chat.imageTokens(pixels),
                                               contextID: model.template.imgContext)
            return model.chat.language(embeddings: e).logits
        }
        out["reconstruction"] = model.reconstructionPipeline().reconstruct(unit: image.rgb().resized(width: 16, height: 16, filter: .bicubic).tensor())
        let generation = try model.generationPipeline()
        let options = ImageGenerationOptions(steps: 3, seed: 5)
        out["generate"] = try generation.generate(["a red circle"], options: options)[0].tensor()
        out["edit"] = try generation.edit([image], instructions: ["make it blue"], options: options)[0].tensor()
        return out
    }

    func testLoadsStrictlyWithOneSetOfSharedTensors() throws {
        let dir = try folder("strict")
        let model = try UniLIPOfficialModel(directory: dir, options: Self.allStored)
        XCTAssertTrue(UniLIPOfficialModel.isOfficialFolder(dir))
        XCTAssertTrue(model.report.isClean, "\(model.report)")
        let file = try SafetensorsFile(path: (dir as NSString).appendingPathComponent("model.safetensors"))
        XCTAssertEqual(model.report.loaded.count, file.entries.count, "every checkpoint tensor is used")
        XCTAssertTrue(model.chat.vision === model.autoencoder.encoder)
        XCTAssertTrue(model.chat.projector === model.autoencoder.mlp1)
        let generation = try model.generationModel()
        XCTAssertTrue(generation.mllm.language === model.chat.language)
        XCTAssertTrue(generation.autoencoder === model.autoencoder)
        let stored = model.modules.namedTensors().filter { !$0.1.isResident }
        XCTAssertFalse(stored.isEmpty)
        XCTAssertTrue(stored.allSatisfy { $0.0.hasSuffix(".weight") && $0.1.stored?.dtype == .bf16 })
        XCTAssertTrue(model.modules.namedTensors().allSatisfy { !$0.1.requiresGrad })
    }

    func testStoredWeightsMatchFloat32Weights() throws {
        let dir = try folder("stored")
        let stored = try outputs(try UniLIPOfficialModel(directory: dir, options: Self.allStored))
        let float = try outputs(try UniLIPOfficialModel(directory: dir, options: Self.allFloat))
        for (name, a) in stored {
            guard let b = float[name] else { return XCTFail("no \(name)") }
            XCTAssertEqual(a.shape, b.shape, name)
            XCTAssertLessThanOrEqual(zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0, 1e-4, name)
        }
        XCTAssertEqual(stored["generate"]?.shape, [1, 3, 16, 16])
        XCTAssertEqual(stored["logits"]?.shape.first, 1)
    }

    func testLegacyAndShardedLayoutsLoadTheSameModel() throws {
        let base = try outputs(try UniLIPOfficialModel(directory: try folder("base")))
        for (label, dir) in [("legacy", try folder("legacy", legacy: true)), ("sharded", try folder("sharded", shards: 3))] {
            let model = try UniLIPOfficialModel(directory: dir)
            XCTAssertTrue(model.report.isClean, label)
            let out = try outputs(model)
            for (name, a) in base { XCTAssertEqual(out[name]?.scalars, a.scalars, "\(label) \(name)") }
        }
    }
}

/// Corrupted copies of a micro checkpoint: each must fail with an error naming the file and
/// the tensor or field.
final class OfficialModelBadInputTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
        directory = MicroOfficial.temporaryDirectory("bad")
        try MicroOfficial.write(to: directory)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    func loadError() -> String {
        do {
            _ = try UniLIPOfficialModel(directory: directory)
            return "loaded"
        } catch {
            if ProcessInfo.processInfo.environment["UNILIP_SHOW_ERRORS"] != nil { print("ERROR:", error) }
            return "\(error)"
        }
    }

    /// Rewrites model.safetensors with `name` stored as `dtype` (F64 or I64: values cast).
    func rewrite(_ name: String, as dtype: String) throws {
        let file = try SafetensorsFile(path: path("model.safetensors"))
        var tensors: [(String, String, [Int], Data)] = []
        for n in file.names {
            let t = try file.tensor(n)
            if n == name {
                var data = Data()
                for v in t.scalars {
                    if dtype == "F64" { withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                    else { withUnsafeBytes(of: Int64(v * 100).littleEndian) { data.append(contentsOf: $0) } }
                }
                tensors.append((n, dtype, t.shape, data))
            } else {
                let (_, raw) = try file.rawBytes(n)
                tensors.append((n, file.entries[n]?.dtypeName ?? "", t.shape, Data(raw)))
            }
        }
        var header: [String: Any] = [:]
        var offset = 0
        for (n, d, shape, data) in tensors {
            header[n] = ["dtype": d, "shape": shape, "data_offsets": [offset, offset + data.count]]
            offset += data.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, _, _, data) in tensors { out.append(data) }
        try out.write(to: URL(fileURLWithPath: path("model.safetensors")))
    }

    func editConfig(_ change: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("config.json")))
        guard var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return XCTFail("config") }
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path("config.json")))
    }

    func testIntegerAndDoubleTensorsAreRejectedByName() throws {
        for dtype in ["I64", "F64"] {
            try setUpWithError()
            let name = "model.language_model.layers.0.mlp.up_proj.weight"
            try rewrite(name, as: dtype)
            let message = loadError()
            XCTAssertTrue(message.contains(path("model.safetensors")), message)
            XCTAssertTrue(message.contains(name) && message.contains("stored as \(dtype)"), message)
        }
    }

    func testTruncatedFileNamesTheFileAndTheTensor() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("model.safetensors")))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path("model.safetensors")))
        let message = loadError()
        XCTAssertTrue(message.contains(path("model.safetensors")) && message.contains("truncated"), message)
        XCTAssertTrue(message.contains("tensor '"), message)
    }

    func testMissingShardNamesTheShardAndItsTensors() throws {
        try FileManager.default.removeItem(atPath: directory)
        try MicroOfficial.write(to: directory, shards: 2)
        try FileManager.default.removeItem(atPath: path("model-00002-of-00002.safetensors"))
        let message = loadError()
        XCTAssertTrue(message.contains("model.safetensors.index.json") && message.contains("model-00002-of-00002.safetensors")
                      && message.contains("is missing"), message)
        XCTAssertTrue(message.contains("model."), "the tensors it should hold: \(message)")
    }

    func testMissingConfigAndTokenizer() throws {
        try FileManager.default.removeItem(atPath: path("tokenizer.json"))
        var message = loadError()
        XCTAssertTrue(message.contains("no tokenizer.json"), message)
        try FileManager.default.removeItem(atPath: path("config.json"))
        message = loadError()
        XCTAssertTrue(message.contains("no config.json"), message)
        XCTAssertFalse(UniLIPOfficialModel.isOfficialFolder(directory))
    }

    func testMalformedConfigFieldsAreNamed() throws {
        try editConfig { c in
            var text = c["text_config"] as? [String: Any] ?? [:]
            text["hidden_size"] = "wide"
            c["text_config"] = text
        }
        var message = loadError()
        XCTAssertTrue(message.contains("config.json") && message.contains("field 'text_config.hidden_size'"), message)
        try setUpWithError()
        try editConfig { $0.removeValue(forKey: "unilip_factor") }
        message = loadError()
        XCTAssertTrue(message.contains("field 'unilip_factor' is missing"), message)
        try setUpWithError()
        try editConfig { $0["downsample_ratio"] = 0.25 }
        message = loadError()
        XCTAssertTrue(message.contains("config.json") && message.contains("downsample_ratio"), message)
        try setUpWithError()
        _ = FileManager.default.createFile(atPath: path("config.json"), contents: Data("{\"model_type\": ".utf8))
        message = loadError()
        XCTAssertTrue(message.contains("config.json") && message.contains("not valid JSON"), message)
    }

    func testWrongShapesAndStrayTensorsAreListed() throws {
        try editConfig { $0["n_query"] = 5 }
        var message = loadError()
        XCTAssertTrue(message.contains("wrong shape: model.latent_queries") && message.contains("[1, 5, 24]"), message)
        try setUpWithError()
        try editConfig { $0["connect_layer"] = 2 }
        message = loadError()
        XCTAssertTrue(message.contains("missing:     model.llm_connector.layers.1."), message)
    }
}

final class OfficialAutoencoderCheckpointTests: XCTestCase {
    /// The autoencoder-only layout (`encoder.*`, `mlp1.*`, `down_blocks.*`, `down_mlp.*`,
    /// `decoder.*`, as in 1b_unilip.pth) loads into the architecture of a config and reconstructs
    /// as the full folder's autoencoder does.
    func testAutoencoderOnlyCheckpointMatchesTheFullFolder() throws {
        let dir = MicroOfficial.temporaryDirectory("ae")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try MicroOfficial.write(to: dir)
        let full = try UniLIPOfficialModel(directory: dir)
        let file = (dir as NSString).appendingPathComponent("autoencoder.safetensors")
        try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: full.autoencoder.namedTensors().map { ($0.0, $0.1.decoded()) }),
                                    to: file, dtype: .bf16)
        let alone = try UniLIPOfficialModel.autoencoder(checkpoint: file, config: config)
        let pixels = Tensor.uniform([1, 3, 16, 16], 0, 1, rng: &rng)
        XCTAssertEqual(ReconstructionPipeline(model: alone).reconstruct(unit: pixels).scalars,
                       full.reconstructionPipeline().reconstruct(unit: pixels).scalars)
        XCTAssertThrowsError(try UniLIPOfficialModel.autoencoder(checkpoint: file, preset: "unilip-2b"))
    }

    var rng = RandomGenerator(seed: 3)
}

final class OfficialConfigTests: XCTestCase {
    func testPresetsResolveThePublishedArchitectures() throws {
        let one = UniLIPOfficialConfig.unilip1B, three = UniLIPOfficialConfig.unilip3B
        XCTAssertNoThrow(try one.validate())
        XCTAssertNoThrow(try three.validate())
        XCTAssertEqual(try one.dit().numLayers, 28)
        XCTAssertEqual(try three.dit().numLayers, 20)
        XCTAssertTrue(try one.dit().legacyDefaultPositionEmbedding, "diffusers 0.32.2 adds the sin-cos embedding")
        XCTAssertEqual(one.decoder, .f32c32)
        XCTAssertEqual(try one.chat().imageTokens, 256)
        XCTAssertEqual(try three.autoencoder().llmHiddenSize, 1536)
        XCTAssertEqual(one.scheduler.flowShift, 3)
        XCTAssertEqual(UniLIPOfficialConfig.preset(named: "UniLIP-3B"), three)
        // A config with its own dit_config keeps current diffusers' reading (no embedding when null).
        var custom = one
        custom.ditConfig = .sana600M
        XCTAssertFalse(try custom.dit().legacyDefaultPositionEmbedding)
        // Round trip through config.json.
        let data = try JSONEncoder().encode(three)
        XCTAssertEqual(try JSONDecoder().decode(UniLIPOfficialConfig.self, from: data), three)
    }

    func testPublishedConfigJSONWithUnknownKeys() throws {
        let json = """
        {"architectures": ["UniLIP_InternVLForCausalLM"], "model_type": "unilip_internvl", "downsample_ratio": 0.5,
         "image_token_id": 151667, "vision_feature_layer": -1, "mllm_path": "x", "dit_path": "y", "vae_path": "z",
         "n_query": 256, "connect_layer": 6, "unilip_factor": 10.6, "torch_dtype": "bfloat16", "something_new": [1, 2],
         "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
           "image_size": [448, 448], "patch_size": [14, 14], "layer_norm_eps": 1e-06, "norm_type": "layer_norm",
           "attention_bias": true, "use_qk_norm": false, "hidden_act": "gelu", "layer_scale_init_value": 0.1, "model_type": "internvl_vision"},
         "text_config": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
           "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "vocab_size": 151674,
           "max_position_embeddings": 32768, "tie_word_embeddings": false, "hidden_act": "silu", "rope_scaling": null}}
        """
        let config = try JSONDecoder().decode(UniLIPOfficialConfig.self, from: Data(json.utf8))
        XCTAssertNoThrow(try config.validate())
        var vit = InternViTConfig.internViT300M
        vit.useFlashAttn = false
        XCTAssertEqual(try config.vision(), vit)
        XCTAssertEqual(config.textConfig.hiddenSize, UniLIPOfficialConfig.unilip1B.textConfig.hiddenSize)
        XCTAssertEqual(try config.generator().latentScale, 10.6)
        XCTAssertEqual(config.imageTokenId, 151667)
    }
}
