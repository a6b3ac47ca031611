import UniLIPCore
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class LayerTests: XCTestCase {
    func testLinear() {
        var rng = RandomGenerator(seed: 1)
        let fc = Linear(4, 3, rng: &rng)
        XCTAssertEqual(fc.namedParameters().map(\.0), ["weight", "bias"])
        XCTAssertEqual(fc.weight.shape, [3, 4])
        XCTAssertTrue(fc.weight.scalars.allSatisfy { abs($0) <= 0.5 }, "U(−1/√in, 1/√in)")
        XCTAssertGreaterThan(fc.weight.scalars.map { abs($0) }.max() ?? 0, 0.2)
        checkModule(fc, input: randn(2, 3, 4)) { fc($0) }
        let noBias = Linear(4, 3, bias: false, rng: &rng)
        XCTAssertEqual(noBias.namedParameters().map(\.0), ["weight"])
        checkModule(noBias, input: randn(5, 4)) { noBias($0) }
        let y = fc(Tensor([1, 0, 0, 0], shape: [4]))
        XCTAssertEqual(y.shape, [3])
        for j in 0..<3 { XCTAssertEqual(y.scalars[j], fc.weight.scalars[j * 4] + fc.bias!.scalars[j], accuracy: 1e-6) }
    }

    func testNorms() {
        var rng = RandomGenerator(seed: 3)
        let ln = LayerNorm(5)
        XCTAssertEqual(ln.namedParameters().map(\.0), ["weight", "bias"])
        ln.weight!.assign(Tensor.normal([5], mean: 1, std: 0.2, rng: &rng))
        checkModule(ln, input: randn(2, 3, 5)) { ln($0) }
        XCTAssertTrue(LayerNorm(5, affine: false).namedParameters().isEmpty)
        let rms = RMSNorm(6)
        checkModule(rms, input: randn(3, 6)) { rms($0) }
        let gn = GroupNorm(groups: 2, channels: 4)
        gn.bias!.assign(Tensor.normal([4], std: 0.3, rng: &rng))
        checkModule(gn, input: randn(2, 4, 3, 3)) { gn($0) }
        // LayerNorm output has zero mean and unit variance per row before the affine.
        let plain = LayerNorm(8, affine: false)(randn(1, 8, scale: 3))
        XCTAssertEqual(plain.scalars.reduce(0, +), 0, accuracy: 1e-4)
        XCTAssertEqual(plain.scalars.map { $0 * $0 }.reduce(0, +) / 8, 1, accuracy: 1e-3)
    }

    func testEmbedding() {
        var rng = RandomGenerator(seed: 4)
        let emb = Embedding(7, 3, rng: &rng)
        let y = emb([4, 1, 4, 6], shape: [2, 2])
        XCTAssertEqual(y.shape, [2, 2, 3])
        XCTAssertEqual(Array(y.scalars[0..<3]), Array(emb.weight.scalars[12..<15]))
        checkGradients([emb.weight]) { _ in emb([4, 1, 4, 6], shape: [2, 2]) }
        (emb([2, 2]) * 1).sum().backward()
        XCTAssertEqual(Array(emb.weight.grad!.scalars[6..<9]), [2, 2, 2], "repeated ids accumulate")
    }

    func testActivationsAndMLP() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor([-2, -0.5, 0, 0.5, 2], shape: [5])
        XCTAssertEqual(ReLU()(x).scalars, [0, 0, 0, 0.5, 2])
        XCTAssertEqual(Identity()(x).scalars, x.scalars)
        XCTAssertEqual(SiLU()(x).scalars[4], 2 / (1 + Float(exp(-2.0))), accuracy: 1e-5)
        XCTAssertEqual(GELU()(x).scalars[4], 1.9544997, accuracy: 1e-5)
        XCTAssertEqual(GELU(approximate: true)(x).scalars[4], 1.9545977, accuracy: 1e-5)
        for act in [Activation.gelu, .geluTanh, .silu, .relu] {
            let mlp = MLP(4, hidden: 6, out: 3, activation: act, rng: &rng)
            XCTAssertEqual(mlp.namedParameters().map(\.0), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
            checkModule(mlp, input: randn(2, 4, seed: 9)) { mlp($0) }
        }
        // A Sequential with an activation in the middle leaves the index gap of the checkpoints.
        let seq = Sequential([LayerNorm(4), Linear(4, 8, rng: &rng), GELU(), Linear(8, 4, rng: &rng)])
        XCTAssertEqual(seq.namedParameters().map(\.0),
                       ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"])
        checkModule(seq, input: randn(3, 4)) { seq($0) }
    }

    func testTransformerBlockMatchesPyTorch() throws {
        let f = try Fixtures("optim")
        var rng = RandomGenerator(seed: 6)
        let block = TransformerBlock(dim: 8, heads: 2, mlpRatio: 2, rng: &rng)
        XCTAssertEqual(block.namedParameters().map(\.0), [
            "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
            "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"])
        for (name, p) in block.namedParameters() { p.assign(f["vit.param.\(name)"]) }
        let x = f["vit.x"]
        x.requiresGrad = true
        let y = block(x)
        assertClose(y, f["vit.y"], atol: 1e-5, rtol: 1e-4, "block forward")
        y.backward(f["vit.gy"])
        assertClose(x.grad!, f["vit.gx"], atol: 1e-5, rtol: 1e-4, "block input grad")
        for (name, p) in block.namedParameters() {
            assertClose(p.grad!, f["vit.grad.\(name)"], atol: 1e-5, rtol: 1e-4, "grad \(name)")
        }
    }

    func testTransformerBlockFiniteDifferences() {
        var rng = RandomGenerator(seed: 7)
        let block = TransformerBlock(dim: 4, heads: 2, mlpRatio: 2, rng: &rng)
        checkModule(block, input: randn(1, 3, 4)) { block($0) }
    }
}

final class TrainingTests: XCTestCase {
    /// Runs `steps` of AdamW and returns the first and last loss.
    func train(_ model: Module, steps: Int, lr: Float, loss: () -> Tensor) -> (Float, Float) {
        let opt = AdamW(groups: ParameterGroup.decaySplit(model.namedParameters(), lr: lr, weightDecay: 1e-4))
        let sched = LambdaLR(opt, schedule: CosineSchedule(warmupSteps: 5, totalSteps: steps, minRatio: 0.1))
        var first: Float = 0, last: Float = 0
        for step in 0..<steps {
            opt.zeroGrad()
            let l = loss()
            if step == 0 { first = l.item }
            last = l.item
            l.backward()
            clipGradNorm(opt.parameters, maxNorm: 1)
            opt.step()
            sched.step()
        }
        return (first, last)
    }

    func testTinyMLPOverfits() {
        var rng = RandomGenerator(seed: 11)
        let model = MLP(4, hidden: 32, out: 3, activation: .gelu, rng: &rng)
        let x = Tensor.normal([16, 4], rng: &rng)
        let target = Tensor.normal([16, 3], rng: &rng)
        let (first, last) = train(model, steps: 300, lr: 3e-2) { mseLoss(model(x), target) }
        XCTAssertLessThan(last, first / 10, "loss \(first) → \(last)")
    }

    func testTinyViTBlockOverfits() {
        var rng = RandomGenerator(seed: 12)
        final class Net: Module {
            let block: TransformerBlock
            let head: Linear
            init(rng: inout RandomGenerator) {
                block = TransformerBlock(dim: 8, heads: 2, mlpRatio: 2, rng: &rng)
                head = Linear(8, 5, rng: &rng)
                super.init()
                child("block", block)
                child("head", head)
            }
        }
        let model = Net(rng: &rng)
        let x = Tensor.normal([4, 6, 8], rng: &rng)
        let labels = (0..<24).map { _ in rng.int(5) }
        let (first, last) = train(model, steps: 300, lr: 2e-2) {
            crossEntropy(model.head(model.block(x)).reshaped([24, 5]), labels, ignoreIndex: -100)
        }
        XCTAssertLessThan(last, first / 10, "loss \(first) → \(last)")
    }
}
