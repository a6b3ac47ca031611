import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPTestSupport
import XCTest

/// The `.pth` reader against files written by real `torch.save`
/// (Tools/reference/fixtures/torch_pth.py) and against hand-built broken archives.
final class PthTests: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pth-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }
    func fixture(_ stem: String) -> String { Fixtures.directory.appendingPathComponent("\(stem).pth").path }

    func bits(_ t: Tensor) -> [UInt32] {
        Array(UnsafeBufferPointer(start: t.pointer, count: t.count)).map(\.bitPattern)
    }

    /// Every golden tensor under `prefix` equals the reader's, bit for bit; returns how many.
    @discardableResult
    func assertGolden(_ tensors: [String: Tensor], prefix: String,
                      file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let golden = try Fixtures("torch_pth").tensors.filter { $0.key.hasPrefix(prefix) }
        XCTAssertFalse(golden.isEmpty, "no golden values under \(prefix)", file: file, line: line)
        for (key, expected) in golden {
            let name = String(key.dropFirst(prefix.count))
            guard let t = tensors[name] else {
                XCTFail("\(name) not read", file: file, line: line)
                continue
            }
            XCTAssertEqual(t.shape, expected.shape, name, file: file, line: line)
            XCTAssertEqual(bits(t), bits(expected), name, file: file, line: line)
        }
        return golden.count
    }

    func testStateDictMatchesTorchExactly() throws {
        let ck = try TorchCheckpoint(path: fixture("torch_pth_state"))
        XCTAssertNil(ck.key)
        XCTAssertEqual(ck.names, ["weight", "bias", "half.w", "bf.w", "t.weight", "expanded", "scalar",
                                  "view.a", "view.b", "half.t", "ids"])
        XCTAssertEqual(try ck.dtypeName(of: "weight"), "F32")
        XCTAssertEqual(try ck.dtypeName(of: "half.w"), "F16")
        XCTAssertEqual(try ck.dtypeName(of: "bf.w"), "BF16")
        XCTAssertEqual(try ck.dtypeName(of: "ids"), "I64")
        XCTAssertEqual(try ck.shape(of: "scalar"), [])
        XCTAssertEqual(try ck.shape(of: "t.weight"), [3, 4])
        XCTAssertEqual(try ck.info("t.weight").stride, [1, 3])
        XCTAssertFalse(try ck.info("t.weight").isContiguous)
        XCTAssertEqual(try ck.info("expanded").stride, [0, 1])
        // Two views of one storage: same key, different offsets.
        XCTAssertEqual(try ck.info("view.a").storageKey, try ck.info("view.b").storageKey)
        XCTAssertEqual(try ck.info("view.b").offset, 3)

        var tensors: [String: Tensor] = [:]
        for name in ck.names where name != "ids" { tensors[name] = try ck.tensor(named: name) }
        XCTAssertEqual(try assertGolden(tensors, prefix: "torch_pth_state/"), 10)

        XCTAssertThrowsError(try ck.tensor(named: "ids")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("torch_pth_state.pth") && text.contains("'ids'") && text.contains("I64"), text)
        }
        XCTAssertThrowsError(try ck.allTensors()) { XCTAssertTrue("\($0)".contains("'ids'")) }
        XCTAssertThrowsError(try ck.tensor(named: "nope")) { XCTAssertTrue("\($0)".contains("no such tensor")) }
    }

    func testNestedStateDictIsUnwrappedOrChosenByKey() throws {
        let nested = try TorchCheckpoint(path: fixture("torch_pth_nested"))
        XCTAssertEqual(nested.key, "state_dict")
        XCTAssertEqual(nested.names, ["enc.weight", "enc.bias"])
        try assertGolden(try nested.allTensors(), prefix: "torch_pth_nested/state_dict/")
        XCTAssertEqual(try TorchCheckpoint(path: fixture("torch_pth_nested"), key: "state_dict").names, nested.names)

        // {"model": …, "ema": …}: ambiguous without a key.
        XCTAssertThrowsError(try TorchCheckpoint(path: fixture("torch_pth_two"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model, ema") && text.contains("key"), text)
        }
        for key in ["model", "ema"] {
            let ck = try TorchCheckpoint(path: fixture("torch_pth_two"), key: key)
            XCTAssertEqual(ck.key, key)
            try assertGolden(try ck.allTensors(), prefix: "torch_pth_two/\(key)/")
        }
        XCTAssertThrowsError(try TorchCheckpoint(path: fixture("torch_pth_two"), key: "step")) {
            XCTAssertTrue("\($0)".contains("'step' holds a int"), "\($0)")
        }
        XCTAssertThrowsError(try TorchCheckpoint(path: fixture("torch_pth_two"), key: "optimizer")) {
            XCTAssertTrue("\($0)".contains("no key 'optimizer'") && "\($0)".contains("model, ema, step"), "\($0)")
        }
    }

    func testNewZipfileProtocol4() throws {
        let ck = try TorchCheckpoint(path: fixture("torch_pth_newzip"))
        XCTAssertEqual(ck.names, ["dec.weight", "dec.bias"])
        XCTAssertEqual(try assertGolden(try ck.allTensors(), prefix: "torch_pth_newzip/"), 2)
    }

    func testStrictLoadingThroughCheckpoint() throws {
        let file = fixture("torch_pth_nested")
        let params: [(String, Tensor)] = [("enc.weight", Tensor(zeros: [2, 2])), ("dec.weight", Tensor(zeros: [2]))]
        XCTAssertThrowsError(try Checkpoint.load(file, into: params)) { error in
            guard case let CheckpointError.mismatch(path, report)? = error as? CheckpointError else {
                return XCTFail("expected a mismatch, got \(error)")
            }
            XCTAssertTrue(path.hasSuffix("torch_pth_nested.pth"))
            XCTAssertEqual(report.missing, ["dec.weight"])
            XCTAssertEqual(report.unexpected, ["enc.bias"])
            XCTAssertEqual(report.loaded, ["enc.weight"])
        }
        XCTAssertEqual(bits(params[0].1), [UInt32](repeating: 0, count: 4), "nothing written on a mismatch")

        let report = try Checkpoint.load(file, key: "state_dict", into: params,
                                         options: LoadOptions(allowMissing: true, allowUnexpected: true))
        XCTAssertEqual(report.loaded, ["enc.weight"])
        let golden = try Fixtures("torch_pth")
        XCTAssertEqual(bits(params[0].1), bits(golden["torch_pth_nested/state_dict/enc.weight"]))

        // Renaming and wrong shapes work as for safetensors; a non-contiguous tensor loads in order.
        let state = fixture("torch_pth_state")
        let wrong: [(String, Tensor)] = [("t.weight", Tensor(zeros: [4, 3]))]
        XCTAssertThrowsError(try Checkpoint.load(state, into: wrong, options: LoadOptions(allowUnexpected: true))) {
            XCTAssertTrue("\($0)".contains("wrong shape: t.weight"), "\($0)")
        }
        let ids: [(String, Tensor)] = [("ids", Tensor(zeros: [2, 3]))]
        XCTAssertThrowsError(try Checkpoint.load(state, into: ids, options: LoadOptions(allowUnexpected: true))) {
            XCTAssertTrue("\($0)".contains("wrong dtype: ids"), "\($0)")
        }
        let renamed: [(String, Tensor)] = [("proj.weight", Tensor(zeros: [3, 4]))]
        try Checkpoint.load(state, into: renamed,
                            options: LoadOptions(rules: [.prefix(from: "t.", to: "proj.")], allowUnexpected: true))
        XCTAssertEqual(bits(renamed[0].1), bits(golden["torch_pth_state/t.weight"]))

        XCTAssertThrowsError(try Checkpoint(path: Fixtures.directory.appendingPathComponent("torch_pth.safetensors").path,
                                            key: "model"))
        let text = try WeightsInspector.inspect(path: fixture("torch_pth_two"), key: "ema")
        XCTAssertTrue(text.contains("state dict under key 'ema'") && text.contains("net.bias") && text.contains("BF16"), text)
    }

    func testConvertRoundTrip() throws {
        let out = path("state.safetensors")
        // The I64 tensor cannot be converted; the error names it.
        XCTAssertThrowsError(try WeightsConverter.convert(input: fixture("torch_pth_state"), output: out)) {
            XCTAssertTrue("\($0)".contains("'ids'"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        let two = path("ema.safetensors")
        let (count, dtype) = try WeightsConverter.convert(input: fixture("torch_pth_two"), output: two, key: "ema")
        XCTAssertEqual(count, 2)
        XCTAssertEqual(dtype, .f32, "mixed F32/BF16 stored → F32")
        let file = try SafetensorsFile(path: two)
        XCTAssertEqual(file.metadata["source_key"], "ema")
        try assertGolden(try file.allTensors(), prefix: "torch_pth_two/ema/")

        let bf = path("nested-bf16.safetensors")
        XCTAssertEqual(try WeightsConverter.convert(input: fixture("torch_pth_nested"), output: bf, dtype: .bf16).dtype, .bf16)
        let bfFile = try SafetensorsFile(path: bf)
        XCTAssertEqual(bfFile.entries["enc.weight"]?.dtypeName, "BF16")
        // The BF16 tensor survives exactly; the F32 one equals torch's own BF16 rounding.
        let golden = try Fixtures("torch_pth")
        XCTAssertEqual(bits(try bfFile.tensor("enc.bias")), bits(golden["torch_pth_nested/state_dict/enc.bias"]))
        let w = golden["torch_pth_nested/state_dict/enc.weight"]
        let rounded = Tensor(uninitialized: w.shape)
        DType.bf16.decode(DType.bf16.encode(w.pointer, count: w.count), into: rounded.pointer, count: w.count)
        XCTAssertEqual(bits(try bfFile.tensor("enc.weight")), bits(rounded))
    }

    func testZip64Records() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("torch_pth_newzip")))
        let file = path("zip64.pth")
        try Data(ZipFixture.archive(try ZipFixture.entries(of: data), zip64: true)).write(to: URL(fileURLWithPath: file))
        let ck = try TorchCheckpoint(path: file)
        XCTAssertEqual(try assertGolden(try ck.allTensors(), prefix: "torch_pth_newzip/"), 2)

        // Saturated 32-bit fields without the ZIP64 locator.
        var bytes = ZipFixture.archive(try ZipFixture.entries(of: data), zip64: true)
        let eocd = bytes.count - 22
        for i in (eocd - 20)..<(eocd - 16) { bytes[i] = 0 }
        let broken = path("zip64-no-locator.pth")
        try Data(bytes).write(to: URL(fileURLWithPath: broken))
        expectError(broken, ["ZIP64"])
    }

    // MARK: - Broken files

    func expectError(_ file: String, _ fragments: [String], key: String? = nil,
                     line: UInt = #line) {
        XCTAssertThrowsError(try TorchCheckpoint(path: file, key: key), line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(file), "error should name the file: \(text)", line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "'\(f)' not in: \(text)", line: line) }
        }
    }

    func testTruncatedFile() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("torch_pth_state")))
        for cut in [data.count - 10, data.count / 2, 100, 21, 0] {
            let file = path("cut-\(cut).pth")
            try data.prefix(cut).write(to: URL(fileURLWithPath: file))
            expectError(file, ["truncated"])
        }
        // The zip directory intact but a storage shortened below what a tensor addresses.
        let pkl = "torch_pth_state/data.pkl"
        let original = try ZipFixture.entries(of: data)
        var entries = original.map { ($0.0, $0.0 == "torch_pth_state/data/0" ? Array($0.1.prefix(8)) : $0.1) }
        let short = path("short-storage.pth")
        try Data(ZipFixture.archive(entries)).write(to: URL(fileURLWithPath: short))
        expectError(short, ["tensor 'weight'", "storage '0'"])
        entries = original.filter { $0.0 != "torch_pth_state/data/3" }
        let missing = path("missing-storage.pth")
        try Data(ZipFixture.archive(entries)).write(to: URL(fileURLWithPath: missing))
        expectError(missing, ["is missing from the archive"])
        XCTAssertTrue(original.contains { $0.0 == pkl })
    }

    func testCorruptCentralDirectory() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("torch_pth_nested")))
        var bytes = [UInt8](data)
        guard let cd = (0..<(bytes.count - 4)).first(where: { bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 1 && bytes[$0 + 3] == 2 }) else {
            return XCTFail("no central directory in the fixture")
        }
        bytes[cd + 2] = 9
        let file = path("corrupt.pth")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        expectError(file, ["corrupt ZIP central directory"])

        var offset = [UInt8](data)
        // Point the first central entry's local header offset past the end.
        offset[cd + 42] = 0xF0; offset[cd + 43] = 0xFF; offset[cd + 44] = 0xFF; offset[cd + 45] = 0x7F
        let moved = path("offset.pth")
        try Data(offset).write(to: URL(fileURLWithPath: moved))
        expectError(moved, ["ZIP"])

        let notZip = path("legacy.pth")
        try Data([0x80, 0x02, 0x8A, 0x0A] + [UInt8](repeating: 0, count: 40)).write(to: URL(fileURLWithPath: notZip))
        expectError(notZip, ["not a ZIP archive"])
    }

    func testDeflateEntryIsRejected() throws {
        let file = path("deflate.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x7D, 0x2E])], method: 8)).write(to: URL(fileURLWithPath: file))
        expectError(file, ["'a/data.pkl' is DEFLATE-compressed"])
    }

    func testUnknownOpcodeAndGlobal() throws {
        let opcode = path("opcode.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x7D, 0xFF, 0x2E])])).write(to: URL(fileURLWithPath: opcode))
        expectError(opcode, ["unknown pickle opcode 0xff", "byte 3", "data.pkl"])

        let global = path("global.pth")
        let pickle: [UInt8] = [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2E]
        try Data(ZipFixture.archive([("a/data.pkl", pickle)])).write(to: URL(fileURLWithPath: global))
        expectError(global, ["unsupported global 'os.system'", "byte 2"])

        let list = path("list.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x5D, 0x2E])])).write(to: URL(fileURLWithPath: list))
        expectError(list, ["is a list, not a dict of tensors"])

        let endless = path("endless.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x7D])])).write(to: URL(fileURLWithPath: endless))
        expectError(endless, ["unexpected end of data"])

        let huge = path("huge.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x8D] + [UInt8](repeating: 0xFF, count: 8))])).write(to: URL(fileURLWithPath: huge))
        expectError(huge, ["unexpected end of data"])

        let empty = path("empty.pth")
        try Data(ZipFixture.archive([("a/data.pkl", [0x80, 0x02, 0x7D, 0x2E])])).write(to: URL(fileURLWithPath: empty))
        expectError(empty, ["no tensors found"])
    }
}

/// Minimal ZIP reading and writing (STORED, no ZIP64) to build broken archives.
enum ZipFixture {
    static func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// With `zip64`, every size and offset goes through ZIP64 extra fields and end records, as
    /// in archives over 4 GiB.
    static func archive(_ entries: [(String, [UInt8])], method: Int = 0, zip64: Bool = false) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        let full = 0xFFFF_FFFF
        for (name, data) in entries {
            let offset = out.count
            let n = Array(name.utf8)
            out += le(0x04034B50, 4) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4)
                + le(data.count, 4) + le(data.count, 4) + le(n.count, 2) + le(0, 2) + n + data
            let extra = zip64 ? le(1, 2) + le(24, 2) + le(data.count, 8) + le(data.count, 8) + le(offset, 8) : []
            central += le(0x02014B50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4)
                + le(zip64 ? full : data.count, 4) + le(zip64 ? full : data.count, 4) + le(n.count, 2)
                + le(extra.count, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(zip64 ? full : offset, 4) + n + extra
        }
        let cd = out.count
        out += central
        if zip64 {
            let record = out.count
            out += le(0x06064B50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4)
                + le(entries.count, 8) + le(entries.count, 8) + le(central.count, 8) + le(cd, 8)
            out += le(0x07064B50, 4) + le(0, 4) + le(record, 8) + le(1, 4)
        }
        out += le(0x06054B50, 4) + le(0, 4) + le(zip64 ? 0xFFFF : entries.count, 2) + le(zip64 ? 0xFFFF : entries.count, 2)
            + le(zip64 ? full : central.count, 4) + le(zip64 ? full : cd, 4) + le(0, 2)
        return out
    }

    /// The entries of a small archive, through its central directory (torch.save leaves the
    /// sizes out of the local headers).
    static func entries(of data: Data) throws -> [(String, [UInt8])] {
        let b = [UInt8](data)
        func u(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
        let eocd = b.count - 22
        guard u(eocd, 4) == 0x06054B50 else { throw CocoaError(.fileReadCorruptFile) }
        var out: [(String, [UInt8])] = []
        var p = u(eocd + 16, 4)
        for _ in 0..<u(eocd + 10, 2) {
            let size = u(p + 24, 4), nameLength = u(p + 28, 2), local = u(p + 42, 4)
            let name = String(decoding: b[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            let start = local + 30 + u(local + 26, 2) + u(local + 28, 2)
            out.append((name, Array(b[start..<(start + size)])))
            p += 46 + nameLength + u(p + 30, 2) + u(p + 32, 2)
        }
        return out
    }
}
