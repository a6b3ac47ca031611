import CTurboJPEG
import Foundation

/// JPEG through TurboJPEG's tj* API, which reports errors by return code (classic libjpeg
/// longjmps or exits).
enum JPEG {
    static func errorText(_ handle: tjhandle?) -> String {
        guard let cstr = tjGetErrorStr2(handle) else { return "unknown TurboJPEG error" }
        return String(cString: cstr)
    }

    static func decode(_ data: Data, source: String, limits: ImageLimits) throws -> Image {
        guard let handle = tjInitDecompress() else {
            throw ImageError(source: source, reason: .io("cannot start TurboJPEG: \(errorText(nil))"))
        }
        defer { tjDestroy(handle) }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Image in
            let buf = raw.bindMemory(to: UInt8.self).baseAddress
            let size = UInt(raw.count)
            var width: Int32 = 0, height: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(handle, buf, size, &width, &height, &subsamp, &colorspace) != 0 {
                let text = errorText(handle)
                let truncated = text.lowercased().contains("premature end") || data.count < 16
                throw ImageError(source: source, reason: truncated ? .truncated("JPEG header: \(text)")
                                                                   : .corrupt("JPEG header: \(text)"))
            }
            // A damaged header can still report success: the size must be checked here.
            try limits.check(width: Int(width), height: Int(height), source: source)
            if colorspace == unilip_tj_cs_cmyk || colorspace == unilip_tj_cs_ycck {
                throw ImageError(source: source, reason: .unsupported("CMYK/YCCK JPEG"))
            }
            let channels = colorspace == unilip_tj_cs_gray ? 1 : 3
            let pf = channels == 1 ? unilip_tj_pf_gray : unilip_tj_pf_rgb
            var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
            let rc = pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, buf, size, dst.baseAddress, width, 0, height, Int32(pf), 0)
            }
            if rc != 0 {
                let text = errorText(handle)
                let isWarning = tjGetErrorCode(handle) == Int32(unilip_tj_err_warning)
                if text.lowercased().contains("premature end") {
                    throw ImageError(source: source, reason: .truncated("JPEG data: \(text)"))
                }
                // Other warnings (e.g. stray bytes between markers) leave a usable image.
                if !isWarning {
                    throw ImageError(source: source, reason: .corrupt("JPEG data: \(text)"))
                }
            }
            return Image(width: Int(width), height: Int(height), channels: channels, pixels: pixels)
        }
    }

    static func encode(_ img: Image, quality: Int, progressive: Bool, source: String) throws -> Data {
        precondition((1...100).contains(quality), "JPEG quality must be in 1...100, got \(quality)")
        let src = img.channels == 4 ? img.rgb() : img
        guard let handle = tjInitCompress() else {
            throw ImageError(source: source, reason: .encode("cannot start TurboJPEG: \(errorText(nil))"))
        }
        defer { tjDestroy(handle) }
        let gray = src.channels == 1
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        defer { if let out { tjFree(out) } }
        let flags = Int32(progressive ? unilip_tj_flag_progressive : 0)
        let rc = src.pixels.withUnsafeBufferPointer { p in
            tjCompress2(handle, p.baseAddress, Int32(src.width), 0, Int32(src.height),
                        Int32(gray ? unilip_tj_pf_gray : unilip_tj_pf_rgb), &out, &size,
                        Int32(gray ? unilip_tj_samp_gray : (quality >= 90 ? unilip_tj_samp_444 : unilip_tj_samp_420)),
                        Int32(quality), flags)
        }
        guard rc == 0, let out else {
            throw ImageError(source: source, reason: .encode("JPEG: \(errorText(handle))"))
        }
        return Data(bytes: out, count: Int(size))
    }
}

extension Image {
    /// JPEG bytes. Alpha is dropped; gray stays one channel. Chroma is subsampled 4:2:0 below
    /// quality 90 and kept full (4:4:4) from 90 up.
    public func jpegData(quality: Int = 95, progressive: Bool = false, source: String = "<memory>") throws -> Data {
        try JPEG.encode(self, quality: quality, progressive: progressive, source: source)
    }
}
