import Foundation
import ArgumentParser
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines

/// `unilip weights …`: checkpoint utilities.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "Inspect and convert checkpoints (safetensors and PyTorch .pth).",
        subcommands: [Inspect.self, Convert.self, RandomOfficial.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a checkpoint's tensors: names, dtypes, shapes, parameter counts and totals.",
            discussion: "FILE is a .safetensors file, a model.safetensors.index.json (sharded checkpoint), a folder holding either, or a PyTorch .pth/.pt/.bin/.ckpt file (torch.save zip format).")

        @Argument(help: "A .safetensors file, an index .json, a folder, or a .pth file.")
        var file: String

        @Option(name: .customLong("filter"), help: ArgumentHelp("Only tensors whose name starts with PREFIX.", valueName: "PREFIX"))
        var filter: String?

        @Option(name: .customLong("key"), help: ArgumentHelp("For a .pth: the top-level key holding the state dict (default: found automatically).", valueName: "K"))
        var key: String?

        func run() throws {
            print(try WeightsInspector.inspect(path: file, prefix: filter, key: key))
        }
    }

    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a checkpoint (e.g. a PyTorch .pth state dict) to one safetensors file.",
            discussion: """
                Reads IN without Python (torch.save zip format; F32/F16/BF16 tensors) and writes OUT \
                atomically. Without --key the state dict is the top-level dict when it holds tensors, \
                otherwise its only nested dict of tensors (e.g. "state_dict"); several candidates \
                ("model" and "ema") need --key. Without --dtype the stored dtype is kept when all \
                tensors share one, otherwise F32.
                """)

        @Argument(help: "The checkpoint to read (.pth/.pt/.bin/.ckpt, or anything `weights inspect` accepts).")
        var input: String

        @Argument(help: "The .safetensors file to write.")
        var output: String

        @Option(name: .customLong("key"), help: ArgumentHelp("The top-level key holding the state dict.", valueName: "K"))
        var key: String?

        @Option(name: .customLong("dtype"), help: ArgumentHelp("Stored dtype: f16, bf16 or f32.", valueName: "f16|bf16|f32"))
        var dtype: String?

        func run() throws {
            var target: DType?
            if let dtype {
                guard let d = DType(rawValue: dtype.uppercased()) else {
                    throw ValidationError("--dtype must be f16, bf16 or f32, not '\(dtype)'")
                }
                target = d
            }
            let (count, written) = try WeightsConverter.convert(input: input, output: output, key: key, dtype: target)
            print("\(output): \(count) tensors as \(written.rawValue)")
        }
    }

    struct RandomOfficial: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "random-official",
            abstract: "Write a random-weight checkpoint in the published UniLIP layout (config.json, BF16 safetensors, tokenizer.json).",
            discussion: "For trying the published-model paths (loading, memory, speed) without the real weights. Tensors are drawn and written in chunks, so any size fits in little memory.")

        @Option(help: "unilip-1b or unilip-3b.") var preset: String = "unilip-1b"
        @Option(help: "A config.json in the published layout instead of a preset.") var config: String?
        @Option(help: "tokenizer.json to copy (default: the shipped Models/internvl-tiny's).") var tokenizer: String?
        @Option(help: "Split the weights into shards of at most this many GB.") var shardGB: Double?
        @Option(help: "Seed of the weights.") var seed: UInt64 = 0
        @Option(name: .shortAndLong, help: "Output folder.") var output: String

        func run() throws {
            let chosen: UniLIPOfficialConfig
            if let config {
                chosen = try UniLIPOfficialModel.config(file: config)
            } else if let p = UniLIPOfficialConfig.preset(named: preset) {
                chosen = p
            } else {
                throw ValidationError("unknown preset '\(preset)' (unilip-1b or unilip-3b)")
            }
            let tokenizerPath = try tokenizer ?? (ModelLocator.locate("internvl-tiny", explicit: nil) as NSString).appendingPathComponent("tokenizer.json")
            try OfficialCheckpointWriter.writeRandom(config: chosen, tokenizer: tokenizerPath, to: output, seed: seed,
                                                     maxShardBytes: shardGB.map { Int($0 * 1e9) })
            print("→ \(output)")
        }
    }
}
