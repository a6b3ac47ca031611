import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels

/// Reconstruction quality over a set of images.
public struct ReconstructionReport: Sendable {
    public var count: Int
    public var psnr: Double
    public var ssim: Double
    /// Fréchet distance between originals and reconstructions in the feature space of
    /// `featureNetwork` (mean-pooled last hidden state), not Inception's: not comparable to rFID.
    public var frechetDistance: Double
    public var featureNetwork: String
}

public enum ReconstructionEvaluation {
    /// The first `count` images of a ShapesWorld split.
    public static func worldImages(_ world: ShapesWorld, split: Split, count: Int) -> [Image] {
        (0..<count).map { world.image(world.scene(split, $0)) }
    }

    /// Every PNG/JPEG in a folder (sorted by name), resized on the shorter edge to `size`
    /// (bicubic) and centre-cropped, as the reference evaluation does. Unreadable files throw.
    public static func folderImages(_ folder: String, size: Int) throws -> [Image] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw TrainingError("\(folder): cannot list the folder (\(error.localizedDescription))")
        }
        let images = try names.filter { ImageFormat(pathExtension: ($0 as NSString).pathExtension) != nil }.map { name in
            centreCrop(try Image(contentsOf: (folder as NSString).appendingPathComponent(name)).rgb(), size: size)
        }
        guard images.count >= 2 else { throw TrainingError("\(folder): needs at least 2 PNG or JPEG images, found \(images.count)") }
        return images
    }

    static func centreCrop(_ image: Image, size: Int) -> Image {
        let scale = Double(size) / Double(Swift.min(image.width, image.height))
        let w = Swift.max(size, Int((Double(image.width) * scale).rounded())),
            h = Swift.max(size, Int((Double(image.height) * scale).rounded()))
        let resized = image.resized(width: w, height: h, filter: .bicubic)
        let x0 = (w - size) / 2, y0 = (h - size) / 2
        var out = Image(width: size, height: size, channels: 3)
        for y in 0..<size {
            for x in 0..<size {
                for c in 0..<3 { out.pixels[(y * size + x) * 3 + c] = resized[x: x0 + x, y: y0 + y, c: c] }
            }
        }
        return out
    }

    /// Mean-pooled last hidden states of `encoder` for images in [0, 1] → `rows × D` values.
    static func features(_ unit: Tensor, encoder: InternViT) -> [Double] {
        withNoGrad {
            let pooled = encoder(Image.imagenetNormalized(unit)).mean(axis: 1)
            return (0..<pooled.count).map { Double(pooled.pointer[$0]) }
        }
    }

    /// PSNR and SSIM (means over images, on reconstructions clamped to [0, 1]) and the Fréchet
    /// distance in `featureEncoder`'s space with reconstructions quantised to 8 bits first.
    public static func evaluate(_ pipeline: ReconstructionPipeline, images: [Image], featureEncoder: InternViT,
                                featureNetwork: String, batchSize: Int = 64,
                                progress: (Int, Int) -> Void = { _, _ in }) -> ReconstructionReport {
        var psnr = 0.0, ssim = 0.0
        var real: [Double] = [], fake: [Double] = []
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let part = Array(images[start..<Swift.min(images.count, start + batchSize)])
            let unit = Tensor.concat(part.map { $0.rgb().tensor() }, axis: 0)
            let recon = pipeline.reconstruct(unit: unit)
            let quantised = Tensor.concat((0..<part.count).map {
                Image(tensor: recon.sliced(axis: 0, start: $0, end: $0 + 1)).tensor()
            }, axis: 0)
            psnr += ImageMetrics.psnrPerImage(recon, unit).reduce(0) { $0 + Double($1) }
            ssim += ImageMetrics.ssimPerImage(recon, unit).reduce(0) { $0 + Double($1) }
            real += features(unit, encoder: featureEncoder)
            fake += features(quantised, encoder: featureEncoder)
            progress(start + part.count, images.count)
        }
        let n = Double(images.count)
        return ReconstructionReport(count: images.count, psnr: psnr / n, ssim: ssim / n,
                                    frechetDistance: FrechetDistance.distance(real, fake, dim: featureEncoder.config.hiddenSize),
                                    featureNetwork: featureNetwork)
    }

    /// A grid PNG: originals on the top row, reconstructions below, each tile scaled ×`zoom`
    /// (nearest) so that 64 px images stay visible.
    public static func grid(originals: [Image], reconstructions: [Image], zoom: Int = 2) -> Image {
        precondition(!originals.isEmpty && originals.count == reconstructions.count, "grid: need matching, nonempty rows")
        let tile = originals[0].width * zoom, tileH = originals[0].height * zoom
        var out = Image(width: tile * originals.count, height: tileH * 2, channels: 3, fill: 255)
        for (row, images) in [originals, reconstructions].enumerated() {
            for (col, image) in images.enumerated() {
                let rgb = image.rgb()
                for y in 0..<tileH {
                    for x in 0..<tile {
                        let dst = ((row * tileH + y) * out.width + col * tile + x) * 3
                        for c in 0..<3 { out.pixels[dst + c] = rgb[x: x / zoom, y: y / zoom, c: c] }
                    }
                }
            }
        }
        return out
    }
}
