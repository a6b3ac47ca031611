import ShapesWorld
import UniLIPPipelines
import XCTest

final class QuestionWeightTests: XCTestCase {
    /// Shares of each question type among the VQA examples 0..<n, and which examples are captions.
    private func draw(_ weights: [QuestionType: Double], n: Int = 3000) -> (share: [QuestionType: Double], captions: [Int]) {
        var data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        data.typeWeights = weights
        var counts: [QuestionType: Int] = [:], captions: [Int] = []
        for k in 0..<n {
            if let type = data.exampleType(k) { counts[type, default: 0] += 1 } else { captions.append(k) }
        }
        let vqa = Double(n - captions.count)
        return (counts.mapValues { Double($0) / vqa }, captions)
    }

    /// Weights move the draw toward the heavier types, a weight of 0 removes a type, explicit
    /// weights of 1 draw like the default, and which examples are captions never changes.
    func testWeightsShiftTheTypeDraw() {
        let uniform = draw([:])
        let ones = draw(Dictionary(uniqueKeysWithValues: QuestionType.allCases.map { ($0, 1.0) }))
        let heavy = draw([.position: 3, .relation: 3, .shape: 0])
        XCTAssertEqual(uniform.captions, heavy.captions)
        XCTAssertEqual(uniform.captions, ones.captions)
        let captionShare = Double(uniform.captions.count) / 3000
        XCTAssertEqual(captionShare, 0.15, accuracy: 0.03)
        // About 6.4 types are on offer per scene, so each is drawn ~15% of the time.
        for type in QuestionType.allCases where type != .relation {
            XCTAssertEqual(uniform.share[type] ?? 0, 0.15, accuracy: 0.04, "\(type)")
            XCTAssertEqual(ones.share[type] ?? 0, uniform.share[type] ?? 0, accuracy: 0.03, "\(type)")
        }
        XCTAssertNil(heavy.share[.shape])
        // 3 of ~10 weight units where they are on offer, against ~1 of 6.4: about 2.2×.
        XCTAssertGreaterThan(heavy.share[.position] ?? 0, 1.8 * (uniform.share[.position] ?? 1))
        XCTAssertGreaterThan(heavy.share[.relation] ?? 0, 1.8 * (uniform.share[.relation] ?? 1))
        XCTAssertLessThan(heavy.share[.color] ?? 1, uniform.share[.color] ?? 0)
    }

    func testWeightsParse() throws {
        XCTAssertEqual(try UnderstandingData.typeWeights(parsing: []), [:])
        XCTAssertEqual(try UnderstandingData.typeWeights(parsing: ["position=3", "relation=2.5", "count=0"]),
                       [.position: 3, .relation: 2.5, .count: 0])
        for bad in ["position", "where=2", "position=-1", "position=nan", "position=inf", "position=two", "=2", "position=1=2"] {
            XCTAssertThrowsError(try UnderstandingData.typeWeights(parsing: [bad]), bad) { error in
                XCTAssertTrue("\(error)".contains(bad), "\(error)")
            }
        }
        let allZero = QuestionType.allCases.map { "\($0.rawValue)=0" }
        XCTAssertThrowsError(try UnderstandingData.typeWeights(parsing: allZero)) { error in
            XCTAssertTrue("\(error)".contains("above 0"), "\(error)")
        }
    }

    /// With the placed phrasing, caption requests are answered with every object's position and
    /// everything else (which examples are captions, the questions) stays the same.
    func testDescribePhrasing() {
        let world = ShapesWorld(seed: 0)
        let sized = UnderstandingData(world: world, split: .train)
        var placed = sized
        placed.describePhrasing = Captioner.placedPhrasing
        var captions = 0
        for k in 0..<40 {
            let a = sized.example(k), b = placed.example(k)
            XCTAssertEqual(a.question, b.question)
            XCTAssertEqual(a.type, b.type)
            guard a.type == nil else { XCTAssertEqual(a.answer, b.answer); continue }
            captions += 1
            let sample = world.sample(.train, k)
            XCTAssertEqual(a.answer, sample.captions[UnderstandingData.describeCaption])
            XCTAssertEqual(b.answer, sample.captions[Captioner.placedPhrasing])
            let where_ = sample.scene.objects.map { Captioner.positionPhrase($0) }
            XCTAssertTrue(where_.allSatisfy { b.answer.contains("at the \($0)") }, b.answer)
        }
        XCTAssertGreaterThan(captions, 0)
    }
}
