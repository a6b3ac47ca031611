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

    func testSizeClassesCoverEveryRequestWithLittleWaste() {
        XCTAssertEqual(StoragePool.sizeClass(1000), 1000, "small buffers are not pooled or rounded")
        var previous = 0
        for bytes in stride(from: StoragePool.minPooledBytes, through: 1 << 26, by: 4093) {
            let size = StoragePool.sizeClass(bytes)
            XCTAssertGreaterThanOrEqual(size, bytes)
            XCTAssertLessThanOrEqual(Double(size), Double(bytes) * 1.125)
            XCTAssertGreaterThanOrEqual(size, previous, "classes grow with the request")
            previous = size
        }
        XCTAssertEqual(StoragePool.sizeClass(1 << 20), 1 << 20, "powers of two are their own class")
    }

    /// Tensors whose sizes differ a little (a batch's packed token count) share a buffer.
    func testNearbySizesReuseOneBuffer() {
        StoragePool.drain()
        let count = 100_000
        XCTAssertEqual(StoragePool.sizeClass(count * 4), StoragePool.sizeClass((count + 300) * 4))
        var first: TensorStorage? = TensorStorage(count: count + 300)
        let address = first!.pointer
        first = nil
        let smaller = TensorStorage(count: count)
        XCTAssertEqual(smaller.pointer, address)
        StoragePool.drain()
    }
}
