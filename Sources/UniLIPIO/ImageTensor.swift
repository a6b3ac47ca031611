import Foundation
import UniLIPCore

extension Image {
    /// ImageNet channel means (RGB), for `tensor(mean:std:)`.
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    /// ImageNet channel standard deviations (RGB).
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// Images in [0, 1] as [B, 3, H, W] → (x − mean[c]) / std[c] with ImageNet statistics (what
    /// `tensor(mean: imagenetMean, std: imagenetStd)` gives for one image); differentiable.
    public static func imagenetNormalized(_ unit: Tensor) -> Tensor {
        (unit - Tensor(imagenetMean, shape: [1, 3, 1, 1])) / Tensor(imagenetStd, shape: [1, 3, 1, 1])
    }

    /// A [1, C, H, W] tensor: bytes scaled to [0, 1], then (x − mean[c]) / std[c]. `mean` and
    /// `std` hold one value per channel, or one value for all channels.
    public func tensor(mean: [Float] = [0], std: [Float] = [1]) -> Tensor {
        let (m, s) = Image.channelParameters(mean: mean, std: std, channels: channels)
        let hw = width * height, c = channels
        let out = Tensor(uninitialized: [1, c, height, width])
        let dst = out.pointer
        pixels.withUnsafeBufferPointer { src in
            let src = src.baseAddress!
            for ch in 0..<c {
                // (x/255 − m)/s folded into one multiply-add.
                let scale = 1 / (255 * s[ch]), shift = -m[ch] / s[ch]
                let plane = dst + ch * hw
                Parallel.forRange(height, grain: 64) { rows in
                    for i in (rows.lowerBound * width)..<(rows.upperBound * width) {
                        plane[i] = Float(src[i * c + ch]) * scale + shift
                    }
                }
            }
        }
        return out
    }

    /// An image from a [1, C, H, W] or [C, H, W] tensor (C = 1, 3 or 4): x · std[c] + mean[c],
    /// clamped to [0, 1], times 255, rounded.
    public init(tensor: Tensor, mean: [Float] = [0], std: [Float] = [1]) {
        precondition(tensor.rank == 3 || (tensor.rank == 4 && tensor.shape[0] == 1),
                     "Image(tensor:) needs [1, C, H, W] or [C, H, W], got \(tensor.shape)")
        let c = tensor.size(-3), h = tensor.size(-2), w = tensor.size(-1)
        precondition([1, 3, 4].contains(c), "Image(tensor:) needs 1, 3 or 4 channels, got \(c)")
        precondition(h > 0 && w > 0, "Image(tensor:) needs a nonempty image, got \(tensor.shape)")
        let (m, s) = Image.channelParameters(mean: mean, std: std, channels: c)
        let hw = h * w
        var pixels = [UInt8](repeating: 0, count: hw * c)
        let src = tensor.pointer
        pixels.withUnsafeMutableBufferPointer { dst in
            let dst = dst.baseAddress!
            for ch in 0..<c {
                let scale = s[ch] * 255, shift = m[ch] * 255
                let plane = src + ch * hw
                Parallel.forRange(h, grain: 64) { rows in
                    for i in (rows.lowerBound * w)..<(rows.upperBound * w) {
                        // NaN fails both comparisons and maps to 0.
                        let v = plane[i] * scale + shift
                        let clamped = v > 0 ? (v < 255 ? v : 255) : 0
                        dst[i * c + ch] = UInt8(clamped + 0.5)
                    }
                }
            }
        }
        self.init(width: w, height: h, channels: c, pixels: pixels)
    }

    static func channelParameters(mean: [Float], std: [Float], channels: Int) -> ([Float], [Float]) {
        precondition(mean.count == 1 || mean.count == channels,
                     "mean has \(mean.count) values for \(channels) channels")
        precondition(std.count == 1 || std.count == channels,
                     "std has \(std.count) values for \(channels) channels")
        precondition(std.allSatisfy { $0 != 0 }, "std must be nonzero")
        let m = mean.count == 1 ? [Float](repeating: mean[0], count: channels) : mean
        let s = std.count == 1 ? [Float](repeating: std[0], count: channels) : std
        return (m, s)
    }
}

// MARK: Resizing

extension Image {
    /// Resampling filters for `resized(width:height:filter:)`.
    public enum ResizeFilter: Sendable {
        case bilinear, bicubic
    }

    /// The image resampled to `width` × `height`: the 0…255 values go through
    /// `F.interpolate(size, mode, align_corners=False, antialias=True)`, then are rounded and
    /// clamped. When shrinking, the filter widens with the scale (antialiasing, as Pillow and
    /// torchvision's resize); bicubic then uses Keys' a = −0.5.
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResizeFilter = .bilinear) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "resize to \(newWidth)×\(newHeight): size must be positive")
        if newWidth == width && newHeight == height { return self }
        let c = channels, hw = width * height
        let input = Tensor(uninitialized: [1, c, height, width])
        pixels.withUnsafeBufferPointer { src in
            let src = src.baseAddress!
            for ch in 0..<c {
                let plane = input.pointer + ch * hw
                for i in 0..<hw { plane[i] = Float(src[i * c + ch]) }
            }
        }
        let mode: InterpolationMode = filter == .bilinear ? .bilinear : .bicubic
        let out = withNoGrad {
            input.interpolate(size: (newHeight, newWidth), mode: mode, alignCorners: false, antialias: true)
        }
        let ohw = newWidth * newHeight
        var result = [UInt8](repeating: 0, count: ohw * c)
        result.withUnsafeMutableBufferPointer { dst in
            let dst = dst.baseAddress!
            for ch in 0..<c {
                let plane = out.pointer + ch * ohw
                for i in 0..<ohw {
                    // Bicubic overshoots: clamp before rounding.
                    let v = plane[i]
                    dst[i * c + ch] = UInt8((v > 0 ? (v < 255 ? v : 255) : 0) + 0.5)
                }
            }
        }
        return Image(width: newWidth, height: newHeight, channels: c, pixels: result)
    }
}
