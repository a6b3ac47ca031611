import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPTestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "checkpoint-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    /// Parameters as a model would list them: zero-filled, with their shapes.
    func parameters(_ spec: [(String, [Int])]) -> [(String, Tensor)] {
        spec.map { ($0.0, Tensor(zeros: $0.1, requiresGrad: true)) }
    }

    func mismatch(_ error: Error, file: StaticString = #filePath, line: UInt = #line) -> LoadReport? {
        guard case let CheckpointError.mismatch(_, report)? = error as? CheckpointError else {
            XCTFail("expected a mismatch error, got \(error)", file: file, line: line)
            return nil
        }
        return report
    }

    func testStrictLoadConvertsAndCopies() throws {
        let a = randn(3, 4, seed: 1), b = randn(5, seed: 2), c = randn(2, 2, seed: 3)
        let file = path("m.safetensors")
        try SafetensorsWriter.write(["a": a], to: path("a.safetensors"))
        try SafetensorsWriter.write(["a": a, "b": b, "c": c], to: file, dtype: .bf16)
        let params = parameters([("a", [3, 4]), ("b", [5]), ("c", [2, 2])])
        let report = try Checkpoint.load(file, into: params)
        XCTAssertTrue(report.isClean)
        XCTAssertEqual(report.loaded, ["a", "b", "c"])
        for (i, (_, p)) in params.enumerated() {
            let src = [a, b, c][i]
            XCTAssertTrue(p.requiresGrad)
            for j in 0..<p.count {
                XCTAssertEqual(p.pointer[j], DType.float(bf16Bits: DType.bf16Bits(src.pointer[j])))
            }
        }
        // F16 and F32 sources.
        try SafetensorsWriter.write(["a": a, "b": b, "c": c], to: file, dtype: .f16)
        try Checkpoint.load(file, into: params)
        XCTAssertEqual(params[1].1.scalars, b.scalars.map { Float(Float16($0)) })
        try SafetensorsWriter.write(["a": a, "b": b, "c": c], to: file)
        try Checkpoint.load(file, into: params)
        XCTAssertEqual(params[0].1.scalars, a.scalars)
    }

    func testMismatchReportsEveryProblemAndChangesNothing() throws {
        let file = path("m.safetensors")
        try SafetensorsWriter.write([
            "enc.w": randn(2, 3, seed: 1), "enc.b": randn(3, seed: 2), "head.w": randn(4, 4, seed: 3),
            "extra1": randn(1, seed: 4), "extra2": randn(1, seed: 5), "ok": randn(2, seed: 6),
        ], to: file)
        let params = parameters([("enc.w", [3, 2]), ("enc.b", [3, 1]), ("ok", [2]), ("dec.w", [2]), ("dec.b", [1]),
                                 ("head.w", [4, 4])])
        XCTAssertThrowsError(try Checkpoint.load(file, into: params)) { error in
            guard let r = mismatch(error) else { return }
            XCTAssertEqual(r.missing, ["dec.w", "dec.b"])
            XCTAssertEqual(r.unexpected, ["extra1", "extra2"])
            XCTAssertEqual(r.wrongShape.map(\.name), ["enc.w", "enc.b"])
            XCTAssertEqual(r.wrongShape[0].expected, [3, 2])
            XCTAssertEqual(r.wrongShape[0].found, [2, 3])
            XCTAssertEqual(r.loaded, ["ok", "head.w"])
            let text = "\(error)"
            for name in ["dec.w", "dec.b", "extra1", "extra2", "enc.w", "enc.b", file] {
                XCTAssertTrue(text.contains(name), "message lacks \(name): \(text)")
            }
            XCTAssertTrue(text.contains("2 missing, 2 unexpected, 2 with the wrong shape"), text)
        }
        // Nothing was written.
        for (_, p) in params { XCTAssertTrue(p.scalars.allSatisfy { $0 == 0 }) }

        // Missing and unexpected can be allowed; wrong shapes never.
        XCTAssertThrowsError(try Checkpoint.load(file, into: params,
                                                 options: LoadOptions(allowMissing: true, allowUnexpected: true)))
        let fine = parameters([("ok", [2]), ("head.w", [4, 4]), ("dec.w", [2])])
        XCTAssertThrowsError(try Checkpoint.load(file, into: fine, options: LoadOptions(allowMissing: true))) {
            XCTAssertEqual(self.mismatch($0)?.unexpected, ["enc.b", "enc.w", "extra1", "extra2"])
        }
        XCTAssertThrowsError(try Checkpoint.load(file, into: fine, options: LoadOptions(allowUnexpected: true))) {
            XCTAssertEqual(self.mismatch($0)?.missing, ["dec.w"])
        }
        let report = try Checkpoint.load(file, into: fine, options: LoadOptions(allowMissing: true, allowUnexpected: true))
        XCTAssertEqual(report.loaded, ["ok", "head.w"])
        XCTAssertEqual(report.missing, ["dec.w"])
        XCTAssertEqual(fine[0].1.scalars, randn(2, seed: 6).scalars)
        XCTAssertEqual(fine[2].1.scalars, [0, 0])

        XCTAssertThrowsError(try Checkpoint.load(file, into: parameters([("ok", [2]), ("ok", [2])]))) {
            XCTAssertEqual($0 as? CheckpointError, .duplicateParameter("ok"))
        }
    }

    func testRenameRulesDuringLoad() throws {
        let file = path("hf.safetensors")
        let w = randn(2, 2, seed: 1), g = randn(2, seed: 2)
        try SafetensorsWriter.write([
            "model.vision_tower.blocks.0.w": w, "model.vision_tower.blocks.0.gamma": g,
            "lm_head.weight": randn(3, seed: 3),
        ], to: file, dtype: .f16)
        let params = parameters([("vision_tower.blocks.0.w", [2, 2]), ("vision_tower.blocks.0.weight", [2])])
        // Without rules every key is reported, under its checkpoint name.
        XCTAssertThrowsError(try Checkpoint.load(file, into: params)) {
            let r = self.mismatch($0)
            XCTAssertEqual(r?.missing.count, 2)
            XCTAssertEqual(r?.unexpected.count, 3)
        }
        let options = LoadOptions(rules: [
            .prefix(from: "model.vision_tower.", to: "vision_tower."),
            .regex(pattern: "\\.gamma$", replacement: ".weight"),
            .drop(pattern: "^lm_head\\."),
        ])
        let report = try Checkpoint.load(file, into: params, options: options)
        XCTAssertTrue(report.isClean)
        XCTAssertEqual(report.renamed["vision_tower.blocks.0.weight"], "model.vision_tower.blocks.0.gamma")
        XCTAssertEqual(params[1].1.scalars, g.scalars.map { Float(Float16($0)) })
        // A wrong shape after renaming names the checkpoint key too.
        let bad = parameters([("vision_tower.blocks.0.w", [4]), ("vision_tower.blocks.0.weight", [2])])
        XCTAssertThrowsError(try Checkpoint.load(file, into: bad, options: options)) { error in
            XCTAssertTrue("\(error)".contains("checkpoint key 'model.vision_tower.blocks.0.w'"), "\(error)")
        }
        // Rules that make keys collide.
        XCTAssertThrowsError(try Checkpoint.load(file, into: params, options: LoadOptions(rules: [.regex(pattern: "^.*$", replacement: "x")]))) { error in
            XCTAssertTrue("\(error)".contains("both rename to 'x'"), "\(error)")
        }
    }

    func testNonFloatDTypeIsAClearError() throws {
        // An I64 tensor where the model has a float parameter.
        var header = Array("{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += header + [UInt8](repeating: 0, count: 16)
        let file = path("ids.safetensors")
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        XCTAssertThrowsError(try Checkpoint.load(file, into: parameters([("pos", [2])]))) { error in
            XCTAssertEqual(self.mismatch(error)?.wrongDType, [.init(name: "pos", dtype: "I64")])
            XCTAssertTrue("\(error)".contains("pos: stored as I64, expected F32, F16 or BF16"), "\(error)")
        }
    }

    /// Writes shards and an index as Hugging Face does.
    func writeSharded(_ shards: [String: [String: Tensor]], dtype: DType = .bf16, indexName: String = Checkpoint.indexFileName) throws -> String {
        var map: [String: String] = [:]
        var total = 0
        for (shard, tensors) in shards {
            try SafetensorsWriter.write(tensors, to: path(shard), dtype: dtype)
            for (name, t) in tensors { map[name] = shard; total += t.count * dtype.byteSize }
        }
        let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": map]
        let data = try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path(indexName)))
        return path(indexName)
    }

    func testShardedCheckpoint() throws {
        let a = randn(4, 3, seed: 1), b = randn(3, seed: 2), c = randn(2, 5, seed: 3)
        let index = try writeSharded([
            "model-00001-of-00002.safetensors": ["enc.a": a, "enc.b": b],
            "model-00002-of-00002.safetensors": ["head.c": c],
        ])
        let ck = try Checkpoint(path: index)
        XCTAssertTrue(ck.isSharded)
        XCTAssertEqual(ck.files.count, 2)
        XCTAssertEqual(ck.names, ["enc.a", "enc.b", "head.c"])
        let params = parameters([("enc.a", [4, 3]), ("enc.b", [3]), ("head.c", [2, 5])])
        try ck.load(into: params)
        XCTAssertEqual(params[2].1.scalars, c.scalars.map { DType.float(bf16Bits: DType.bf16Bits($0)) })
        // The folder resolves to the index.
        XCTAssertEqual(try Checkpoint(path: dir).path, index)

        // A missing shard names itself and the tensors it should hold.
        try FileManager.default.removeItem(atPath: path("model-00001-of-00002.safetensors"))
        XCTAssertThrowsError(try Checkpoint(path: index)) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .missingShard(index: index, shard: "model-00001-of-00002.safetensors", tensors: ["enc.a", "enc.b"]))
            let text = "\(error)"
            XCTAssertTrue(text.contains("model-00001-of-00002.safetensors") && text.contains("enc.a, enc.b"), text)
        }
    }

    func testInvalidIndexes() throws {
        let shard = path("s.safetensors")
        try SafetensorsWriter.write(["x": randn(2, seed: 1)], to: shard)
        func index(_ text: String) -> String {
            let p = path("bad.index.json")
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }
        let cases: [(String, String)] = [
            ("{\"weight_map\": {\"x\": \"s.safetensors\", \"y\": \"s.safetensors\"}}", "lacks 1 tensor(s) the weight_map assigns to it: y"),
            ("{\"metadata\": {}}", "no \"weight_map\""),
            ("{\"weight_map\": {\"x\": 3}}", "not a file name"),
            ("{\"weight_map\": {\"x\": \"../s.safetensors\"}}", "not a file beside the index"),
            ("{\"weight_map\": {\"x\": \"s.safetensors\", \"x\": \"s.safetensors\"}}", "twice"),
            ("{\"weight_map\": ", "not valid JSON"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Checkpoint(path: index(text))) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
        XCTAssertThrowsError(try Checkpoint(path: path("nothing.json"))) { XCTAssertTrue("\($0)".contains("cannot read")) }
        let empty = path("emptydir")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        XCTAssertThrowsError(try Checkpoint(path: empty)) { XCTAssertTrue("\($0)".contains("neither")) }
        // A damaged shard reports the shard's path.
        _ = FileManager.default.createFile(atPath: shard, contents: Data([1, 2, 3]))
        XCTAssertThrowsError(try Checkpoint(path: index("{\"weight_map\": {\"x\": \"s.safetensors\"}}"))) { error in
            XCTAssertEqual((error as? SafetensorsError)?.path, shard)
        }
    }

    // MARK: Inspector

    func testInspectorSingleFile() throws {
        let file = path("m.safetensors")
        try SafetensorsWriter.write(["b.weight": Tensor(zeros: [1000, 1024]), "a.bias": Tensor(zeros: [3]),
                                    "a.weight": Tensor(zeros: [3, 2])], to: file, dtype: .bf16)
        let text = try WeightsInspector.inspect(path: file)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], file)
        XCTAssertEqual(lines[1], "name      dtype  shape            params")
        XCTAssertEqual(lines[2], "a.bias    BF16   [3]                   3")
        XCTAssertEqual(lines[3], "a.weight  BF16   [3, 2]                6")
        XCTAssertEqual(lines[4], "b.weight  BF16   [1000, 1024]  1,024,000")
        XCTAssertEqual(lines[5], "")
        XCTAssertEqual(lines[6], "total: 3 tensors, 1,024,009 parameters, 2,048,018 bytes (2.0 MiB)")
        XCTAssertEqual(lines[7], "  BF16: 3 tensors, 1,024,009 parameters, 2,048,018 bytes (2.0 MiB)")
        let filtered = try WeightsInspector.inspect(path: file, prefix: "a.")
        XCTAssertTrue(filtered.contains("tensors whose name starts with 'a.': 2 of 3"), filtered)
        XCTAssertFalse(filtered.contains("b.weight"))
        XCTAssertTrue(filtered.contains("total: 2 tensors, 9 parameters, 18 bytes (18 B)"), filtered)
        let none = try WeightsInspector.inspect(path: file, prefix: "zzz")
        XCTAssertTrue(none.contains("total: 0 tensors, 0 parameters, 0 bytes"), none)
        XCTAssertThrowsError(try WeightsInspector.inspect(path: path("missing.safetensors")))
    }

    func testInspectorShardedAndMixedDTypes() throws {
        let index = try writeSharded([
            "model-00001-of-00002.safetensors": ["x.w": Tensor(zeros: [2, 2])],
            "model-00002-of-00002.safetensors": ["y.w": Tensor(zeros: [3])],
        ], dtype: .f16)
        try SafetensorsWriter.write(["z.w": Tensor(zeros: [5])], to: path("model-00002-of-00002.safetensors"), dtype: .f32)
        // The index assigns y.w to shard 2, which now holds z.w only.
        XCTAssertThrowsError(try WeightsInspector.inspect(path: index))
        try SafetensorsWriter.write(["y.w": Tensor(zeros: [3])], to: path("model-00002-of-00002.safetensors"), dtype: .f32)
        let text = try WeightsInspector.inspect(path: index)
        XCTAssertTrue(text.hasPrefix(index + " (2 shards)"), text)
        XCTAssertTrue(text.contains("x.w   F16    [2, 2]       4  model-00001-of-00002.safetensors"), text)
        XCTAssertTrue(text.contains("y.w   F32    [3]          3  model-00002-of-00002.safetensors"), text)
        XCTAssertTrue(text.contains("total: 2 tensors, 7 parameters, 20 bytes (20 B)"), text)
        XCTAssertTrue(text.contains("  F16: 1 tensor, 4 parameters, 8 bytes (8 B)"), text)
        XCTAssertTrue(text.contains("  F32: 1 tensor, 3 parameters, 12 bytes (12 B)"), text)
    }

    func testInspectorListsNonFloatTensors() throws {
        let file = Fixtures.directory.appendingPathComponent("safetensors_reference.safetensors").path
        let text = try WeightsInspector.inspect(path: file, prefix: "ids")
        XCTAssertTrue(text.contains("ids.i64  I64    [2, 3]       6"), text)
        XCTAssertTrue(text.contains("  I64: 1 tensor, 6 parameters, 48 bytes (48 B)"), text)
    }
}
