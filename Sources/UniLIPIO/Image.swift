import Foundation

/// An 8-bit image with interleaved channels: 1 (gray), 3 (RGB) or 4 (RGBA), rows top to bottom.
public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// `height · width · channels` bytes, row-major, channels interleaved.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image size \(width)×\(height) must be positive")
        precondition([1, 3, 4].contains(channels), "image channels must be 1, 3 or 4, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) bytes do not fill \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A constant image.
    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: fill, count: width * height * channels))
    }

    /// The value of channel `c` at column `x`, row `y`.
    public subscript(x x: Int, y y: Int, c c: Int) -> UInt8 {
        get { pixels[(y * width + x) * channels + c] }
        set { pixels[(y * width + x) * channels + c] = newValue }
    }

    // MARK: Decoding

    /// Decodes a PNG or JPEG file (format from its first bytes).
    public init(contentsOf path: String, limits: ImageLimits = .default) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ImageError(source: path, reason: .io("cannot read file: \(error.localizedDescription)"))
        }
        try self.init(data: data, source: path, limits: limits)
    }

    /// Decodes PNG or JPEG bytes (format from the first bytes). `source` names the data in errors.
    public init(data: Data, source: String = "<memory>", limits: ImageLimits = .default) throws {
        guard !data.isEmpty else { throw ImageError(source: source, reason: .empty) }
        switch ImageFormat.detect(data) {
        case .png: self = try PNG.decode(data, source: source, limits: limits)
        case .jpeg: self = try JPEG.decode(data, source: source, limits: limits)
        case nil:
            let head = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ImageError(source: source, reason: .unsupported("not a PNG or JPEG file (starts with \(head))"))
        }
    }

    // MARK: Conversions

    /// Three RGB channels: gray is replicated, alpha is dropped (not composited).
    public func rgb() -> Image {
        if channels == 3 { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * 3)
        let c = channels
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if c == 1 {
                    for i in 0..<n { let v = src[i]; dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v }
                } else {
                    for i in 0..<n { dst[3 * i] = src[4 * i]; dst[3 * i + 1] = src[4 * i + 1]; dst[3 * i + 2] = src[4 * i + 2] }
                }
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }
}

/// Encoded image formats recognised by their magic bytes.
public enum ImageFormat: Sendable {
    case png, jpeg

    static func detect(_ data: Data) -> ImageFormat? {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if data.count >= 8 && data.prefix(8).elementsEqual(png) { return .png }
        if data.count >= 3 && data.prefix(3).elementsEqual([0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// The format a file name asks for, from its extension.
    public init?(pathExtension ext: String) {
        switch ext.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }
}

/// Size limits checked after reading a header and before allocating pixels.
public struct ImageLimits: Sendable {
    public var maxWidth: Int
    public var maxHeight: Int
    public var maxPixels: Int

    public init(maxWidth: Int = 16384, maxHeight: Int = 16384, maxPixels: Int = 1 << 27) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
    }

    /// 16384 × 16384 per side and 2^27 (134 M) pixels in all.
    public static let `default` = ImageLimits()

    func check(width: Int, height: Int, source: String) throws {
        guard width > 0 && height > 0 else {
            throw ImageError(source: source, reason: .corrupt("header gives an empty size \(width)×\(height)"))
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard width <= maxWidth && height <= maxHeight && !overflow && pixels <= maxPixels else {
            throw ImageError(source: source, reason: .tooLarge(width: width, height: height, limits: self))
        }
    }
}

/// An image that could not be read or written.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public enum Reason: Equatable {
        case empty
        case io(String)
        case corrupt(String)
        case truncated(String)
        case unsupported(String)
        case tooLarge(width: Int, height: Int, limits: ImageLimits)
        case encode(String)

        public static func == (a: Reason, b: Reason) -> Bool { a.kind == b.kind && a.detail == b.detail }

        /// A short name for the class of failure: "empty", "io", "corrupt", "truncated", …
        public var kind: String {
            switch self {
            case .empty: return "empty"
            case .io: return "io"
            case .corrupt: return "corrupt"
            case .truncated: return "truncated"
            case .unsupported: return "unsupported"
            case .tooLarge: return "tooLarge"
            case .encode: return "encode"
            }
        }

        var detail: String {
            switch self {
            case .empty: return "empty file"
            case .io(let m): return m
            case .corrupt(let m): return "corrupt image: \(m)"
            case .truncated(let m): return "truncated image: \(m)"
            case .unsupported(let m): return "unsupported image: \(m)"
            case .tooLarge(let w, let h, let l):
                return "image \(w)×\(h) exceeds the limit of \(l.maxWidth)×\(l.maxHeight) and \(l.maxPixels) pixels"
            case .encode(let m): return "cannot encode image: \(m)"
            }
        }
    }

    /// The file path, or a name given for in-memory data.
    public let source: String
    public let reason: Reason

    public init(source: String, reason: Reason) {
        self.source = source
        self.reason = reason
    }

    public var description: String { "\(source): \(reason.detail)" }
}

extension ImageError: LocalizedError {
    public var errorDescription: String? { description }
}

// MARK: Writing

extension Image {
    /// Writes the image as PNG or JPEG (chosen by the extension) atomically: into a temporary
    /// file in the same directory, then renamed over `path`.
    public func write(to path: String, jpegQuality: Int = 95) throws {
        let url = URL(fileURLWithPath: path)
        guard let format = ImageFormat(pathExtension: url.pathExtension) else {
            throw ImageError(source: path, reason: .unsupported("unknown extension '.\(url.pathExtension)' (use .png, .jpg or .jpeg)"))
        }
        let data: Data
        switch format {
        case .png: data = try pngData(source: path)
        case .jpeg: data = try jpegData(quality: jpegQuality, source: path)
        }
        try Image.writeAtomically(data, to: path)
    }

    static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: tmp)
        } catch {
            throw ImageError(source: path, reason: .io("cannot write temporary file \(tmp.path): \(error.localizedDescription)"))
        }
        if rename(tmp.path, path) != 0 {
            let message = String(cString: strerror(errno))
            unlink(tmp.path)
            throw ImageError(source: path, reason: .io("cannot rename temporary file into place: \(message)"))
        }
    }
}
