import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN

/// A perceptual distance between images in [0, 1] ([B, 3, H, W]), differentiable in the
/// reconstruction. UniLIP uses LPIPS (+ 0.1 × ConvNeXt-S logits MSE); a user with those networks
/// can plug them in through this protocol.
public protocol PerceptualDistance: AnyObject {
    var name: String { get }
    func callAsFunction(_ reconstruction: Tensor, _ target: Tensor) -> Tensor
}

/// LPIPS's recipe without its learned weights, on the frozen original encoder: both images go
/// through the InternViT; at every layer each token's feature vector is scaled to unit length,
/// and the distance is the squared difference summed over channels, averaged over tokens and
/// layers. LPIPS's VGG/AlexNet weights cannot be had here; this network is ours and has seen
/// exactly the images it judges.
public final class EncoderFeatureDistance: PerceptualDistance {
    public let encoder: InternViT
    public var name: String { "encoder-feature" }

    /// `encoder` should be frozen (its parameters get no gradient from this loss).
    public init(encoder: InternViT) {
        self.encoder = encoder
    }

    func features(_ images: Tensor) -> [Tensor] {
        encoder.hiddenStates(Image.imagenetNormalized(images)).map { h in
            h / (h.square().sum(axis: -1, keepDims: true) + 1e-10).sqrt()
        }
    }

    public func callAsFunction(_ reconstruction: Tensor, _ target: Tensor) -> Tensor {
        let reference = withNoGrad { features(target) }
        let ours = features(reconstruction)
        var total: Tensor?
        for (a, b) in zip(ours, reference) {
            let d = (a - b).square().sum(axis: -1).mean()
            total = total.map { $0 + d } ?? d
        }
        guard let total else { preconditionFailure("EncoderFeatureDistance: the encoder has no layers") }
        return total * (1 / Float(ours.count))
    }
}

/// Settings of the optional hinge GAN (UniLIP's stage 2 turns it on half-way).
public struct GANOptions: Codable, Sendable, Equatable {
    /// The step from which the generator loss and discriminator updates run.
    public var startStep: Int
    /// Weight of the generator loss −mean D(fake) (0.1 in the reference).
    public var generatorWeight: Float = 0.1
    /// LeCam regularisation weight and the decay of its logit averages.
    public var lecamWeight: Float = 0.001
    public var lecamDecay: Float = 0.999
    /// Discriminator AdamW learning rate (its own cosine schedule over the GAN steps).
    public var learningRate: Float = 1e-4
    public var baseChannels: Int = 32

    public init(startStep: Int) { self.startStep = startStep }

    enum CodingKeys: String, CodingKey {
        case startStep = "start_step", generatorWeight = "generator_weight", lecamWeight = "lecam_weight"
        case lecamDecay = "lecam_decay", learningRate = "learning_rate", baseChannels = "base_channels"
    }
}

/// The discriminator side of the hinge GAN with LeCam regularisation: its network, optimiser,
/// schedule and logit averages, all saved with the training state.
final class HingeGAN {
    let options: GANOptions
    let discriminator: PatchDiscriminator
    let optimizer: AdamW
    let cosine: CosineSchedule
    var emaReal: Float = 0
    var emaFake: Float = 0

    init(options: GANOptions, totalSteps: Int, seed: UInt64) {
        self.options = options
        var rng = RandomGenerator(seed: seed ^ 0x6761_6E)
        discriminator = PatchDiscriminator(baseChannels: options.baseChannels, rng: &rng)
        optimizer = AdamW(groups: ParameterGroup.decaySplit(discriminator.namedParameters(), lr: options.learningRate,
                                                            weightDecay: 1e-4))
        let ganSteps = Swift.max(1, totalSteps - options.startStep)
        cosine = CosineSchedule(warmupSteps: 0, totalSteps: ganSteps, minRatio: 0.1)
    }

    /// One discriminator update on real and (detached) fake images in [−1, 1]. Returns its loss
    /// terms for logging.
    func updateDiscriminator(real: Tensor, fake: Tensor, step: Int) -> [String: Double] {
        let factor = cosine(step - options.startStep)
        for g in optimizer.groups.indices { optimizer.groups[g].lr = optimizer.groups[g].baseLR * factor }
        optimizer.zeroGrad()
        let realLogits = discriminator(real), fakeLogits = discriminator(fake.detached())
        let hinge = ((1 - realLogits).relu().mean() + (1 + fakeLogits).relu().mean()) * 0.5
        let realMean = realLogits.mean().item, fakeMean = fakeLogits.mean().item
        // LeCam: keep D(real) near the running fake average and D(fake) near the running real one.
        let lecam = (realLogits - emaFake).relu().square().mean() + (emaReal - fakeLogits).relu().square().mean()
        let loss = hinge + lecam * options.lecamWeight
        loss.backward()
        _ = clipGradNorm(optimizer.parameters, maxNorm: 1)
        optimizer.step()
        emaReal = options.lecamDecay * emaReal + (1 - options.lecamDecay) * realMean
        emaFake = options.lecamDecay * emaFake + (1 - options.lecamDecay) * fakeMean
        return ["d_loss": Double(hinge.item), "d_real": Double(realMean), "d_fake": Double(fakeMean)]
    }

    /// The generator's hinge loss −mean D(fake), weighted.
    func generatorLoss(_ fake: Tensor) -> Tensor { discriminator(fake).mean() * (-options.generatorWeight) }

    func saveState() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in discriminator.namedTensors() { out["discriminator." + k] = v }
        for (k, v) in optimizer.stateDict() { out["discriminator_optim." + k] = v }
        out["lecam_ema"] = Tensor([emaReal, emaFake], shape: [2])
        return out
    }

    func loadState(_ state: [String: Tensor]) throws {
        for (k, t) in discriminator.namedTensors() {
            guard let saved = state["discriminator." + k], saved.shape == t.shape else {
                throw TrainingError("training state lacks the discriminator's \(k)")
            }
            t.assign(saved)
        }
        var optim: [String: Tensor] = [:]
        for (k, v) in state where k.hasPrefix("discriminator_optim.") {
            optim[String(k.dropFirst("discriminator_optim.".count))] = v
        }
        try optimizer.loadStateDict(optim)
        guard let ema = state["lecam_ema"], ema.count == 2 else { throw TrainingError("training state lacks lecam_ema") }
        emaReal = ema.pointer[0]
        emaFake = ema.pointer[1]
    }
}
