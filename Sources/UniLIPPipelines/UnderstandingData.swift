import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels

/// One image with a question and its answer (a caption request has type nil).
public struct UnderstandingExample {
    public let image: Image
    public let question: String
    public let answer: String
    public let type: QuestionType?
}

/// Right-padded token rows: ids and labels flattened [B·L], mask [B, L] with 1 on real tokens.
public struct TokenBatch {
    public let ids: [Int]
    public let labels: [Int]
    public let mask: Tensor
    public let batch: Int
    public let length: Int

    public init(_ rows: [(ids: [Int], labels: [Int])], pad: Int) {
        batch = rows.count
        length = rows.map(\.ids.count).max() ?? 0
        var ids: [Int] = [], labels: [Int] = []
        var mask = [Float]()
        for r in rows {
            let extra = length - r.ids.count
            ids += r.ids + [Int](repeating: pad, count: extra)
            labels += r.labels + [Int](repeating: -100, count: extra)
            mask += [Float](repeating: 1, count: r.ids.count) + [Float](repeating: 0, count: extra)
        }
        self.ids = ids
        self.labels = labels
        self.mask = Tensor(mask, shape: [batch, length])
    }
}

/// Deterministic streams of ShapesWorld examples for the understanding stages. Example k always
/// comes from scene k of the split, so a resumed run sees the same data.
public struct UnderstandingData {
    public static let describePrompt = "Describe the image."
    /// Which caption phrasing answers `describePrompt` by default (the sized list, no positions;
    /// the shipped model's).
    public static let describeCaption = 1

    public let world: ShapesWorld
    public let split: Split
    /// Fraction of examples that are captioning rather than VQA.
    public var captionFraction: Double = 0.15
    /// Which of a scene's caption phrasings answers `describePrompt`
    /// (`Captioner.placedPhrasing` names every object's position).
    public var describePhrasing = UnderstandingData.describeCaption
    /// How often each question type is drawn relative to the others a scene offers (missing
    /// types weigh 1). Empty: every type equally, the draw that made the shipped model.
    public var typeWeights: [QuestionType: Double] = [:]

    public init(world: ShapesWorld, split: Split) {
        self.world = world
        self.split = split
    }

    public func example(_ k: Int) -> UnderstandingExample {
        let sample = world.sample(split, k)
        let text = exampleText(sample, k)
        return UnderstandingExample(image: world.image(sample.scene), question: text.question, answer: text.answer,
                                    type: text.type)
    }

    /// The question, answer and type of example k of `sample` (scene k), without rendering it.
    func exampleText(_ sample: WorldSample, _ k: Int) -> (question: String, answer: String, type: QuestionType?) {
        var rng = RandomGenerator(seed: UInt64(k) &* 0x2545_F491_4F6C_DD1D ^ 0x5155_4553)
        if Double(rng.uniform()) < captionFraction || sample.questions.isEmpty {
            return (Self.describePrompt, sample.captions[describePhrasing], nil)
        }
        // Balance question types: pick a type first, then a question of that type.
        let types = Array(Set(sample.questions.map(\.type))).sorted { $0.rawValue < $1.rawValue }
        let type = typeWeights.isEmpty ? types[rng.int(types.count)] : weightedPick(types, rng: &rng)
        let options = sample.questions.filter { $0.type == type }
        let qa = options[rng.int(options.count)]
        return (qa.question, qa.answer, qa.type)
    }

    /// The question type of example k (nil: a caption request), without rendering it.
    public func exampleType(_ k: Int) -> QuestionType? { exampleText(world.sample(split, k), k).type }

    /// Weights from `TYPE=W` items (`["position=3", "relation=3"]`). An unknown type, a weight that
    /// is not a finite number ≥ 0, or every type at 0 throws.
    public static func typeWeights(parsing items: [String]) throws -> [QuestionType: Double] {
        let known = QuestionType.allCases.map(\.rawValue).joined(separator: ", ")
        var weights: [QuestionType: Double] = [:]
        for item in items {
            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, let type = QuestionType(rawValue: String(parts[0])) else {
                throw ModelConfigError("question weight '\(item)': expected TYPE=W with TYPE one of \(known)")
            }
            guard let w = Double(parts[1]), w.isFinite, w >= 0 else {
                throw ModelConfigError("question weight '\(item)': the weight must be a number ≥ 0")
            }
            weights[type] = w
        }
        if QuestionType.allCases.allSatisfy({ (weights[$0] ?? 1) == 0 }) {
            throw ModelConfigError("question weights: at least one question type needs a weight above 0")
        }
        return weights
    }

    /// One of `types`, drawn in proportion to `typeWeights` (equally if they all weigh 0).
    func weightedPick(_ types: [QuestionType], rng: inout RandomGenerator) -> QuestionType {
        let weights = types.map { max(0, typeWeights[$0] ?? 1) }
        let total = weights.reduce(0, +)
        guard total > 0 else { return types[rng.int(types.count)] }
        var r = Double(rng.uniform()) * total
        for (type, w) in zip(types, weights) {
            if r < w { return type }
            r -= w
        }
        return types[types.count - 1]
    }

    /// A random caption phrasing of scene k, for contrastive pretraining.
    public func caption(_ k: Int) -> (image: Image, caption: String) {
        let sample = world.sample(split, k)
        return (world.image(sample.scene), sample.captions[captionPhrasing(k, of: sample.captions.count)])
    }

    /// Which of the scene's `count` phrasings `caption(k)` uses.
    func captionPhrasing(_ k: Int, of count: Int) -> Int {
        var rng = RandomGenerator(seed: UInt64(k) &* 0x9E37_79B9 ^ 0x4341_5054)
        return rng.int(count)
    }

    /// `caption(k)` plus the same phrasing of the scene with one object's shape swapped: a hard
    /// negative that colour, size, count and position cannot tell apart.
    public func captionWithShapeNegative(_ k: Int) -> (image: Image, caption: String, negative: String) {
        let sample = world.sample(split, k)
        let phrasing = captionPhrasing(k, of: sample.captions.count)
        var scene = sample.scene
        var pick = RandomGenerator(seed: UInt64(k) &* 0x2545_F491 ^ 0x4E45_4741)
        let i = pick.int(scene.objects.count)
        let others = ShapeKind.allCases.filter { $0 != scene.objects[i].shape }
        scene.objects[i].shape = others[pick.int(others.count)]
        var phrasingRNG = RandomGenerator(seed: UInt64(k))
        let negative = Captioner.captions(for: scene, rng: &phrasingRNG)[phrasing]
        return (world.image(sample.scene), sample.captions[phrasing], negative)
    }

    /// What covers each `patch`×`patch` patch of scene k's image (the dense CLIP targets).
    public func patchLabels(_ k: Int, patch: Int) -> PatchLabels {
        PatchLabels(scene: world.scene(split, k), size: world.resolution, patch: patch)
    }

    /// Images as one normalised batch [B, 3, H, W] (ImageNet mean and std).
    public static func pixels(_ images: [Image]) -> Tensor {
        Tensor.concat(Parallel.map(images.count) { images[$0].rgb().tensor(mean: Image.imagenetMean, std: Image.imagenetStd) },
                      axis: 0)
    }
}
