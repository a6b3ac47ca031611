import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO

// MARK: - Text-to-image: GenEval's categories on ShapesWorld

/// GenEval's six task categories, rebuilt on ShapesWorld scenes.
public enum GenerationCategory: String, CaseIterable, Sendable {
    case singleObject = "single object"
    case twoObjects = "two objects"
    case counting
    case colors = "colours"
    case position
    case colorAttribution = "colour attribution"
}

/// One checkable condition on the objects the scene parser finds in a generated image.
public enum GenerationRequirement: Equatable, Sendable {
    /// Some object has this shape (any colour).
    case shapePresent(ShapeKind)
    /// The object of this colour has this shape (colours are unique in a scene, so this is a
    /// colour-shape binding).
    case colored(ObjectColor, ShapeKind)
    /// Exactly n objects have this shape.
    case count(ShapeKind, Int)
    /// The object of this colour has this shape and its centre lies in this cell of the 3×3 grid.
    case placed(ObjectColor, ShapeKind, row: String, column: String)
    /// Exactly n objects in all. ShapesWorld prompts name every object, and the parser finds
    /// colour blobs even in noise, so extra objects fail (stricter than GenEval).
    case objectCount(Int)

    /// Whether the parsed objects meet the requirement. `ignoringShape` treats every parsed
    /// shape as right: what can still be judged when a blurry decoder turns shapes into blobs.
    public func holds(in parsed: [ParsedObject], ignoringShape: Bool = false) -> Bool {
        func shapeOK(_ p: ParsedObject, _ s: ShapeKind) -> Bool { ignoringShape || p.shape == s }
        switch self {
        case .shapePresent(let s): return parsed.contains { shapeOK($0, s) }
        case .colored(let c, let s): return parsed.contains { $0.color == c && shapeOK($0, s) }
        case .count(let s, let n): return parsed.filter { shapeOK($0, s) }.count == n
        case .placed(let c, let s, let row, let column):
            return parsed.contains { $0.color == c && shapeOK($0, s) && $0.row == row && $0.column == column }
        case .objectCount(let n): return parsed.count == n
        }
    }
}

/// A prompt with what its image must show, and a scene that shows it.
public struct GenerationSpec: Sendable {
    public let category: GenerationCategory
    public let index: Int
    /// One of `Captioner.captions(for: scene)`: the phrasings generation is trained on.
    public let prompt: String
    /// A scene satisfying the prompt (its render is the reference; it validates the scoring).
    public let scene: Scene
    public let requirements: [GenerationRequirement]
    /// Whether an object of the prompt is a held-out (colour, shape) combination.
    public let heldOut: Bool

    public func check(_ parsed: [ParsedObject], ignoringShape: Bool = false) -> Bool {
        requirements.allSatisfy { $0.holds(in: parsed, ignoringShape: ignoringShape) }
    }

    public func check(_ image: Image, ignoringShape: Bool = false) -> Bool {
        check(SceneParser.parse(image), ignoringShape: ignoringShape)
    }
}

/// Per-category success rates (GenEval's score: the fraction of images whose parse meets
/// every requirement), with prompts that name a held-out combination counted apart.
public struct GenerationScore: Sendable {
    public private(set) var correct: [GenerationCategory: Int] = [:]
    public private(set) var total: [GenerationCategory: Int] = [:]
    public private(set) var heldOutCorrect: [GenerationCategory: Int] = [:]
    public private(set) var heldOutTotal: [GenerationCategory: Int] = [:]

    public init() {}

    public mutating func add(_ spec: GenerationSpec, _ ok: Bool) {
        if spec.heldOut {
            heldOutTotal[spec.category, default: 0] += 1
            heldOutCorrect[spec.category, default: 0] += ok ? 1 : 0
        } else {
            total[spec.category, default: 0] += 1
            correct[spec.category, default: 0] += ok ? 1 : 0
        }
    }

    public func score(_ c: GenerationCategory, heldOut: Bool = false) -> Double {
        guard let t = (heldOut ? heldOutTotal : total)[c], t > 0 else { return .nan }
        return Double((heldOut ? heldOutCorrect : correct)[c] ?? 0) / Double(t)
    }

    /// Mean of the category scores (GenEval's overall) over in-distribution or held-out prompts.
    public func overall(heldOut: Bool) -> Double {
        let scores = GenerationCategory.allCases.map { score($0, heldOut: heldOut) }.filter { !$0.isNaN }
        return scores.isEmpty ? .nan : scores.reduce(0, +) / Double(scores.count)
    }

    public var overall: Double { overall(heldOut: false) }
    public var heldOut: Double { overall(heldOut: true) }
}

public enum GenerationEvaluation {
    /// Samples per prompt (GenEval: 4).
    public static let samplesPerPrompt = 4

    /// Deterministic prompts of a category. Every 4th prompt (index % 4 == 3) puts a held-out
    /// (colour, shape) pair into the scene; the others avoid them. Backgrounds come from the
    /// test split of `world`.
    public static func specs(_ category: GenerationCategory, count: Int, seed: UInt64 = 0,
                             world: ShapesWorld = ShapesWorld(seed: 0)) -> [GenerationSpec] {
        let tag = UInt64(GenerationCategory.allCases.firstIndex(of: category) ?? 0) + 1
        return (0..<count).map { i in
            var rng = RandomGenerator(seed: seed ^ (tag &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(i) &* 0xD1B5_4A32_D192_ED03))
            return spec(category, index: i, forceHeldOut: i % 4 == 3, world: world, rng: &rng)
        }
    }

    /// `count` prompts of every category, in category order.
    public static func allSpecs(perCategory count: Int, seed: UInt64 = 0,
                                world: ShapesWorld = ShapesWorld(seed: 0)) -> [GenerationSpec] {
        GenerationCategory.allCases.flatMap { specs($0, count: count, seed: seed, world: world) }
    }

    static func spec(_ category: GenerationCategory, index: Int, forceHeldOut: Bool, world: ShapesWorld,
                     rng: inout RandomGenerator) -> GenerationSpec {
        let background = world.scene(.test, 10_000 + index * 7 + (GenerationCategory.allCases.firstIndex(of: category) ?? 0)).background
        // Object attributes: the first object is held out when asked, every other one is not.
        var colors = ObjectColor.allCases
        func pair(shape fixed: ShapeKind? = nil, avoidShapes: Set<ShapeKind> = [], heldOut: Bool) -> (ObjectColor, ShapeKind) {
            if heldOut {
                let options = ShapesWorld.heldOutPairs.filter { colors.contains($0.color) && (fixed == nil || $0.shape == fixed) }
                if !options.isEmpty {
                    let p = options[rng.int(options.count)]
                    colors.removeAll { $0 == p.color }
                    return (p.color, p.shape)
                }
            }
            while true {
                let c = colors[rng.int(colors.count)]
                let shapes = ShapeKind.allCases.filter { !avoidShapes.contains($0) && !ShapesWorld.isHeldOut(c, $0) }
                let s = fixed ?? shapes[rng.int(shapes.count)]
                if fixed != nil && ShapesWorld.isHeldOut(c, s) { continue }
                if fixed == nil && shapes.isEmpty { continue }
                colors.removeAll { $0 == c }
                return (c, s)
            }
        }
        var objects: [(ObjectColor, ShapeKind)] = []
        var phrasing = rng.int(4)
        switch category {
        case .singleObject, .colors, .position:
            objects = [pair(heldOut: forceHeldOut)]
        case .twoObjects, .colorAttribution:
            let first = pair(heldOut: forceHeldOut)
            objects = [first, pair(avoidShapes: [first.1], heldOut: false)]
        case .counting:
            let n = 2 + rng.int(3)
            let shape: ShapeKind
            if forceHeldOut {
                let p = ShapesWorld.heldOutPairs[rng.int(ShapesWorld.heldOutPairs.count)]
                shape = p.shape
                objects = [pair(shape: shape, heldOut: true)]
            } else {
                shape = ShapeKind.allCases[rng.int(ShapeKind.allCases.count)]
            }
            while objects.count < n { objects.append(pair(shape: shape, heldOut: false)) }
            phrasing = 2  // "There are three objects: …" names the count
        }
        if category == .position { phrasing = Captioner.placedPhrasing }  // "… at the top left on a … background."

        let placed = place(objects, inCells: category == .position, rng: &rng)
        let scene = Scene(background: background, objects: placed)
        var textRNG = RandomGenerator(seed: rng.next())
        let prompt = Captioner.captions(for: scene, rng: &textRNG)[phrasing]
        var requirements: [GenerationRequirement]
        switch category {
        case .singleObject: requirements = [.shapePresent(placed[0].shape)]
        case .twoObjects: requirements = placed.map { .shapePresent($0.shape) }
        case .counting: requirements = [.count(placed[0].shape, placed.count)]
        case .colors: requirements = [.colored(placed[0].color, placed[0].shape)]
        case .position:
            let o = placed[0]
            requirements = [.placed(o.color, o.shape, row: o.row, column: o.column)]
        case .colorAttribution: requirements = placed.map { .colored($0.color, $0.shape) }
        }
        requirements.append(.objectCount(placed.count))
        return GenerationSpec(category: category, index: index, prompt: prompt, scene: scene, requirements: requirements,
                              heldOut: placed.contains { ShapesWorld.isHeldOut($0.color, $0.shape) })
    }

    /// Cell centres of the 3×3 grid, as (x, y).
    static let cellCenters: [(Double, Double)] = {
        let thirds: [Double] = [1.0 / 6, 0.5, 5.0 / 6]
        var out: [(Double, Double)] = []
        for y in thirds { for x in thirds { out.append((x, y)) } }
        return out
    }()

    /// Objects with sizes and positions as the world draws them: inside the image, overlapping
    /// at most slightly, away from the thirds' boundaries; or at a cell centre (`inCells`).
    static func place(_ attributes: [(ObjectColor, ShapeKind)], inCells: Bool, rng: inout RandomGenerator) -> [SceneObject] {
        for attempt in 0..<400 {
            var out: [SceneObject] = []
            for (c, s) in attributes {
                // Crowded scenes fall back to smaller sizes.
                let sizes = attempt < 100 || attributes.count < 3 ? SizeClass.allCases : [.small]
                let size = sizes[rng.int(sizes.count)]
                let r = size.radius
                var spot: (Double, Double)? = nil
                if inCells {
                    let cells = cellCenters.filter { $0.0 >= r && $0.0 <= 1 - r && $0.1 >= r && $0.1 <= 1 - r }
                    spot = cells.isEmpty ? nil : cells[rng.int(cells.count)]
                } else {
                    for _ in 0..<200 {
                        let x = r + Double(rng.uniform()) * (1 - 2 * r), y = r + Double(rng.uniform()) * (1 - 2 * r)
                        guard !nearThirds(x) && !nearThirds(y) else { continue }
                        let clear = out.allSatisfy { o in
                            ((o.x - x) * (o.x - x) + (o.y - y) * (o.y - y)).squareRoot() >= (o.size.radius + r) * 0.95
                        }
                        if clear { spot = (x, y); break }
                    }
                }
                guard let (x, y) = spot else { break }
                out.append(SceneObject(shape: s, color: c, size: size, x: x, y: y))
            }
            if out.count == attributes.count { return out }
        }
        preconditionFailure("GenerationEvaluation: could not place \(attributes.count) objects")
    }

    static func nearThirds(_ v: Double) -> Bool { Swift.abs(v - 1.0 / 3) < 0.035 || Swift.abs(v - 2.0 / 3) < 0.035 }

    /// Scores of one model: every requirement, and shapes ignored.
    public struct Result {
        public var score = GenerationScore()
        public var ignoringShape = GenerationScore()
        /// Per spec, its samples.
        public var images: [[Image]] = []

        public mutating func add(_ spec: GenerationSpec, _ image: Image) {
            let parsed = SceneParser.parse(image)
            score.add(spec, spec.check(parsed))
            ignoringShape.add(spec, spec.check(parsed, ignoringShape: true))
        }
    }

    /// Generates `samplesPerPrompt` images per spec (sample k of prompt p: row k of one batch
    /// with noise seed `options.seed + p`, as `unilip generate PROMPT --seed S --count 4` gives)
    /// and scores each with the scene parser.
    public static func evaluate(_ pipeline: GenerationPipeline, specs: [GenerationSpec],
                                samples: Int = samplesPerPrompt, options: ImageGenerationOptions,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        var result = Result()
        for (p, spec) in specs.enumerated() {
            var o = options
            o.seed = options.seed &+ UInt64(p)
            let out = try pipeline.generate([String](repeating: spec.prompt, count: samples), options: o)
            for image in out { result.add(spec, image) }
            result.images.append(out)
            progress(p + 1, specs.count)
        }
        return result
    }

    /// The same scoring on autoencoder reconstructions of the specs' scenes: what a generator
    /// could reach through this decoder (one image per prompt).
    public static func reconstructionCeiling(_ autoencoder: ReconstructionPipeline, specs: [GenerationSpec],
                                             world: ShapesWorld) -> Result {
        var result = Result()
        let recon = reconstructions(autoencoder, images: specs.map { world.image($0.scene) })
        for (spec, image) in zip(specs, recon) { result.add(spec, image) }
        return result
    }

    /// Reconstructions of images through an autoencoder, in batches.
    public static func reconstructions(_ autoencoder: ReconstructionPipeline, images: [Image], batchSize: Int = 64) -> [Image] {
        var out: [Image] = []
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let part = images[start..<Swift.min(images.count, start + batchSize)]
            let recon = autoencoder.reconstruct(unit: Tensor.concat(part.map { $0.rgb().tensor() }, axis: 0))
            out += (0..<part.count).map { Image(tensor: recon.sliced(axis: 0, start: $0, end: $0 + 1)) }
        }
        return out
    }

    /// Markdown table: per model a row over in-distribution prompts and one over prompts naming
    /// a held-out combination; GenEval's categories and their mean.
    public static func table(_ rows: [(label: String, score: GenerationScore)]) -> String {
        var md = "| model | prompts | " + GenerationCategory.allCases.map(\.rawValue).joined(separator: " | ")
            + " | overall |\n|---|---|" + String(repeating: "---|", count: GenerationCategory.allCases.count + 1) + "\n"
        for (label, s) in rows {
            for heldOut in [false, true] {
                md += "| \(label) | \(heldOut ? "held-out combinations" : "in distribution") | "
                    + GenerationCategory.allCases.map { percent(s.score($0, heldOut: heldOut)) }.joined(separator: " | ")
                    + " | \(percent(s.overall(heldOut: heldOut))) |\n"
            }
        }
        return md
    }

    public static func percent(_ v: Double) -> String { v.isNaN ? "–" : String(format: "%.1f%%", v * 100) }

    /// Rows of images tiled into one PNG-ready image, ×`zoom` nearest, with `gap` white pixels
    /// between tiles and 4·`gap` before the columns in `breaks` (to set groups apart).
    public static func grid(_ rows: [[Image]], zoom: Int = 2, gap: Int = 2, breaks: Set<Int> = []) -> Image {
        precondition(!rows.isEmpty && !rows[0].isEmpty, "grid: nothing to tile")
        let tw = rows[0][0].width * zoom, th = rows[0][0].height * zoom
        let columns = rows.map(\.count).max() ?? 0
        var left = [Int](repeating: 0, count: columns)
        for c in 1..<Swift.max(1, columns) { left[c] = left[c - 1] + tw + (breaks.contains(c) ? 4 * gap : gap) }
        var out = Image(width: left[columns - 1] + tw, height: rows.count * (th + gap) - gap, channels: 3, fill: 255)
        for (r, row) in rows.enumerated() {
            for (c, image) in row.enumerated() {
                let rgb = image.rgb()
                for y in 0..<Swift.min(th, rgb.height * zoom) {
                    for x in 0..<Swift.min(tw, rgb.width * zoom) {
                        let dst = ((r * (th + gap) + y) * out.width + left[c] + x) * 3
                        for ch in 0..<3 { out.pixels[dst + ch] = rgb[x: x / zoom, y: y / zoom, c: ch] }
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Editing

/// One edit of a world scene with its rendered before and after images.
public struct EditCase: Sendable {
    public let scene: Int
    public let edit: Edit
    public let before: Image
    public let after: Image
}

/// The outcome of one edited image.
public struct EditOutcome: Sendable {
    public let success: Bool
    /// The same rule with every parsed shape taken as right (replace edits cannot pass it
    /// meaningfully: they change only a shape).
    public let successIgnoringShape: Bool
    /// PSNR (dB) between output and input over the pixels the edit leaves unchanged (rendered
    /// before == after); nil when under 5% of the image is unchanged (background edits).
    public let preservedPSNR: Double?
    /// What the output got wrong (`EditingEvaluation.misses`, plus `background unchanged`).
    public let failures: [String]
}

/// Success rate and preserved-region PSNR per edit type.
public struct EditingScore: Sendable {
    public private(set) var successes: [EditType: Int] = [:]
    public private(set) var successesIgnoringShape: [EditType: Int] = [:]
    public private(set) var total: [EditType: Int] = [:]
    public private(set) var psnrSum: [EditType: Double] = [:]
    public private(set) var psnrCount: [EditType: Int] = [:]

    public init() {}

    public mutating func add(_ type: EditType, _ outcome: EditOutcome) {
        total[type, default: 0] += 1
        successes[type, default: 0] += outcome.success ? 1 : 0
        successesIgnoringShape[type, default: 0] += outcome.successIgnoringShape ? 1 : 0
        if let p = outcome.preservedPSNR {
            psnrSum[type, default: 0] += p
            psnrCount[type, default: 0] += 1
        }
    }

    public func success(_ t: EditType, ignoringShape: Bool = false) -> Double {
        guard let n = total[t], n > 0 else { return .nan }
        return Double((ignoringShape ? successesIgnoringShape : successes)[t] ?? 0) / Double(n)
    }

    /// Mean of the per-type success rates with shapes ignored, replace edits left out.
    public var overallIgnoringShape: Double {
        let v = EditType.allCases.filter { $0 != .replace }.map { success($0, ignoringShape: true) }.filter { !$0.isNaN }
        return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }

    public func psnr(_ t: EditType) -> Double {
        guard let n = psnrCount[t], n > 0 else { return .nan }
        return (psnrSum[t] ?? 0) / Double(n)
    }

    /// Mean of the per-type success rates.
    public var overall: Double {
        let v = EditType.allCases.map { success($0) }.filter { !$0.isNaN }
        return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }

    /// Mean preserved-region PSNR over every edit that has one.
    public var overallPSNR: Double {
        let n = psnrCount.values.reduce(0, +)
        return n == 0 ? .nan : psnrSum.values.reduce(0, +) / Double(n)
    }
}

/// Editing benchmark on ShapesWorld's edit triples.
///
/// Success rule: the scene parser's objects on the output, as a set of (colour, shape, row,
/// column), equal the `after` scene's (nothing missing, nothing extra, every object of the
/// right shape in the right cell; sizes are not compared). For background edits, whose objects
/// do not change, the background must also have changed: the mean absolute difference between
/// output and input over the pixels the edit changes (rendered before ≠ after) must be at least
/// `backgroundChangeThreshold` 8-bit levels. This checks that the background changed, not that
/// it became the named kind.
public enum EditingEvaluation {
    public static let backgroundChangeThreshold = 12.0
    /// Smallest unchanged fraction of the image for which a preserved-region PSNR is reported.
    public static let minimumPreservedFraction = 0.05

    /// Every edit of the first `scenes` scenes of a split, in scene then type order.
    public static func cases(world: ShapesWorld, split: Split = .test, scenes: Int) -> [EditCase] {
        (0..<scenes).flatMap { i in
            world.sample(split, i).edits.map { e in
                EditCase(scene: i, edit: e, before: world.image(e.before), after: world.image(e.after))
            }
        }
    }

    /// Whether the parsed objects and the scene's agree as (colour, shape, row, column) sets.
    public static func objectsMatch(_ parsed: [ParsedObject], _ scene: Scene, ignoringShape: Bool = false) -> Bool {
        guard parsed.count == scene.objects.count else { return false }
        return scene.objects.allSatisfy { o in
            parsed.contains { $0.color == o.color && (ignoringShape || $0.shape == o.shape) && $0.row == o.row && $0.column == o.column }
        }
    }

    /// Why the parsed objects miss the target scene, one phrase per wrong object: `missing`
    /// (no object of that colour), `not moved` (found where the edit's input had it), `row`,
    /// `column`, `row and column` (the right shape in another cell), `shape`, `shape and cell`, or
    /// `extra` (a colour the target lacks). Empty when they match.
    public static func misses(_ parsed: [ParsedObject], before: Scene, after: Scene) -> [String] {
        var out: [String] = []
        for o in after.objects {
            guard let p = parsed.first(where: { $0.color == o.color }) else { out.append("missing"); continue }
            let cell = p.row == o.row && p.column == o.column
            switch (p.shape == o.shape, cell) {
            case (true, true): continue
            case (false, true): out.append("shape")
            case (true, false):
                let old = before.objects.first { $0.color == o.color }
                let unmoved = old.map { $0.row == p.row && $0.column == p.column } == true
                out.append(unmoved ? "not moved" : p.column == o.column ? "row" : p.row == o.row ? "column" : "row and column")
            case (false, false): out.append("shape and cell")
            }
        }
        let colours = Set(after.objects.map(\.color))
        out += parsed.filter { !colours.contains($0.color) }.map { _ in "extra" }
        return out
    }

    /// Per pixel: whether the rendered before and after agree on every channel.
    public static func unchangedMask(_ c: EditCase) -> [Bool] {
        let a = c.before.rgb(), b = c.after.rgb()
        precondition(a.width == b.width && a.height == b.height, "EditingEvaluation: before and after sizes differ")
        var mask = [Bool](repeating: false, count: a.width * a.height)
        for i in 0..<mask.count {
            let j = i * 3
            mask[i] = a.pixels[j] == b.pixels[j] && a.pixels[j + 1] == b.pixels[j + 1] && a.pixels[j + 2] == b.pixels[j + 2]
        }
        return mask
    }

    /// Mean absolute difference (8-bit levels) and PSNR (dB, images in [0, 1]) between two
    /// images of the same size over the pixels where `mask` is `select`.
    static func regionError(_ x: Image, _ y: Image, mask: [Bool], select: Bool) -> (mae: Double, psnr: Double, pixels: Int) {
        let a = x.rgb(), b = y.rgb()
        precondition(a.width == b.width && a.height == b.height && mask.count == a.width * a.height,
                     "EditingEvaluation: images of \(a.width)×\(a.height) and \(b.width)×\(b.height)")
        var abs = 0.0, sq = 0.0, n = 0
        for i in 0..<mask.count where mask[i] == select {
            n += 1
            for ch in 0..<3 {
                let d = Double(a.pixels[i * 3 + ch]) - Double(b.pixels[i * 3 + ch])
                abs += Swift.abs(d)
                sq += d * d
            }
        }
        guard n > 0 else { return (0, .infinity, 0) }
        let mse = sq / Double(3 * n) / (255 * 255)
        return (abs / Double(3 * n), mse == 0 ? 100 : 10 * log10(1 / mse), n)
    }

    /// Scores an output image (at the input's size) for an edit case.
    public static func outcome(_ output: Image, for c: EditCase) -> EditOutcome {
        let out = output.width == c.before.width && output.height == c.before.height
            ? output : output.resized(width: c.before.width, height: c.before.height, filter: .bicubic)
        let mask = unchangedMask(c)
        let parsed = SceneParser.parse(out)
        let changed = c.edit.type != .background
            || regionError(out, c.before, mask: mask, select: false).mae >= backgroundChangeThreshold
        let kept = regionError(out, c.before, mask: mask, select: true)
        let enough = Double(kept.pixels) >= minimumPreservedFraction * Double(mask.count)
        return EditOutcome(success: changed && objectsMatch(parsed, c.edit.after),
                           successIgnoringShape: changed && objectsMatch(parsed, c.edit.after, ignoringShape: true),
                           preservedPSNR: enough ? kept.psnr : nil,
                           failures: misses(parsed, before: c.edit.before, after: c.edit.after)
                               + (changed ? [] : ["background unchanged"]))
    }

    /// Edits every case (one batch per scene, noise seed `options.seed + scene`) and scores them.
    public static func evaluate(_ pipeline: GenerationPipeline, cases: [EditCase], options: ImageGenerationOptions,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> (score: EditingScore, outputs: [Image]) {
        var score = EditingScore()
        var outputs: [Image] = []
        var start = 0
        while start < cases.count {
            var end = start
            while end < cases.count && cases[end].scene == cases[start].scene { end += 1 }
            let part = Array(cases[start..<end])
            var o = options
            o.seed = options.seed &+ UInt64(part[0].scene)
            let out = try pipeline.edit(part.map(\.before), instructions: part.map(\.edit.instruction), options: o)
            for (c, image) in zip(part, out) {
                score.add(c.edit.type, outcome(image, for: c))
                outputs.append(image)
            }
            start = end
            progress(end, cases.count)
        }
        return (score, outputs)
    }

    /// The rule applied to autoencoder reconstructions of the rendered `after` images: the
    /// ceiling of an editor that decodes through this decoder.
    public static func reconstructionCeiling(_ autoencoder: ReconstructionPipeline, cases: [EditCase]) -> EditingScore {
        var score = EditingScore()
        let recon = GenerationEvaluation.reconstructions(autoencoder, images: cases.map(\.after))
        for (c, image) in zip(cases, recon) { score.add(c.edit.type, outcome(image, for: c)) }
        return score
    }

    /// Markdown table: success rate and preserved-region PSNR per edit type.
    public static func table(_ rows: [(label: String, score: EditingScore)]) -> String {
        var md = "| model | " + EditType.allCases.map(\.rawValue).joined(separator: " | ")
            + " | overall | preserved PSNR | overall, shapes ignored (no replace) |\n|---|"
            + String(repeating: "---|", count: EditType.allCases.count + 3) + "\n"
        for (label, s) in rows {
            md += "| \(label) | " + EditType.allCases.map { t in
                let p = s.psnr(t)
                return GenerationEvaluation.percent(s.success(t)) + (p.isNaN ? "" : String(format: " / %.1f dB", p))
            }.joined(separator: " | ")
            md += " | \(GenerationEvaluation.percent(s.overall)) | "
                + (s.overallPSNR.isNaN ? "–" : String(format: "%.2f dB", s.overallPSNR))
                + " | \(GenerationEvaluation.percent(s.overallIgnoringShape)) |\n"
        }
        return md
    }
}
