import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPPipelines
import XCTest

final class ShapeNegativeTests: XCTestCase {
    /// The negative is the same phrasing of the same scene with exactly one shape word changed
    /// (the phrasings that keep the scene's object order), and the image is the positive's.
    func testNegativeSwapsOneShapeWord() {
        let data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        let shapes = Set(ShapeKind.allCases.map(\.rawValue))
        var checked = 0
        for k in 0..<40 {
            let t = data.captionWithShapeNegative(k)
            XCTAssertEqual(t.caption, data.caption(k).caption, "positive of \(k)")
            XCTAssertNotEqual(t.caption, t.negative, "scene \(k)")
            let a = t.caption.split(separator: " "), b = t.negative.split(separator: " ")
            guard !t.caption.hasPrefix("There "), a.count == b.count else { continue }
            let differing = zip(a, b).filter { $0 != $1 }
            XCTAssertEqual(differing.count, 1, "\(t.caption) | \(t.negative)")
            if let (x, y) = differing.first {
                let strip = { (w: Substring) in String(w).trimmingCharacters(in: .punctuationCharacters) }
                XCTAssertTrue(shapes.contains(strip(x)) && shapes.contains(strip(y)), "\(x) → \(y)")
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20)
    }

    /// Extra text rows are negatives for every image; the text-to-image term covers the
    /// matched captions only. Checked against the loss written out by hand.
    func testContrastiveLossWithExtraNegatives() {
        var rng = RandomGenerator(seed: 3)
        let image = Tensor.normal([3, 4], rng: &rng), text = Tensor.normal([5, 4], rng: &rng)
        let scale = Tensor([Float(Foundation.log(2.0))], shape: [1])
        func unit(_ x: Tensor, _ r: Int) -> [Float] {
            let row = (0..<4).map { x.pointer[r * 4 + $0] }
            let n = row.map { $0 * $0 }.reduce(0, +).squareRoot()
            return row.map { $0 / n }
        }
        let s = (0..<3).map { i in (0..<5).map { j in 2 * zip(unit(image, i), unit(text, j)).map(*).reduce(0, +) } }
        func ce(_ row: [Float], _ target: Int) -> Float {
            let m = row.max() ?? 0
            return m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +)) - row[target]
        }
        let imageToText = (0..<3).map { ce(s[$0], $0) }.reduce(0, +) / 3
        let textToImage = (0..<3).map { j in ce((0..<3).map { s[$0][j] }, j) }.reduce(0, +) / 3
        let loss = contrastiveLoss(image: image, text: text, logScale: scale)
        XCTAssertEqual(loss.item, (imageToText + textToImage) / 2, accuracy: 1e-5)
        // Without extra rows it is the usual symmetric InfoNCE.
        let square = contrastiveLoss(image: image, text: text.sliced(axis: 0, start: 0, end: 3), logScale: scale)
        XCTAssertLessThan(square.item, loss.item + 1e-6)
    }
}
