import UniLIPCore
import UniLIPModels
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class CLIPTextTowerTests: XCTestCase {
    /// The tower over the padded batch, every position through every layer (the tower itself
    /// runs only the real tokens).
    private func paddedReference(_ tower: CLIPTextTower, ids: [Int], batch: Int, length: Int, mask: Tensor) -> Tensor {
        var x = tower.tokenEmbedding(ids, shape: [batch, length]) + tower.positionEmbedding.sliced(axis: 0, start: 0, end: length)
        for case let block as TransformerBlock in tower.layers.namedChildren.map(\.1) {
            let h = x + block.attn(block.norm1(x), mask: nil, keyPadding: mask)
            x = h + block.mlp(block.norm2(h))
        }
        let m = mask.reshaped([batch, length, 1])
        return tower.projection((tower.finalNorm(x) * m).sum(axis: 1) / m.sum(axis: 1))
    }

    func testPackedTowerEqualsPaddedForwardAndGradients() {
        var rng = RandomGenerator(seed: 4)
        let tower = CLIPTextTower(CLIPTextConfig(vocabSize: 30, hiddenSize: 32, numLayers: 2, numHeads: 4,
                                                 maxLength: 8, embedDim: 16), rng: &rng)
        let lengths = [5, 2, 7]
        let batch = 3, length = 7
        let ids = (0..<batch * length).map { ($0 * 7 + 3) % 30 }
        let mask = Tensor((0..<batch * length).map { Float($0 % length < lengths[$0 / length] ? 1 : 0) }, shape: [batch, length])
        let params = tower.namedParameters()

        let expected = paddedReference(tower, ids: ids, batch: batch, length: length, mask: mask)
        let gy = randn(batch, 16, seed: 9)
        expected.backward(gy)
        let expectedGrads = params.map { $0.1.grad }
        tower.zeroGrad()

        let out = tower(ids: ids, batch: batch, length: length, mask: mask)
        assertClose(out, expected, atol: 1e-5, "embedding")
        out.backward(gy)
        for ((name, p), g) in zip(params, expectedGrads) {
            guard let g, let got = p.grad else { XCTFail("\(name): no gradient"); continue }
            assertClose(got, g, atol: 1e-5, name)
        }
    }
}
