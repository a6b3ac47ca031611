import UniLIPCore
import UniLIPTestSupport
import XCTest

final class InterpolateTests: XCTestCase {
    func testNearestGolden() throws {
        let f = try Fixtures("interpolate")
        for (key, mode) in [("nearest", InterpolationMode.nearest), ("nearest_exact", .nearestExact)] {
            f.check("\(key)_up") { $0[0].interpolate(size: (12, 9), mode: mode) }
            f.check("\(key)_down") { $0[0].interpolate(size: (4, 5), mode: mode) }
            f.check("\(key)_x2") { $0[0].interpolate(scale: 2, mode: mode) }
            f.check("\(key)_scale") { $0[0].interpolate(scale: 1.5, mode: mode) }
            f.check("\(key)_scale_down") { $0[0].interpolate(scale: 0.75, mode: mode) }
        }
    }

    func testBilinearBicubicGolden() throws {
        let f = try Fixtures("interpolate")
        for (name, mode) in [("bilinear", InterpolationMode.bilinear), ("bicubic", .bicubic)] {
            for ac in [false, true] {
                let tag = "\(name)_\(ac ? "ac" : "hp")"
                f.check("\(tag)_up") { $0[0].interpolate(size: (12, 9), mode: mode, alignCorners: ac) }
                f.check("\(tag)_down") { $0[0].interpolate(size: (4, 5), mode: mode, alignCorners: ac) }
                f.check("\(tag)_scale") { $0[0].interpolate(scale: 1.5, mode: mode, alignCorners: ac) }
                f.check("\(tag)_scale_down") { $0[0].interpolate(scale: 0.75, mode: mode, alignCorners: ac) }
                f.check("\(tag)_to1") { $0[0].interpolate(size: (1, 3), mode: mode, alignCorners: ac) }
            }
            f.check("\(name)_same_w") { $0[0].interpolate(size: (10, 5), mode: mode) }
        }
    }

    func testAntialiasGolden() throws {
        let f = try Fixtures("interpolate")
        for (name, mode) in [("bilinear", InterpolationMode.bilinear), ("bicubic", .bicubic)] {
            for ac in [false, true] {
                let tag = "\(name)_aa_\(ac ? "ac" : "hp")"
                f.check("\(tag)_down") { $0[0].interpolate(size: (5, 4), mode: mode, alignCorners: ac, antialias: true) }
                f.check("\(tag)_down_odd") {
                    $0[0].interpolate(size: (7, 6), mode: mode, alignCorners: ac, antialias: true)
                }
                f.check("\(tag)_up") { $0[0].interpolate(size: (9, 7), mode: mode, alignCorners: ac, antialias: true) }
                f.check("\(tag)_mixed") {
                    $0[0].interpolate(size: (6, 9), mode: mode, alignCorners: ac, antialias: true)
                }
                f.check("\(tag)_scale") {
                    $0[0].interpolate(scale: 0.375, mode: mode, alignCorners: ac, antialias: true)
                }
            }
        }
    }

    func testFiniteDifferences() {
        let modes: [InterpolationMode] = [.nearest, .nearestExact, .bilinear, .bicubic]
        for mode in modes {
            checkGradients([randn(1, 2, 5, 7)]) { $0[0].interpolate(size: (8, 4), mode: mode) }
            checkGradients([randn(2, 1, 6, 5)]) { $0[0].interpolate(scale: 1.5, mode: mode) }
        }
        for mode in [InterpolationMode.bilinear, .bicubic] {
            checkGradients([randn(1, 2, 5, 7)]) { $0[0].interpolate(size: (9, 3), mode: mode, alignCorners: true) }
            checkGradients([randn(1, 2, 13, 11)]) {
                $0[0].interpolate(size: (4, 5), mode: mode, antialias: true)
            }
            checkGradients([randn(1, 1, 4, 11)]) {
                $0[0].interpolate(size: (7, 3), mode: mode, alignCorners: true, antialias: true)
            }
        }
    }

    func testIdentitySizeCopies() {
        let x = randn(1, 2, 4, 5)
        for mode in [InterpolationMode.nearest, .nearestExact, .bilinear, .bicubic] {
            assertClose(x.interpolate(size: (4, 5), mode: mode), x, atol: 0, rtol: 0)
        }
        assertClose(x.interpolate(size: (4, 5), mode: .bicubic, antialias: true), x, atol: 0, rtol: 0)
    }
}
