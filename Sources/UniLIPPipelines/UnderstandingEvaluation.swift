import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN
import UniLIPText

/// Accuracy counts per category.
public struct AccuracyTable: Sendable {
    public private(set) var correct: [String: Int] = [:]
    public private(set) var total: [String: Int] = [:]

    public init() {}

    public mutating func add(_ key: String, _ ok: Bool) {
        total[key, default: 0] += 1
        correct[key, default: 0] += ok ? 1 : 0
    }

    public func accuracy(_ key: String) -> Double {
        guard let t = total[key], t > 0 else { return .nan }
        return Double(correct[key] ?? 0) / Double(t)
    }

    public var overall: Double {
        let t = total.values.reduce(0, +)
        return t == 0 ? .nan : Double(correct.values.reduce(0, +)) / Double(t)
    }

    public var keys: [String] { total.keys.sorted() }
}

/// VQA accuracy by question type, and the breakdowns that tell a reading failure from a binding one.
public struct VQAResult: Sendable {
    public var byType = AccuracyTable()
    /// Keyed "TYPE N": accuracy by question type over scenes of N objects.
    public var byObjectCount = AccuracyTable()
    /// Wrong answers to position questions, and how many of them name the cell of another object
    /// in the same scene (the model read a position, but of the wrong object).
    public var wrongPositions = 0
    public var wrongPositionsOfAnotherObject = 0

    public init() {}

    /// Scores one greedy answer to a question about `scene`.
    public mutating func add(_ qa: QuestionAnswer, scene: Scene, answer: String) {
        let ok = answer == qa.answer
        byType.add(qa.type.rawValue, ok)
        byObjectCount.add("\(qa.type.rawValue) \(scene.objects.count)", ok)
        guard qa.type == .position && !ok else { return }
        wrongPositions += 1
        if scene.objects.contains(where: { Captioner.positionPhrase($0) == answer }) { wrongPositionsOfAnotherObject += 1 }
    }
}

/// The understanding evaluations on ShapesWorld.
public enum UnderstandingEvaluation {
    /// VQA exact-match accuracy of greedy answers over every question of `scenes` scenes.
    public static func vqa(_ pipeline: UnderstandingPipeline, world: ShapesWorld, split: Split, scenes: Int,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> VQAResult {
        var result = VQAResult()
        var pixels: [Tensor] = [], prompts: [[Int]] = []
        var truth: [(qa: QuestionAnswer, scene: Scene)] = []
        var options = UnderstandingOptions()
        options.maxNewTokens = 8
        options.batchSize = 64
        for i in 0..<scenes {
            let s = world.sample(split, i)
            let p = pipeline.pixels(world.image(s.scene))
            for qa in s.questions {
                pixels.append(p)
                prompts.append(try pipeline.promptIDs(qa.question, options: options))
                truth.append((qa, s.scene))
            }
        }
        var done = 0
        while done < prompts.count {
            let end = Swift.min(prompts.count, done + 256)
            let answers = pipeline.answer(pixels: Array(pixels[done..<end]), prompts: Array(prompts[done..<end]), options: options)
            for (k, answer) in answers.enumerated() { result.add(truth[done + k].qa, scene: truth[done + k].scene, answer: answer) }
            done = end
            progress(done, prompts.count)
        }
        return result
    }

    /// The zero-shot prompts: every (size, colour, shape) combination.
    static let zeroShotClasses: [(SizeClass, ObjectColor, ShapeKind)] = SizeClass.allCases.flatMap { size in
        ObjectColor.allCases.flatMap { color in ShapeKind.allCases.map { (size, color, $0) } }
    }

    /// Zero-shot attribute accuracy of the encoder + text tower on single-object scenes: the
    /// prompt "a {size} {colour} {shape}." with the highest similarity gives each attribute.
    public static func zeroShot(_ clip: CLIPPretrainModel, tokenizer: Tokenizer, world: ShapesWorld, split: Split,
                                images count: Int) -> AccuracyTable {
        withNoGrad {
            let pad = tokenizer.id(of: "<|endoftext|>") ?? 0
            let prompts = zeroShotClasses.map { "a \($0.0.rawValue) \($0.1.rawValue) \($0.2.rawValue)." }
            let tokens = UnderstandingTraining.captionBatch(prompts, tokenizer: tokenizer,
                                                            maxLength: clip.text.config.maxLength, pad: pad)
            let textEmbeddings = normalized(clip.text(ids: tokens.ids, batch: tokens.batch, length: tokens.length,
                                                      mask: tokens.mask))
            var table = AccuracyTable()
            var scenes: [Scene] = []
            var k = 0
            while scenes.count < count && k < count * 40 {
                let s = world.sample(split, k).scene
                if s.objects.count == 1 { scenes.append(s) }
                k += 1
            }
            for chunk in stride(from: 0, to: scenes.count, by: 64) {
                let part = Array(scenes[chunk..<Swift.min(scenes.count, chunk + 64)])
                let image = normalized(clip.imageEmbedding(UnderstandingData.pixels(part.map(world.image))))
                let sims = image.matmul(textEmbeddings, transposeB: true)  // [n, classes]
                for (i, s) in part.enumerated() {
                    let row = sims.pointer + i * zeroShotClasses.count
                    let best = (0..<zeroShotClasses.count).max { row[$0] < row[$1] } ?? 0
                    let (size, color, shape) = zeroShotClasses[best]
                    let o = s.objects[0]
                    table.add("color", color == o.color)
                    table.add("shape", shape == o.shape)
                    table.add("size", size == o.size)
                }
            }
            return table
        }
    }

    /// Accuracy of the CLIP patch head on each of its targets (`PatchLabels.targetNames`) over the
    /// patches that objects cover, on the first `count` scenes of the split; nil without a patch
    /// head. It reads the model's encoder, so it also shows how much the final encoder's patch
    /// tokens still carry.
    public static func patchLabels(_ clip: CLIPPretrainModel, world: ShapesWorld, split: Split,
                                   scenes count: Int) -> AccuracyTable? {
        guard let head = clip.patchHead else { return nil }
        return withNoGrad {
            var table = AccuracyTable()
            let patch = clip.vision.config.patchSize
            let classes = head.classes
            let offsets = classes.indices.map { classes.prefix($0).reduce(0, +) }
            for chunk in stride(from: 0, to: count, by: 64) {
                let scenes = (chunk..<Swift.min(count, chunk + 64)).map { world.scene(split, $0) }
                let hidden = clip.vision(UnderstandingData.pixels(scenes.map(world.image)))
                let patches = hidden.shape[1] - 1
                let logits = head.logits(hidden.sliced(axis: 1, start: 1, end: hidden.shape[1]))
                let width = logits.shape[1]
                for (i, scene) in scenes.enumerated() {
                    let targets = PatchLabels(scene: scene, size: world.resolution, patch: patch).targets(classes.count)
                    for p in 0..<patches where targets[0][p] != 0 {
                        let row = logits.pointer + (i * patches + p) * width
                        for (k, n) in classes.enumerated() {
                            let best = (0..<n).max { row[offsets[k] + $0] < row[offsets[k] + $1] } ?? 0
                            table.add(PatchLabels.targetNames[k], best == targets[k][p])
                        }
                    }
                }
            }
            return table
        }
    }

    static func normalized(_ x: Tensor) -> Tensor { x / (x.square().sum(axis: -1, keepDims: true) + 1e-12).sqrt() }

    /// The CLIP head (text tower, projections, and the patch head when the file has one)
    /// exported next to a model, on the model's encoder.
    public static func loadCLIP(directory: String, vision: InternViT) throws -> (CLIPPretrainModel, Tokenizer) {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let config = try JSONDecoder().decode(CLIPTextConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path("clip_text_config.json"))))
        let file = try SafetensorsFile(path: path("clip_text.safetensors"))
        var patchClasses: [Int] = []
        if file.names.contains("patch_head.proj.weight") {
            // The head trained on the first n targets; its output width tells n.
            let width = try file.entry("patch_head.proj.weight").shape.first ?? 0
            guard let n = PatchLabels.targetCount(headWidth: width) else {
                throw ModelConfigError("\(path("clip_text.safetensors")): patch_head.proj.weight has \(width) outputs, no prefix of the patch targets \(PatchLabels.allClasses) sums to that")
            }
            patchClasses = Array(PatchLabels.allClasses.prefix(n))
        }
        var rng = RandomGenerator(seed: 0)
        let clip = CLIPPretrainModel(vision: vision, text: CLIPTextTower(config, rng: &rng),
                                     patchClasses: patchClasses, rng: &rng)
        let head = clip.namedTensors().filter { !$0.0.hasPrefix("vision_model.") }
        _ = try Checkpoint.load(path("clip_text.safetensors"), into: head)
        return (clip, try Tokenizer(contentsOf: path("tokenizer.json")))
    }
}
