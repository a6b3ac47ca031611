import ArgumentParser
import UniLIPIO

/// `unilip weights …`: checkpoint utilities.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "Inspect safetensors checkpoints.",
        subcommands: [Inspect.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a checkpoint's tensors: names, dtypes, shapes, parameter counts and totals.",
            discussion: "FILE is a .safetensors file, a model.safetensors.index.json (sharded checkpoint) or a folder holding either.")

        @Argument(help: "A .safetensors file, an index .json, or a folder.")
        var file: String

        @Option(name: .customLong("filter"), help: ArgumentHelp("Only tensors whose name starts with PREFIX.", valueName: "PREFIX"))
        var filter: String?

        func run() throws {
            print(try WeightsInspector.inspect(path: file, prefix: filter))
        }
    }
}
