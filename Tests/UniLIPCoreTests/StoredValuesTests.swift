import Foundation
import UniLIPCore
import UniLIPTestSupport
import XCTest

/// Tensors whose values stay in BF16/F16 bytes and are decoded by the ops that read them.
final class StoredValuesTests: XCTestCase {
    /// A stored copy of `t` in `dtype`, and the same values as resident Float32.
    func stored(_ t: Tensor, _ dtype: DType = .bf16) -> (stored: Tensor, resident: Tensor) {
        let bytes = dtype.encode(t.pointer, count: t.count)
        let owner = BytesBox(bytes)
        guard let base = owner.bytes.baseAddress else { preconditionFailure("allocation has an address") }
        let values = StoredValues(dtype: dtype, bytes: UnsafeRawPointer(base), count: t.count, owner: owner)
        let s = Tensor(shape: t.shape, stored: values)
        return (s, s.decoded())
    }

    final class BytesBox {
        let bytes: UnsafeMutableRawBufferPointer
        init(_ data: [UInt8]) {
            bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 16)
            bytes.copyBytes(from: data)
        }
        deinit { bytes.deallocate() }
    }

    var rng = RandomGenerator(seed: 11)

    func testDecodedMatchesTheRoundedValuesAndStoreKeepsTheTensor() {
        let t = Tensor.normal([3, 5], rng: &rng)
        for dtype in [DType.bf16, .f16] {
            let (s, r) = stored(t, dtype)
            XCTAssertFalse(s.isResident)
            XCTAssertEqual(s.stored?.byteCount, 30)
            let rounded = dtype.encode(t.pointer, count: t.count)
            var expected = [Float](repeating: 0, count: t.count)
            rounded.withUnsafeBytes { raw in
                if let base = raw.baseAddress { dtype.decode(base, into: &expected, count: t.count) }
            }
            XCTAssertEqual(r.scalars, expected)
            XCTAssertEqual(s.reshaped([5, 3]).decoded().scalars, expected, "reshape keeps the stored values")
        }
        let parameter = Tensor.normal([2, 2], rng: &rng)
        let (s, _) = stored(Tensor.normal([2, 2], rng: &rng))
        guard let values = s.stored else { return XCTFail("stored") }
        parameter.store(values)
        XCTAssertFalse(parameter.isResident)
        XCTAssertEqual(parameter.decoded().scalars, s.decoded().scalars)
    }

    func testLinearOverStoredWeightsInSeveralBlocks() {
        // 4,200 × 1,024 weights span two 4 Mi-element decode blocks.
        let x = Tensor.normal([2, 3, 1024], rng: &rng)
        let (w, wr) = stored(Tensor.normal([4200, 1024], std: 0.03, rng: &rng))
        let b = Tensor.normal([4200], rng: &rng)
        assertClose(x.linear(weight: w, bias: b), x.linear(weight: wr, bias: b), atol: 1e-4)
        assertClose(x.linear(weight: w), x.linear(weight: wr), atol: 1e-4)
    }

    func testInputGradientThroughAStoredWeight() {
        let (w, _) = stored(Tensor.normal([6, 4], rng: &rng))
        let b = Tensor.normal([6], rng: &rng)
        checkGradients([Tensor.normal([3, 4], rng: &rng, requiresGrad: true)]) { xs in
            (xs[0].linear(weight: w, bias: b) * xs[0].linear(weight: w)).sum()
        }
    }

    func testEmbeddingAndConvolutionOverStoredWeights() {
        let (table, tr) = stored(Tensor.normal([10, 4], rng: &rng))
        let ids = [3, 0, 9, 3]
        XCTAssertEqual(Tensor.embedding(table, ids: ids, shape: [2, 2]).scalars, Tensor.embedding(tr, ids: ids, shape: [2, 2]).scalars)
        let x = Tensor.normal([1, 3, 5, 5], rng: &rng)
        let (k, kr) = stored(Tensor.normal([4, 3, 3, 3], rng: &rng))
        XCTAssertEqual(x.conv2d(k, stride: 1, padding: 1).scalars, x.conv2d(kr, stride: 1, padding: 1).scalars)
    }

    func testUnfilledGeneratorLeavesParametersToTheCheckpoint() {
        var unfilled = RandomGenerator.unfilled
        XCTAssertFalse(unfilled.fillsValues)
        XCTAssertEqual(Tensor.normal([4, 4], rng: &unfilled).shape, [4, 4])
        XCTAssertTrue(RandomGenerator(seed: 1).fillsValues)
    }
}
