import UniLIPCore
import UniLIPNN
import UniLIPTestSupport
import XCTest

/// Minimal modules built on registration alone, so naming is tested without layer ops.
private final class Leaf: Module, UnaryLayer {
    let weight: Tensor
    let bias: Tensor
    init(_ n: Int) {
        weight = Tensor(repeating: 1, shape: [n, n])
        bias = Tensor(zeros: [n])
        super.init()
        parameter("weight", weight)
        parameter("bias", bias)
    }
    func callAsFunction(_ x: Tensor) -> Tensor { x.matmul(weight) + bias }
}

private final class Act: Module, UnaryLayer {
    func callAsFunction(_ x: Tensor) -> Tensor { x * 2 }
}

private final class Block: Module {
    let attn: Leaf
    let mlp: Sequential
    let scale: Tensor
    override init() {
        attn = Leaf(2)
        mlp = Sequential([Leaf(2), Leaf(2), Act(), Leaf(2)])
        scale = Tensor(repeating: 1, shape: [2])
        super.init()
        parameter("gamma", scale)
        child("attn", attn)
        child("mlp", mlp)
    }
}

private final class Encoder: Module {
    let layers: ModuleList
    let posIds: Tensor
    init(depth: Int) {
        layers = ModuleList((0..<depth).map { _ in Block() })
        posIds = Tensor([0, 1, 2], shape: [3])
        super.init()
        child("layers", layers)
        buffer("pos_ids", posIds)
    }
}

private final class Model: Module {
    let encoder: Encoder
    let head: Leaf
    override init() {
        encoder = Encoder(depth: 2)
        head = Leaf(3)
        super.init()
        child("encoder", encoder)
        child("head", head)
    }
}

final class ModuleTests: XCTestCase {
    func testDottedNamesInRegistrationOrder() {
        let m = Model()
        let block = ["gamma", "attn.weight", "attn.bias",
                     "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias", "mlp.3.weight", "mlp.3.bias"]
        let expected = (0..<2).flatMap { i in block.map { "encoder.layers.\(i).\($0)" } } + ["head.weight", "head.bias"]
        XCTAssertEqual(m.namedParameters().map(\.0), expected)
        XCTAssertEqual(m.namedBuffers().map(\.0), ["encoder.pos_ids"])
        XCTAssertEqual(m.namedTensors().count, expected.count + 1)
        XCTAssertEqual(m.parameterCount, 2 * (2 + 4 * 6) + 12)
        XCTAssertTrue(m.namedParameters().allSatisfy { $0.1.requiresGrad })
        XCTAssertEqual(m.namedModules().map(\.0).prefix(4), ["", "encoder", "encoder.layers", "encoder.layers.0"])
    }

    func testLookupByName() {
        let m = Model()
        let b1 = m.encoder.layers[1] as? Block
        XCTAssertTrue(m.parameter(named: "encoder.layers.1.mlp.3.weight") === (b1?.mlp.layers[3] as? Leaf)?.weight)
        XCTAssertTrue(m.parameter(named: "encoder.layers.1.gamma") === b1?.scale)
        XCTAssertNil(m.parameter(named: "encoder.layers.1.mlp.2.weight"), "the activation has no weight")
        XCTAssertNil(m.parameter(named: "encoder.pos_ids"), "a buffer is not a parameter")
        XCTAssertTrue(m.tensor(named: "encoder.pos_ids") === m.encoder.posIds)
        XCTAssertNil(m.parameter(named: "encoder.layers.7.gamma"))
        XCTAssertNil(m.parameter(named: ""))
        XCTAssertTrue(m.module(named: "encoder.layers.0.attn") === (m.encoder.layers[0] as? Block)?.attn)
        XCTAssertEqual(m.parameters(under: "encoder.layers.1").count, 9)
        XCTAssertEqual(m.parameters(under: "head").map(\.0), ["head.weight", "head.bias"])
    }

    func testModuleListWithExplicitIndices() {
        let list = ModuleList(indexed: [(0, Leaf(1)), (1, Leaf(1)), (3, Leaf(1))])
        XCTAssertEqual(list.namedParameters().map(\.0),
                       ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"])
    }

    func testFreezeAndPrefixFreeze() {
        let m = Model()
        m.freeze(prefix: "encoder.layers.0")
        for (name, t) in m.namedParameters() {
            XCTAssertEqual(t.requiresGrad, !name.hasPrefix("encoder.layers.0."), name)
        }
        XCTAssertEqual(m.trainableParameterCount, m.parameterCount - 26)
        m.freeze()
        XCTAssertEqual(m.trainableParameterCount, 0)
        m.unfreeze(prefix: "head")
        XCTAssertEqual(m.trainableParameterCount, 12)
        m.unfreeze()
        XCTAssertEqual(m.trainableParameterCount, m.parameterCount)
        // A frozen module passes no gradient to its parameters.
        m.head.freeze()
        let y = m.head(Tensor(repeating: 1, shape: [1, 3], requiresGrad: true)).sum()
        y.backward()
        XCTAssertNil(m.head.weight.grad)
    }

    func testPrefixMatchesWholeComponents() {
        XCTAssertTrue(Module.name("encoder.x", isUnder: "encoder"))
        XCTAssertTrue(Module.name("encoder", isUnder: "encoder"))
        XCTAssertFalse(Module.name("encoder2.x", isUnder: "encoder"))
        XCTAssertTrue(Module.name("encoder2.x", isUnder: "enc"  + "oder2."))
        XCTAssertTrue(Module.name("anything", isUnder: ""))
    }

    func testTrainEvalPropagates() {
        let m = Model()
        XCTAssertTrue(m.namedModules().allSatisfy { $0.1.training })
        m.eval()
        XCTAssertTrue(m.namedModules().allSatisfy { !$0.1.training })
        m.encoder.layers.train()
        XCTAssertFalse(m.training)
        XCTAssertTrue(m.encoder.layers[1].training)
        XCTAssertTrue((m.encoder.layers[1] as? Block)?.mlp.layers[2].training ?? false)
        m.train()
        XCTAssertTrue(m.namedModules().allSatisfy { $0.1.training })
    }

    func testZeroGrad() {
        let leaf = Leaf(2)
        leaf(Tensor(repeating: 1, shape: [1, 2])).sum().backward()
        XCTAssertNotNil(leaf.weight.grad)
        leaf.zeroGrad()
        XCTAssertNil(leaf.weight.grad)
        XCTAssertNil(leaf.bias.grad)
    }
}

final class DropoutTests: XCTestCase {
    func testDropoutTrainAndEval() {
        let drop = Dropout(0.25, rng: RandomGenerator(seed: 3))
        let x = Tensor(repeating: 1, shape: [4000], requiresGrad: true)
        let y = drop(x)
        let zeros = y.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Float(zeros) / 4000, 0.25, accuracy: 0.03)
        XCTAssertTrue(y.scalars.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        y.sum().backward()
        XCTAssertEqual(x.grad!.scalars, y.scalars, "gradient passes through the same mask")
        drop.eval()
        XCTAssertTrue(drop(x) === x)
        XCTAssertTrue(drop.namedParameters().isEmpty)
    }
}
