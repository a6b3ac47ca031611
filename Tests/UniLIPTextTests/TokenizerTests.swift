import Foundation
import ShapesWorld
import UniLIPPipelines
import UniLIPText
import XCTest

final class TokenizerTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    struct Case: Decodable { let text: String; let ids: [Int]; let decoded: String }

    func cases(_ name: String) throws -> [Case] {
        try JSONDecoder().decode([Case].self, from: Data(contentsOf: Self.dir.appendingPathComponent(name)))
    }

    /// Same ids as the `tokenizers` library for a tokenizer.json it trained (Qwen2 pre-tokenizer).
    func testParityWithReferenceLibrary() throws {
        let tok = try Tokenizer(contentsOf: Self.dir.appendingPathComponent("reference_tokenizer.json").path)
        for c in try cases("reference_cases.json") {
            XCTAssertEqual(tok.encode(c.text), c.ids, "encode \(c.text.debugDescription)")
            XCTAssertEqual(tok.decode(c.ids), c.decoded, "decode \(c.text.debugDescription)")
        }
    }

    /// Our trainer is deterministic, its committed output loads in `tokenizers` with the same ids.
    func testTrainerDeterministicAndParity() throws {
        let path = Self.dir.appendingPathComponent("shapes_tokenizer.json")
        let trained = try BPETrainer.train(texts: InternVLTinyRecipe.tokenizerCorpus(world: ShapesWorld(seed: 0), scenes: 2000), vocabSize: 512)
        if ProcessInfo.processInfo.environment["UNILIP_WRITE_FIXTURES"] == "1" {
            try trained.jsonData().write(to: path)
        }
        let committed = try Tokenizer(contentsOf: path.path)
        XCTAssertEqual(committed.vocab, trained.vocab)
        XCTAssertEqual(committed.merges.map { "\($0.0) \($0.1)" }, trained.merges.map { "\($0.0) \($0.1)" })
        XCTAssertEqual(committed.addedTokens.map(\.id), trained.addedTokens.map(\.id))
        for c in try cases("shapes_cases.json") {
            XCTAssertEqual(committed.encode(c.text), c.ids, "encode \(c.text.debugDescription)")
            XCTAssertEqual(committed.decode(c.ids), c.decoded, "decode \(c.text.debugDescription)")
        }
        // World text compresses well and round-trips.
        let caption = ShapesWorld(seed: 0).sample(.test, 0).captions[0]
        let ids = trained.encode(caption)
        XCTAssertEqual(trained.decode(ids), caption)
        XCTAssertLessThan(ids.count, caption.count / 3, "a caption takes few tokens")
        XCTAssertEqual(trained.encode("<|im_start|>user\n<img><IMG_CONTEXT></img>").prefix(1).first, trained.id(of: "<|im_start|>"))
    }

    func testBadFilesGiveClearErrors() {
        XCTAssertThrowsError(try Tokenizer(json: Data("[1,2]".utf8))) { XCTAssertTrue("\($0)".contains("not a JSON object")) }
        XCTAssertThrowsError(try Tokenizer(json: Data(#"{"model":{"type":"Unigram"}}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("not supported"))
        }
        XCTAssertThrowsError(try Tokenizer(json: Data(#"{"model":{"type":"BPE","vocab":{"a":1},"merges":["abc"]}}"#.utf8))) {
            XCTAssertTrue("\($0)".contains("merge 0"))
        }
        XCTAssertThrowsError(try Tokenizer(contentsOf: "/nonexistent/tokenizer.json"))
    }
}
