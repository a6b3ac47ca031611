import Foundation

/// Reading and writing the Hugging Face `tokenizer.json` format.
extension Tokenizer {
    public convenience init(contentsOf path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError("\(path): cannot read (\(error.localizedDescription))")
        }
        try self.init(json: data, source: path)
    }

    public convenience init(json data: Data, source: String = "tokenizer.json") throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError("\(source): not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError("\(source): no \"model\"") }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError("\(source): model type \(type) is not supported (BPE only)") }
        guard let rawVocab = model["vocab"] as? [String: Any] else { throw TokenizerError("\(source): no model.vocab") }
        var vocab: [String: Int] = [:]
        for (k, v) in rawVocab {
            guard let id = v as? Int else { throw TokenizerError("\(source): vocab id of \"\(k)\" is not an integer") }
            vocab[k] = id
        }
        var merges: [(String, String)] = []
        for (i, m) in (model["merges"] as? [Any] ?? []).enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError("\(source): merge \(i) \"\(s)\" is not a pair") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw TokenizerError("\(source): merge \(i) is neither \"a b\" nor [a, b]")
            }
        }
        var added: [(content: String, id: Int, special: Bool)] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = entry["id"] as? Int else {
                throw TokenizerError("\(source): an added token lacks content or id")
            }
            added.append((content, id, entry["special"] as? Bool ?? true))
        }
        let pattern = Self.splitPattern(root["pre_tokenizer"]) ?? Tokenizer.qwen2Pattern
        let nfc = (root["normalizer"] as? [String: Any])?["type"] as? String == "NFC"
        try self.init(vocab: vocab, merges: merges, addedTokens: added, pattern: pattern, normalizeNFC: nfc)
    }

    /// The regex of the first Split pre-tokenizer, searching inside Sequence.
    static func splitPattern(_ node: Any?) -> String? {
        guard let dict = node as? [String: Any] else { return nil }
        if dict["type"] as? String == "Split", let p = dict["pattern"] as? [String: Any], let r = p["Regex"] as? String {
            return r
        }
        for child in dict["pretokenizers"] as? [Any] ?? [] {
            if let r = splitPattern(child) { return r }
        }
        return nil
    }

    /// This tokenizer as `tokenizer.json` in the Qwen2 layout.
    public func jsonData() throws -> Data {
        let root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": addedTokens.map { a -> [String: Any] in
                ["id": a.id, "content": a.content, "single_word": false, "lstrip": false, "rstrip": false,
                 "normalized": false, "special": a.special]
            },
            "normalizer": normalizeNFC ? ["type": "NFC"] as Any : NSNull(),
            "pre_tokenizer": [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                    ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
                ],
            ],
            "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges.map { [$0.0, $0.1] },
            ],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
    }
}
