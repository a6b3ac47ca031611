import UniLIPCore
import XCTest

final class BLASCoreTests: XCTestCase {
    func testRecommendedCoreTypeFromFlags() {
        XCTAssertEqual(BLASCore.recommendedCoreType(cpuinfo: "model name\t: x\nflags\t\t: sse avx avx2 fma avx512f avx512bw avx512vl avx512dq\n"), "SkylakeX")
        XCTAssertEqual(BLASCore.recommendedCoreType(cpuinfo: "flags\t\t: sse avx avx2 fma\n"), "Haswell")
        XCTAssertNil(BLASCore.recommendedCoreType(cpuinfo: "flags\t\t: sse sse2\n"))
        XCTAssertNil(BLASCore.recommendedCoreType(cpuinfo: ""))
    }

    func testUserChoiceIsRespected() {
        XCTAssertNil(BLASCore.neededOverride(environment: ["OPENBLAS_CORETYPE": "Prescott"]))
        XCTAssertFalse(BLASCore.coreName.isEmpty)
    }
}
