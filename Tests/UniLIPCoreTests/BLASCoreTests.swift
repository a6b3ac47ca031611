import UniLIPCore
import XCTest

final class BLASCoreTests: XCTestCase {
    func testRecommendedCoreTypeFromFlags() {
        XCTAssertEqual(BLASCore.recommendedCoreType(cpuinfo: "model name\t: x\nflags\t\t: sse avx avx2 fma avx512f avx512bw avx512vl avx512dq\n"), "SkylakeX")
        XCTAssertEqual(BLASCore.recommendedCoreType(cpuinfo: "flags\t\t: sse avx avx2 fma\n"), "Haswell")
        XCTAssertNil(BLASCore.recommendedCoreType(cpuinfo: "flags\t\t: sse sse2\n"))
        XCTAssertNil(BLASCore.recommendedCoreType(cpuinfo: ""))
    }

    func testOverridesOnlyKernelsBelowTheCPU() {
        XCTAssertEqual(BLASCore.betterCoreType(than: "Prescott", recommended: "Haswell"), "Haswell")
        XCTAssertEqual(BLASCore.betterCoreType(than: "Haswell", recommended: "SkylakeX"), "SkylakeX")
        XCTAssertEqual(BLASCore.betterCoreType(than: "Zen", recommended: "SkylakeX"), "SkylakeX")
        XCTAssertNil(BLASCore.betterCoreType(than: "Haswell", recommended: "Haswell"))
        XCTAssertNil(BLASCore.betterCoreType(than: "Zen", recommended: "Haswell"))
        XCTAssertNil(BLASCore.betterCoreType(than: "Cooperlake", recommended: "SkylakeX"))
        XCTAssertNil(BLASCore.betterCoreType(than: "Prescott", recommended: nil))
    }

    func testUserChoiceIsRespected() {
        XCTAssertNil(BLASCore.neededOverride(environment: ["OPENBLAS_CORETYPE": "Prescott"]))
        XCTAssertFalse(BLASCore.coreName.isEmpty)
        XCTAssertNil(BLASCore.pinnedKernelHint(environment: [:]), "no hint without a pinned core type")
        let pinned = ["OPENBLAS_CORETYPE": "Haswell"]
        let hint = BLASCore.pinnedKernelHint(environment: pinned, chosen: "Haswell", recommended: "SkylakeX")
        XCTAssertTrue(hint?.contains("OPENBLAS_CORETYPE=Haswell") == true && hint?.contains("SkylakeX") == true, "\(hint ?? "nil")")
        XCTAssertNil(BLASCore.pinnedKernelHint(environment: pinned, chosen: "Haswell", recommended: "Haswell"))
        XCTAssertNil(BLASCore.pinnedKernelHint(environment: ["OPENBLAS_CORETYPE": "SkylakeX"], chosen: "SkylakeX",
                                               recommended: "SkylakeX"))
    }
}
