import ArgumentParser
import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines

struct AutoencoderOption: ParsableArguments {
    @Option(name: .customLong("autoencoder"), help: "Autoencoder folder (default: the shipped Models/unilip-tiny), or UniLIP's autoencoder-only checkpoint (1b_unilip.pth, 2b_unilip.pth) with --preset.")
    var directory: String?
    @Option(help: "A published UniLIP folder (UniLIP-1B/3B): its autoencoder.") var model: String?
    @Option(help: "Architecture of an autoencoder-only checkpoint: unilip-1b or unilip-3b.") var preset: String?

    func validate() throws {
        if model != nil && directory != nil { throw ValidationError("give --model or --autoencoder, not both") }
    }

    func pipeline() throws -> ReconstructionPipeline {
        if let directory {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory)
            if exists && !isDirectory.boolValue {
                guard let preset else {
                    throw ValidationError("\(directory) is a checkpoint file: say which architecture with --preset unilip-1b or unilip-3b")
                }
                return ReconstructionPipeline(model: try UniLIPOfficialModel.autoencoder(checkpoint: directory, preset: preset),
                                              directory: directory)
            }
        }
        let folder = try ModelLocator.locate("unilip-tiny", explicit: model ?? directory)
        if UniLIPOfficialModel.isOfficialFolder(folder) {
            return try UniLIPOfficialModel(directory: folder).reconstructionPipeline()
        }
        return try ReconstructionPipeline(directory: folder)
    }
}

struct ReconstructCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruct",
        abstract: "Encodes an image to the 32-channel latent and decodes it; prints PSNR and SSIM against the input.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var model: AutoencoderOption
    @Argument(help: "PNG or JPEG image (any size of at least half the encoder stride).") var input: String
    @Option(name: .shortAndLong, help: "Output image (.png or .jpg).") var output: String

    func run() throws {
        _ = global.apply()
        let pipeline = try model.pipeline()
        let result = try pipeline.reconstruct(try Image(contentsOf: input))
        try result.image.write(to: output)
        let ssim = result.ssim.map { String(format: "%.4f", $0) } ?? "n/a (image under 11×11)"
        print("PSNR \(String(format: "%.2f", result.psnr)) dB  SSIM \(ssim)  → \(output)")
    }
}

struct EvalReconstructionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconstruction",
        abstract: "PSNR, SSIM and a Fréchet distance over our encoder's features, on a ShapesWorld split or an image folder.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var model: AutoencoderOption
    @Option(help: "ShapesWorld split (train, validation, test, heldOut).") var split: Split = .test
    @Option(help: "Image folder instead of the world (resized on the shorter edge and centre-cropped).") var folder: String?
    @Option(help: "World images to evaluate.") var count = 1000
    @Option(help: "Base model whose encoder gives the Fréchet-distance features (default: internvl-tiny).") var base: String?
    @Option(help: "Also write a grid of the first 8 originals and reconstructions to this PNG.") var grid: String?

    func run() throws {
        _ = global.apply()
        let pipeline = try model.pipeline()
        let size = pipeline.model.config.imageSize
        let images = try folder.map { try ReconstructionEvaluation.folderImages($0, size: size) }
            ?? ReconstructionEvaluation.worldImages(ShapesWorld(seed: 0, resolution: size), split: split, count: count)
        let basePath = try ModelLocator.locate("internvl-tiny", explicit: base)
        let features = try AutoencoderFolder.teacher(fromInternVL: basePath, config: pipeline.model.config)
        let line = ProgressLine(label: "reconstruct", total: images.count)
        let report = ReconstructionEvaluation.evaluate(pipeline, images: images, featureEncoder: features.encoder,
                                                       featureNetwork: "InternViT of \(basePath)") { done, _ in line.update(step: done) }
        print(String(format: "%d images: PSNR %.2f dB, SSIM %.4f, FD %.4f (%@ features; not Inception's rFID)",
                     report.count, report.psnr, report.ssim, report.frechetDistance, report.featureNetwork))
        if let grid { try AutoencoderClaimCommand.writeGrid(pipeline, images: Array(images.prefix(8)), to: grid) }
    }
}


struct AutoencoderClaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoencoder",
        abstract: "The paper's claim at our scale: reconstruction, VQA (LLM not retrained) and zero-shot accuracy for stage 1, stage 2 (λ=1) and stage 2 without distillation.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Base model (its LLM and CLIP text tower are reused as they are).") var base: String?
    @Option(help: "Stage-1 autoencoder folder.") var stage1 = "runs/unilip-tiny/stage1/model"
    @Option(help: "Stage-2 (λ = 1) autoencoder folder (default: the shipped Models/unilip-tiny).") var stage2: String?
    @Option(help: "Stage-2 folder trained with λ = 0 (row left out when missing).") var noDistill = "runs/unilip-tiny/stage2-lambda0/model"
    @Option(help: "Control: stage 1 continued as long as stage 2, encoder still frozen (row left out when missing).")
    var stage1Long = "runs/unilip-tiny/stage1-long/model"
    @Option(help: "Extra rows: LABEL=FOLDER (repeatable).") var row: [String] = []
    @Option(help: "Test images for PSNR/SSIM/FD.") var images = 1000
    @Option(help: "Test scenes for VQA (every question of each).") var scenes = 200
    @Option(help: "Single-object test images for zero-shot accuracy.") var zeroShotImages = 300
    @Option(help: "Write the table into this Markdown file's `autoencoder` section.") var markdown: String?
    @Option(help: "Folder for the grid PNGs.") var grids = "docs/images"

    func run() throws {
        let logger = global.apply()
        let basePath = try ModelLocator.locate("internvl-tiny", explicit: base)
        var rows: [(String, String, String)] = [
            ("original (stage 1 only)", "stage1", stage1),
            ("UniLIP (stage 2, λ=1)", "stage2", try stage2 ?? ModelLocator.locate("unilip-tiny", explicit: nil)),
        ]
        let optional = [("stage 2 without distillation (λ=0)", "stage2-lambda0", noDistill),
                        ("control: stage 1 continued as long as stage 2 (encoder frozen)", "stage1-long", stage1Long)]
        for r in optional where FileManager.default.fileExists(atPath: (r.2 as NSString).appendingPathComponent("config.json")) {
            rows.append(r)
        }
        for r in row {
            let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("--row must be LABEL=FOLDER, got \(r)") }
            rows.append((parts[0], parts[0].lowercased().filter { $0.isLetter || $0.isNumber }, parts[1]))
        }
        let mllm = try UnderstandingPipeline(directory: basePath)
        let world = ShapesWorld(seed: 0, resolution: mllm.model.config.forceImageSize)
        let testImages = ReconstructionEvaluation.worldImages(world, split: .test, count: images)
        let featureEncoder = try AutoencoderFolder.teacher(fromInternVL: basePath, config: try AutoencoderFolder.config(in: rows[0].2))
        try FileManager.default.createDirectory(atPath: grids, withIntermediateDirectories: true)
        // The CLIP head wraps the MLLM's own encoder, which each row swaps in place.
        let (clip, tokenizer) = try UnderstandingEvaluation.loadCLIP(directory: basePath, vision: mllm.model.vision)

        var md = "## Autoencoder: the two-stage claim on ShapesWorld\n\n"
        md += "Generated by `unilip eval autoencoder --markdown docs/RESULTS.md` (`make results`). "
        md += "PSNR / SSIM: mean over the first \(images) test images (64 px, reconstructions clamped to [0, 1]). "
        md += "FD: Fréchet distance between originals and 8-bit reconstructions in the feature space of the base model's InternViT (mean-pooled last layer) — our encoder's features, not Inception's rFID. "
        md += "VQA: the autoencoder's encoder + `mlp1` put into the base InternVL-tiny, whose LLM is not retrained; every question of \(scenes) test scenes. "
        md += "Zero-shot: the same encoder with the base model's CLIP text tower, best of 84 prompts on \(zeroShotImages) single-object test images (mean of colour, shape, size accuracy).\n\n"
        md += "| encoder | PSNR | SSIM | FD (our encoder) | VQA acc (LLM not retrained) | zero-shot acc | grid |\n|---|---|---|---|---|---|---|\n"
        for (label, slug, folder) in rows {
            logger.info("\(label): \(folder)")
            let pipeline = try ReconstructionPipeline(directory: folder)
            let line = ProgressLine(label: slug, total: testImages.count)
            let recon = ReconstructionEvaluation.evaluate(pipeline, images: testImages, featureEncoder: featureEncoder.encoder,
                                                          featureNetwork: "base InternViT") { done, _ in line.update(step: done) }
            try mllm.model.useEncoder(of: pipeline.model)
            let vqa = try UnderstandingEvaluation.vqa(mllm, world: world, split: .test, scenes: scenes).byType
            let zs = UnderstandingEvaluation.zeroShot(clip, tokenizer: tokenizer, world: world, split: .test, images: zeroShotImages)
            let zeroShot = (zs.accuracy("color") + zs.accuracy("shape") + zs.accuracy("size")) / 3
            let gridPath = (grids as NSString).appendingPathComponent("reconstruction-\(slug).png")
            try Self.writeGrid(pipeline, images: Array(testImages.prefix(8)), to: gridPath)
            let text = String(format: "PSNR %.2f dB, SSIM %.4f, FD %.4f, VQA %.1f%%, zero-shot %.1f%% (colour %.1f, shape %.1f, size %.1f)",
                              recon.psnr, recon.ssim, recon.frechetDistance, vqa.overall * 100, zeroShot * 100,
                              zs.accuracy("color") * 100, zs.accuracy("shape") * 100, zs.accuracy("size") * 100)
            print("\(label): \(text)")
            md += String(format: "| %@ | %.2f dB | %.4f | %.4f | %.1f%% | %.1f%% | ![](images/reconstruction-%@.png) |\n",
                         label, recon.psnr, recon.ssim, recon.frechetDistance, vqa.overall * 100, zeroShot * 100, slug)
        }
        md += "\nEach grid: 8 test originals (top) and their reconstructions (bottom), ×2 nearest.\n"
        if let markdown { try MarkdownSections.write(md, section: "autoencoder", to: markdown) }
    }

    static func writeGrid(_ pipeline: ReconstructionPipeline, images: [Image], to path: String) throws {
        let unit = Tensor.concat(images.map { $0.rgb().tensor() }, axis: 0)
        let recon = pipeline.reconstruct(unit: unit)
        let out = (0..<images.count).map { Image(tensor: recon.sliced(axis: 0, start: $0, end: $0 + 1)) }
        try ReconstructionEvaluation.grid(originals: images, reconstructions: out).write(to: path)
    }
}
