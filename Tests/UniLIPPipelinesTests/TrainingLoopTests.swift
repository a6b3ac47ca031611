import Foundation
import UniLIPCore
import UniLIPNN
import UniLIPPipelines
import XCTest

final class TrainingLoopTests: XCTestCase {
    func tempDir() -> String {
        let p = NSTemporaryDirectory() + "unilip-run-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    func makeLoop(_ dir: String, steps: Int, ema: Float? = 0.9) throws -> (TrainingLoop, MLP) {
        var rng = RandomGenerator(seed: 1)
        let model = MLP(4, hidden: 16, out: 2, rng: &rng)
        let schedule = TrainingSchedule(steps: steps, batchSize: 8, learningRate: 1e-2, warmupSteps: 3,
                                        emaDecay: ema, checkpointEvery: 5, logEvery: 2)
        let groups = ParameterGroup.decaySplit(model.namedParameters(), lr: 1e-2, weightDecay: 0.01)
        return (try TrainingLoop(model: model, groups: groups, schedule: schedule, run: try RunDirectory(dir)), model)
    }

    /// Batch of step s: a pure function of s.
    func loss(_ model: MLP, _ step: Int) -> (loss: Tensor, metrics: [String: Double]) {
        var rng = RandomGenerator(seed: UInt64(100 + step))
        let x = Tensor.normal([8, 4], rng: &rng)
        let y = Tensor.normal([8, 2], rng: &rng)
        return (mseLoss(model(x), y), [:])
    }

    func testResumeIsExact() throws {
        let (straight, a) = try makeLoop(tempDir(), steps: 20)
        try straight.train { self.loss(a, $0) }

        let dir = tempDir()
        let (first, b) = try makeLoop(dir, steps: 20)
        try first.train(lossAt: { self.loss(b, $0) }, progress: { $0.step < 12 })  // stop at 12
        XCTAssertEqual(first.step, 12)
        let (second, c) = try makeLoop(dir, steps: 20)
        XCTAssertEqual(try second.resume(), 12)
        try second.train { self.loss(c, $0) }
        for ((n1, t1), (_, t2)) in zip(a.namedTensors(), c.namedTensors()) {
            XCTAssertEqual(t1.scalars, t2.scalars, "\(n1) differs after resume")
        }
        XCTAssertEqual(straight.exportedWeights().mapValues(\.scalars), second.exportedWeights().mapValues(\.scalars))
        let log = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        XCTAssertGreaterThanOrEqual(log.split(separator: "\n").count, 10)
    }

    func testNaNLossStopsWithClearErrorAndKeepsCheckpoint() throws {
        let dir = tempDir()
        let (loop, model) = try makeLoop(dir, steps: 20, ema: nil)
        XCTAssertThrowsError(try loop.train { step in
            step == 7 ? (Tensor(scalar: .nan), [:]) : self.loss(model, step)
        }) { error in
            XCTAssertTrue("\(error)".contains("step 8"), "\(error)")
        }
        XCTAssertTrue(RunDirectory.latest(dir)?.hasSuffix("checkpoint-000005") ?? false)
    }
}

extension RunDirectory {
    static func latest(_ dir: String) -> String? { (try? RunDirectory(dir))?.latest }
}
