import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A weights-file error (safetensors or PyTorch `.pth`). Every message names the file and, where
/// there is one, the tensor.
public typealias SafetensorsError = WeightsFileError

public struct WeightsFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let tensor: String?
    public let reason: String

    public init(path: String, tensor: String? = nil, _ reason: String) {
        self.path = path
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String {
        if let tensor { return "\(path): tensor '\(tensor)': \(reason)" }
        return "\(path): \(reason)"
    }
}

/// One tensor's entry in a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    /// The dtype as written in the file (F32, F16, BF16, I64, …).
    public let dtypeName: String
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let begin: Int
    public let end: Int

    public init(name: String, dtypeName: String, shape: [Int], begin: Int, end: Int) {
        self.name = name
        self.dtypeName = dtypeName
        self.shape = shape
        self.begin = begin
        self.end = end
    }

    /// The dtype when it is one this project computes with.
    public var dtype: DType? { DType(rawValue: dtypeName) }
    /// Element count (validated against overflow when the header was read).
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}

/// A read-only, memory-mapped safetensors file. Tensors are converted to Float32 on access.
///
/// The header is validated completely on open: UTF-8 JSON object, integer shapes, known dtypes,
/// byte sizes equal to dtype × shape, and data offsets that tile the data section exactly
/// (sorted, no gaps, no overlaps, nothing past the end, no trailing bytes), as the reference
/// implementation requires.
public final class SafetensorsFile: @unchecked Sendable {
    /// Largest header accepted; real headers are kilobytes to a few megabytes.
    public static let maxHeaderBytes = 100 << 20

    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    /// Total size of the file in bytes.
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer
    private let dataOffset: Int

    /// Names in file order (by data offset, then name).
    public var names: [String] {
        entries.values.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }.map(\.name)
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SafetensorsError(path: path, "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError(path: path, "cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SafetensorsError(path: path, "not a regular file")
        }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw SafetensorsError(path: path, "truncated: \(size) bytes, shorter than the 8-byte header length")
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw SafetensorsError(path: path, "cannot memory-map (\(String(cString: strerror(errno))))")
        }
        do {
            let headerLength = UInt64(littleEndian: map.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(Self.maxHeaderBytes) else {
                throw SafetensorsError(path: path, "header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit (not a safetensors file?)")
            }
            let n = Int(headerLength)
            guard n >= 2 else {
                throw SafetensorsError(path: path, "header length \(n) is too small for a JSON object")
            }
            guard 8 + n <= size else {
                throw SafetensorsError(path: path, "truncated: header length is \(n) bytes but only \(size - 8) bytes follow it")
            }
            let header = UnsafeRawBufferPointer(start: map + 8, count: n)
            let (entries, metadata) = try Self.parseHeader(header, path: path, dataBytes: size - 8 - n)
            self.entries = entries
            self.metadata = metadata
            self.base = map
            self.fileSize = size
            self.dataOffset = 8 + n
        } catch {
            munmap(map, size)
            throw error
        }
    }

    deinit { munmap(base, fileSize) }

    /// Parses and validates a header against a data section of `dataBytes` bytes.
    public static func parseHeader(_ header: UnsafeRawBufferPointer, path: String, dataBytes: Int) throws
        -> ([String: SafetensorsEntry], [String: String]) {
        let members: [(String, SafetensorsJSON)]
        do {
            let value = try SafetensorsJSON.parse(header)
            guard case .object(let m) = value else {
                throw SafetensorsError(path: path, "header is not a JSON object")
            }
            members = m
        } catch let error as SafetensorsJSON.ParseError {
            throw SafetensorsError(path: path, "header is not valid UTF-8 JSON: \(error.message) at byte \(error.offset)")
        }
        var entries: [String: SafetensorsEntry] = [:]
        var metadata: [String: String] = [:]
        var sawMetadata = false
        for (name, value) in members {
            if name == "__metadata__" {
                guard !sawMetadata else { throw SafetensorsError(path: path, "__metadata__ appears twice") }
                sawMetadata = true
                guard case .object(let m) = value else {
                    throw SafetensorsError(path: path, "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard case .string(let s) = v else {
                        throw SafetensorsError(path: path, "__metadata__ value for '\(k)' is not a string")
                    }
                    guard metadata[k] == nil else {
                        throw SafetensorsError(path: path, "__metadata__ key '\(k)' appears twice")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard entries[name] == nil else {
                throw SafetensorsError(path: path, tensor: name, "the name appears twice in the header")
            }
            entries[name] = try parseEntry(name: name, value: value, path: path, dataBytes: dataBytes)
        }
        try checkLayout(entries, path: path, dataBytes: dataBytes)
        return (entries, metadata)
    }

    private static func parseEntry(name: String, value: SafetensorsJSON, path: String, dataBytes: Int) throws
        -> SafetensorsEntry {
        guard case .object(let fields) = value else {
            throw SafetensorsError(path: path, tensor: name, "entry is not an object")
        }
        func field(_ key: String) -> SafetensorsJSON? { fields.first { $0.0 == key }?.1 }
        guard case .string(let dtype)? = field("dtype") else {
            throw SafetensorsError(path: path, tensor: name, "missing or non-string dtype")
        }
        guard let bits = DType.bitSize(ofSafetensorsName: dtype) else {
            throw SafetensorsError(path: path, tensor: name, "unknown dtype '\(dtype)'")
        }
        guard case .array(let rawShape)? = field("shape"), let shape = integers(rawShape),
              shape.allSatisfy({ $0 >= 0 }) else {
            throw SafetensorsError(path: path, tensor: name, "shape is not a list of non-negative integers")
        }
        guard case .array(let rawOffsets)? = field("data_offsets"), let offsets = integers(rawOffsets),
              offsets.count == 2 else {
            throw SafetensorsError(path: path, tensor: name, "data_offsets is not a pair of integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw SafetensorsError(path: path, tensor: name, "data_offsets [\(begin), \(end)] are out of order")
        }
        guard end <= dataBytes else {
            throw SafetensorsError(path: path, tensor: name,
                                   "data_offsets end \(end) is past the end of the data section (\(dataBytes) bytes); the file may be truncated")
        }
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw SafetensorsError(path: path, tensor: name, "shape \(shape) has too many elements")
            }
            count = c
        }
        let (totalBits, overflow) = count.multipliedReportingOverflow(by: bits)
        guard !overflow else {
            throw SafetensorsError(path: path, tensor: name, "shape \(shape) has too many elements")
        }
        let bytes = totalBits / 8 + (totalBits % 8 == 0 ? 0 : 1)
        guard bytes == end - begin else {
            throw SafetensorsError(path: path, tensor: name,
                                   "\(dtype) \(shape) needs \(bytes) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return SafetensorsEntry(name: name, dtypeName: dtype, shape: shape, begin: begin, end: end)
    }

    /// The tensors must tile the data section: sorted by offset, each starts where the previous
    /// one ended, and the last ends at the end of the file.
    private static func checkLayout(_ entries: [String: SafetensorsEntry], path: String, dataBytes: Int) throws {
        let sorted = entries.values.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        var previous: String? = nil
        for e in sorted {
            if e.begin < position {
                throw SafetensorsError(path: path, tensor: e.name,
                                       "data_offsets [\(e.begin), \(e.end)] overlap tensor '\(previous ?? "")' (which ends at \(position))")
            }
            if e.begin > position {
                throw SafetensorsError(path: path, tensor: e.name,
                                       "data_offsets start at \(e.begin) but the previous tensor ends at \(position): \(e.begin - position) unused bytes")
            }
            position = e.end
            if e.end > e.begin { previous = e.name }
        }
        if position != dataBytes {
            throw SafetensorsError(path: path,
                                   "the tensors cover \(position) bytes but the data section holds \(dataBytes) (trailing bytes or a damaged header)")
        }
    }

    private static func integers(_ values: [SafetensorsJSON]) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for v in values {
            guard case .integer(let n) = v else { return nil }
            out.append(n)
        }
        return out
    }

    /// The entry for `name`, or an error naming the file and the tensor.
    public func entry(_ name: String) throws -> SafetensorsEntry {
        guard let entry = entries[name] else {
            throw SafetensorsError(path: path, tensor: name, "no such tensor in the file")
        }
        return entry
    }

    /// The raw bytes of a tensor, still in its stored dtype. Valid while this object lives.
    public func rawBytes(_ name: String) throws -> (SafetensorsEntry, UnsafeRawBufferPointer) {
        let entry = try entry(name)
        let start = UnsafeRawPointer(base) + dataOffset + entry.begin
        return (entry, UnsafeRawBufferPointer(start: start, count: entry.byteCount))
    }

    /// The stored dtype of `name` when it is F32, F16 or BF16; otherwise an error saying which
    /// dtype was found.
    public func floatDType(_ name: String) throws -> DType {
        let entry = try entry(name)
        guard let dtype = entry.dtype else {
            throw SafetensorsError(path: path, tensor: name,
                                   "dtype \(entry.dtypeName) cannot be read as floating point (expected F32, F16 or BF16)")
        }
        return dtype
    }

    /// Converts the tensor to Float32 into `destination`, which must hold `entry.count` values.
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        let dtype = try floatDType(name)
        let (entry, bytes) = try rawBytes(name)
        if entry.count > 0, let src = bytes.baseAddress {
            dtype.decode(src, into: destination, count: entry.count)
        }
    }

    /// The tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        let entry = try entry(name)
        _ = try floatDType(name)
        let out = Tensor(uninitialized: entry.shape)
        try read(name, into: out.pointer)
        return out
    }

    /// Every tensor, converted to Float32 (fails on a tensor of another dtype).
    public func allTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names { out[name] = try tensor(name) }
        return out
    }
}

/// Writes safetensors files atomically: a temporary file in the same folder, synced, then renamed.
public enum SafetensorsWriter {
    /// Writes `tensors` in name order, converted to `dtype` (F32, F16 or BF16, rounding to nearest
    /// even). A failure leaves any existing file at `path` untouched.
    public static func write(_ tensors: [String: Tensor], to path: String, dtype: DType = .f32,
                             metadata: [String: String] = [:]) throws {
        let (header, names) = try makeHeader(tensors, dtype: dtype, metadata: metadata, path: path)
        try AtomicFile.write(to: path) { sink in
            try sink.write(header)
            // Convert in bounded chunks so a large checkpoint never needs a second full copy.
            let chunk = 1 << 20
            var buffer = [UInt8](repeating: 0, count: dtype == .f32 ? 0 : chunk * dtype.byteSize)
            for name in names {
                guard let t = tensors[name] else { continue }
                if dtype == .f32 {
                    try sink.write(UnsafeRawBufferPointer(start: t.pointer, count: t.count * 4))
                    continue
                }
                var done = 0
                while done < t.count {
                    let n = min(chunk, t.count - done)
                    try buffer.withUnsafeMutableBytes { raw in
                        guard let dst = raw.baseAddress else { return }
                        dtype.encode(t.pointer + done, count: n, into: dst)
                        try sink.write(UnsafeRawBufferPointer(start: dst, count: n * dtype.byteSize))
                    }
                    done += n
                }
            }
        }
    }

    /// The complete file contents. Tensors are laid out in name order; the header is padded with
    /// spaces to a multiple of 8 bytes so data stays aligned.
    public static func serialize(_ tensors: [String: Tensor], dtype: DType = .f32,
                                 metadata: [String: String] = [:], path: String = "<memory>") throws -> Data {
        let (header, names) = try makeHeader(tensors, dtype: dtype, metadata: metadata, path: path)
        var out = Data(header)
        for name in names {
            guard let t = tensors[name] else { continue }
            out.append(contentsOf: dtype.encode(t.pointer, count: t.count))
        }
        return out
    }

    /// The 8-byte length followed by the padded JSON header, and the tensor names in data order.
    static func makeHeader(_ tensors: [String: Tensor], dtype: DType, metadata: [String: String],
                           path: String) throws -> ([UInt8], [String]) {
        let names = tensors.keys.sorted()
        var json = "{"
        var first = true
        func member(_ key: String, _ value: String) {
            if !first { json += "," }
            first = false
            json += SafetensorsJSON.quote(key) + ":" + value
        }
        if !metadata.isEmpty {
            let m = metadata.keys.sorted().map { SafetensorsJSON.quote($0) + ":" + SafetensorsJSON.quote(metadata[$0] ?? "") }
            member("__metadata__", "{" + m.joined(separator: ",") + "}")
        }
        var offset = 0
        for name in names {
            guard name != "__metadata__" else {
                throw SafetensorsError(path: path, tensor: name, "reserved tensor name")
            }
            guard let t = tensors[name] else { continue }
            let bytes = t.count * dtype.byteSize
            let shape = t.shape.map(String.init).joined(separator: ",")
            member(name, "{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        return (out, names)
    }
}

/// Atomic file replacement: write a temporary sibling, fsync it, rename over the target.
/// A failure (a full disk, a throwing writer, say) leaves any existing file untouched and
/// removes the temporary.
public enum AtomicFile {
    /// Receives the new contents in pieces.
    public struct Sink {
        let fd: Int32
        let path: String

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard let base = bytes.baseAddress else { return }
            var written = 0
            while written < bytes.count {
                let n = Glibc.write(fd, base + written, bytes.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafetensorsError(path: path, "write failed (\(String(cString: strerror(errno))))")
                }
                if n == 0 { throw SafetensorsError(path: path, "write made no progress") }
                written += n
            }
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }
    }

    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }

    /// Runs `body` to produce the contents, then replaces `path` with them in one rename.
    public static func write(to path: String, _ body: (Sink) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafetensorsError(path: path, "cannot create temporary file \(tmp) (\(String(cString: strerror(errno))))")
        }
        var closed = false
        do {
            try body(Sink(fd: fd, path: path))
            guard fsync(fd) == 0 else {
                throw SafetensorsError(path: path, "fsync failed (\(String(cString: strerror(errno))))")
            }
            closed = true
            guard close(fd) == 0 else {
                throw SafetensorsError(path: path, "close failed (\(String(cString: strerror(errno))))")
            }
            guard rename(tmp, path) == 0 else {
                throw SafetensorsError(path: path, "cannot replace the file (\(String(cString: strerror(errno))))")
            }
        } catch {
            if !closed { close(fd) }
            unlink(tmp)
            throw error
        }
        syncDirectory(of: path)
    }

    /// Makes the rename itself durable; best effort.
    private static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// The JSON used by safetensors headers and Hugging Face index files, parsed strictly: UTF-8
/// only, object members kept in order (so duplicates can be detected), integers kept exact,
/// nesting depth bounded so hostile input cannot exhaust the stack.
public indirect enum SafetensorsJSON: Equatable, Sendable {
    case object([(String, SafetensorsJSON)])
    case array([SafetensorsJSON])
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null

    public static func == (a: SafetensorsJSON, b: SafetensorsJSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let message: String
        public let offset: Int
        public var description: String { "\(message) at byte \(offset)" }
    }

    public static let maxDepth = 64

    /// The member `key` of an object (the first, if repeated).
    public subscript(key: String) -> SafetensorsJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    public static func parse(_ data: Data) throws -> SafetensorsJSON {
        try data.withUnsafeBytes { try parse($0) }
    }

    /// Parses one JSON value; only whitespace may follow it.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> SafetensorsJSON {
        var p = Parser(bytes: bytes)
        p.skipWhitespace()
        let value = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.i == bytes.count else { throw p.error("unexpected content after the JSON value") }
        return value
    }

    /// A JSON string literal for `s`.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        func error(_ message: String) -> ParseError { ParseError(message: message, offset: i) }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipWhitespace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            }
        }

        mutating func expect(_ c: UInt8) throws {
            guard peek == c else { throw error("expected '\(Character(Unicode.Scalar(c)))'") }
            i += 1
        }

        mutating func value(depth: Int) throws -> SafetensorsJSON {
            guard depth < SafetensorsJSON.maxDepth else { throw error("nesting deeper than \(SafetensorsJSON.maxDepth)") }
            guard let c = peek else { throw error("unexpected end of input") }
            switch c {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, SafetensorsJSON)] = []
                skipWhitespace()
                if peek == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard peek == UInt8(ascii: "\"") else { throw error("expected a string key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"))
                    skipWhitespace()
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return .object(members)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [SafetensorsJSON] = []
                skipWhitespace()
                if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true"); return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false"); return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try number()
            default:
                throw error("unexpected character 0x\(String(c, radix: 16))")
            }
        }

        mutating func literal(_ word: String) throws {
            for b in word.utf8 {
                guard peek == b else { throw error("invalid literal") }
                i += 1
            }
        }

        mutating func number() throws -> SafetensorsJSON {
            let start = i
            if peek == UInt8(ascii: "-") { i += 1 }
            guard let first = peek, first >= 0x30, first <= 0x39 else { throw error("invalid number") }
            if first == 0x30 {
                i += 1
            } else {
                while let d = peek, d >= 0x30, d <= 0x39 { i += 1 }
            }
            var isInteger = true
            if peek == UInt8(ascii: ".") {
                isInteger = false
                i += 1
                guard let d = peek, d >= 0x30, d <= 0x39 else { throw error("invalid number") }
                while let d = peek, d >= 0x30, d <= 0x39 { i += 1 }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                isInteger = false
                i += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
                guard let d = peek, d >= 0x30, d <= 0x39 else { throw error("invalid number") }
                while let d = peek, d >= 0x30, d <= 0x39 { i += 1 }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            if isInteger {
                guard let n = Int(text) else { throw error("integer \(text.prefix(32)) out of range") }
                return .integer(n)
            }
            guard let d = Double(text) else { throw error("invalid number") }
            return .number(d)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw error("invalid \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var scalars = String.UnicodeScalarView()
            var runStart = i
            func flushRun(_ end: Int) throws {
                guard end > runStart else { return }
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<end])
                guard let s = String(validating: run, as: UTF8.self) else {
                    throw ParseError(message: "string is not valid UTF-8", offset: runStart)
                }
                scalars.append(contentsOf: s.unicodeScalars)
            }
            while true {
                guard let c = peek else { throw error("unterminated string") }
                if c == UInt8(ascii: "\"") {
                    try flushRun(i)
                    i += 1
                    return String(scalars)
                }
                if c < 0x20 { throw error("control character in string") }
                if c != UInt8(ascii: "\\") { i += 1; continue }
                try flushRun(i)
                i += 1
                guard let e = peek else { throw error("unterminated escape") }
                i += 1
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v) {
                        guard i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate")
                        }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(v) else { throw error("unpaired surrogate") }
                    scalars.append(u)
                default:
                    throw error("invalid escape")
                }
                runStart = i
            }
        }
    }
}
