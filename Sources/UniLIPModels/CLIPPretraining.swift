import Foundation
import UniLIPCore
import UniLIPNN

/// The contrastive pretraining model: the InternViT image tower (its CLS token, normalised and
/// projected) and a small text tower, trained with symmetric InfoNCE. Optionally a patch head
/// also classifies what covers each patch, a dense signal that teaches the encoder's patch tokens
/// (the ones the LLM reads) shape and colour, which one caption per image teaches slowly.
public final class CLIPPretrainModel: Module {
    public let vision: InternViT
    public let visionNorm: LayerNorm
    public let visionProjection: Linear
    public let text: CLIPTextTower
    public let logitScale: Tensor
    public let patchHead: PatchLabelHead?

    /// `patchClasses`: the class count of each dense target (for example [shapes, colours]);
    /// empty for no patch head.
    public init(vision: InternViT, text: CLIPTextTower, patchClasses: [Int] = [], rng: inout RandomGenerator) {
        let width = vision.config.hiddenSize
        self.vision = vision
        self.text = text
        visionNorm = LayerNorm(width)
        visionProjection = Linear(width, text.config.embedDim, bias: false, rng: &rng)
        logitScale = Tensor([Float(Foundation.log(1 / 0.07))], shape: [1])
        patchHead = patchClasses.isEmpty ? nil : PatchLabelHead(width: width, classes: patchClasses, rng: &rng)
        super.init()
        child("vision_model", vision)
        child("vision_post_layernorm", visionNorm)
        child("visual_projection", visionProjection)
        child("text_model", text)
        parameter("logit_scale", logitScale)
        if let patchHead { child("patch_head", patchHead) }
    }

    /// [B, embedDim] image embeddings from normalised pixels [B, 3, H, W].
    public func imageEmbedding(_ pixels: Tensor) -> Tensor {
        embedding(ofHidden: vision(pixels))
    }

    func embedding(ofHidden hidden: Tensor) -> Tensor {
        let cls = hidden.sliced(axis: 1, start: 0, end: 1).squeezed(1)
        return visionProjection(visionNorm(cls))
    }

    /// The contrastive loss, plus the patch head's when `patchTargets` is given: one array per
    /// target kind, each [B·patches] class indices in row-major patch order.
    public func loss(pixels: Tensor, ids: [Int], batch: Int, length: Int, mask: Tensor,
                     patchTargets: [[Int]]? = nil) -> Tensor {
        let hidden = vision(pixels)
        let clip = contrastiveLoss(image: embedding(ofHidden: hidden),
                                   text: text(ids: ids, batch: batch, length: length, mask: mask), logScale: logitScale)
        guard let patchTargets else { return clip }
        guard let patchHead else { preconditionFailure("CLIPPretrainModel: patch targets given but no patch head") }
        return clip + patchHead.loss(patchTokens: hidden.sliced(axis: 1, start: 1, end: hidden.shape[1]),
                                     targets: patchTargets)
    }
}

/// LayerNorm → Linear to the concatenated logits of several per-patch classifications, each
/// trained with cross entropy; the loss is their sum.
public final class PatchLabelHead: Module {
    public let norm: LayerNorm
    public let proj: Linear
    public let classes: [Int]

    public init(width: Int, classes: [Int], rng: inout RandomGenerator) {
        precondition(!classes.isEmpty && classes.allSatisfy { $0 > 1 },
                     "PatchLabelHead: needs targets, each with at least 2 classes")
        self.classes = classes
        norm = LayerNorm(width)
        proj = Linear(width, classes.reduce(0, +), rng: &rng)
        super.init()
        child("norm", norm)
        child("proj", proj)
    }

    /// [B·P, Σ classes] logits of `patchTokens` [B, P, W], rows in (batch, patch) order.
    public func logits(_ patchTokens: Tensor) -> Tensor {
        proj(norm(patchTokens)).reshaped([patchTokens.shape[0] * patchTokens.shape[1], classes.reduce(0, +)])
    }

    /// `patchTokens` [B, P, W]; `targets[k]` holds B·P class indices for target kind k.
    public func loss(patchTokens: Tensor, targets: [[Int]]) -> Tensor {
        precondition(targets.count == classes.count, "PatchLabelHead: \(targets.count) targets for \(classes.count) kinds")
        let logits = logits(patchTokens)
        var terms: [Tensor] = []
        var start = 0
        for (k, count) in classes.enumerated() {
            terms.append(crossEntropy(logits.sliced(axis: 1, start: start, end: start + count), targets[k]))
            start += count
        }
        return terms.dropFirst().reduce(terms[0], +)
    }
}
