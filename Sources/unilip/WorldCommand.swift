import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPPipelines

struct WorldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "world",
        abstract: "The procedural ShapesWorld: sample scenes, measure the scene parser.",
        subcommands: [WorldSampleCommand.self, WorldParseCommand.self, WorldParserScoreCommand.self])
}

extension Split: ExpressibleByArgument {}

struct WorldSampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Writes rendered scenes (PNG) with their scene graph, captions, questions and edits (JSON).")

    @Option(help: "Split: train, validation, test or heldOut.") var split: Split = .test
    @Option(help: "First scene index.") var start = 0
    @Option(help: "Number of scenes.") var count = 8
    @Option(help: "Image side in pixels.") var resolution = 64
    @Option(help: "World seed.") var seed: UInt64 = 0
    @Option(name: .shortAndLong, help: "Output folder.") var output = "out/world"

    func run() throws {
        let world = ShapesWorld(seed: seed, resolution: resolution)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for i in start..<(start + count) {
            let s = world.sample(split, i)
            let base = (output as NSString).appendingPathComponent("\(split.rawValue)-\(i)")
            try world.image(s.scene).write(to: base + ".png")
            for (k, e) in s.edits.enumerated() {
                try world.image(e.after).write(to: base + "-edit\(k)-\(e.type.rawValue).png")
            }
            let record = SampleRecord(scene: s.scene, captions: s.captions, questions: s.questions,
                                      edits: s.edits.map { .init(type: $0.type, instruction: $0.instruction, after: $0.after) })
            try AtomicFile.write(try encoder.encode(record), to: base + ".json")
        }
        print("wrote \(count) scenes to \(output)")
    }

    struct SampleRecord: Encodable {
        struct EditRecord: Encodable { let type: EditType; let instruction: String; let after: Scene }
        let scene: Scene
        let captions: [String]
        let questions: [QuestionAnswer]
        let edits: [EditRecord]
    }
}

struct WorldParseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parses images into objects with the rule-based scene parser.")

    @Argument(help: "PNG or JPEG files.") var images: [String]

    func run() throws {
        for path in images {
            let objects = SceneParser.parse(try Image(contentsOf: path))
            let text = objects.map { "\($0.size.rawValue) \($0.color.rawValue) \($0.shape.rawValue) at \($0.row) \($0.column)" }
            print("\(path): \(text.isEmpty ? "no objects" : text.joined(separator: "; "))")
        }
    }
}

struct WorldParserScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parser-score",
        abstract: "The scene parser's own accuracy on clean, noisy and blurred renders.")

    @Option(help: "Split to render.") var split: Split = .test
    @Option(help: "Scenes per condition.") var scenes = 300
    @Option(help: "World seed.") var seed: UInt64 = 0
    @Option(help: "Also score reconstructions by this autoencoder folder (\"default\": the shipped one).")
    var autoencoder: String?
    @Option(help: "Folder for the reconstructions the parser misreads (with --autoencoder).") var failures: String?

    func run() throws {
        let world = ShapesWorld(seed: seed)
        for d in ParserBenchmark.Degradation.allCases {
            print("\(d.rawValue): \(ParserBenchmark.score(world: world, split: split, scenes: scenes, degradation: d).summary)")
        }
        guard let autoencoder else { return }
        let path = try ModelLocator.locate("unilip-tiny", explicit: autoencoder == "default" ? nil : autoencoder)
        let pipeline = try ReconstructionPipeline(directory: path)
        if let failures { try FileManager.default.createDirectory(atPath: failures, withIntermediateDirectories: true) }
        let score = try ParserBenchmark.score(world: world, split: split, scenes: scenes,
                                              transform: { try pipeline.reconstruct($0).image },
                                              misread: { i, image in
            if let failures { try image.write(to: (failures as NSString).appendingPathComponent("\(i).png")) }
        })
        print("reconstructed: \(score.summary)")
    }
}
