import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPPipelines

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Runs the shipped model on ShapesWorld test scenes and writes the results with an HTML page.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOption: ModelOption
    @Option(help: "Number of test scenes.") var scenes = 6
    @Option(name: .shortAndLong, help: "Output folder.") var output = "out"

    func run() throws {
        let logger = global.apply()
        let start = Date()
        let pipeline = try modelOption.pipeline()
        let world = ShapesWorld(seed: 0, resolution: pipeline.model.config.forceImageSize)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        var html = "<!doctype html><meta charset=utf-8><title>UniLIP demo</title>"
        html += "<style>body{font:14px sans-serif;margin:2em}td{vertical-align:top;padding:6px}img{width:192px;image-rendering:pixelated}.ok{color:#080}.bad{color:#b00}</style>"
        html += "<h1>UniLIP demo</h1><p>Model: \(escape(pipeline.directory)). Test scenes of the procedural world: each scene, its reconstruction through the UniLIP autoencoder, an image generated from its caption, an edit of it, and the model's description and answers with the truth from the scene graph.</p><table>"
        // The shipped autoencoder, when present, shows each scene's reconstruction.
        let reconstruction = try (try? ModelLocator.locate("unilip-tiny", explicit: nil)).map { try ReconstructionPipeline(directory: $0) }
        // The shipped generation head, when present, draws each scene from its caption and edits it.
        let generation = try (try? ModelLocator.locate("unilip-gen-tiny", explicit: nil)).map { try GenerationPipeline(directory: $0) }
        var correct = 0, total = 0
        for i in 0..<scenes {
            let sample = world.sample(.test, i)
            let image = world.image(sample.scene)
            let name = "scene-\(i).png"
            try image.write(to: (output as NSString).appendingPathComponent(name))
            let description = try pipeline.describe(image)
            let questions = Array(sample.questions.prefix(4))
            let answers = try pipeline.answer(images: questions.map { _ in image }, questions: questions.map(\.question))
            print("scene \(i): \(description)")
            var reconCell = ""
            if let reconstruction {
                let r = try reconstruction.reconstruct(image)
                let reconName = "scene-\(i)-reconstruction.png"
                try r.image.write(to: (output as NSString).appendingPathComponent(reconName))
                reconCell = "<td><img src=\"\(reconName)\"><br>UniLIP reconstruction: \(String(format: "%.1f", r.psnr)) dB</td>"
                print("  reconstruction: PSNR \(String(format: "%.2f", r.psnr)) dB")
            }
            var generationCell = ""
            if let generation {
                let caption = sample.captions[0]
                let options = ImageGenerationOptions(seed: UInt64(i))
                let drawn = try generation.generate([caption], options: options)[0]
                let drawnName = "scene-\(i)-generated.png"
                try drawn.write(to: (output as NSString).appendingPathComponent(drawnName))
                generationCell = "<td><img src=\"\(drawnName)\"><br>generated from: <i>\(escape(caption))</i></td>"
                print("  generated from \"\(caption)\" (seed \(i))")
                if let edit = sample.edits.first {
                    let edited = try generation.edit([image], instructions: [edit.instruction], options: options)[0]
                    let editName = "scene-\(i)-edited.png"
                    try edited.write(to: (output as NSString).appendingPathComponent(editName))
                    generationCell += "<td><img src=\"\(editName)\"><br>edited: <i>\(escape(edit.instruction))</i></td>"
                    print("  edited: \(edit.instruction)")
                }
            }
            html += "<tr><td><img src=\"\(name)\"></td>\(reconCell)\(generationCell)<td><b>Describe:</b> \(escape(description))<br><i>truth: \(escape(sample.captions[UnderstandingData.describeCaption]))</i><ul>"
            for (qa, a) in zip(questions, answers) {
                let ok = a == qa.answer
                correct += ok ? 1 : 0
                total += 1
                print("  Q: \(qa.question)  A: \(a)  (truth: \(qa.answer))")
                html += "<li>\(escape(qa.question)) → <span class=\(ok ? "ok" : "bad")>\(escape(a))</span> (truth: \(escape(qa.answer)))</li>"
            }
            html += "</ul></td></tr>"
        }
        html += "</table><p>\(correct)/\(total) answers match the scene graph.</p>"
        try AtomicFile.write(Data(html.utf8), to: (output as NSString).appendingPathComponent("index.html"))
        logger.info("\(correct)/\(total) answers correct; wrote \(output)/index.html in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
