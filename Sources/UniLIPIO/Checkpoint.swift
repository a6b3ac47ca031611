import Foundation
import UniLIPCore

/// Why a checkpoint could not be opened or loaded. Safetensors format problems are reported as
/// `SafetensorsError` instead.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The checkpoint's keys do not match the parameters; the report lists every problem.
    case mismatch(path: String, report: LoadReport)
    /// A shard named by an index file does not exist.
    case missingShard(index: String, shard: String, tensors: [String])
    /// An index file that is unreadable or inconsistent with its shards.
    case invalidIndex(path: String, reason: String)
    /// The same parameter name appears twice in the list to load into.
    case duplicateParameter(String)
    /// Two checkpoint keys rename to the same name, or a rule is invalid.
    case rename(path: String, reason: String)

    public var description: String {
        switch self {
        case let .mismatch(path, report):
            return "\(path): checkpoint does not match the parameters: \(report)"
        case let .missingShard(index, shard, tensors):
            let list = tensors.count <= 20 ? tensors.joined(separator: ", ")
                : tensors.prefix(20).joined(separator: ", ") + ", … (\(tensors.count) in all)"
            return "\(index): shard file '\(shard)' is missing; it should hold \(tensors.count) tensor(s): \(list)"
        case let .invalidIndex(path, reason):
            return "\(path): invalid index: \(reason)"
        case let .duplicateParameter(name):
            return "parameter '\(name)' appears twice in the list to load into"
        case let .rename(path, reason):
            return "\(path): \(reason)"
        }
    }
}

/// Which mismatches between a checkpoint and the parameters are tolerated, and how checkpoint
/// keys are renamed first. Wrong shapes and non-float dtypes are never tolerated.
public struct LoadOptions: Sendable, Equatable {
    public var rules: RenameRules
    /// Parameters that the checkpoint lacks keep their values.
    public var allowMissing: Bool
    /// Checkpoint tensors that match no parameter are skipped.
    public var allowUnexpected: Bool

    public init(rules: RenameRules = [], allowMissing: Bool = false, allowUnexpected: Bool = false) {
        self.rules = rules
        self.allowMissing = allowMissing
        self.allowUnexpected = allowUnexpected
    }

    public static let strict = LoadOptions()
}

/// The outcome of matching checkpoint tensors (after renaming) against parameters.
public struct LoadReport: Equatable, Sendable, CustomStringConvertible {
    public struct ShapeMismatch: Equatable, Sendable {
        public let name: String
        public let expected: [Int]
        public let found: [Int]

        public init(name: String, expected: [Int], found: [Int]) {
            self.name = name
            self.expected = expected
            self.found = found
        }
    }

    public struct DTypeMismatch: Equatable, Sendable {
        public let name: String
        public let dtype: String

        public init(name: String, dtype: String) {
            self.name = name
            self.dtype = dtype
        }
    }

    /// Parameters filled from the checkpoint, in parameter order.
    public var loaded: [String] = []
    /// Parameters the checkpoint does not provide, in parameter order.
    public var missing: [String] = []
    /// Checkpoint tensors (renamed) that match no parameter, sorted.
    public var unexpected: [String] = []
    /// Matching names whose shapes differ.
    public var wrongShape: [ShapeMismatch] = []
    /// Matching names whose stored dtype cannot be read as floating point.
    public var wrongDType: [DTypeMismatch] = []
    /// New name → checkpoint key, for the tensors whose name a rule changed.
    public var renamed: [String: String] = [:]

    public init() {}

    /// True when nothing is missing, unexpected or mismatched.
    public var isClean: Bool {
        missing.isEmpty && unexpected.isEmpty && wrongShape.isEmpty && wrongDType.isEmpty
    }

    /// Whether `options` accept this report.
    public func isAcceptable(under options: LoadOptions) -> Bool {
        wrongShape.isEmpty && wrongDType.isEmpty
            && (options.allowMissing || missing.isEmpty)
            && (options.allowUnexpected || unexpected.isEmpty)
    }

    private func source(_ name: String) -> String {
        guard let key = renamed[name] else { return "" }
        return " (checkpoint key '\(key)')"
    }

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing") }
        if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected") }
        if !wrongShape.isEmpty { parts.append("\(wrongShape.count) with the wrong shape") }
        if !wrongDType.isEmpty { parts.append("\(wrongDType.count) with a non-float dtype") }
        if parts.isEmpty { return "\(loaded.count) loaded, no problems" }
        var lines = [parts.joined(separator: ", ") + " (\(loaded.count) matched)"]
        for name in missing { lines.append("  missing:     \(name)") }
        for name in unexpected { lines.append("  unexpected:  \(name)\(source(name))") }
        for m in wrongShape {
            lines.append("  wrong shape: \(m.name)\(source(m.name)): parameter \(m.expected), checkpoint \(m.found)")
        }
        for m in wrongDType {
            lines.append("  wrong dtype: \(m.name)\(source(m.name)): stored as \(m.dtype), expected F32, F16 or BF16")
        }
        return lines.joined(separator: "\n")
    }
}

/// A checkpoint: one safetensors file, the shards listed by a Hugging Face
/// `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: shard file}}`),
/// or a PyTorch `torch.save` file (.pth/.pt/.bin/.ckpt, read by `TorchCheckpoint`).
public final class Checkpoint: @unchecked Sendable {
    /// The path given: a .safetensors file, an index .json, a folder holding either, or a .pth.
    public let path: String
    /// The opened files; one unless sharded.
    public let files: [SafetensorsFile]
    /// Tensor name → index into `files`.
    public let locations: [String: Int]
    /// True when opened through an index file.
    public let isSharded: Bool
    /// The PyTorch checkpoint, when `path` is one; `files` is then empty.
    public let torch: TorchCheckpoint?

    public static let torchExtensions: Set<String> = ["pth", "pt", "bin", "ckpt"]

    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    /// Opens and validates every file of the checkpoint (headers only; data stays mapped).
    /// `key` picks the state dict inside a PyTorch checkpoint (see `TorchCheckpoint`).
    public init(path: String, key: String? = nil) throws {
        var resolved = path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let index = (path as NSString).appendingPathComponent(Self.indexFileName)
            let single = (path as NSString).appendingPathComponent(Self.singleFileName)
            if FileManager.default.fileExists(atPath: index) {
                resolved = index
            } else if FileManager.default.fileExists(atPath: single) {
                resolved = single
            } else {
                throw CheckpointError.invalidIndex(path: path,
                    reason: "folder holds neither \(Self.indexFileName) nor \(Self.singleFileName)")
            }
        }
        self.path = resolved
        if Self.torchExtensions.contains((resolved as NSString).pathExtension.lowercased()) {
            let pth = try TorchCheckpoint(path: resolved, key: key)
            torch = pth
            files = []
            locations = Dictionary(uniqueKeysWithValues: pth.names.map { ($0, 0) })
            isSharded = false
            return
        }
        torch = nil
        if let key {
            throw CheckpointError.invalidIndex(path: resolved, reason: "key '\(key)' applies only to PyTorch checkpoints")
        }
        if resolved.hasSuffix(".json") {
            (files, locations) = try Self.openIndex(resolved)
            isSharded = true
        } else {
            let file = try SafetensorsFile(path: resolved)
            files = [file]
            locations = file.entries.mapValues { _ in 0 }
            isSharded = false
        }
    }

    private static func openIndex(_ path: String) throws -> ([SafetensorsFile], [String: Int]) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError.invalidIndex(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        let json: SafetensorsJSON
        do {
            json = try SafetensorsJSON.parse(data)
        } catch {
            throw CheckpointError.invalidIndex(path: path, reason: "not valid JSON: \(error)")
        }
        guard case .object(let map)? = json["weight_map"] else {
            throw CheckpointError.invalidIndex(path: path, reason: "no \"weight_map\" object")
        }
        var shardOf: [String: String] = [:]
        for (tensor, value) in map {
            guard case .string(let shard) = value else {
                throw CheckpointError.invalidIndex(path: path, reason: "weight_map entry '\(tensor)' is not a file name")
            }
            guard shardOf[tensor] == nil else {
                throw CheckpointError.invalidIndex(path: path, reason: "weight_map lists '\(tensor)' twice")
            }
            guard !shard.isEmpty, !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                throw CheckpointError.invalidIndex(path: path,
                    reason: "weight_map entry '\(tensor)' names '\(shard)', which is not a file beside the index")
            }
            shardOf[tensor] = shard
        }
        var tensorsOf: [String: [String]] = [:]
        for (tensor, shard) in shardOf { tensorsOf[shard, default: []].append(tensor) }
        let shards = tensorsOf.keys.sorted()
        let folder = (path as NSString).deletingLastPathComponent
        // Report a missing shard before opening any, so the error names what it should hold.
        for shard in shards {
            let shardPath = (folder as NSString).appendingPathComponent(shard)
            if !FileManager.default.fileExists(atPath: shardPath) {
                throw CheckpointError.missingShard(index: path, shard: shard, tensors: (tensorsOf[shard] ?? []).sorted())
            }
        }
        var files: [SafetensorsFile] = []
        var locations: [String: Int] = [:]
        for shard in shards {
            let file = try SafetensorsFile(path: (folder as NSString).appendingPathComponent(shard))
            let expected = (tensorsOf[shard] ?? []).sorted()
            let absent = expected.filter { file.entries[$0] == nil }
            if !absent.isEmpty {
                throw CheckpointError.invalidIndex(path: path,
                    reason: "shard '\(shard)' lacks \(absent.count) tensor(s) the weight_map assigns to it: \(absent.joined(separator: ", "))")
            }
            for name in expected { locations[name] = files.count }
            files.append(file)
        }
        return (files, locations)
    }

    /// Every tensor name, sorted.
    public var names: [String] { locations.keys.sorted() }

    /// The file holding `name` and its header entry (safetensors checkpoints only).
    public func entry(_ name: String) throws -> (file: SafetensorsFile, entry: SafetensorsEntry) {
        guard let i = locations[name], i < files.count else {
            throw SafetensorsError(path: path, tensor: name, "no such tensor in the checkpoint")
        }
        let file = files[i]
        return (file, try file.entry(name))
    }

    /// The stored dtype name and shape of `name`, and its size in bytes, in either format.
    public func describe(_ name: String) throws -> (dtypeName: String, shape: [Int], bytes: Int) {
        if let torch {
            let info = try torch.info(name)
            return (info.dtypeName, info.shape, info.byteCount)
        }
        let e = try entry(name).entry
        return (e.dtypeName, e.shape, e.byteCount)
    }

    /// Converts `name` to Float32 into `destination`, which must hold its element count.
    public func read(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        if let torch { return try torch.read(name, into: destination) }
        try entry(name).file.read(name, into: destination)
    }

    /// The tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        if let torch { return try torch.tensor(named: name) }
        return try entry(name).file.tensor(name)
    }

    /// Matches the checkpoint against `parameters` without copying anything.
    public func match(_ parameters: [(String, Tensor)], rules: RenameRules = []) throws -> LoadReport {
        var seen = Set<String>()
        for (name, _) in parameters where !seen.insert(name).inserted {
            throw CheckpointError.duplicateParameter(name)
        }
        let byName: [String: String]
        do {
            byName = try rules.compiled().rename(names)
        } catch let error as RenameError {
            throw CheckpointError.rename(path: path, reason: error.message)
        }
        var report = LoadReport()
        for (new, key) in byName where new != key { report.renamed[new] = key }
        for (name, parameter) in parameters {
            guard let key = byName[name] else {
                report.missing.append(name)
                continue
            }
            let entry = try describe(key)
            if entry.shape != parameter.shape {
                report.wrongShape.append(.init(name: name, expected: parameter.shape, found: entry.shape))
            } else if DType(rawValue: entry.dtypeName) == nil {
                report.wrongDType.append(.init(name: name, dtype: entry.dtypeName))
            } else {
                report.loaded.append(name)
            }
        }
        report.unexpected = byName.keys.filter { !seen.contains($0) }.sorted()
        return report
    }

    /// Copies the checkpoint into `parameters` (converting F16/BF16 to F32), overwriting each
    /// parameter's storage in place like `Tensor.assign`. Everything is
    /// checked before any value is written: on a mismatch the options do not allow, nothing is
    /// changed and the error lists every missing, unexpected and wrong-shape name.
    @discardableResult
    public func load(into parameters: [(String, Tensor)], options: LoadOptions = .strict) throws -> LoadReport {
        try load(into: parameters, options: options, keepingStored: { _, _ in false })
    }

    /// `load(into:options:)` for frozen inference weights: each loaded parameter that `keep`
    /// accepts and whose stored dtype is F16 or BF16 is not converted but keeps the mapped
    /// bytes (`Tensor.store`), decoded by the ops per use; the rest are converted to Float32 as
    /// usual. The parameters must not take gradients. PyTorch checkpoints are always converted.
    @discardableResult
    public func load(into parameters: [(String, Tensor)], options: LoadOptions = .strict,
                     keepingStored keep: (String, Tensor) -> Bool) throws -> LoadReport {
        let report = try match(parameters, rules: options.rules)
        guard report.isAcceptable(under: options) else {
            throw CheckpointError.mismatch(path: path, report: report)
        }
        let loaded = Set(report.loaded)
        for (name, parameter) in parameters where loaded.contains(name) {
            let key = report.renamed[name] ?? name
            if torch == nil, keep(name, parameter) {
                let (file, entry) = try self.entry(key)
                if let dtype = entry.dtype, dtype != .f32, entry.count > 0 {
                    let (_, bytes) = try file.rawBytes(key)
                    guard let base = bytes.baseAddress else {
                        throw SafetensorsError(path: file.path, tensor: key, "no data")
                    }
                    parameter.store(StoredValues(dtype: dtype, bytes: base, count: entry.count, owner: file))
                    continue
                }
            }
            try read(key, into: parameter.pointer)
        }
        return report
    }

    /// Opens `path` and loads it into `parameters`.
    @discardableResult
    public static func load(_ path: String, key: String? = nil, into parameters: [(String, Tensor)],
                            options: LoadOptions = .strict) throws -> LoadReport {
        try Checkpoint(path: path, key: key).load(into: parameters, options: options)
    }
}
