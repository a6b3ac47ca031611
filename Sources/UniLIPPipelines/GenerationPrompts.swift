import UniLIPCore
import UniLIPText

/// UniLIP's generation and editing prompts (no system prompt), as the reference trains and
/// samples them:
///
///     T2I:  <|im_start|>user\nGenerate an image: {caption}<|im_end|>\n<|im_start|>assistant\n<img><IMG_CONTEXT>×N
///     Edit: <|im_start|>user\nEdit the image: {instruction}\n<img><IMG_CONTEXT>×T</img><|im_end|>\n<|im_start|>assistant\n<img><IMG_CONTEXT>×N
///
/// The N trailing `<IMG_CONTEXT>` slots are the output image's learnable queries; the T inside
/// `<img>…</img>` take the reference image's mlp1 tokens (`UniLIPGenerator.conditioning`).
/// The negative prompts for guidance are "Generate an image." and "Edit the image.\n" with the
/// same reference image.
extension ChatTemplate {
    public static let generationInstruction = "Generate an image: "
    public static let editInstruction = "Edit the image: "
    public static let unconditionalGeneration = "Generate an image."
    public static let unconditionalEdit = "Edit the image.\n"

    /// Text-to-image prompt ids ending in `<img>` and `queries` query slots.
    public func generationPrompt(_ caption: String, queries: Int) -> [Int] {
        generationRow(user: tokenizer.encode(Self.generationInstruction + caption), queries: queries)
    }

    /// The negative prompt of text-to-image guidance.
    public func unconditionalGenerationPrompt(queries: Int) -> [Int] {
        generationRow(user: tokenizer.encode(Self.unconditionalGeneration), queries: queries)
    }

    /// Edit prompt ids: the instruction, the reference image's `referenceTokens` slots, then the
    /// query slots.
    public func editPrompt(_ instruction: String, referenceTokens: Int, queries: Int) -> [Int] {
        generationRow(user: tokenizer.encode(Self.editInstruction + instruction + "\n") + referenceSlots(referenceTokens),
                      queries: queries)
    }

    /// The negative prompt of edit guidance (the reference image is kept).
    public func unconditionalEditPrompt(referenceTokens: Int, queries: Int) -> [Int] {
        generationRow(user: tokenizer.encode(Self.unconditionalEdit) + referenceSlots(referenceTokens), queries: queries)
    }

    /// Rows left-padded with `pad` to the longest: ids [rows, L] row-major and the mask [rows, L].
    public func paddedBatch(_ rows: [[Int]]) -> (ids: [Int], mask: Tensor) {
        precondition(!rows.isEmpty, "paddedBatch: no rows")
        let length = rows.map(\.count).max() ?? 0
        var ids: [Int] = [], mask: [Float] = []
        for r in rows {
            ids += [Int](repeating: pad, count: length - r.count) + r
            mask += [Float](repeating: 0, count: length - r.count) + [Float](repeating: 1, count: r.count)
        }
        return (ids, Tensor(mask, shape: [rows.count, length]))
    }

    private func referenceSlots(_ count: Int) -> [Int] {
        precondition(count > 0, "edit prompts need at least one reference image token")
        return [imgStart] + [Int](repeating: imgContext, count: count) + [imgEnd]
    }

    private func generationRow(user: [Int], queries: Int) -> [Int] {
        precondition(queries > 0, "generation prompts need at least one query slot")
        var ids = [imStart] + tokenizer.encode("user\n") + user
        ids += [imEnd] + tokenizer.encode("\n")
        ids += [imStart] + tokenizer.encode("assistant\n")
        return ids + [imgStart] + [Int](repeating: imgContext, count: queries)
    }
}
