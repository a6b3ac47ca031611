import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPPipelines
import UniLIPText
import XCTest

final class PatchHeadTests: XCTestCase {
    let classes = PatchLabels.classes

    /// The loss with patch targets is the contrastive loss plus one cross entropy per target kind
    /// over that kind's slice of the head's logits; gradients reach the encoder through it.
    func testLossIsContrastivePlusPerKindCrossEntropy() {
        var rng = RandomGenerator(seed: 5)
        let vision = InternViT(config: .tiny, rng: &rng)
        let model = CLIPPretrainModel(vision: vision, text: CLIPTextTower(CLIPTextConfig(vocabSize: 40), rng: &rng),
                                      patchClasses: classes, rng: &rng)
        let data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        let images = (0..<2).map { data.caption($0).image }
        let labels = (0..<2).map { data.patchLabels($0, patch: vision.config.patchSize) }
        let targets = [labels.flatMap { $0.shapes }, labels.flatMap { $0.colors }]
        let ids = (0..<8).map { $0 % 40 }
        let mask = Tensor([Float](repeating: 1, count: 8), shape: [2, 4])
        let pixels = UnderstandingData.pixels(images)
        let clip = withNoGrad { model.loss(pixels: pixels, ids: ids, batch: 2, length: 4, mask: mask) }
        let total = model.loss(pixels: pixels, ids: ids, batch: 2, length: 4, mask: mask, patchTargets: targets)
        let expected: Float = withNoGrad {
            let hidden = vision(pixels)
            let tokens = hidden.sliced(axis: 1, start: 1, end: hidden.shape[1])
            let logits = model.patchHead!.proj(model.patchHead!.norm(tokens)).reshaped([2 * 64, 13])
            return crossEntropy(logits.sliced(axis: 1, start: 0, end: 5), targets[0]).item
                + crossEntropy(logits.sliced(axis: 1, start: 5, end: 13), targets[1]).item
        }
        XCTAssertEqual(total.item, clip.item + expected, accuracy: 1e-4)
        total.backward()
        let grad = vision.embeddings.patchEmbedding.weight.grad
        XCTAssertNotNil(grad)
        XCTAssertGreaterThan(grad.map { g in (0..<g.count).map { abs(g.pointer[$0]) }.max() ?? 0 } ?? 0, 0)
    }

    /// The recipe's head trains on all four targets (shape, colour, centre column and row), each a
    /// batch's labels in (scene, patch) order; without position labels it keeps the shipped
    /// model's two.
    func testRecipeBatchesCarryEveryTargetOfItsHead() throws {
        let world = ShapesWorld(seed: 0)
        let tokenizer = try BPETrainer.train(texts: InternVLTinyRecipe.tokenizerCorpus(world: world, scenes: 20),
                                             vocabSize: 300)
        let data = UnderstandingData(world: world, split: .train)
        for position in [true, false] {
            var recipe = InternVLTinyRecipe()
            recipe.clipPositionLabels = position
            let clip = recipe.models(vocabSize: tokenizer.vocabSize).clip
            XCTAssertEqual(clip.patchHead?.classes, position ? PatchLabels.allClasses : PatchLabels.classes)
            let batch = UnderstandingTraining.clipBatch(step: 1, size: 3, data: data, tokenizer: tokenizer, model: clip,
                                                        shapeNegatives: false, patchLabels: true)
            let labels = (3..<6).map { data.patchLabels($0, patch: 8).targets(position ? 4 : 2) }
            XCTAssertEqual(batch.patchTargets?.count, position ? 4 : 2)
            for k in 0..<(position ? 4 : 2) {
                XCTAssertEqual(batch.patchTargets?[k], labels.flatMap { $0[k] })
            }
        }
    }

    /// The exported CLIP file keeps the patch head; the loader rebuilds it from the file, and the
    /// evaluation scores every object-covered patch. Without a head there is no such score.
    func testExportKeepsThePatchHeadForEvaluation() throws {
        let tokenizer = try BPETrainer.train(texts: InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 20),
                                             vocabSize: 300)
        let world = ShapesWorld(seed: 0)
        for headClasses in [classes, PatchLabels.allClasses, []] {
            let withHead = !headClasses.isEmpty
            let dir = NSTemporaryDirectory() + "unilip-patch-head-\(UUID().uuidString)"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var rng = RandomGenerator(seed: 3)
            let model = InternVLChatModel(.tiny(vocabSize: tokenizer.vocabSize), rng: &rng)
            let clip = CLIPPretrainModel(vision: model.vision,
                                         text: CLIPTextTower(CLIPTextConfig(vocabSize: tokenizer.vocabSize), rng: &rng),
                                         patchClasses: headClasses, rng: &rng)
            try InternVLTinyRecipe.export(model: model, tokenizer: tokenizer, textTower: clip, to: dir)
            let names = try SafetensorsFile(path: dir + "/clip_text.safetensors").names
            XCTAssertEqual(names.contains("patch_head.proj.weight"), withHead)
            XCTAssertFalse(names.contains { $0.hasPrefix("vision_model.") })
            let (loaded, _) = try UnderstandingEvaluation.loadCLIP(directory: dir, vision: model.vision)
            XCTAssertEqual(loaded.logitScale.item, clip.logitScale.item, accuracy: 2e-3, "stored as F16")
            let table = UnderstandingEvaluation.patchLabels(loaded, world: world, split: .test, scenes: 3)
            guard withHead else {
                XCTAssertNil(table)
                continue
            }
            let covered = (0..<3).map { PatchLabels(scene: world.scene(.test, $0), size: 64, patch: 8).shapes.filter { $0 != 0 }.count }
            XCTAssertEqual(table?.total["shape"], covered.reduce(0, +))
            XCTAssertEqual(loaded.patchHead?.classes, headClasses, "the head's targets, from its width in the file")
            for (k, name) in PatchLabels.targetNames.enumerated() {
                XCTAssertEqual(table?.total[name], k < headClasses.count ? covered.reduce(0, +) : nil, name)
            }
        }
    }
}
