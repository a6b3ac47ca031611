@testable import UniLIPCore
import XCTest

final class StoragePoolTests: XCTestCase {
    /// A freed large buffer is handed to the next allocation of the same size, and pooled
    /// buffers never alias live ones.
    func testReusesFreedBuffersWithoutAliasing() {
        StoragePool.drain()
        var first: TensorStorage? = TensorStorage(count: 1 << 16)
        let address = first!.pointer
        first = nil
        let again = TensorStorage(count: 1 << 16)
        XCTAssertEqual(again.pointer, address, "same-size buffer reused")
        let other = TensorStorage(count: 1 << 16)
        XCTAssertNotEqual(other.pointer, again.pointer)
        let zeros = TensorStorage(zeros: 1 << 16)
        XCTAssertTrue(zeros.buffer.allSatisfy { $0 == 0 }, "zeroed storage is zero even when reused")
        StoragePool.drain()
    }
}
