import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPTestSupport
import XCTest

final class ImageIOTests: XCTestCase {
    static let sampleDir = Fixtures.directory.appendingPathComponent("images")

    func sample(_ name: String) -> String { Self.sampleDir.appendingPathComponent(name).path }

    func sampleData(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: sample(name))) }

    /// Expected pixels [H, W, C] stored by the fixture script.
    func expected(_ name: String, _ fx: Fixtures) -> (Int, Int, Int, [UInt8]) {
        let t = fx[name.hasPrefix("resize.") ? name : "file.\(name)"]
        return (t.shape[0], t.shape[1], t.shape[2], t.scalars.map { UInt8($0) })
    }

    func assertPixels(_ image: Image, _ e: (Int, Int, Int, [UInt8]), tolerance: Int, _ name: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(image.height, e.0, "\(name) height", file: file, line: line)
        XCTAssertEqual(image.width, e.1, "\(name) width", file: file, line: line)
        XCTAssertEqual(image.channels, e.2, "\(name) channels", file: file, line: line)
        guard image.pixels.count == e.3.count else { return }
        let worst = zip(image.pixels, e.3).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(name): largest pixel difference", file: file, line: line)
    }

    func testDecodesPNGSamples() throws {
        let fx = try Fixtures("images")
        for name in ["rgb8.png", "rgba8.png", "gray8.png", "la8.png", "palette.png", "gamma8.png", "gray16.png", "rgb16.png"] {
            let image = try Image(contentsOf: sample(name))
            assertPixels(image, expected(name, fx), tolerance: 0, name)
        }
        // 16-bit with alpha passes through libpng's premultiplied form: one step of slack.
        assertPixels(try Image(contentsOf: sample("rgba16.png")), expected("rgba16.png", fx), tolerance: 1, "rgba16.png")
    }

    func testDecodesJPEGSamples() throws {
        let fx = try Fixtures("images")
        for name in ["baseline.jpg", "progressive.jpg", "gray.jpg"] {
            let image = try Image(contentsOf: sample(name))
            assertPixels(image, expected(name, fx), tolerance: 1, name)
        }
        // And the colour decode stays near the encoded pattern.
        let source = fx["jpeg.source"].scalars.map { UInt8($0) }
        let decoded = try Image(contentsOf: sample("progressive.jpg"))
        let mad = zip(decoded.pixels, source).map { Double(abs(Int($0) - Int($1))) }.reduce(0, +) / Double(source.count)
        XCTAssertLessThan(mad, 8)
    }

    func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> Image {
        var rng = RandomGenerator(seed: seed)
        return Image(width: width, height: height, channels: channels,
                     pixels: (0..<(width * height * channels)).map { _ in UInt8(rng.int(256)) })
    }

    func smoothImage(width: Int, height: Int, channels: Int) -> Image {
        var img = Image(width: width, height: height, channels: channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let v = 128 + 100 * sin(Double(x + 3 * c) / 6) * cos(Double(y) / 9)
                    img[x: x, y: y, c: c] = UInt8(v)
                }
            }
        }
        return img
    }

    func testPNGRoundTrip() throws {
        for (i, c) in [1, 3, 4].enumerated() {
            let img = randomImage(width: 37, height: 21, channels: c, seed: UInt64(i + 1))
            let data = try img.pngData()
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
            XCTAssertEqual(try Image(data: data), img, "channels \(c)")
        }
    }

    func testWriteIsAtomicAndReadable() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("unilip-img-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let img = randomImage(width: 16, height: 9, channels: 3, seed: 5)
        let png = dir.appendingPathComponent("out.png").path
        try img.write(to: png)
        try img.write(to: png)  // overwrite in place
        XCTAssertEqual(try Image(contentsOf: png), img)
        let jpg = dir.appendingPathComponent("out.jpg").path
        try smoothImage(width: 16, height: 9, channels: 3).write(to: jpg)
        XCTAssertEqual(try Image(contentsOf: jpg).channels, 3)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(left, ["out.jpg", "out.png"], "no temporary files left behind")
        XCTAssertThrowsError(try img.write(to: dir.appendingPathComponent("out.bmp").path)) { error in
            XCTAssertEqual((error as? ImageError)?.reason.kind, "unsupported")
        }
        XCTAssertThrowsError(try img.write(to: dir.appendingPathComponent("missing/out.png").path)) { error in
            XCTAssertEqual((error as? ImageError)?.reason.kind, "io")
        }
    }

    func testJPEGRoundTrip() throws {
        for c in [1, 3, 4] {
            for progressive in [false, true] {
                let img = smoothImage(width: 40, height: 30, channels: c)
                let decoded = try Image(data: try img.jpegData(quality: 95, progressive: progressive))
                XCTAssertEqual(decoded.channels, c == 1 ? 1 : 3)
                let ref = img.channels == 4 ? img.rgb() : img
                let worst = zip(decoded.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 12, "channels \(c) progressive \(progressive)")
            }
        }
    }

    func testConvertsToRGB() {
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [7, 200])
        XCTAssertEqual(gray.rgb().pixels, [7, 7, 7, 200, 200, 200])
        let rgba = Image(width: 2, height: 1, channels: 4, pixels: [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(rgba.rgb().pixels, [1, 2, 3, 5, 6, 7])
        XCTAssertEqual(rgba.rgb().channels, 3)
    }

    func assertThrows(_ kind: String, _ data: Data, limits: ImageLimits = .default, _ message: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Image(data: data, source: "sample", limits: limits), message, file: file, line: line) { error in
            guard let e = error as? ImageError else { return XCTFail("not an ImageError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.reason.kind, kind, "\(message): \(e)", file: file, line: line)
            XCTAssertTrue(e.description.hasPrefix("sample: "), e.description, file: file, line: line)
        }
    }

    func testErrors() throws {
        assertThrows("empty", Data(), "empty data")
        assertThrows("unsupported", Data("GIF89a and more".utf8), "other format")
        let png = try sampleData("rgb8.png"), jpg = try sampleData("baseline.jpg")
        assertThrows("tooLarge", png, limits: ImageLimits(maxWidth: 8), "PNG width limit")
        assertThrows("tooLarge", jpg, limits: ImageLimits(maxPixels: 100), "JPEG pixel limit")
        assertThrows("truncated", png.prefix(png.count - 30), "truncated PNG")
        assertThrows("truncated", jpg.prefix(jpg.count - 100), "JPEG truncated in the scan")
        var badCRC = png
        badCRC[29] ^= 0xFF  // IHDR checksum
        assertThrows("corrupt", badCRC, "PNG header checksum")
        XCTAssertThrowsError(try Image(contentsOf: "/nonexistent/x.png")) { error in
            XCTAssertEqual((error as? ImageError)?.reason.kind, "io")
            XCTAssertTrue("\(error)".contains("/nonexistent/x.png"))
        }
        // A JPEG header claiming 0×0 must be rejected, not decoded.
        var zero = jpg
        if let sof = findSOF(zero) {
            zero[sof + 5] = 0; zero[sof + 6] = 0; zero[sof + 7] = 0; zero[sof + 8] = 0
            XCTAssertThrowsError(try Image(data: zero))
        } else {
            XCTFail("no SOF marker in the JPEG sample")
        }
    }

    func findSOF(_ d: Data) -> Int? {
        let b = [UInt8](d)
        for i in 0..<(b.count - 9) where b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2) { return i }
        return nil
    }

    /// Seeded corruptions of valid files: each must decode or throw an ImageError, never crash.
    func testCorruptedInputsDecodeOrThrow() throws {
        var rng = RandomGenerator(seed: 2024)
        for name in ["rgb8.png", "rgba16.png", "baseline.jpg", "progressive.jpg"] {
            let original = [UInt8](try sampleData(name))
            var decoded = 0, thrown = 0
            for trial in 0..<(ProcessInfo.processInfo.environment["UNILIP_FUZZ_TRIALS"].flatMap { Int($0) } ?? 150) {
                var bytes = original
                switch trial % 5 {
                case 0:  // truncation
                    bytes = Array(bytes.prefix(rng.int(bytes.count)))
                case 1, 2:  // byte flips, often in the header
                    let flips = 1 + rng.int(8)
                    for _ in 0..<flips {
                        let at = trial % 2 == 0 ? rng.int(min(bytes.count, 64)) : rng.int(bytes.count)
                        bytes[at] ^= UInt8(1 + rng.int(255))
                    }
                case 3:  // a run of garbage over the body
                    let start = 8 + rng.int(bytes.count - 8)
                    let len = min(bytes.count - start, 1 + rng.int(64))
                    for i in start..<(start + len) { bytes[i] = UInt8(rng.int(256)) }
                default:  // garbage appended or pure garbage after the magic
                    if rng.int(2) == 0 {
                        bytes += (0..<(1 + rng.int(200))).map { _ in UInt8(rng.int(256)) }
                    } else {
                        bytes = Array(bytes.prefix(8)) + (0..<rng.int(300)).map { _ in UInt8(rng.int(256)) }
                    }
                }
                do {
                    let img = try Image(data: Data(bytes), source: "\(name)#\(trial)")
                    XCTAssertEqual(img.pixels.count, img.width * img.height * img.channels)
                    decoded += 1
                } catch let e as ImageError {
                    XCTAssertFalse(e.description.isEmpty)
                    thrown += 1
                } catch {
                    XCTFail("\(name)#\(trial): unexpected error type \(error)")
                }
            }
            XCTAssertGreaterThan(thrown, 0, "\(name): some corruptions must be rejected")
        }
    }

    func testTensorConversion() throws {
        let img = Image(width: 2, height: 1, channels: 3, pixels: [0, 51, 255, 255, 102, 0])
        let plain = img.tensor()
        XCTAssertEqual(plain.shape, [1, 3, 1, 2])
        assertClose(plain, Tensor([0, 1, 0.2, 0.4, 1, 0], shape: [1, 3, 1, 2]), atol: 1e-6)
        let norm = img.tensor(mean: Image.imagenetMean, std: Image.imagenetStd)
        let expected: [Float] = [0, 1, 0.2, 0.4, 1, 0].enumerated().map { i, v in
            (v - Image.imagenetMean[i / 2]) / Image.imagenetStd[i / 2]
        }
        assertClose(norm, Tensor(expected, shape: [1, 3, 1, 2]), atol: 1e-5)
        XCTAssertEqual(Image(tensor: norm, mean: Image.imagenetMean, std: Image.imagenetStd), img)
        // [C, H, W], clamping, rounding, scalar mean/std.
        let t = Tensor([-0.5, 0.5, 1.5, 0.3], shape: [1, 2, 2])
        let back = Image(tensor: t, mean: [0.5], std: [0.5])  // x·0.5 + 0.5
        XCTAssertEqual(back.pixels, [64, 191, 255, 166])
        XCTAssertEqual(back.channels, 1)
        let big = randomImage(width: 67, height: 45, channels: 4, seed: 9)
        XCTAssertEqual(Image(tensor: big.tensor(mean: [0.1, 0.2, 0.3, 0.4], std: [2, 0.5, 1, 3]),
                             mean: [0.1, 0.2, 0.3, 0.4], std: [2, 0.5, 1, 3]), big)
    }

    func testResizeMatchesPyTorch() throws {
        let fx = try Fixtures("images")
        let src = fx["resize.src"]
        let img = Image(width: src.shape[1], height: src.shape[0], channels: src.shape[2],
                        pixels: src.scalars.map { UInt8($0) })
        for (filter, mode) in [(Image.ResizeFilter.bilinear, "bilinear"), (.bicubic, "bicubic")] {
            for tag in ["down", "up", "mixed"] {
                let e = expected("resize.\(mode).\(tag)", fx)
                let out = img.resized(width: e.1, height: e.0, filter: filter)
                // Float32 against float64 may flip a rounding tie.
                assertPixels(out, e, tolerance: 1, "\(mode) \(tag)")
                let off = zip(out.pixels, e.3).filter { $0 != $1 }.count
                XCTAssertLessThanOrEqual(off, e.3.count / 50, "\(mode) \(tag): pixels off by one")
            }
        }
        XCTAssertEqual(img.resized(width: img.width, height: img.height), img)
        let gray = Image(width: 9, height: 7, channels: 1, fill: 77)
        XCTAssertEqual(gray.resized(width: 4, height: 12, filter: .bicubic), Image(width: 4, height: 12, channels: 1, fill: 77))
    }
}
