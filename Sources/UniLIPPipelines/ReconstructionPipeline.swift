import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels

/// A reconstructed image with its quality against the input.
public struct Reconstruction {
    public let image: Image
    public let psnr: Float
    /// nil when the image is smaller than SSIM's 11×11 window.
    public let ssim: Float?
}

/// Loads an autoencoder folder and reconstructs images: encoder → `mlp1` → latent → decoder.
public final class ReconstructionPipeline {
    public let model: UniLIPAutoencoder
    public let directory: String

    public init(directory: String) throws {
        model = try AutoencoderFolder.load(directory)
        self.directory = directory
    }

    public init(model: UniLIPAutoencoder, directory: String = "<memory>") {
        model.eval()
        self.model = model
        self.directory = directory
    }

    /// The smallest side an image may have: reflect padding to a multiple of the encoder stride
    /// must stay shorter than the side.
    public var minimumSide: Int { model.config.encoderStride / 2 + 1 }

    /// Reconstructs an image at its own size (reflect-padded to the encoder stride and cropped
    /// back, as UniLIP's `_Pad` evaluation does).
    public func reconstruct(_ image: Image) throws -> Reconstruction {
        guard image.width >= minimumSide, image.height >= minimumSide else {
            throw TrainingError("image \(image.width)×\(image.height) is too small: both sides must be at least \(minimumSide) pixels")
        }
        let rgb = image.rgb()
        let unit = rgb.tensor()
        let stride = model.config.encoderStride
        let out = withNoGrad { () -> Tensor in
            let pixels = rgb.tensor(mean: Image.imagenetMean, std: Image.imagenetStd)
            // Sides already multiples of the stride take the plain path (the reference's
            // inference script: decode, resize with align_corners=False); others are padded.
            if rgb.width % stride == 0 && rgb.height % stride == 0 {
                return ((model.reconstruct(pixels).images + 1) * 0.5).clamped(0, 1)
            }
            return ((model.reconstructAnySize(pixels) + 1) * 0.5).clamped(0, 1)
        }
        let ssim = image.width >= 11 && image.height >= 11 ? ImageMetrics.ssim(out, unit) : nil
        return Reconstruction(image: Image(tensor: out), psnr: ImageMetrics.psnr(out, unit), ssim: ssim)
    }

    /// Reconstructions in [0, 1] of images in [0, 1] ([B, 3, H, W], H and W multiples of the
    /// encoder stride).
    public func reconstruct(unit: Tensor) -> Tensor {
        withNoGrad { ((model.reconstruct(Image.imagenetNormalized(unit)).images + 1) * 0.5).clamped(0, 1) }
    }
}
