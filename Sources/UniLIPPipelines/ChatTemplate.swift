import UniLIPText

/// The InternVL chat template (the "internvl2_5" / InternVL3 form, without a system prompt):
///
///     <|im_start|>user\n<img><IMG_CONTEXT>×N</img>\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>
///
/// The N `<IMG_CONTEXT>` embeddings are replaced by the projector's image tokens.
public struct ChatTemplate {
    public let tokenizer: Tokenizer
    public let imStart: Int, imEnd: Int, imgStart: Int, imgEnd: Int, imgContext: Int, pad: Int

    public init(tokenizer: Tokenizer) throws {
        func special(_ s: String) throws -> Int {
            guard let id = tokenizer.id(of: s) else { throw TokenizerError("tokenizer lacks the special token \(s)") }
            return id
        }
        self.tokenizer = tokenizer
        imStart = try special("<|im_start|>")
        imEnd = try special("<|im_end|>")
        imgStart = try special("<img>")
        imgEnd = try special("</img>")
        imgContext = try special("<IMG_CONTEXT>")
        pad = tokenizer.id(of: "<|endoftext|>") ?? imEnd
    }

    /// Token ids of a user turn (with `imageTokens` placeholders when > 0) and the assistant header.
    public func prompt(_ text: String, imageTokens: Int) -> [Int] {
        var ids = [imStart] + tokenizer.encode("user\n")
        if imageTokens > 0 {
            ids += [imgStart] + [Int](repeating: imgContext, count: imageTokens) + [imgEnd]
            ids += tokenizer.encode("\n")
        }
        ids += tokenizer.encode(text)
        ids += [imEnd] + tokenizer.encode("\n")
        ids += [imStart] + tokenizer.encode("assistant\n")
        return ids
    }

    /// A training example: ids, and labels that are -100 except on the answer and its `<|im_end|>`.
    public func example(question: String, answer: String, imageTokens: Int) -> (ids: [Int], labels: [Int]) {
        let p = prompt(question, imageTokens: imageTokens)
        let a = tokenizer.encode(answer) + [imEnd]
        return (p + a, [Int](repeating: -100, count: p.count) + a)
    }
}
