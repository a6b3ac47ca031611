import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels

/// Writes random-weight checkpoints in the published UniLIP layout (BF16, the current
/// transformers names), for trying the loaders and pipelines at full size without the real
/// weights. Tensors are drawn and written one chunk at a time: memory stays small at any size.
public enum OfficialCheckpointWriter {
    /// Writes config.json, tokenizer.json (copied from `tokenizer`) and model.safetensors, or
    /// shards of at most `maxShardBytes` with model.safetensors.index.json.
    public static func writeRandom(config: UniLIPOfficialConfig, tokenizer: String, to directory: String,
                                   seed: UInt64 = 0, maxShardBytes: Int? = nil) throws {
        try config.validate()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        var shapes = RandomGenerator.unfilled
        let tensors = try UniLIPOfficialModules(config, rng: &shapes).namedTensors().map { ($0.0, $0.1.shape) }
            .sorted { $0.0 < $1.0 }
        var shards: [[(String, [Int])]] = [[]]
        var bytes = 0
        for t in tensors {
            let size = t.1.reduce(1, *) * 2
            if let limit = maxShardBytes, bytes + size > limit, !(shards.last?.isEmpty ?? true) {
                shards.append([])
                bytes = 0
            }
            shards[shards.count - 1].append(t)
            bytes += size
        }
        var rng = RandomGenerator(seed: seed)
        if shards.count == 1 {
            try writeShard(tensors, to: path(Checkpoint.singleFileName), rng: &rng)
        } else {
            var weightMap: [String: String] = [:]
            for (i, shard) in shards.enumerated() {
                let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                try writeShard(shard, to: path(name), rng: &rng)
                for (t, _) in shard { weightMap[t] = name }
            }
            let total = tensors.reduce(0) { $0 + $1.1.reduce(1, *) * 2 }
            let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": weightMap]
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                                 to: path(Checkpoint.indexFileName))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(config), to: path(UniLIPOfficialModel.configFile))
        let tokenizerData = try Data(contentsOf: URL(fileURLWithPath: tokenizer))
        try AtomicFile.write(tokenizerData, to: path(UniLIPOfficialModel.tokenizerFile))
    }

    /// Draws one tensor's values: norm scales near 1, biases near 0, matrices N(0, 1/fan_in),
    /// embeddings and queries N(0, 0.02²) (`latent_queries` N(0, 1) as initialised).
    static func fill(_ name: String, shape: [Int], range: Range<Int>, into out: UnsafeMutablePointer<Float>,
                     rng: inout RandomGenerator) {
        let count = shape.reduce(1, *)
        var mean: Float = 0, std: Float = 0.02
        if name.hasSuffix("latent_queries") {
            std = 1
        } else if shape.count == 1 && name.hasSuffix(".weight") {
            mean = 1
        } else if name.hasSuffix(".ls1") || name.hasSuffix(".ls2") {
            mean = 0.1
        } else if shape.count >= 2 && name.hasSuffix(".weight") && !name.contains("embed_tokens") {
            std = 1 / Float(max(1, count / shape[0])).squareRoot()
        }
        for i in 0..<range.count { out[i] = mean + std * rng.normal() }
    }

    static func writeShard(_ tensors: [(String, [Int])], to path: String, rng: inout RandomGenerator) throws {
        var header = "{\"__metadata__\":{\"format\":\"pt\"}"
        var offset = 0
        for (name, shape) in tensors {
            let size = shape.reduce(1, *) * 2
            header += ",\"\(name)\":{\"dtype\":\"BF16\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}"
            offset += size
        }
        header += "}"
        while header.utf8.count % 8 != 0 { header += " " }
        let chunk = 1 << 20
        var values = [Float](repeating: 0, count: chunk)
        var encoded = [UInt8](repeating: 0, count: chunk * 2)
        try AtomicFile.write(to: path) { sink in
            var length = UInt64(header.utf8.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink.write($0) }
            try sink.write(Array(header.utf8))
            for (name, shape) in tensors {
                let count = shape.reduce(1, *)
                var done = 0
                while done < count {
                    let n = min(chunk, count - done)
                    try values.withUnsafeMutableBufferPointer { v in
                        guard let base = v.baseAddress else { return }
                        fill(name, shape: shape, range: done..<(done + n), into: base, rng: &rng)
                        try encoded.withUnsafeMutableBytes { e in
                            guard let out = e.baseAddress else { return }
                            DType.bf16.encode(base, count: n, into: out)
                            try sink.write(UnsafeRawBufferPointer(start: out, count: n * 2))
                        }
                    }
                    done += n
                }
            }
        }
    }
}
