import Foundation
import UniLIPIO
import XCTest

final class RenameRulesTests: XCTestCase {
    func testRulesApplyInOrder() throws {
        let rules: RenameRules = [
            .drop(pattern: "^model\\.lm_head\\."),
            .prefix(from: "model.vision_tower.", to: "vision_tower."),
            .regex(pattern: "\\.layers\\.(\\d+)\\.", replacement: ".blocks.$1."),
            .regex(pattern: "\\.gamma$", replacement: ".weight"),
            .drop(pattern: "rotary_emb"),
        ]
        let c = try rules.compiled()
        XCTAssertEqual(c.apply("model.vision_tower.layers.11.norm.gamma"), "vision_tower.blocks.11.norm.weight")
        XCTAssertEqual(c.apply("model.vision_tower.embed.weight"), "vision_tower.embed.weight")
        XCTAssertNil(c.apply("model.lm_head.weight"))
        XCTAssertNil(c.apply("model.vision_tower.layers.0.rotary_emb.inv_freq"))
        XCTAssertEqual(c.apply("other.vision_tower.x"), "other.vision_tower.x") // prefix only at the start
        XCTAssertEqual(try rules.apply("model.vision_tower.layers.2.gamma"), "vision_tower.blocks.2.weight")
        // Later rules see earlier results.
        let chained: RenameRules = [.prefix(from: "a.", to: "b."), .prefix(from: "b.", to: "c.")]
        XCTAssertEqual(try chained.apply("a.x"), "c.x")
        XCTAssertEqual(try RenameRules().apply("unchanged"), "unchanged")
    }

    func testCodableRoundTripAndFormat() throws {
        let rules: RenameRules = [
            .prefix(from: "model.vision_tower.", to: "vision_tower."),
            .regex(pattern: "^(.*)\\.g$", replacement: "$1.weight"),
            .drop(pattern: "^lm_head\\."),
        ]
        let data = try JSONEncoder().encode(rules)
        XCTAssertEqual(try JSONDecoder().decode(RenameRules.self, from: data), rules)
        let text = """
        [
          {"prefix": {"from": "model.vision_tower.", "to": "vision_tower."}},
          {"regex": {"pattern": "^(.*)\\\\.g$", "replacement": "$1.weight"}},
          {"drop": {"pattern": "^lm_head\\\\."}}
        ]
        """
        XCTAssertEqual(try JSONDecoder().decode(RenameRules.self, from: Data(text.utf8)), rules)
        let path = NSTemporaryDirectory() + "rules-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try RenameRules.load(path: path), rules)
        try Data("[{\"rename\": 1}]".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try RenameRules.load(path: path)) { XCTAssertTrue("\($0)".contains(path)) }
    }

    func testInvalidPatternAndCollisions() throws {
        let bad: RenameRules = [.prefix(from: "a", to: "b"), .regex(pattern: "([", replacement: "")]
        XCTAssertThrowsError(try bad.compiled()) { error in
            XCTAssertTrue("\(error)".contains("rule 2"), "\(error)")
        }
        let merge: RenameRules = [.regex(pattern: "^(old|new)\\.", replacement: "")]
        XCTAssertThrowsError(try merge.compiled().rename(["old.w", "new.w", "x"])) { error in
            XCTAssertEqual("\(error)", "checkpoint keys 'new.w' and 'old.w' both rename to 'w'")
        }
        XCTAssertEqual(try merge.compiled().rename(["old.w", "x"]), ["w": "old.w", "x": "x"])
    }
}
