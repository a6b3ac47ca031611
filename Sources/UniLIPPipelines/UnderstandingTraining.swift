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
        let pad = tokenizer.id(of: "<|endoftext|>") ?? 0
        try loop.train(lossAt: { step in
            let indices = (0..<schedule.batchSize).map { step * schedule.batchSize + $0 }
            let images: [Image], texts: [String]
            if shapeNegatives {
                let triples = indices.map { data.captionWithShapeNegative($0) }
                images = triples.map(\.image)
                texts = triples.map(\.caption) + triples.map(\.negative)
            } else {
                let pairs = indices.map { data.caption($0) }
                images = pairs.map(\.image)
                texts = pairs.map(\.caption)
            }
            let tokens = captionBatch(texts, tokenizer: tokenizer,
                                      maxLength: model.text.config.maxLength, pad: pad)
            let targets = patchLabels ? indices.map { data.patchLabels($0, patch: model.vision.config.patchSize) } : nil
            let loss = model.loss(pixels: UnderstandingData.pixels(images), ids: tokens.ids,
                                  batch: tokens.batch, length: tokens.length, mask: tokens.mask,
                                  patchTargets: targets.map { [$0.flatMap(\.shapes), $0.flatMap(\.colors)] })
            return (loss, ["logit_scale": Double(model.logitScale.item)])
        }, progress: progress)
    }

    /// Stage (b) with `encoderLRScale` nil: encoder frozen; `mlp1` and the language model trained
    /// on captions and VQA. Stage (c) with a scale: everything trained, the encoder at that
    /// fraction of the learning rate (InternVL's full-model instruction tuning).
    public static func trainMLLM(_ model: InternVLChatModel, template: ChatTemplate, world: ShapesWorld,
                                 schedule: TrainingSchedule, run: RunDirectory, encoderLRScale: Float? = nil,
                                 info: [String: Any] = [:],
                                 progress: (TrainingProgress) -> Bool = { _ in true }) throws {
        model.unfreeze()
        if encoderLRScale == nil { model.vision.freeze() }
        let trainable = model.namedParameters().filter { $0.1.requiresGrad }
        let groups = ParameterGroup.decaySplit(trainable, lr: schedule.learningRate, weightDecay: schedule.weightDecay,
                                               scaled: encoderLRScale.map { [("vision_model", $0)] } ?? [])
        let loop = try TrainingLoop(model: model, groups: groups, schedule: schedule, run: run)
        loop.checkpointInfo = info
        try loop.resume()
        let data = UnderstandingData(world: world, split: .train)
        let imageTokens = model.config.imageTokens
        try loop.train(lossAt: { step in
            let examples = (0..<schedule.batchSize).map { data.example(step * schedule.batchSize + $0) }
            let tokens = TokenBatch(examples.map {
                template.example(question: $0.question, answer: $0.answer, imageTokens: imageTokens)
            }, pad: template.pad)
            let loss = model.loss(pixels: UnderstandingData.pixels(examples.map(\.image)), ids: tokens.ids,
                                  labels: tokens.labels, batch: tokens.batch, mask: tokens.mask,
                                  contextID: template.imgContext)
            return (loss, [:])
        }, progress: progress)
    }
}
