import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPText

/// The two stages that make the base model "InternVL-tiny", in the order the real one was made:
/// (a) CLIP contrastive pretraining of the InternViT encoder with a small text tower;
/// (b) MLLM training with the encoder frozen: `mlp1` and the LLM learn captioning and VQA.
public enum UnderstandingTraining {
    /// Caption token rows (no special tokens), truncated to `maxLength`, right-padded.
    static func captionBatch(_ captions: [String], tokenizer: Tokenizer, maxLength: Int, pad: Int) -> TokenBatch {
        TokenBatch(captions.map { c in
            let ids = Array(tokenizer.encode(c).prefix(maxLength))
            return (ids, ids)
        }, pad: pad)
    }

    /// Stage (a). Scene k = step·batch + i of the train split: the data is a function of the step.
    public static func pretrainCLIP(_ model: CLIPPretrainModel, tokenizer: Tokenizer, world: ShapesWorld,
                                    schedule: TrainingSchedule, run: RunDirectory, info: [String: Any] = [:],
                                    shapeNegatives: Bool = false, patchLabels: Bool = false,
                                    progress: (TrainingProgress) -> Bool = { _ in true }) throws {
        precondition(!patchLabels || model.patchHead != nil, "pretrainCLIP: patch labels need a model with a patch head")
        let groups = ParameterGroup.decaySplit(model.namedParameters(), lr: schedule.learningRate,
                                               weightDecay: schedule.weightDecay)
        let loop = try TrainingLoop(model: model, groups: groups, schedule: schedule, run: run)
        loop.checkpointInfo = info
        try loop.resume()
        let data = UnderstandingData(world: world, split: .train)
        try loop.train(lossAt: { step in
            let batch = clipBatch(step: step, size: schedule.batchSize, data: data, tokenizer: tokenizer,
                                  model: model, shapeNegatives: shapeNegatives, patchLabels: patchLabels)
            return (clipLoss(model, batch), ["logit_scale": Double(model.logitScale.item)])
        }, progress: progress)
    }

    /// One CLIP batch: images, caption tokens and (optionally) patch targets.
    public struct CLIPBatch {
        public let pixels: Tensor
        public let tokens: TokenBatch
        public let patchTargets: [[Int]]?
    }

    /// CLIP batch `step`: scenes step·size ..< (step + 1)·size of `data`'s split.
    public static func clipBatch(step: Int, size: Int, data: UnderstandingData, tokenizer: Tokenizer,
                                 model: CLIPPretrainModel, shapeNegatives: Bool, patchLabels: Bool) -> CLIPBatch {
        let indices = (0..<size).map { step * size + $0 }
        let images: [Image], texts: [String]
        if shapeNegatives {
            let triples = Parallel.map(size) { data.captionWithShapeNegative(indices[$0]) }
            images = triples.map(\.image)
            texts = triples.map(\.caption) + triples.map(\.negative)
        } else {
            let pairs = Parallel.map(size) { data.caption(indices[$0]) }
            images = pairs.map(\.image)
            texts = pairs.map(\.caption)
        }
        let pad = tokenizer.id(of: "<|endoftext|>") ?? 0
        let tokens = captionBatch(texts, tokenizer: tokenizer, maxLength: model.text.config.maxLength, pad: pad)
        let patch = model.vision.config.patchSize
        // The head's targets, in `PatchLabels.allClasses` order: shape and colour, then, for a
        // four-target head, the covering object's centre column and row.
        let kinds = model.patchHead?.classes.count ?? 0
        let targets = patchLabels ? Parallel.map(size) { data.patchLabels(indices[$0], patch: patch).targets(kinds) } : nil
        return CLIPBatch(pixels: UnderstandingData.pixels(images), tokens: tokens,
                         patchTargets: targets.map { labels in (0..<kinds).map { k in labels.flatMap { $0[k] } } })
    }

    /// The stage (a) loss of one batch.
    public static func clipLoss(_ model: CLIPPretrainModel, _ batch: CLIPBatch) -> Tensor {
        model.loss(pixels: batch.pixels, ids: batch.tokens.ids, batch: batch.tokens.batch,
                   length: batch.tokens.length, mask: batch.tokens.mask, patchTargets: batch.patchTargets)
    }

    /// Stage (b) with `encoderLRScale` nil: encoder frozen; `mlp1` and the language model trained
    /// on captions and VQA. Stage (c) with a scale: everything trained, the encoder at that
    /// fraction of the learning rate (InternVL's full-model instruction tuning).
    public static func trainMLLM(_ model: InternVLChatModel, template: ChatTemplate, world: ShapesWorld,
                                 schedule: TrainingSchedule, run: RunDirectory, encoderLRScale: Float? = nil,
                                 reduction: LossReduction = .token, typeWeights: [QuestionType: Double] = [:],
                                 describePhrasing: Int = UnderstandingData.describeCaption, info: [String: Any] = [:],
                                 progress: (TrainingProgress) -> Bool = { _ in true }) throws {
        let groups = mllmGroups(model, schedule: schedule, encoderLRScale: encoderLRScale)
        let loop = try TrainingLoop(model: model, groups: groups, schedule: schedule, run: run)
        loop.checkpointInfo = info
        try loop.resume()
        var data = UnderstandingData(world: world, split: .train)
        data.typeWeights = typeWeights
        data.describePhrasing = describePhrasing
        try loop.train(lossAt: { step in
            let batch = mllmBatch(step: step, size: schedule.batchSize, data: data, template: template,
                                  imageTokens: model.config.imageTokens)
            return (mllmLoss(model, batch, template: template, reduction: reduction), [:])
        }, progress: progress)
    }

    /// Freezes the encoder for stage (b) (`encoderLRScale` nil) or unfreezes everything for stage
    /// (c), and returns the optimiser groups of the trainable parameters.
    public static func mllmGroups(_ model: InternVLChatModel, schedule: TrainingSchedule,
                                  encoderLRScale: Float?) -> [ParameterGroup] {
        model.unfreeze()
        if encoderLRScale == nil { model.vision.freeze() }
        let trainable = model.namedParameters().filter { $0.1.requiresGrad }
        return ParameterGroup.decaySplit(trainable, lr: schedule.learningRate, weightDecay: schedule.weightDecay,
                                         scaled: encoderLRScale.map { [("vision_model", $0)] } ?? [])
    }

    /// One MLLM batch: images and chat-template token rows (question, answer).
    public struct MLLMBatch {
        public let pixels: Tensor
        public let tokens: TokenBatch
    }

    /// MLLM batch `step`: examples step·size ..< (step + 1)·size of `data`'s split.
    public static func mllmBatch(step: Int, size: Int, data: UnderstandingData, template: ChatTemplate,
                                 imageTokens: Int) -> MLLMBatch {
        let examples = Parallel.map(size) { data.example(step * size + $0) }
        let tokens = TokenBatch(examples.map {
            template.example(question: $0.question, answer: $0.answer, imageTokens: imageTokens)
        }, pad: template.pad)
        return MLLMBatch(pixels: UnderstandingData.pixels(examples.map(\.image)), tokens: tokens)
    }

    /// The stage (b) and (c) loss of one batch: cross entropy on the answer tokens, averaged per
    /// `reduction`.
    public static func mllmLoss(_ model: InternVLChatModel, _ batch: MLLMBatch, template: ChatTemplate,
                                reduction: LossReduction = .token) -> Tensor {
        model.loss(pixels: batch.pixels, ids: batch.tokens.ids, labels: batch.tokens.labels,
                   batch: batch.tokens.batch, mask: batch.tokens.mask, contextID: template.imgContext,
                   reduction: reduction)
    }
}
