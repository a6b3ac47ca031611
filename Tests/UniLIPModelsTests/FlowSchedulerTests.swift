import UniLIPCore
import UniLIPModels
import UniLIPTestSupport
import XCTest

final class FlowSchedulerTests: XCTestCase {
    private func row(_ t: Tensor, _ k: Int) -> Tensor {
        let shape = Array(t.shape.dropFirst())
        let n = shape.reduce(1, *)
        return Tensor(Array(UnsafeBufferPointer(start: t.pointer + k * n, count: n)), shape: shape)
    }

    /// Replays fixture case `name` through `scheduler`: same timesteps and sigmas, and the same
    /// sample after every step for the stored model outputs.
    private func replay(_ name: String, _ scheduler: FlowSampler, steps: Int,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try Fixtures("schedulers")
        scheduler.setTimesteps(steps)
        XCTAssertEqual(scheduler.timesteps, f["\(name).timesteps"].scalars, "\(name) timesteps", file: file, line: line)
        assertClose(Tensor(scheduler.sigmas, shape: [scheduler.sigmas.count]), f["\(name).sigmas"],
                    atol: 1e-7, rtol: 1e-6, "\(name) sigmas", file: file, line: line)
        let vs = f["\(name).v"], expected = f["\(name).samples"]
        XCTAssertEqual(vs.shape[0], steps, file: file, line: line)
        var x = f["\(name).x"]
        for (k, t) in scheduler.timesteps.enumerated() {
            x = scheduler.step(modelOutput: row(vs, k), timestep: t, sample: x)
            assertClose(x, row(expected, k), atol: 1e-5, rtol: 1e-5, "\(name) step \(k)", file: file, line: line)
        }
    }

    func testDPMSolverMatchesDiffusersForSANAConfig() throws {
        for steps in [1, 2, 4, 10, 20, 25] {
            try replay("dpm\(steps)", DPMSolverMultistepFlowScheduler.sana(), steps: steps)
        }
    }

    func testDPMSolverVariants() throws {
        try replay("dpm_heun10", DPMSolverMultistepFlowScheduler(solverType: .heun), steps: 10)
        try replay("dpm_order1_6", DPMSolverMultistepFlowScheduler(solverOrder: 1), steps: 6)
        try replay("dpm_shift1_8", DPMSolverMultistepFlowScheduler(flowShift: 1), steps: 8)
    }

    func testDPMSolverIsReusableAfterSetTimesteps() throws {
        let s = DPMSolverMultistepFlowScheduler.sana()
        try replay("dpm10", s, steps: 10)
        try replay("dpm4", s, steps: 4)
    }

    func testFlowMatchEulerMatchesDiffusers() throws {
        for shift in [1, 3] {
            for steps in [4, 10] {
                try replay("euler_s\(shift)_\(steps)", FlowMatchEulerScheduler(shift: Double(shift)), steps: steps)
            }
        }
    }

    func testTrainingTablesMatchDiffusers() throws {
        let f = try Fixtures("schedulers")
        for shift in [1, 3] {
            let s = FlowMatchEulerScheduler(shift: Double(shift))
            assertClose(Tensor(s.trainTimesteps, shape: [1000]), f["train_s\(shift).timesteps"], atol: 1e-4, rtol: 1e-6,
                        "train timesteps shift \(shift)")
            assertClose(Tensor(s.trainSigmas, shape: [1000]), f["train_s\(shift).sigmas"], atol: 1e-7, rtol: 1e-6,
                        "train sigmas shift \(shift)")
        }
    }

    func testClassifierFreeGuidance() throws {
        let f = try Fixtures("schedulers")
        let vu = f["cfg.vu"], vc = f["cfg.vc"]
        assertClose(FlowMatching.guided(unconditional: vu, conditional: vc, scale: 4.5), f["cfg.y"], "cfg")
        let batched = Tensor.concat([vu, vc], axis: 0)
        assertClose(FlowMatching.guided(batched: batched, scale: 4.5), f["cfg.y"], "cfg batched")
    }

    func testTrainingInterpolationAndTarget() {
        let x0 = randn(3, 2, 2, seed: 1), eps = randn(3, 2, 2, seed: 2)
        let sigmas: [Float] = [0, 0.25, 1]
        let xt = FlowMatching.interpolate(x0, noise: eps, sigmas: sigmas)
        for b in 0..<3 {
            for k in 0..<4 {
                let i = b * 4 + k
                let want = (1 - sigmas[b]) * x0.pointer[i] + sigmas[b] * eps.pointer[i]
                XCTAssertEqual(xt.pointer[i], want, accuracy: 1e-6)
            }
        }
        let v = FlowMatching.velocityTarget(x0, noise: eps)
        for i in 0..<v.count { XCTAssertEqual(v.pointer[i], eps.pointer[i] - x0.pointer[i], accuracy: 1e-6) }
        // Moving from x_σ along v by −σ lands on x0: the two conventions agree.
        let back = xt - v * Tensor(sigmas, shape: [3, 1, 1])
        assertClose(back, x0, atol: 1e-5, rtol: 1e-5, "x_σ − σ·v = x0")
    }

    func testLogitNormalTimestepSampling() {
        let schedule = FlowMatchEulerScheduler(shift: 1)
        var rng = RandomGenerator(seed: 5)
        let (ts, ss) = FlowMatching.sampleTimesteps(batch: 4000, schedule: schedule, rng: &rng)
        XCTAssertEqual(ts.count, 4000)
        for (t, s) in zip(ts, ss) {
            // float32 k/1000·1000 as diffusers: integral up to rounding (507.00003).
            XCTAssert(t >= 0.999 && t <= 1000 && abs(t - t.rounded()) < 1e-3, "timestep \(t)")
            XCTAssertEqual(s, t / 1000, accuracy: 1e-6)
        }
        // Logit-normal(0, 1) has median 0.5 and puts about 68% of its mass in sigmoid(±1).
        let sorted = ss.sorted()
        XCTAssertEqual(sorted[2000], 0.5, accuracy: 0.03)
        let inside = ss.filter { $0 > 0.2689 && $0 < 0.7311 }.count
        XCTAssertEqual(Double(inside) / 4000, 0.683, accuracy: 0.03)
        var again = RandomGenerator(seed: 5)
        XCTAssertEqual(FlowMatching.sampleTimesteps(batch: 4000, schedule: schedule, rng: &again).timesteps, ts)
    }

    func testSampleLoopEndsOnTheDataForAnExactVelocity() {
        // With the true velocity of a straight path, both samplers land on x0 exactly.
        let x0 = randn(1, 2, 3, 3, seed: 3)
        for sampler in [DPMSolverMultistepFlowScheduler.sana() as FlowSampler, FlowMatchEulerScheduler(shift: 3)] {
            let noise = sampler.initialNoise([1, 2, 3, 3], seed: 9)
            XCTAssertEqual(noise.scalars, sampler.initialNoise([1, 2, 3, 3], seed: 9).scalars)
            let v = noise - x0
            // DPM-Solver's first σ is shift(0.999), not 1: start on the path there.
            sampler.setTimesteps(7)
            let start = FlowMatching.interpolate(x0, noise: noise, sigmas: [sampler.sigmas[0]])
            let out = sampler.sample(from: start, steps: 7) { _, _ in v }
            assertClose(out, x0, atol: 1e-4, rtol: 1e-4, "\(type(of: sampler))")
        }
    }
}
