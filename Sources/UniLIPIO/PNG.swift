import CPNG
import Foundation

/// PNG through libpng's simplified `png_image_*` API, which reports errors by return value
/// (the classic API longjmps, which Swift cannot survive).
enum PNG {
    static func message(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    static func failure(_ image: png_image, source: String, stage: String) -> ImageError {
        let text = message(image)
        let lower = text.lowercased()
        let truncated = ["end of data", "read error", "not enough image data", "truncated", "unexpected end"]
            .contains { lower.contains($0) }
        let detail = text.isEmpty ? "\(stage) failed" : "\(stage): \(text)"
        return ImageError(source: source, reason: truncated ? .truncated(detail) : .corrupt(detail))
    }

    /// Colour-space chunks that would make the simplified API convert samples (to sRGB for
    /// 8-bit output, to linear for 16-bit output).
    static let colorSpaceChunks: Set<String> = ["gAMA", "sRGB", "iCCP", "cHRM"]

    /// The file without gAMA/sRGB/iCCP/cHRM chunks, so that samples are read as stored (8-bit
    /// files are then taken as sRGB and 16-bit files as linear: neither is converted). A
    /// malformed chunk list is left as it is, for libpng to report.
    static func withoutColorSpaceChunks(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var keep: [Range<Int>] = [0..<8]
        var pos = 8
        var dropped = false
        while pos + 12 <= bytes.count {
            let length = Int(bytes[pos]) << 24 | Int(bytes[pos + 1]) << 16 | Int(bytes[pos + 2]) << 8 | Int(bytes[pos + 3])
            let end = pos + 12 + length
            guard end <= bytes.count else { break }
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            if colorSpaceChunks.contains(type) { dropped = true } else { keep.append(pos..<end) }
            pos = end
            if type == "IEND" || type == "IDAT" { break }
        }
        guard dropped else { return data }
        keep.append(pos..<bytes.count)
        var out = Data(capacity: bytes.count)
        for r in keep { out.append(contentsOf: bytes[r]) }
        return out
    }

    static func decode(_ data: Data, source: String, limits: ImageLimits) throws -> Image {
        try withoutColorSpaceChunks(data).withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Image in
            var image = png_image()
            image.version = unilip_png_image_version
            defer { png_image_free(&image) }
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                throw failure(image, source: source, stage: "reading the PNG header")
            }
            let width = Int(image.width), height = Int(image.height)
            try limits.check(width: width, height: height, source: source)
            let sourceFormat = image.format
            let hasAlpha = sourceFormat & unilip_png_format_flag_alpha != 0
            let hasColor = sourceFormat & unilip_png_format_flag_color != 0
            let is16 = sourceFormat & unilip_png_format_flag_linear != 0
            // Gray + alpha becomes RGBA so that images keep 1, 3 or 4 channels.
            let channels = hasAlpha ? 4 : (hasColor ? 3 : 1)
            let count = width * height * channels

            if !is16 {
                image.format = channels == 1 ? unilip_png_format_gray
                    : (channels == 3 ? unilip_png_format_rgb : unilip_png_format_rgba)
                var pixels = [UInt8](repeating: 0, count: count)
                let ok = pixels.withUnsafeMutableBytes {
                    png_image_finish_read(&image, nil, $0.baseAddress, 0, nil)
                }
                guard ok != 0 else { throw failure(image, source: source, stage: "decoding PNG pixels") }
                return Image(width: width, height: height, channels: channels, pixels: pixels)
            }

            // 16-bit: read the linear 16-bit values and scale to 8 bits by hand (reading as
            // 8-bit would apply the sRGB curve). Linear output with alpha is premultiplied.
            image.format = channels == 1 ? unilip_png_format_linear_y
                : (channels == 3 ? unilip_png_format_linear_rgb : unilip_png_format_linear_rgba)
            var wide = [UInt16](repeating: 0, count: count)
            let ok = wide.withUnsafeMutableBytes {
                png_image_finish_read(&image, nil, $0.baseAddress, 0, nil)
            }
            guard ok != 0 else { throw failure(image, source: source, stage: "decoding PNG pixels") }
            var pixels = [UInt8](repeating: 0, count: count)
            wide.withUnsafeBufferPointer { src in
                pixels.withUnsafeMutableBufferPointer { dst in
                    if channels == 4 {
                        for p in 0..<(width * height) {
                            let a = UInt32(src[4 * p + 3])
                            for c in 0..<3 {
                                let v = a == 0 ? 0 : min(65535, (UInt32(src[4 * p + c]) * 65535 + a / 2) / a)
                                dst[4 * p + c] = UInt8((v * 255 + 32767) / 65535)
                            }
                            dst[4 * p + 3] = UInt8((a * 255 + 32767) / 65535)
                        }
                    } else {
                        for i in 0..<count { dst[i] = UInt8((UInt32(src[i]) * 255 + 32767) / 65535) }
                    }
                }
            }
            return Image(width: width, height: height, channels: channels, pixels: pixels)
        }
    }

    static func encode(_ img: Image, source: String) throws -> Data {
        var image = png_image()
        image.version = unilip_png_image_version
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = img.channels == 1 ? unilip_png_format_gray
            : (img.channels == 3 ? unilip_png_format_rgb : unilip_png_format_rgba)
        image.flags = unilip_png_image_flag_fast
        defer { png_image_free(&image) }
        // Worst case: stored deflate blocks (5 bytes per 65535) over filter byte + row, plus chunks.
        let raw = img.height * (img.width * img.channels + 1)
        var capacity = raw + raw / 1000 * 5 + 64 * 1024
        for _ in 0..<2 {
            var out = Data(count: capacity)
            var bytes = capacity
            let ok = out.withUnsafeMutableBytes { dst in
                img.pixels.withUnsafeBytes { src in
                    png_image_write_to_memory(&image, dst.baseAddress, &bytes, 0, src.baseAddress, 0, nil)
                }
            }
            if ok != 0 {
                out.count = bytes
                return out
            }
            if unilip_png_image_failed(&image) != 0 || bytes <= capacity {
                let text = message(image)
                throw ImageError(source: source, reason: .encode(text.isEmpty ? "libpng write failed" : text))
            }
            capacity = bytes  // buffer too small: libpng reported the size it needs
            png_image_free(&image)
            image.opaque = nil
        }
        throw ImageError(source: source, reason: .encode("PNG output larger than the buffer"))
    }
}

extension Image {
    /// PNG bytes (fast compression). Gray, RGB and RGBA are written as 8-bit.
    public func pngData(source: String = "<memory>") throws -> Data {
        try PNG.encode(self, source: source)
    }
}
