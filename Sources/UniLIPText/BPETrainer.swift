import Foundation

/// Learns a byte-level BPE vocabulary from a corpus, with the same pre-tokenizer as Qwen2, so
/// the result loads anywhere a Qwen2 `tokenizer.json` does.
public enum BPETrainer {
    /// The chat and image tokens of the InternVL template, appended after the learned vocabulary.
    public static let defaultSpecialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]

    /// - Parameters:
    ///   - vocabSize: size of the learned vocabulary (256 byte symbols + merges), before special tokens.
    ///   - minFrequency: pairs seen fewer times are never merged.
    public static func train(texts: [String], vocabSize: Int, minFrequency: Int = 2,
                             specialTokens: [String] = defaultSpecialTokens) throws -> Tokenizer {
        precondition(vocabSize >= 256, "vocabSize must cover the 256 byte symbols")
        let splitter = try Tokenizer(vocab: [:], merges: [], addedTokens: [])
        var counts: [String: Int] = [:]
        for text in texts {
            for piece in splitter.preTokenize(text.precomposedStringWithCanonicalMapping) {
                counts[piece, default: 0] += 1
            }
        }
        // Words as symbol arrays, sorted for a deterministic walk.
        var words: [([String], Int)] = counts.keys.sorted().map { word in
            (Array(word.utf8).map { String(ByteLevel.byteToChar[Int($0)]) }, counts[word]!)
        }
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevel.byteToChar[b])] = b }
        var merges: [(String, String)] = []
        while vocab.count < vocabSize {
            var pairCounts: [String: (String, String, Int)] = [:]
            for (symbols, n) in words where symbols.count > 1 {
                for i in 0..<(symbols.count - 1) {
                    let key = symbols[i] + " " + symbols[i + 1]
                    pairCounts[key, default: (symbols[i], symbols[i + 1], 0)].2 += n
                }
            }
            // Most frequent pair; ties broken by the pair's text so training is deterministic.
            guard let best = pairCounts.max(by: { a, b in
                a.value.2 != b.value.2 ? a.value.2 < b.value.2 : a.key > b.key
            }), best.value.2 >= minFrequency else { break }
            let (a, b) = (best.value.0, best.value.1)
            merges.append((a, b))
            if vocab[a + b] == nil { vocab[a + b] = vocab.count }
            for w in 0..<words.count where words[w].0.count > 1 {
                var s = words[w].0
                var i = 0
                var merged: [String] = []
                while i < s.count {
                    if i < s.count - 1 && s[i] == a && s[i + 1] == b { merged.append(a + b); i += 2 } else { merged.append(s[i]); i += 1 }
                }
                s = merged
                words[w].0 = s
            }
        }
        let base = vocab.count
        let added = specialTokens.enumerated().map { (content: $0.element, id: base + $0.offset, special: true) }
        return try Tokenizer(vocab: vocab, merges: merges, addedTokens: added)
    }
}
