import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPTestSupport
import XCTest

final class ImageMetricsTests: XCTestCase {
    func testMatchesScikitImage() throws {
        let fx = try Fixtures("images")
        for name in ["rand", "structured", "batch", "gray_min", "tall"] {
            let a = fx["\(name).a"], b = fx["\(name).b"]
            let ssim = ImageMetrics.ssimPerImage(a, b)
            assertClose(Tensor(ssim, shape: [ssim.count]), fx["\(name).ssim"], atol: 1e-5, rtol: 1e-5, "\(name) ssim")
            let psnr = ImageMetrics.psnrPerImage(a, b)
            assertClose(Tensor(psnr, shape: [psnr.count]), fx["\(name).psnr"], atol: 1e-4, rtol: 1e-5, "\(name) psnr")
            if a.shape[0] == 1 {
                // [C, H, W] gives the same single value.
                let a3 = Tensor(a.scalars, shape: Array(a.shape.dropFirst()))
                let b3 = Tensor(b.scalars, shape: Array(b.shape.dropFirst()))
                XCTAssertEqual(ImageMetrics.ssim(a3, b3), ssim[0])
                XCTAssertEqual(ImageMetrics.psnr(a3, b3), psnr[0])
            } else {
                XCTAssertEqual(ImageMetrics.ssim(a, b), ssim.reduce(0, +) / Float(ssim.count), accuracy: 1e-6)
            }
        }
    }

    func testSameResultForAnyThreadCount() throws {
        let fx = try Fixtures("images")
        let a = fx["tall.a"], b = fx["tall.b"]
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        var values: [Float] = []
        for t in [1, 2, 3, 5] {
            Parallel.setThreads(t)
            values.append(ImageMetrics.ssim(a, b))
        }
        for v in values { XCTAssertEqual(v, values[0], accuracy: 1e-6) }
    }

    func testIdenticalImages() {
        let a = randn(2, 3, 16, 16, seed: 3).copy()
        for i in 0..<a.count { a.pointer[i] = min(1, max(0, a.pointer[i] * 0.2 + 0.5)) }
        XCTAssertEqual(ImageMetrics.psnr(a, a), .infinity)
        XCTAssertEqual(ImageMetrics.psnrPerImage(a, a), [.infinity, .infinity])
        XCTAssertEqual(ImageMetrics.ssim(a, a), 1)
        XCTAssertEqual(ImageMetrics.ssimPerImage(a, a), [1, 1])
        // Constant images: SSIM is 1 when equal, below 1 when not.
        let c0 = Tensor(repeating: 0.25, shape: [1, 12, 12]), c1 = Tensor(repeating: 0.75, shape: [1, 12, 12])
        XCTAssertEqual(ImageMetrics.ssim(c0, c0), 1)
        // Zero variances: only the luminance term (2·0.25·0.75 + C1) / (0.25² + 0.75² + C1) remains.
        XCTAssertEqual(ImageMetrics.ssim(c0, c1), (0.375 + 1e-4) / (0.625 + 1e-4), accuracy: 1e-6)
        XCTAssertEqual(ImageMetrics.psnr(c0, c1), 10 * log10(1 / 0.25), accuracy: 1e-5)
    }

    func testMoreNoiseScoresLower() {
        let a = randn(1, 3, 32, 32, seed: 4)
        for i in 0..<a.count { a.pointer[i] = min(1, max(0, a.pointer[i] * 0.2 + 0.5)) }
        var previous: (Float, Float) = (.infinity, 1)
        for level in [0.01, 0.05, 0.2] as [Float] {
            let noise = randn(1, 3, 32, 32, seed: 5)
            let b = a.copy()
            for i in 0..<b.count { b.pointer[i] = min(1, max(0, b.pointer[i] + level * noise.pointer[i])) }
            let (p, s) = (ImageMetrics.psnr(a, b), ImageMetrics.ssim(a, b))
            XCTAssertLessThan(p, previous.0)
            XCTAssertLessThan(s, previous.1)
            previous = (p, s)
        }
    }
}
