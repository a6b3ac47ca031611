import Foundation
import ShapesWorld
import UniLIPCore
import UniLIPIO
import UniLIPPipelines

public enum JobTask: String, Codable, Sendable, CaseIterable {
    case ask, reconstruct, edit, generate

    /// Whether the task reads an input image.
    public var needsImage: Bool { self != .generate }

    /// The request field holding the task's text.
    public var textField: String? {
        switch self {
        case .ask: return "question"
        case .reconstruct: return nil
        case .edit: return "instruction"
        case .generate: return "prompt"
        }
    }
}

/// A validated job: everything the backend needs to run it.
public struct JobRequest: Sendable {
    public var task: JobTask
    public var image: Image?
    public var text: String
    public var seed: UInt64
    public var steps: Int
    public var guidance: Float

    public init(task: JobTask, image: Image? = nil, text: String = "", seed: UInt64 = 42, steps: Int = 20, guidance: Float = 4.5) {
        self.task = task
        self.image = image
        self.text = text
        self.seed = seed
        self.steps = steps
        self.guidance = guidance
    }
}

/// What a job produced.
public struct JobOutput: Sendable {
    public var answer: String?
    public var psnr: Float?
    public var ssim: Float?
    public var image: Image?
    /// What the job changed about its input, e.g. a resize.
    public var note: String?

    public init(answer: String? = nil, psnr: Float? = nil, ssim: Float? = nil, image: Image? = nil, note: String? = nil) {
        self.answer = answer
        self.psnr = psnr
        self.ssim = ssim
        self.image = image
        self.note = note
    }
}

/// Runs jobs. The job queue calls `run` from its one worker thread, one job at a time, so an
/// implementation needs no locking of its own.
public protocol JobBackend: AnyObject, Sendable {
    /// Side of the ShapesWorld sample scenes, in pixels.
    var sampleResolution: Int { get }
    /// Names of the loaded models, for /api/health.
    var modelNames: [String: String] { get }
    /// Runs one job, reporting (fraction done, step text) as it goes.
    func run(_ request: JobRequest, progress: @escaping (Double, String) -> Void) throws -> JobOutput
}

/// The shipped models, loaded once: InternVL answers, the UniLIP autoencoder reconstructs, the
/// generation head generates and edits.
public final class ModelBackend: JobBackend, @unchecked Sendable {
    let understanding: UnderstandingPipeline
    let reconstruction: ReconstructionPipeline
    let generation: GenerationPipeline
    public let sampleResolution: Int
    public let modelNames: [String: String]
    /// Longest side reconstructed as is: the encoder's attention grows with the square of the
    /// pixel count, so larger inputs are scaled down first.
    public let maxReconstructSide: Int

    public init(folders: ModelFolders, maxReconstructSide: Int = 256) throws {
        precondition(maxReconstructSide >= 16, "maxReconstructSide must be at least 16")
        self.maxReconstructSide = maxReconstructSide
        understanding = try UnderstandingPipeline(directory: folders.understanding)
        reconstruction = try ReconstructionPipeline(directory: folders.autoencoder)
        generation = try GenerationPipeline(directory: folders.generation)
        sampleResolution = understanding.model.config.forceImageSize
        func name(_ path: String) -> String { (path as NSString).lastPathComponent }
        modelNames = ["understanding": name(folders.understanding), "autoencoder": name(folders.autoencoder),
                      "generation": name(folders.generation)]
    }

    public func run(_ request: JobRequest, progress: @escaping (Double, String) -> Void) throws -> JobOutput {
        switch request.task {
        case .ask:
            let image = try input(request)
            progress(0.1, "reading the image and answering")
            return JobOutput(answer: try understanding.ask(image, request.text))
        case .reconstruct:
            var image = try input(request)
            var note: String?
            let side = max(image.width, image.height)
            if side > maxReconstructSide {
                let scale = Double(maxReconstructSide) / Double(side)
                let w = max(1, Int((Double(image.width) * scale).rounded())), h = max(1, Int((Double(image.height) * scale).rounded()))
                note = "scaled from \(image.width)×\(image.height) to \(w)×\(h) first (the limit is \(maxReconstructSide) px a side)"
                image = image.rgb().resized(width: w, height: h, filter: .bicubic)
            }
            progress(0.1, "encoding and decoding \(image.width)×\(image.height)")
            let r = try reconstruction.reconstruct(image)
            return JobOutput(psnr: r.psnr, ssim: r.ssim, image: r.image, note: note)
        case .edit:
            let image = try input(request)
            progress(0.05, "reading the image and the instruction")
            let edited = try generation.edit([image], instructions: [request.text], options: options(request),
                                             progress: stepper(progress))
            return JobOutput(image: edited[0])
        case .generate:
            progress(0.05, "reading the prompt")
            let drawn = try generation.generate([request.text], options: options(request), progress: stepper(progress))
            return JobOutput(image: drawn[0])
        }
    }

    func input(_ request: JobRequest) throws -> Image {
        guard let image = request.image else { throw GenerationPipelineError("the \(request.task.rawValue) task needs an image") }
        return image
    }

    func options(_ request: JobRequest) -> ImageGenerationOptions {
        ImageGenerationOptions(steps: request.steps, guidanceScale: request.guidance, seed: request.seed)
    }

    /// Maps denoising steps onto 5–95 %; decoding takes the rest.
    func stepper(_ progress: @escaping (Double, String) -> Void) -> (Int, Int) -> Bool {
        { step, total in
            let fraction = 0.05 + 0.9 * Double(step) / Double(max(total, 1))
            progress(fraction, step == total ? "decoding the image" : "denoising step \(step) of \(total)")
            return true
        }
    }
}

/// ShapesWorld scenes offered as ready-made inputs, named SPLIT-INDEX ("test-3").
public struct SampleScenes: Sendable {
    public let world: ShapesWorld
    /// How many test scenes /api/samples lists.
    public let listed: Int
    /// Highest index a name may use.
    public static let maxIndex = 99_999

    public init(resolution: Int, listed: Int = 8) {
        world = ShapesWorld(seed: 0, resolution: resolution)
        self.listed = listed
    }

    /// The split and index a name gives, or nil for a malformed name.
    public static func parse(_ name: String) -> (Split, Int)? {
        guard let dash = name.lastIndex(of: "-"),
              let split = Split(rawValue: String(name[..<dash])),
              let index = Int(name[name.index(after: dash)...]),
              (0...maxIndex).contains(index) else { return nil }
        return (split, index)
    }

    public func sample(named name: String) -> WorldSample? {
        guard let (split, index) = Self.parse(name) else { return nil }
        return world.sample(split, index)
    }

    public func image(named name: String) -> Image? {
        sample(named: name).map { world.image($0.scene) }
    }
}
