import CKernels
@testable import UniLIPCore
import UniLIPTestSupport
import XCTest

final class AttentionTests: XCTestCase {
    override func tearDown() { Tensor.attentionBackend = .auto }

    typealias Backend = Tensor.AttentionBackend
    let backends: [Backend] = [.auto, .blas, .simd]

    func testGoldenValues() throws {
        let f = try Fixtures("attention")
        for backend in backends {
            Tensor.attentionBackend = backend
            f.check("sdpa_basic") { Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2]) }
            f.check("sdpa_causal") { Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], causal: true) }
            f.check("sdpa_mask_grad") { Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], mask: $0[3]) }
            f.check("sdpa_mask_full") { Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], mask: $0[3]) }
            f.check("sdpa_gqa_scale") {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], scale: 0.3)
            }
            f.check("sdpa_causal_kv") { Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], causal: true) }
            f.check("sdpa_padding_causal") {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], causal: true, keyPadding: $0[3])
            }
            f.check("sdpa_padding_mask") {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], mask: $0[3], keyPadding: $0[4])
            }
            f.check("sdpa_blocks", atol: 2e-5) {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], causal: true, scale: 0.2)
            }
            f.check("sdpa_qkv", atol: 2e-5) { Tensor.scaledDotProductAttention(qkv: $0[0], mask: $0[1]) }
            f.check("sdpa_qkv_padding_causal") {
                Tensor.scaledDotProductAttention(qkv: $0[0], causal: true, keyPadding: $0[1])
            }
        }
    }

    func testFiniteDifferences() {
        for backend in [Backend.blas, .simd] {
            Tensor.attentionBackend = backend
            checkGradients([randn(2, 2, 5, 4), randn(2, 2, 6, 4, seed: 2), randn(2, 2, 6, 3, seed: 3)]) {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2])
            }
            // GQA, causal, additive broadcast mask (with gradient) and key padding.
            let pad = Tensor([1, 1, 0, 1, 1, 1, 1, 1, 1, 0], shape: [2, 5])
            checkGradients([randn(2, 4, 5, 4), randn(2, 2, 5, 4, seed: 2), randn(2, 2, 5, 4, seed: 3),
                            randn(1, 5, 5, seed: 4)]) {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], mask: $0[3], causal: true,
                                                 keyPadding: pad)
            }
            // Several query blocks and ragged SIMD tails.
            checkGradients([randn(1, 1, 67, 9, scale: 0.5), randn(1, 1, 19, 9, seed: 2, scale: 0.5),
                            randn(1, 1, 19, 17, seed: 3)], maxProbes: 24) {
                Tensor.scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], causal: true)
            }
        }
    }

    func testFusedQKVEqualsSlicedAttention() {
        let pad = Tensor([1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1], shape: [2, 6])
        for backend in [Backend.blas, .simd] {
            Tensor.attentionBackend = backend
            checkGradients([randn(2, 3, 2, 6, 4), randn(1, 6, 6, seed: 4)]) {
                Tensor.scaledDotProductAttention(qkv: $0[0], mask: $0[1], causal: true, keyPadding: pad)
            }
            let x = randn(2, 3, 2, 67, 8, seed: 5), gy = randn(2, 2, 67, 8, seed: 6)
            x.requiresGrad = true
            let fused = Tensor.scaledDotProductAttention(qkv: x, keyPadding: Tensor(repeating: 1, shape: [2, 67]))
            fused.backward(gy)
            let fusedGrad = x.grad
            x.zeroGrad()
            func part(_ i: Int) -> Tensor { x.sliced(axis: 1, start: i, end: i + 1).squeezed(1) }
            let sliced = Tensor.scaledDotProductAttention(q: part(0), k: part(1), v: part(2),
                                                          keyPadding: Tensor(repeating: 1, shape: [2, 67]))
            sliced.backward(gy)
            assertClose(fused, sliced, atol: 1e-6, "\(backend) output")
            if let a = fusedGrad, let b = x.grad { assertClose(a, b, atol: 1e-6, "\(backend) gradient") } else { XCTFail("no gradient") }
        }
    }

    func testSkippingPaddedQueriesKeepsRealRowsAndTheirGradients() {
        // Row 0 ends in two padded tokens, row 1 has one inside and none at the end; 70 rows
        // give two query blocks.
        var keep = [Float](repeating: 1, count: 140)
        keep[68] = 0; keep[69] = 0; keep[75] = 0
        let pad = Tensor(keep, shape: [2, 70])
        let gy = randn(2, 2, 70, 8, seed: 7) * pad.reshaped([2, 1, 70, 1])  // padded rows' gradients dropped
        for backend in [Backend.blas, .simd] {
            Tensor.attentionBackend = backend
            for fused in [false, true] {
                let x = randn(2, 3, 2, 70, 8, seed: 5)
                x.requiresGrad = true
                func run(skip: Bool) -> (Tensor, Tensor?) {
                    x.zeroGrad()
                    let y: Tensor
                    if fused {
                        y = Tensor.scaledDotProductAttention(qkv: x, causal: true, keyPadding: pad, skipPaddedQueries: skip)
                    } else {
                        func part(_ i: Int) -> Tensor { x.sliced(axis: 1, start: i, end: i + 1).squeezed(1) }
                        y = Tensor.scaledDotProductAttention(q: part(0), k: part(1), v: part(2), causal: true,
                                                             keyPadding: pad, skipPaddedQueries: skip)
                    }
                    y.backward(gy)
                    return (y, x.grad)
                }
                let (full, fullGrad) = run(skip: false), (skipped, skippedGrad) = run(skip: true)
                assertClose(skipped * pad.reshaped([2, 1, 70, 1]), full * pad.reshaped([2, 1, 70, 1]), atol: 1e-6,
                            "\(backend) fused \(fused): real rows")
                for head in 0..<2 {
                    for row in 68..<70 {
                        let o = skipped.pointer + ((0 * 2 + head) * 70 + row) * 8
                        XCTAssertEqual((0..<8).map { o[$0] }, [Float](repeating: 0, count: 8), "skipped row \(row)")
                    }
                }
                if let a = skippedGrad, let b = fullGrad { assertClose(a, b, atol: 1e-6, "\(backend) fused \(fused): gradient") }
                else { XCTFail("no gradient") }
            }
        }
    }

    func testFullyMaskedRowsGiveZerosNotNaN() {
        let q = randn(1, 2, 4, 8, seed: 1), k = randn(1, 2, 4, 8, seed: 2), v = randn(1, 2, 4, 8, seed: 3)
        for p in [q, k, v] { p.requiresGrad = true }
        let pad = Tensor([0, 0, 0, 0], shape: [1, 4])
        for backend in [Backend.blas, .simd] {
            Tensor.attentionBackend = backend
            for p in [q, k, v] { p.zeroGrad() }
            let y = Tensor.scaledDotProductAttention(q: q, k: k, v: v, keyPadding: pad)
            XCTAssertEqual(y.scalars, [Float](repeating: 0, count: y.count))
            y.sum().backward()
            for p in [q, k, v] {
                XCTAssertEqual(p.grad?.scalars, [Float](repeating: 0, count: p.count), "\(backend)")
            }
        }
    }

    func testBackendsAgreeOnLargerShapes() {
        let q = randn(2, 4, 130, 64, seed: 1), k = randn(2, 2, 141, 64, seed: 2), v = randn(2, 2, 141, 40, seed: 3)
        let gy = randn(2, 4, 130, 40, seed: 4)
        var results: [[Tensor]] = []
        let savedBudget = Tensor.attentionBLASScoreFloats
        defer { Tensor.attentionBLASScoreFloats = savedBudget }
        let savedAVX512 = HeadKernels.useAVX512
        defer { HeadKernels.useAVX512 = savedAVX512 }
        // BLAS with one 130-row block, BLAS with 64-row blocks, SIMD (AVX-512 where present), SIMD8.
        for (backend, budget, avx512) in [(Backend.blas, savedBudget, savedAVX512), (.blas, 1, savedAVX512),
                                          (.simd, savedBudget, savedAVX512), (.simd, savedBudget, false)] {
            Tensor.attentionBackend = backend
            Tensor.attentionBLASScoreFloats = budget
            HeadKernels.useAVX512 = avx512
            for p in [q, k, v] { p.requiresGrad = true; p.zeroGrad() }
            let y = Tensor.scaledDotProductAttention(q: q, k: k, v: v, causal: true)
            y.backward(gy)
            results.append([y.detached()] + [q, k, v].compactMap(\.grad))
        }
        XCTAssertEqual(results[3].count, 4)
        for r in results.dropFirst() {
            for (a, b) in zip(results[0], r) { assertClose(a, b, atol: 1e-4, rtol: 1e-3) }
        }
    }

    func testSoftmaxExpKernelAccuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0137 })
            let e = HeadKernels.exp8(lanes)
            for i in 0..<8 {
                let ref = Foundation.exp(Double(lanes[i]))
                worst = max(worst, Float(Swift.abs(Double(e[i]) - ref) / ref))
            }
            x += 0.11
        }
        XCTAssertLessThan(worst, 5e-7)
        let masked = HeadKernels.exp8(SIMD8(repeating: -.infinity))
        XCTAssertEqual(masked, SIMD8(repeating: 0))
    }

    func testAVX512ExpAndMaxMatchReference() throws {
        try XCTSkipUnless(HeadKernels.useAVX512, "CPU without AVX-512")
        var xs: [Float] = []
        var x: Float = -87
        while x < 88 { xs.append(x); x += 0.0731 }
        xs += [-.infinity, -100, 0]  // 2 403 values: a masked tail
        let expected = xs.map { Foundation.exp(Double($0)) }
        var ys = xs
        _ = ys.withUnsafeMutableBufferPointer { unilip_exp_shift_avx512($0.baseAddress, $0.count, 0) }
        var worst = 0.0
        for (y, e) in zip(ys, expected) where e > 1e-37 { worst = max(worst, Swift.abs(Double(y) - e) / e) }
        XCTAssertLessThan(worst, 5e-7)
        XCTAssertEqual(ys[ys.count - 3], 0)
        // The shift and the returned sum, on a ragged length.
        var zs = (0..<37).map { Float($0) * 0.5 - 9 }
        let sum = zs.withUnsafeMutableBufferPointer { unilip_exp_shift_avx512($0.baseAddress, $0.count, 1.5) }
        let ref = (0..<37).map { Foundation.exp(Double(Float($0) * 0.5 - 9 - 1.5)) }
        XCTAssertEqual(Double(sum), ref.reduce(0, +), accuracy: 1e-5 * ref.reduce(0, +))
        for (z, r) in zip(zs, ref) { XCTAssertEqual(Double(z), r, accuracy: 1e-6 * r) }
        XCTAssertEqual(xs.withUnsafeBufferPointer { unilip_max_avx512($0.baseAddress, 17) }, xs[16])
        XCTAssertEqual(unilip_max_avx512(xs, 0), -.infinity)
    }

    func testSmallGemmMatchesNaive() {
        // Transposed and plain A, ragged sizes (row tiles of 8/4/1, masked column tails),
        // beta accumulation; the AVX-512 kernel where the CPU has it, and the SIMD8 one.
        let saved = HeadKernels.useAVX512
        defer { HeadKernels.useAVX512 = saved }
        let shapes = [(7, 37, 5), (4, 16, 3), (9, 8, 11), (1, 3, 2), (13, 45, 7), (8, 32, 3), (21, 70, 9), (16, 17, 1), (9, 40, 300), (3, 5, 0)]
        for (avx512, (m, n, k)) in [false, saved].flatMap({ f in shapes.map { (f, $0) } }) {
            HeadKernels.useAVX512 = avx512
            for transA in [false, true] {
                let a = randn(m * k, seed: 1), b = randn(k * n, seed: 2), c = randn(m * n, seed: 3)
                let expect = c.copy()
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = 0
                        for p in 0..<k { s += (transA ? a.pointer[p * m + i] : a.pointer[i * k + p]) * b.pointer[p * n + j] }
                        expect.pointer[i * n + j] = 0.5 * s + 2 * c.pointer[i * n + j]
                    }
                }
                HeadKernels.mm(blas: false, transA: transA, m: m, n: n, k: k, alpha: 0.5, a: a.pointer,
                               lda: transA ? m : k, b: b.pointer, ldb: n, beta: 2, c: c.pointer, ldc: n)
                assertClose(c, expect, atol: 1e-5, "gemm \(m)x\(n)x\(k) transA \(transA) avx512 \(avx512)")
            }
        }
    }
}
