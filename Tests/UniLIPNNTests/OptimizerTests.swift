import UniLIPCore
import UniLIPNN
import UniLIPTestSupport
import XCTest

final class OptimizerTests: XCTestCase {
    static let names = ["enc.w", "enc.b", "dec.w", "dec.scale"]
    static let steps = 12

    /// Builds the fixture's optimiser: two groups with different lr and weight decay.
    func makeOptimizer(_ f: Fixtures) -> (AdamW, LambdaLR, [String: Tensor]) {
        var params: [String: Tensor] = [:]
        for n in Self.names {
            let t = f["init.\(n)"]
            t.requiresGrad = true
            params[n] = t
        }
        let opt = AdamW(groups: [
            ParameterGroup(name: "enc", parameters: [("enc.w", params["enc.w"]!), ("enc.b", params["enc.b"]!)],
                           lr: 0.05, weightDecay: 0.1),
            ParameterGroup(name: "dec", parameters: [("dec.w", params["dec.w"]!), ("dec.scale", params["dec.scale"]!)],
                           lr: 0.02, weightDecay: 0.01),
        ], betas: (0.9, 0.95), eps: 1e-8)
        let sched = LambdaLR(opt, schedule: CosineSchedule(warmupSteps: 3, totalSteps: 10, minRatio: 0.1))
        return (opt, sched, params)
    }

    func runStep(_ step: Int, _ f: Fixtures, _ opt: AdamW, _ sched: LambdaLR, _ params: [String: Tensor],
                 check: Bool) {
        opt.zeroGrad()
        let lrs = opt.groups.map(\.lr)
        for n in Self.names where f.tensors["step\(step).grad.\(n)"] != nil {
            params[n]!.grad = f["step\(step).grad.\(n)"]
        }
        let norm = clipGradNorm(opt.parameters, maxNorm: 1.0)
        opt.step()
        sched.step()
        guard check else { return }
        assertClose(Tensor(lrs, shape: [2]), f["step\(step).lr"], atol: 0, rtol: 1e-6, "step \(step) lr")
        assertClose(Tensor([norm], shape: [1]), f["step\(step).norm"], atol: 0, rtol: 1e-6, "step \(step) norm")
        for n in Self.names {
            assertClose(params[n]!, f["step\(step).param.\(n)"], atol: 1e-6, rtol: 1e-6, "step \(step) \(n)")
        }
    }

    func testAdamWScheduleClipMatchPyTorch() throws {
        let f = try Fixtures("optim")
        let (opt, sched, params) = makeOptimizer(f)
        for step in 0..<Self.steps { runStep(step, f, opt, sched, params, check: true) }
        // Parameters skipped for lack of a gradient do not advance their step count.
        XCTAssertEqual(opt.stepCount("enc.w"), 12)
        XCTAssertEqual(opt.stepCount("enc.b"), 11)
        XCTAssertEqual(opt.stepCount("dec.scale"), 11)
    }

    func testStateSaveRestoreResumesExactly() throws {
        let f = try Fixtures("optim")
        let (optA, schedA, paramsA) = makeOptimizer(f)
        for step in 0..<5 { runStep(step, f, optA, schedA, paramsA, check: false) }
        let saved = optA.stateDict()
        let savedParams = paramsA.mapValues { $0.copy() }

        // A fresh optimiser over fresh tensors, restored from the saved state.
        let (optB, _, paramsB) = makeOptimizer(f)
        for (n, t) in savedParams { paramsB[n]!.assign(t) }
        try optB.loadStateDict(saved)
        let schedB = LambdaLR(optB, schedule: CosineSchedule(warmupSteps: 3, totalSteps: 10, minRatio: 0.1))
        try schedB.loadStateDict(schedA.stateDict())
        XCTAssertEqual(schedB.lastStep, 5)
        XCTAssertEqual(optB.groups.map(\.lr), optA.groups.map(\.lr))
        for step in 5..<Self.steps {
            runStep(step, f, optA, schedA, paramsA, check: false)
            runStep(step, f, optB, schedB, paramsB, check: true)
            for n in Self.names {
                XCTAssertEqual(paramsA[n]!.scalars, paramsB[n]!.scalars, "resumed \(n) at step \(step)")
            }
        }
    }

    func testLoadStateDictRejectsBadEntries() throws {
        let f = try Fixtures("optim")
        let (opt, sched, params) = makeOptimizer(f)
        runStep(0, f, opt, sched, params, check: false)
        var bad = opt.stateDict()
        bad["state.enc.w.exp_avg"] = Tensor(zeros: [2, 2])
        XCTAssertThrowsError(try opt.loadStateDict(bad)) { error in
            XCTAssertEqual((error as? StateDictError)?.key, "state.enc.w.exp_avg")
        }
        var missing = opt.stateDict()
        missing["groups.1.lr"] = nil
        XCTAssertThrowsError(try opt.loadStateDict(missing))
        var stranger = opt.stateDict()
        stranger["state.nope.step"] = Tensor(scalar: 1)
        XCTAssertThrowsError(try opt.loadStateDict(stranger))
        XCTAssertEqual(opt.stepCount("enc.w"), 1, "a failed load leaves the state alone")
    }

    func testAdamWSingleStepByHand() {
        // First step with bias correction: update = lr · g/(|g| + eps') ≈ lr · sign(g).
        let p = Tensor([1, -2], shape: [2], requiresGrad: true)
        let frozen = Tensor([5], shape: [1], requiresGrad: true)
        let opt = AdamW([("p", p), ("frozen", frozen)], lr: 0.1, weightDecay: 0.5)
        p.grad = Tensor([0.3, -4], shape: [2])
        opt.step()
        // p·(1 − 0.05) − 0.1·sign(g)
        XCTAssertEqual(p.scalars[0], 1 * 0.95 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(p.scalars[1], -2 * 0.95 + 0.1, accuracy: 1e-6)
        XCTAssertEqual(frozen.scalars, [5], "no gradient, no update (not even weight decay)")
        opt.zeroGrad()
        XCTAssertNil(p.grad)
    }

    func testCosineSchedule() {
        let s = CosineSchedule(warmupSteps: 4, totalSteps: 14, peakLR: 1e-3, minLR: 1e-4)
        XCTAssertEqual(s(0), 0)
        XCTAssertEqual(s(2), 0.5, accuracy: 1e-7)
        XCTAssertEqual(s(4), 1, accuracy: 1e-7)
        XCTAssertEqual(s(9), 0.1 + 0.9 * 0.5, accuracy: 1e-6)
        XCTAssertEqual(s(14), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s(100), 0.1, accuracy: 1e-6, "held at the floor")
        let none = CosineSchedule(warmupSteps: 0, totalSteps: 10)
        XCTAssertEqual(none(0), 1)
        XCTAssertEqual(none(10), 0, accuracy: 1e-7)
    }

    func testClipGradNorm() {
        let a = Tensor([0, 0], shape: [2], requiresGrad: true)
        let b = Tensor([0], shape: [1], requiresGrad: true)
        let c = Tensor([0], shape: [1], requiresGrad: true)
        a.grad = Tensor([3, 0], shape: [2])
        b.grad = Tensor([4], shape: [1])
        let norm = clipGradNorm([a, b, c], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars[0], 3 / (5 + 1e-6), accuracy: 1e-6)
        XCTAssertEqual(b.grad!.scalars[0], 4 / (5 + 1e-6), accuracy: 1e-6)
        XCTAssertNil(c.grad)
        // Below the limit nothing changes.
        XCTAssertEqual(clipGradNorm([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 4 / (5 + 1e-6), accuracy: 1e-6)
    }

    func testClipGradNormScalesSharedGradientOnce() {
        // Autograd gives both addends of `x + y` the same gradient tensor.
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = Tensor([3, 4], shape: [2], requiresGrad: true)
        ((x + y) * Tensor([3, 4], shape: [2])).sum().backward()
        XCTAssertEqual(clipGradNorm([x, y], maxNorm: 1), Float(50).squareRoot(), accuracy: 1e-5)
        let k = 1 / (Float(50).squareRoot() + 1e-6)
        XCTAssertEqual(x.grad!.scalars[0], 3 * k, accuracy: 1e-6)
        XCTAssertEqual(y.grad!.scalars[0], 3 * k, accuracy: 1e-6)
    }

    func testParameterGroupsSplitByRule() {
        let named: [(String, Tensor)] = [
            ("encoder.blocks.0.attn.qkv.weight", Tensor(zeros: [6, 2])),
            ("encoder.blocks.0.attn.qkv.bias", Tensor(zeros: [6])),
            ("encoder.blocks.0.norm1.weight", Tensor(zeros: [2])),
            ("encoder.pos_embed", Tensor(zeros: [1, 4, 2])),
            ("decoder.ln_post.weight", Tensor(zeros: [2, 2])),
            ("decoder.layer_scale.gamma", Tensor(zeros: [2, 2])),
            ("decoder.fc.weight", Tensor(zeros: [3, 2])),
            ("decoder.frozen.weight", Tensor(zeros: [3, 2])),
            ("encoder2.w", Tensor(zeros: [3, 2])),
        ]
        for (n, t) in named { t.requiresGrad = !n.contains("frozen") }
        let groups = ParameterGroup.decaySplit(named, lr: 1e-3, weightDecay: 0.05, scaled: [("encoder", 0.1)])
        XCTAssertEqual(groups.map(\.name), ["encoder.decay", "encoder.no_decay", "decay", "no_decay"])
        XCTAssertEqual(groups[0].parameters.map(\.0), ["encoder.blocks.0.attn.qkv.weight"])
        XCTAssertEqual(groups[1].parameters.map(\.0),
                       ["encoder.blocks.0.attn.qkv.bias", "encoder.blocks.0.norm1.weight", "encoder.pos_embed"])
        XCTAssertEqual(groups[2].parameters.map(\.0), ["decoder.fc.weight", "encoder2.w"])
        XCTAssertEqual(groups[3].parameters.map(\.0), ["decoder.ln_post.weight", "decoder.layer_scale.gamma"])
        for (g, lr) in zip(groups, [1e-4, 1e-4, 1e-3, 1e-3] as [Float]) { XCTAssertEqual(g.lr, lr, accuracy: lr * 1e-6) }
        XCTAssertEqual(groups.map(\.weightDecay), [0.05, 0, 0.05, 0])
    }
}

final class EMATests: XCTestCase {
    func testEMAMatchesHandComputation() {
        let p = Tensor([1, 2], shape: [2], requiresGrad: true)
        let ema = EMA([("w", p)], decay: 0.5)
        XCTAssertEqual(ema.currentDecay, 0.1, accuracy: 1e-7)  // (1+0)/(10+0)
        p.assign(Tensor([11, 12], shape: [2]))
        ema.update()  // 0.1·[1,2] + 0.9·[11,12] = [10, 11]
        XCTAssertEqual(ema.shadow[0].1.scalars[0], 10, accuracy: 1e-5)
        XCTAssertEqual(ema.shadow[0].1.scalars[1], 11, accuracy: 1e-5)
        XCTAssertEqual(ema.currentDecay, 2.0 / 11.0, accuracy: 1e-7)
        p.assign(Tensor([0, 0], shape: [2]))
        ema.update()  // (2/11)·[10, 11]
        XCTAssertEqual(ema.shadow[0].1.scalars[0], 20.0 / 11.0, accuracy: 1e-5)
        XCTAssertEqual(ema.shadow[0].1.scalars[1], 2, accuracy: 1e-5)
        for _ in 0..<20 { ema.update() }
        XCTAssertEqual(ema.currentDecay, 0.5, "capped at the configured decay")
        XCTAssertEqual(ema.updates, 22)
    }

    func testEMACopyToModelAndStateRoundTrip() throws {
        final class Net: Module {
            let w: Tensor
            init(_ v: Float) {
                w = Tensor(repeating: v, shape: [3])
                super.init()
                parameter("w", w)
            }
        }
        let net = Net(1)
        let ema = EMA(net, decay: 0.9)
        net.w.assign(Tensor(repeating: 3, shape: [3]))
        ema.update()
        let saved = ema.stateDict()
        let other = EMA(Net(1), decay: 0.9)
        try other.loadStateDict(saved)
        XCTAssertEqual(other.updates, 1)
        XCTAssertEqual(other.shadow[0].1.scalars, ema.shadow[0].1.scalars)
        ema.update()
        // The restored average was built from another module; copy both into fresh models.
        let target = Net(0)
        ema.copy(to: target)
        XCTAssertEqual(target.w.scalars, ema.shadow[0].1.scalars)
        XCTAssertThrowsError(try other.loadStateDict(["ema_updates": Tensor(scalar: 1)]))
    }
}
