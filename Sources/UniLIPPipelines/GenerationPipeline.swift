import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPModels
import UniLIPNN

/// A request the generation pipeline refuses (empty or over-long text, mismatched inputs).
public struct GenerationPipelineError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Text-to-image generation and instruction-based editing with a generation folder.
///
/// Each call runs one batched LLM pass over [negative prompts; prompts] (with the reference
/// images for editing), samples latents on the autoencoder's latent grid with classifier-free
/// guidance, and decodes them with the autoencoder's DC-AE decoder at its image size.
/// Row r of a batch of B starts from row r of the noise `options.seed` draws for B rows, so a
/// (prompt list, seed) pair always gives the same images.
public final class GenerationPipeline {
    public let model: GenerationModel
    /// Longest prompt or instruction, in tokens (the template and image slots not counted).
    public var maxPromptTokens = 256

    public init(model: GenerationModel) {
        model.generator.eval()
        self.model = model
    }

    public convenience init(directory: String) throws {
        self.init(model: try GenerationModel(directory: directory))
    }

    /// Side of the images generated, and of edit inputs after resizing.
    public var imageSize: Int { model.autoencoder.config.imageSize }

    /// Images for `prompts`, one per prompt.
    ///
    /// - progress: (step, total) after each denoising step; returning false cancels with
    ///   `ImageGenerationError.cancelled`.
    /// - Throws: `GenerationPipelineError` for an empty or over-long prompt,
    ///   `ImageGenerationError.invalidOptions` for bad options.
    /// - noise: starting latents [B, C, h, w] instead of those `options.seed` draws.
    public func generate(_ prompts: [String], options: ImageGenerationOptions = ImageGenerationOptions(),
                         noise: Tensor? = nil, progress: ((Int, Int) -> Bool)? = nil) throws -> [Image] {
        let r = try generationRequest(prompts, options: options)
        return try sample(cond: r.cond, uncond: r.uncond, reference: nil, options: options, noise: noise, progress: progress)
    }

    /// Edited images: image i changed by instruction i. Inputs of another size are resized
    /// (bicubic) to `imageSize`.
    public func edit(_ images: [Image], instructions: [String], options: ImageGenerationOptions = ImageGenerationOptions(),
                     noise: Tensor? = nil, progress: ((Int, Int) -> Bool)? = nil) throws -> [Image] {
        let r = try editRequest(images, instructions: instructions, options: options)
        return try sample(cond: r.cond, uncond: r.uncond, reference: r.reference, options: options, noise: noise,
                          progress: progress)
    }

    /// The sampled latents (the DiT's space, z · `unilip_factor`) and the images in [0, 1]
    /// [B, 3, S, S] before quantisation, for text-to-image prompts.
    public func generateTensors(_ prompts: [String], options: ImageGenerationOptions = ImageGenerationOptions(),
                                noise: Tensor? = nil) throws -> (latents: Tensor, pixels: Tensor) {
        let r = try generationRequest(prompts, options: options)
        return try sampleImages(cond: r.cond, uncond: r.uncond, reference: nil, options: options, noise: noise,
                                progress: nil)
    }

    /// `generateTensors` for edits.
    public func editTensors(_ images: [Image], instructions: [String], options: ImageGenerationOptions = ImageGenerationOptions(),
                            noise: Tensor? = nil) throws -> (latents: Tensor, pixels: Tensor) {
        let r = try editRequest(images, instructions: instructions, options: options)
        return try sampleImages(cond: r.cond, uncond: r.uncond, reference: r.reference, options: options, noise: noise,
                                progress: nil)
    }

    /// Checked options and prompts, as token ids of the conditional and unconditional rows.
    func generationRequest(_ prompts: [String], options: ImageGenerationOptions) throws
        -> (cond: [[Int]], uncond: [[Int]]) {
        try options.validate()
        try checkTexts(prompts, kind: "prompt")
        let t = model.template, n = model.generator.config.numQueries
        return (prompts.map { t.generationPrompt($0, queries: n) },
                [[Int]](repeating: t.unconditionalGenerationPrompt(queries: n), count: prompts.count))
    }

    /// `generationRequest` for edits, with the reference images' pixels.
    func editRequest(_ images: [Image], instructions: [String], options: ImageGenerationOptions) throws
        -> (cond: [[Int]], uncond: [[Int]], reference: Tensor) {
        try options.validate()
        guard images.count == instructions.count else {
            throw GenerationPipelineError("\(images.count) images for \(instructions.count) instructions: give one instruction per image")
        }
        try checkTexts(instructions, kind: "instruction")
        let t = model.template, n = model.generator.config.numQueries, refs = model.referenceTokenCount
        return (instructions.map { t.editPrompt($0, referenceTokens: refs, queries: n) },
                [[Int]](repeating: t.unconditionalEditPrompt(referenceTokens: refs, queries: n), count: images.count),
                referencePixels(images))
    }

    /// Normalised pixels [B, 3, S, S] of edit inputs, resized to the model's size.
    public func referencePixels(_ images: [Image]) -> Tensor {
        let size = imageSize
        return UnderstandingData.pixels(images.map { image in
            let rgb = image.rgb()
            return rgb.width == size && rgb.height == size ? rgb : rgb.resized(width: size, height: size, filter: .bicubic)
        })
    }

    /// Token count of a text as the prompt carries it.
    public func tokenCount(_ text: String) -> Int { model.tokenizer.encode(text).count }

    func checkTexts(_ texts: [String], kind: String) throws {
        guard !texts.isEmpty else { throw GenerationPipelineError("no \(kind)s given") }
        for (i, text) in texts.enumerated() {
            let which = texts.count == 1 ? "the \(kind)" : "\(kind) \(i + 1)"
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw GenerationPipelineError("\(which) is empty")
            }
            for added in model.tokenizer.addedTokens where text.contains(added.content) {
                throw GenerationPipelineError("\(which) contains the reserved token \(added.content)")
            }
            let count = tokenCount(text)
            guard count <= maxPromptTokens else {
                throw GenerationPipelineError("\(which) is \(count) tokens; the limit is \(maxPromptTokens)")
            }
        }
    }

    /// One LLM pass over [uncond; cond] (cond only without guidance), guided sampling, decoding.
    func sample(cond: [[Int]], uncond: [[Int]], reference: Tensor?, options: ImageGenerationOptions, noise: Tensor?,
                progress: ((Int, Int) -> Bool)?) throws -> [Image] {
        let pixels = try sampleImages(cond: cond, uncond: uncond, reference: reference, options: options, noise: noise,
                                      progress: progress).pixels
        return (0..<cond.count).map { Image(tensor: pixels.sliced(axis: 0, start: $0, end: $0 + 1)) }
    }

    func sampleImages(cond: [[Int]], uncond: [[Int]], reference: Tensor?, options: ImageGenerationOptions, noise: Tensor?,
                      progress: ((Int, Int) -> Bool)?) throws -> (latents: Tensor, pixels: Tensor) {
        let b = cond.count
        let guided = options.guidanceScale != 1
        let rows = guided ? uncond + cond : cond
        let (ids, mask) = model.template.paddedBatch(rows)
        let refs = reference.map { guided ? Tensor.concat([$0, $0], axis: 0) : $0 }
        let both = withNoGrad {
            model.generator.conditioning(model: model.mllm, ids: ids, batch: rows.count, mask: mask,
                                         contextID: model.template.imgContext, referencePixels: refs)
        }
        var o = options
        let grid = model.latentGrid
        if o.latentHeight == nil { o.latentHeight = grid.0 }
        if o.latentWidth == nil { o.latentWidth = grid.1 }
        let sampler = GenerationSampler(generator: model.generator)
        let latents = try sampler.sample(conditional: guided ? both.rows(b..<(2 * b)) : both,
                                         unconditional: guided ? both.rows(0..<b) : nil,
                                         options: o, noise: noise, progress: progress)
        let size = imageSize
        return (latents, sampler.decode(latents, decoder: model.autoencoder.decoder, size: (size, size)))
    }
}
