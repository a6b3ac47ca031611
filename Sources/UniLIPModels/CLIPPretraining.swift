import Foundation
import UniLIPCore
import UniLIPNN

/// The contrastive pretraining model: the InternViT image tower (its CLS token, normalised and
/// projected) and a small text tower, trained with symmetric InfoNCE.
public final class CLIPPretrainModel: Module {
    public let vision: InternViT
    public let visionNorm: LayerNorm
    public let visionProjection: Linear
    public let text: CLIPTextTower
    public let logitScale: Tensor

    public init(vision: InternViT, text: CLIPTextTower, rng: inout RandomGenerator) {
        let width = vision.config.hiddenSize
        self.vision = vision
        self.text = text
        visionNorm = LayerNorm(width)
        visionProjection = Linear(width, text.config.embedDim, bias: false, rng: &rng)
        logitScale = Tensor([Float(Foundation.log(1 / 0.07))], shape: [1])
        super.init()
        child("vision_model", vision)
        child("vision_post_layernorm", visionNorm)
        child("visual_projection", visionProjection)
        child("text_model", text)
        parameter("logit_scale", logitScale)
    }

    /// [B, embedDim] image embeddings from normalised pixels [B, 3, H, W].
    public func imageEmbedding(_ pixels: Tensor) -> Tensor {
        let hidden = vision(pixels)
        let cls = hidden.sliced(axis: 1, start: 0, end: 1).squeezed(1)
        return visionProjection(visionNorm(cls))
    }

    public func loss(pixels: Tensor, ids: [Int], batch: Int, length: Int, mask: Tensor) -> Tensor {
        contrastiveLoss(image: imageEmbedding(pixels), text: text(ids: ids, batch: batch, length: length, mask: mask),
                        logScale: logitScale)
    }
}
