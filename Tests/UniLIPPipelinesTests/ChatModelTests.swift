import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPModels
import UniLIPPipelines
import UniLIPTestSupport
import UniLIPText
import XCTest

final class ChatModelTests: XCTestCase {
    func tokenizer() throws -> Tokenizer {
        try BPETrainer.train(texts: InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 30), vocabSize: 300)
    }

    /// A template on a small trained vocabulary and a tiny chat model (one vision layer).
    func chatModel(llmLayers: Int, seed: UInt64) throws -> (ChatTemplate, InternVLChatModel) {
        let template = try ChatTemplate(tokenizer: try tokenizer())
        var rng = RandomGenerator(seed: seed)
        var config = InternVLChatConfig.tiny(vocabSize: template.tokenizer.vocabSize)
        config.llmConfig.numHiddenLayers = llmLayers
        config.visionConfig.numHiddenLayers = 1
        return (template, InternVLChatModel(config, rng: &rng))
    }

    func testTemplateMasksEverythingButTheAnswer() throws {
        let t = try ChatTemplate(tokenizer: try tokenizer())
        let (ids, labels) = t.example(question: "What color is the circle?", answer: "red", imageTokens: 4)
        XCTAssertEqual(ids.count, labels.count)
        XCTAssertEqual(ids.filter { $0 == t.imgContext }.count, 4)
        let answer = zip(ids, labels).filter { $0.1 != -100 }.map(\.0)
        XCTAssertEqual(answer, t.tokenizer.encode("red") + [t.imEnd])
        XCTAssertEqual(t.tokenizer.decode(t.prompt("Hi", imageTokens: 0)), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    /// Image tokens land exactly on the context positions, in order, whatever the padding.
    func testImageTokensReplaceContextEmbeddings() throws {
        var rng = RandomGenerator(seed: 1)
        var config = InternVLChatConfig.tiny(vocabSize: 40)
        config.llmConfig.numHiddenLayers = 1
        config.visionConfig.numHiddenLayers = 1
        let model = InternVLChatModel(config, rng: &rng)
        let ctx = 7
        let ids = [1, 2, ctx, ctx, 3, 0, 5, ctx, ctx, 4]  // two rows of 5, context at different places
        let image = Tensor.normal([2, 2, 128], rng: &rng, requiresGrad: true)
        let merged = model.inputEmbeddings(ids: ids, batch: 2, imageTokens: image, contextID: ctx)
        let text = model.language.model.embed(ids, batch: 2)
        XCTAssertEqual(merged.shape, [2, 5, 128])
        func row(_ t: Tensor, _ b: Int, _ p: Int, _ len: Int) -> [Float] {
            Array(t.scalars[((b * len + p) * 128)..<((b * len + p + 1) * 128)])
        }
        XCTAssertEqual(row(merged, 0, 2, 5), row(image, 0, 0, 2))
        XCTAssertEqual(row(merged, 0, 3, 5), row(image, 0, 1, 2))
        XCTAssertEqual(row(merged, 1, 2, 5), row(image, 1, 0, 2))
        XCTAssertEqual(row(merged, 1, 3, 5), row(image, 1, 1, 2))
        XCTAssertEqual(row(merged, 0, 0, 5), row(text, 0, 0, 5))
        XCTAssertEqual(row(merged, 1, 4, 5), row(text, 1, 4, 5))
        merged.sum().backward()
        XCTAssertEqual(image.grad?.scalars, [Float](repeating: 1, count: 512), "each image token used once")
    }

    /// The loss computes logits only at labelled positions; it must equal cross entropy over
    /// every position's logits (unlabelled ones ignored), gradients included.
    func testLossOnLabelledRealTokensEqualsFullPaddedLoss() throws {
        let (template, model) = try chatModel(llmLayers: 1, seed: 3)
        let config = model.config
        let data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        let examples = (0..<3).map { data.example($0) }
        let batch = TokenBatch(examples.map { template.example(question: $0.question, answer: $0.answer, imageTokens: 16) },
                               pad: template.pad)
        let pixels = UnderstandingData.pixels(examples.map(\.image))
        let length = batch.length
        var targets = [Int](repeating: -100, count: batch.batch * length)
        for r in 0..<batch.batch {
            for p in 0..<(length - 1) { targets[r * length + p] = batch.labels[r * length + p + 1] }
        }
        XCTAssertGreaterThan(targets.filter { $0 == -100 }.count, targets.count / 2, "most positions unlabelled")
        // The loss also runs the language model on the real tokens only (packed): rows differ in length.
        XCTAssertLessThan(batch.mask.sum().item, Float(batch.mask.count), "some positions padded")
        let params = model.namedParameters()

        let embeddings = model.inputEmbeddings(ids: batch.ids, batch: batch.batch, imageTokens: model.imageTokens(pixels),
                                               contextID: template.imgContext)
        let (logits, _) = model.language(embeddings: embeddings, keyPadding: batch.mask)
        let full = crossEntropy(logits.reshaped([batch.batch * length, config.llmConfig.vocabSize]), targets)
        full.backward()
        let fullGrads = params.map { $0.1.grad }
        model.zeroGrad()

        let loss = model.loss(pixels: pixels, ids: batch.ids, labels: batch.labels, batch: batch.batch,
                              mask: batch.mask, contextID: template.imgContext)
        loss.backward()
        XCTAssertEqual(loss.item, full.item, accuracy: 1e-5)
        for ((name, p), expected) in zip(params, fullGrads) {
            guard let expected, let g = p.grad else { XCTFail("\(name): no gradient"); continue }
            assertClose(g, expected, atol: 1e-5, name)
        }
    }

    /// InternVL's loss reductions: each labelled token of a row with n of them weighs 1, 1/n or
    /// 1/√n, and the loss is Σ w·CE / Σ w. Checked against per-row cross entropies on the full
    /// logits (another path: fused cross entropy instead of log-softmax and gather), gradients
    /// included, on rows with a caption answer (many tokens) and short answers.
    func testLossReductionsWeighEachRowByItsLabelCount() throws {
        let (template, model) = try chatModel(llmLayers: 1, seed: 4)
        let vocab = model.config.llmConfig.vocabSize
        let data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        let sample = data.world.sample(.train, 0)
        let rows = [template.example(question: UnderstandingData.describePrompt, answer: sample.captions[1], imageTokens: 16)]
            + (1..<3).map { let e = data.example($0); return template.example(question: e.question, answer: e.answer, imageTokens: 16) }
        let batch = TokenBatch(rows, pad: template.pad)
        let pixels = UnderstandingData.pixels([data.world.image(sample.scene)] + (1..<3).map { data.example($0).image })
        let length = batch.length
        let counts = (0..<3).map { r in (0..<(length - 1)).filter { batch.labels[r * length + $0 + 1] != -100 }.count }
        XCTAssertGreaterThan(counts[0], 3 * counts[1], "a caption answer is long: \(counts)")
        let params = model.namedParameters()
        for reduction in [LossReduction.sample, .square, .token] {
            model.zeroGrad()
            let embeddings = model.inputEmbeddings(ids: batch.ids, batch: 3, imageTokens: model.imageTokens(pixels),
                                                   contextID: template.imgContext)
            let logits = model.language(embeddings: embeddings, keyPadding: batch.mask).0.reshaped([3 * length, vocab])
            let weights = counts.map { reduction.weight(labelledTokens: $0) }
            let total = zip(weights, counts).map { $0 * Float($1) }.reduce(0, +)
            var expected: Tensor?
            for r in 0..<3 {
                var targets = [Int](repeating: -100, count: 3 * length)
                for p in 0..<(length - 1) { targets[r * length + p] = batch.labels[r * length + p + 1] }
                let term = crossEntropy(logits, targets) * Float(counts[r]) * (weights[r] / total)
                expected = expected.map { $0 + term } ?? term
            }
            expected!.backward()
            let expectedGrads = params.map { $0.1.grad }
            model.zeroGrad()
            let loss = model.loss(pixels: pixels, ids: batch.ids, labels: batch.labels, batch: 3, mask: batch.mask,
                                  contextID: template.imgContext, reduction: reduction)
            loss.backward()
            XCTAssertEqual(loss.item, expected!.item, accuracy: 1e-5, reduction.rawValue)
            for ((name, p), e) in zip(params, expectedGrads) {
                guard let e, let g = p.grad else { XCTFail("\(name): no gradient"); continue }
                assertClose(g, e, atol: 1e-5, "\(reduction.rawValue) \(name)")
            }
        }
        XCTAssertEqual(LossReduction.square.weight(labelledTokens: 16), 0.25)
        XCTAssertEqual(LossReduction.sample.weight(labelledTokens: 4), 0.25)
        XCTAssertEqual(LossReduction.token.weight(labelledTokens: 4), 1)
        XCTAssertEqual(LossReduction.square.weight(labelledTokens: 0), 0)
    }

    func testMLLMLossFallsOnAFixedBatch() throws {
        let (template, model) = try chatModel(llmLayers: 2, seed: 2)
        model.vision.freeze()
        let data = UnderstandingData(world: ShapesWorld(seed: 0), split: .train)
        let examples = (0..<8).map { data.example($0) }
        let batch = TokenBatch(examples.map { template.example(question: $0.question, answer: $0.answer, imageTokens: 16) },
                               pad: template.pad)
        let pixels = UnderstandingData.pixels(examples.map(\.image))
        let params = model.namedParameters().filter { $0.1.requiresGrad }
        XCTAssertFalse(params.contains { $0.0.hasPrefix("vision_model.") })
        let opt = AdamWForTest(params)
        var first: Float = 0, last: Float = 0
        for step in 0..<30 {
            let loss = model.loss(pixels: pixels, ids: batch.ids, labels: batch.labels, batch: batch.batch,
                                  mask: batch.mask, contextID: template.imgContext)
            if step == 0 { first = loss.item }
            last = loss.item
            opt.step(loss)
        }
        XCTAssertLessThan(last, first / 5, "loss \(first) → \(last)")
    }
}

import UniLIPNN
/// A plain AdamW loop for the overfitting test.
struct AdamWForTest {
    let opt: AdamW
    init(_ params: [(String, Tensor)]) { opt = AdamW(params, lr: 3e-3, weightDecay: 0) }
    func step(_ loss: Tensor) {
        opt.zeroGrad()
        loss.backward()
        opt.step()
    }
}
