import Foundation
import UniLIPCore
import UniLIPTestSupport
import XCTest

final class SafetensorsTests: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "safetensors-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func file(_ name: String) -> String { dir + "/" + name }

    func writeBytes(_ bytes: [UInt8], _ name: String) -> String {
        let path = file(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A file from a literal header and data bytes.
    func makeFile(header: String, data: [UInt8], name: String = "t.safetensors") -> String {
        let h = Array(header.utf8)
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes.append(contentsOf: $0) }
        return writeBytes(bytes + h + data, name)
    }

    func expectError(_ path: String, tensor: String? = nil, contains text: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SafetensorsFile(path: path)
            XCTFail("expected an error containing '\(text)'", file: file, line: line)
        } catch let error as SafetensorsError {
            XCTAssertEqual(error.path, path, file: file, line: line)
            if let tensor { XCTAssertEqual(error.tensor, tensor, "\(error)", file: file, line: line) }
            XCTAssertTrue(error.description.contains(text), "\(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
    }

    static let special: [Float] = [0, -0.0, 1, -1, 1.0 / 3, .pi, 65504, 65520, 1e5, -1e5, 6e-8, 1e-10,
                                   .infinity, -.infinity, .nan, 1 + 1.0 / 256, 1 + 3.0 / 256,
                                   .greatestFiniteMagnitude, .leastNormalMagnitude, Float(bitPattern: 0x0001_16C2)]

    func bitsEqual(_ a: Float, _ b: Float) -> Bool { (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern }

    // MARK: Round trips

    func testRoundTripF32() throws {
        let a = Tensor(Self.special, shape: [4, 5])
        let b = randn(3, 2, 7, seed: 3)
        let path = file("f32.safetensors")
        try SafetensorsWriter.write(["a": a, "b": b, "s": Tensor(scalar: 2.5), "z": Tensor(zeros: [0, 4])],
                                    to: path, metadata: ["format": "pt", "note": "quote \" and \\ and\nnewline"])
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.metadata, ["format": "pt", "note": "quote \" and \\ and\nnewline"])
        XCTAssertEqual(f.names, ["a", "b", "s", "z"])
        let ra = try f.tensor("a")
        XCTAssertEqual(ra.shape, [4, 5])
        for i in 0..<a.count { XCTAssertTrue(bitsEqual(ra.pointer[i], a.pointer[i]), "element \(i)") }
        XCTAssertEqual(try f.tensor("b").scalars, b.scalars)
        XCTAssertEqual(try f.tensor("s").shape, [])
        XCTAssertEqual(try f.tensor("s").item, 2.5)
        XCTAssertEqual(try f.tensor("z").shape, [0, 4])
        XCTAssertEqual(f.entries["a"]?.dtype, .f32)
        // The in-memory serialisation is byte-identical to the file.
        let mem = try SafetensorsWriter.serialize(["a": a, "b": b, "s": Tensor(scalar: 2.5), "z": Tensor(zeros: [0, 4])],
                                                  metadata: ["format": "pt", "note": "quote \" and \\ and\nnewline"])
        XCTAssertEqual(mem, try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testRoundTripF16() throws {
        let a = Tensor(Self.special, shape: [20])
        let path = file("f16.safetensors")
        try SafetensorsWriter.write(["a": a], to: path, dtype: .f16)
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.entries["a"]?.dtypeName, "F16")
        let r = try f.tensor("a")
        for i in 0..<a.count {
            let expected = Float(Float16(a.pointer[i]))
            XCTAssertTrue(bitsEqual(r.pointer[i], expected), "element \(i): \(r.pointer[i]) vs \(expected)")
        }
        // Overflow → inf, max stays max, NaN and infinities survive.
        XCTAssertEqual(r.pointer[6], 65504)
        XCTAssertEqual(r.pointer[7], .infinity)   // 65520 rounds up past the largest finite half
        XCTAssertEqual(r.pointer[8], .infinity)
        XCTAssertEqual(r.pointer[9], -.infinity)
        XCTAssertEqual(r.pointer[12], .infinity)
        XCTAssertEqual(r.pointer[13], -.infinity)
        XCTAssertTrue(r.pointer[14].isNaN)
        XCTAssertEqual(r.pointer[11], 0)          // underflow
        XCTAssertEqual(r.pointer[1].sign, .minus) // -0 kept
        // Values exactly representable in F16 round-trip exactly.
        let exact: [Float] = [0.5, -2, 1024, 0.099975586, 5.9604645e-08]
        try SafetensorsWriter.write(["e": Tensor(exact, shape: [5])], to: path, dtype: .f16)
        XCTAssertEqual(try SafetensorsFile(path: path).tensor("e").scalars, exact)
    }

    func testRoundTripBF16RoundsToNearestEven() throws {
        let a = Tensor(Self.special, shape: [20])
        let path = file("bf16.safetensors")
        try SafetensorsWriter.write(["a": a], to: path, dtype: .bf16)
        let r = try SafetensorsFile(path: path).tensor("a")
        XCTAssertEqual(r.pointer[2], 1)
        XCTAssertEqual(r.pointer[15], 1)                   // 1 + 2^-8 is a tie: to even (down)
        XCTAssertEqual(r.pointer[16], 1 + 2.0 / 128)       // 1 + 3·2^-8 is a tie: to even (up)
        XCTAssertEqual(r.pointer[17], .infinity)           // Float max rounds to inf
        XCTAssertEqual(r.pointer[12], .infinity)
        XCTAssertEqual(r.pointer[13], -.infinity)
        XCTAssertTrue(r.pointer[14].isNaN)
        XCTAssertEqual(r.pointer[1].sign, .minus)
        XCTAssertEqual(r.pointer[18], .leastNormalMagnitude)
        // Direct bit checks of the rounding.
        XCTAssertEqual(DType.bf16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80) // tie, even stays
        XCTAssertEqual(DType.bf16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82) // tie, odd rounds up
        XCTAssertEqual(DType.bf16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81) // above tie
        XCTAssertEqual(DType.bf16Bits(Float(bitPattern: 0x3F80_7FFF)), 0x3F80) // below tie
        XCTAssertTrue(DType.float(bf16Bits: DType.bf16Bits(Float(bitPattern: 0x7F80_0001))).isNaN) // signalling NaN stays NaN
        XCTAssertTrue(DType.float(bf16Bits: DType.bf16Bits(-.nan)).isNaN)
        // Every BF16 value survives F32 → BF16 → F32 unchanged.
        for bits in stride(from: 0, through: 0xFFFF, by: 1) {
            let x = DType.float(bf16Bits: UInt16(bits))
            if x.isNaN { continue }
            XCTAssertEqual(DType.bf16Bits(x), UInt16(bits))
        }
    }

    func testLargeTensorConversionMatchesScalarPath() throws {
        // Above the parallel grain, so the threaded loops run.
        let n = 70_000
        let t = randn(n, seed: 9, scale: 100)
        for dtype in [DType.f16, .bf16] {
            let path = file("big-\(dtype.rawValue).safetensors")
            try SafetensorsWriter.write(["t": t], to: path, dtype: dtype)
            let r = try SafetensorsFile(path: path).tensor("t")
            var wrong = 0
            for i in 0..<n {
                let expected = dtype == .f16 ? Float(Float16(t.pointer[i])) : DType.float(bf16Bits: DType.bf16Bits(t.pointer[i]))
                if r.pointer[i].bitPattern != expected.bitPattern { wrong += 1 }
            }
            XCTAssertEqual(wrong, 0, "\(dtype.rawValue): \(wrong) of \(n) values differ")
        }
    }

    // MARK: Reference file written by Python's safetensors

    func testReadsTorchWrittenValuesExactly() throws {
        let path = Fixtures.directory.appendingPathComponent("safetensors_reference.safetensors").path
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.metadata["generator"], "Tools/reference/fixtures/safetensors.py")
        var checked = 0
        for base in ["specials", "normal", "wide", "tiny"] {
            let src = try f.tensor("\(base).f32")
            for tag in ["f16", "bf16"] {
                let stored = try f.tensor("\(base).\(tag)")
                let widened = try f.tensor("\(base).\(tag).as_f32")
                XCTAssertEqual(f.entries["\(base).\(tag)"]?.dtypeName, tag.uppercased())
                XCTAssertEqual(stored.shape, widened.shape)
                XCTAssertEqual(stored.shape, src.shape)
                // Decoding: bit-identical to torch's widening.
                for i in 0..<stored.count {
                    XCTAssertTrue(bitsEqual(stored.pointer[i], widened.pointer[i]),
                                  "\(base).\(tag)[\(i)]: \(stored.pointer[i]) vs torch \(widened.pointer[i])")
                }
                // Encoding: our rounding of the F32 source gives torch's stored bits.
                let dtype: DType = tag == "f16" ? .f16 : .bf16
                let ours = dtype.encode(src.pointer, count: src.count)
                let (_, theirs) = try f.rawBytes("\(base).\(tag)")
                XCTAssertEqual(ours.count, theirs.count)
                for i in 0..<src.count {
                    let a = UInt16(ours[2 * i]) | UInt16(ours[2 * i + 1]) << 8
                    let b = UInt16(theirs[2 * i]) | UInt16(theirs[2 * i + 1]) << 8
                    if src.pointer[i].isNaN {
                        XCTAssertTrue(stored.pointer[i].isNaN)
                    } else {
                        XCTAssertEqual(a, b, "\(base).\(tag)[\(i)] from \(src.pointer[i])")
                    }
                }
                checked += stored.count
            }
        }
        XCTAssertGreaterThan(checked, 150)
        XCTAssertEqual(try f.tensor("scalar.f32").shape, [])
        XCTAssertEqual(try f.tensor("scalar.f32").item, 2.75)
        XCTAssertEqual(try f.tensor("empty.f32").shape, [0, 3])
        // The integer tensor is listed with its dtype but cannot be read as Float.
        XCTAssertEqual(f.entries["ids.i64"]?.dtypeName, "I64")
        XCTAssertEqual(f.entries["ids.i64"]?.shape, [2, 3])
        XCTAssertThrowsError(try f.tensor("ids.i64")) { error in
            let e = error as? SafetensorsError
            XCTAssertEqual(e?.tensor, "ids.i64")
            XCTAssertTrue("\(error)".contains("I64"), "\(error)")
            XCTAssertTrue("\(error)".contains("F32, F16 or BF16"), "\(error)")
        }
        XCTAssertThrowsError(try f.allTensors())
    }

    // MARK: Atomic writes

    func testAtomicWriteFailureKeepsOldFileAndRemovesTemporary() throws {
        let path = file("keep.safetensors")
        try SafetensorsWriter.write(["a": Tensor([1, 2, 3], shape: [3])], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: path) { sink in
            try sink.write([1, 2, 3, 4])
            throw Boom()
        })
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["keep.safetensors"])
        // The writer refuses the reserved name before touching anything.
        XCTAssertThrowsError(try SafetensorsWriter.write(["__metadata__": Tensor([1], shape: [1])], to: path))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        // Renaming over a folder fails; the temporary is removed.
        let folder = file("folder")
        try FileManager.default.createDirectory(atPath: folder + "/inner", withIntermediateDirectories: true)
        XCTAssertThrowsError(try SafetensorsWriter.write(["a": Tensor([1], shape: [1])], to: folder)) { error in
            XCTAssertEqual((error as? SafetensorsError)?.path, folder)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["folder", "keep.safetensors"])
        // A folder that does not exist.
        XCTAssertThrowsError(try SafetensorsWriter.write(["a": Tensor([1], shape: [1])], to: dir + "/no/such/x.safetensors"))
        // Replacing works and the new contents are complete.
        try SafetensorsWriter.write(["b": Tensor([4, 5], shape: [2])], to: path, dtype: .bf16)
        XCTAssertEqual(Array(try SafetensorsFile(path: path).entries.keys), ["b"])
    }

    // MARK: Validation

    func testValidationMessages() {
        let f32x2 = [UInt8](repeating: 0, count: 8)
        expectError(writeBytes([], "empty"), contains: "truncated")
        expectError(writeBytes([1, 2, 3], "short"), contains: "truncated")
        expectError(writeBytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B], "huge"), contains: "exceeds")
        expectError(writeBytes([100, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D], "trunc-header"), contains: "truncated")
        expectError(writeBytes([0, 0, 0, 0, 0, 0, 0, 0], "zero-header"), contains: "too small")
        expectError(makeFile(header: "[1,2]", data: []), contains: "not a JSON object")
        expectError(makeFile(header: "{\"a\": ", data: []), contains: "not valid UTF-8 JSON")
        // Invalid UTF-8 inside a key.
        do {
            var h: [UInt8] = Array("{\"x".utf8) + [0xC3, 0x28] + Array("\":{}}".utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes.append(contentsOf: $0) }
            expectError(writeBytes(bytes + h, "utf8"), contains: "UTF-8")
        }
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", data: f32x2),
                    contains: "after the JSON value")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "twice")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "non-negative integers")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "non-negative integers")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "non-negative integers")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "non-negative integers")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", data: f32x2),
                    tensor: "a", contains: "pair of integers")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data: f32x2),
                    tensor: "a", contains: "out of order")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", data: f32x2),
                    tensor: "a", contains: "past the end")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "needs 12 bytes")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}", data: f32x2),
                    contains: "overlap")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}", data: f32x2),
                    tensor: "a", contains: "unused bytes")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", data: f32x2),
                    contains: "trailing bytes")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "too many elements")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[1152921504606846976],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "too many elements")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", data: f32x2),
                    contains: "out of range")
        expectError(makeFile(header: "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "unknown dtype 'Q7'")
        expectError(makeFile(header: "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "a", contains: "dtype")
        expectError(makeFile(header: "{\"__metadata__\":{\"k\":1}}", data: []), contains: "not a string")
        expectError(makeFile(header: String(repeating: "[", count: 5000), data: []), contains: "nesting")
        expectError(file("does-not-exist"), contains: "cannot open")
        expectError(dir, contains: "not a regular file")
        // A wrong dtype for a tensor: F16 data where a size for F32 was declared.
        expectError(makeFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", data: f32x2),
                    tensor: "w", contains: "F32 [4] needs 16 bytes but data_offsets [0, 8] span 8")
    }

    func testAcceptedEdgeCases() throws {
        // Zero-size tensors (several at the same offset), padding spaces, an empty header object,
        // escapes in names, dtypes that are listed but not readable as Float.
        let header = "{\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
            + "\"z2\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[0,0]},"
            + "\"a\\u00e9\\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"i\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[4,7]},"
            + "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[7,8]}}   "
        var data: [UInt8] = []
        withUnsafeBytes(of: Float(1.5)) { data.append(contentsOf: $0) }
        data += [1, 2, 3, 1]
        let f = try SafetensorsFile(path: makeFile(header: header, data: data))
        XCTAssertEqual(Set(f.entries.keys), ["z1", "z2", "a\u{e9}\n", "i", "b"])
        XCTAssertEqual(try f.tensor("a\u{e9}\n").scalars, [1.5])
        XCTAssertEqual(try f.tensor("z2").shape, [3, 0])
        XCTAssertEqual(f.entries["i"]?.dtype, nil)
        XCTAssertThrowsError(try f.tensor("i"))
        XCTAssertThrowsError(try f.tensor("nope")) { XCTAssertEqual(($0 as? SafetensorsError)?.tensor, "nope") }
        let empty = try SafetensorsFile(path: makeFile(header: "{}      ", data: [], name: "e.safetensors"))
        XCTAssertTrue(empty.entries.isEmpty)
    }

    // MARK: Randomised corruption

    /// Loads `path` and reads every float tensor twice; returns true when it loaded. Any thrown
    /// error must be a SafetensorsError naming the file.
    func loadConsistently(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        do {
            let f = try SafetensorsFile(path: path)
            let size = f.fileSize
            var covered = 0
            for name in f.names {
                let e = f.entries[name]!
                XCTAssertLessThanOrEqual(e.end, size, file: file, line: line)
                covered += e.byteCount
                guard e.dtype != nil else {
                    XCTAssertThrowsError(try f.tensor(name), file: file, line: line)
                    continue
                }
                let a = try f.tensor(name)
                let b = try f.tensor(name)
                XCTAssertEqual(a.shape, e.shape, file: file, line: line)
                for i in 0..<a.count where !bitsEqual(a.pointer[i], b.pointer[i]) {
                    XCTFail("inconsistent reads of \(name)", file: file, line: line)
                    break
                }
            }
            XCTAssertLessThanOrEqual(covered, size, file: file, line: line)
            return true
        } catch let error as SafetensorsError {
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertFalse(error.reason.isEmpty, file: file, line: line)
            return false
        } catch {
            XCTFail("unexpected error type: \(error)", file: file, line: line)
            return false
        }
    }

    func testRandomisedCorruptionsNeverCrash() throws {
        let valid = try SafetensorsWriter.serialize([
            "alpha.weight": randn(3, 4, seed: 1),
            "beta.bias": randn(5, seed: 2),
            "gamma": Tensor(zeros: [0, 2]),
            "delta.scale": Tensor(scalar: 3),
        ], dtype: .f32, metadata: ["format": "pt"])
        let bf16 = try SafetensorsWriter.serialize(["x": randn(6, seed: 4), "y": randn(2, 2, seed: 5)], dtype: .bf16)
        let headerLength = Int(valid.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var rng = RandomGenerator(seed: 2024)
        var loaded = 0, rejected = 0
        let path = file("corrupt.safetensors")
        func attempt(_ bytes: [UInt8]) {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            if loadConsistently(path) { loaded += 1 } else { rejected += 1 }
        }
        let base = [UInt8](valid)
        XCTAssertTrue(loadConsistently(writeBytes(base, "valid.safetensors")))
        XCTAssertTrue(loadConsistently(writeBytes([UInt8](bf16), "valid16.safetensors")))

        // Truncation at every structural boundary and around it.
        var cuts = Set([0, 1, 7, 8, 9, 8 + headerLength / 2, 8 + headerLength - 1, 8 + headerLength,
                        8 + headerLength + 1, base.count - 1])
        for off in [0, 48, 68, 72] { cuts.insert(8 + headerLength + off) } // tensor boundaries
        for _ in 0..<60 { cuts.insert(rng.int(base.count)) }
        for cut in cuts.sorted() where cut < base.count { attempt(Array(base.prefix(cut))) }

        // Random byte flips in the header.
        for _ in 0..<150 {
            var b = base
            for _ in 0..<(1 + rng.int(3)) {
                b[8 + rng.int(headerLength)] = UInt8(truncatingIfNeeded: rng.next())
            }
            attempt(b)
        }
        // Header bytes replaced by JSON-significant characters (more likely to stay parseable).
        let significant = Array("{}[],:\"0123456789-. eE".utf8)
        for _ in 0..<100 {
            var b = base
            b[8 + rng.int(headerLength)] = significant[rng.int(significant.count)]
            attempt(b)
        }
        // Random byte flips in the data: must always load (values change, structure does not).
        for _ in 0..<40 {
            var b = base
            b[8 + headerLength + rng.int(base.count - 8 - headerLength)] ^= UInt8(1 + rng.int(255))
            attempt(b)
            XCTAssertTrue(loadConsistently(path))
        }
        // Random header-length values.
        for i in 0..<40 {
            var b = base
            let v: UInt64 = i < 20 ? UInt64(rng.int(base.count + 16)) : rng.next()
            withUnsafeBytes(of: v.littleEndian) { for k in 0..<8 { b[k] = $0[k] } }
            attempt(b)
        }
        // Garbage files of random lengths, and garbage after a plausible length.
        for i in 0..<40 {
            var b = (0..<rng.int(200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if i % 2 == 0, b.count >= 8 {
                withUnsafeBytes(of: UInt64(rng.int(b.count)).littleEndian) { for k in 0..<8 { b[k] = $0[k] } }
            }
            attempt(b)
        }
        // Appended bytes and duplicated data.
        attempt(base + [0])
        attempt(base + base)
        attempt([])
        XCTAssertGreaterThan(loaded, 40)
        XCTAssertGreaterThan(rejected, 200)
        XCTAssertGreaterThanOrEqual(loaded + rejected, 400)
    }

    // MARK: JSON

    func testJSONParser() throws {
        func parse(_ s: String) throws -> SafetensorsJSON { try SafetensorsJSON.parse(Data(s.utf8)) }
        XCTAssertEqual(try parse(" {\"a\": [1, -2, 3.5, true, false, null, \"x\\u00e9\\ud83d\\ude00\"]} "),
                       .object([("a", .array([.integer(1), .integer(-2), .number(3.5), .bool(true), .bool(false),
                                             .null, .string("x\u{e9}\u{1F600}")]))]))
        XCTAssertEqual(try parse("1e3"), .number(1000))
        for bad in ["", "{", "{\"a\"}", "[1,]", "01", "\"\\ud800\"", "\"\\x\"", "tru", "{\"a\":1,}", "\"a\nb\"", "-", "1.", "[1 2]"] {
            XCTAssertThrowsError(try parse(bad), "accepted \(bad)")
        }
        XCTAssertEqual(SafetensorsJSON.quote("a\"b\\c\n\u{01}"), "\"a\\\"b\\\\c\\n\\u0001\"")
        XCTAssertEqual(try parse(SafetensorsJSON.quote("tab\there \u{1F600} \u{7F}")), .string("tab\there \u{1F600} \u{7F}"))
    }
}
