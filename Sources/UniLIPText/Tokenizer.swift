import Foundation

public struct TokenizerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (the Qwen2 layout:
/// NFC normaliser, regex split, byte-level alphabet, ranked merges, added special tokens).
public final class Tokenizer: @unchecked Sendable {
    /// Qwen2's pre-tokenizer pattern.
    public static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    public let vocab: [String: Int]
    public let merges: [(String, String)]
    public let addedTokens: [(content: String, id: Int, special: Bool)]
    public let pattern: String
    public let normalizeNFC: Bool

    private let idToToken: [Int: String]
    private let ranks: [String: Int]  // "a b" → rank
    private let regex: NSRegularExpression
    private let addedByLength: [(String, Int)]
    private let lock = NSLock()
    private var cache: [String: [Int]] = [:]

    public init(vocab: [String: Int], merges: [(String, String)],
                addedTokens: [(content: String, id: Int, special: Bool)],
                pattern: String = Tokenizer.qwen2Pattern, normalizeNFC: Bool = true) throws {
        self.vocab = vocab
        self.merges = merges
        self.addedTokens = addedTokens
        self.pattern = pattern
        self.normalizeNFC = normalizeNFC
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw TokenizerError("pre-tokenizer pattern does not compile: \(pattern)")
        }
        var inverse: [Int: String] = [:]
        for (t, i) in vocab { inverse[i] = t }
        for a in addedTokens { inverse[a.id] = a.content }
        idToToken = inverse
        var r: [String: Int] = [:]
        for (i, m) in merges.enumerated() where r["\(m.0) \(m.1)"] == nil { r["\(m.0) \(m.1)"] = i }
        ranks = r
        addedByLength = addedTokens.map { ($0.content, $0.id) }.sorted { $0.0.count > $1.0.count }
    }

    public var vocabSize: Int { (idToToken.keys.max() ?? -1) + 1 }

    /// The id of a token or added token.
    public func id(of token: String) -> Int? {
        addedTokens.first { $0.content == token }?.id ?? vocab[token]
    }

    public func token(of id: Int) -> String? { idToToken[id] }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for (segment, addedID) in splitOnAdded(text) {
            if let addedID { ids.append(addedID); continue }
            let normalized = normalizeNFC ? segment.precomposedStringWithCanonicalMapping : segment
            for piece in preTokenize(normalized) { ids += encodeWord(piece) }
        }
        return ids
    }

    /// Splits text into ordinary segments and added tokens (longest match first).
    func splitOnAdded(_ text: String) -> [(String, Int?)] {
        guard !addedByLength.isEmpty else { return [(text, nil)] }
        var out: [(String, Int?)] = []
        var current = ""
        var rest = Substring(text)
        outer: while !rest.isEmpty {
            for (content, id) in addedByLength where !content.isEmpty && rest.hasPrefix(content) {
                if !current.isEmpty { out.append((current, nil)); current = "" }
                out.append((content, id))
                rest = rest.dropFirst(content.count)
                continue outer
            }
            current.append(rest.removeFirst())
        }
        if !current.isEmpty { out.append((current, nil)) }
        return out
    }

    /// Regex split keeping both matches and the text between them ("Isolated").
    func preTokenize(_ text: String) -> [String] {
        let ns = text as NSString
        var pieces: [String] = []
        var last = 0
        for m in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
            if m.range.location > last { pieces.append(ns.substring(with: NSRange(location: last, length: m.range.location - last))) }
            pieces.append(ns.substring(with: m.range))
            last = m.range.location + m.range.length
        }
        if last < ns.length { pieces.append(ns.substring(from: last)) }
        return pieces
    }

    /// BPE on one pre-token: bytes → byte-level symbols → lowest-rank merges first.
    func encodeWord(_ piece: String) -> [Int] {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        var symbols = Array(piece.utf8).map { String(ByteLevel.byteToChar[Int($0)]) }
        while symbols.count > 1 {
            var best = Int.max, at = -1
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[symbols[i] + " " + symbols[i + 1]], r < best { best = r; at = i }
            }
            if at < 0 { break }
            let (a, b) = (symbols[at], symbols[at + 1])
            var merged: [String] = []
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == a && symbols[i + 1] == b {
                    merged.append(a + b)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        // Symbols missing from the vocabulary fall back to their single bytes.
        var ids: [Int] = []
        for s in symbols {
            if let id = vocab[s] { ids.append(id); continue }
            for ch in s { if let id = vocab[String(ch)] { ids.append(id) } }
        }
        lock.lock()
        if cache.count < 100_000 { cache[piece] = ids }
        lock.unlock()
        return ids
    }

    // MARK: Decoding

    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        var out = ""
        func flush() {
            out += String(decoding: bytes, as: UTF8.self)
            bytes.removeAll()
        }
        for id in ids {
            if let added = addedTokens.first(where: { $0.id == id }) {
                flush()
                if !(skipSpecial && added.special) { out += added.content }
                continue
            }
            guard let token = idToToken[id] else { continue }
            for ch in token { if let b = ByteLevel.charToByte[ch] { bytes.append(b) } }
        }
        flush()
        return out
    }
}

/// GPT-2's reversible map between bytes and printable characters.
enum ByteLevel {
    static let byteToChar: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            chars.append(256 + n)
            n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()

    static let charToByte: [Character: UInt8] = {
        var m: [Character: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c] = UInt8(b) }
        return m
    }()
}
