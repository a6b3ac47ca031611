import Foundation
import UniLIPCore
import UniLIPIO

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// A training run's folder: checkpoints written atomically, a `latest` pointer, and a JSON-lines
/// metrics log.
///
///     RUN/checkpoint-000500/{model.safetensors, training_state.safetensors, state.json}
///     RUN/latest            → "checkpoint-000500"
///     RUN/metrics.jsonl     one JSON object per logged step
///     RUN/curves.svg        the logged metrics plotted, redrawn at each checkpoint
///
/// A checkpoint folder is assembled under a temporary name and renamed into place, so a crash
/// or a full disk never leaves a half-written checkpoint behind `latest`.
public struct RunDirectory {
    public let path: String
    /// Checkpoints kept; older ones are removed after a new one is complete.
    public var keep: Int

    public init(_ path: String, keep: Int = 2) throws {
        self.path = path
        self.keep = keep
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("\(path): cannot create the run folder (\(error.localizedDescription))")
        }
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Saves a checkpoint for `step`: model tensors (F32), optimiser/EMA state, and a JSON state.
    public func save(step: Int, model: [String: Tensor], trainingState: [String: Tensor],
                     state: [String: Any]) throws {
        let name = String(format: "checkpoint-%06d", step)
        let tmp = file(".\(name).tmp-\(getpid())")
        let fm = FileManager.default
        try? fm.removeItem(atPath: tmp)
        do {
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            try SafetensorsWriter.write(model, to: (tmp as NSString).appendingPathComponent("model.safetensors"))
            try SafetensorsWriter.write(trainingState,
                                        to: (tmp as NSString).appendingPathComponent("training_state.safetensors"))
            var full = state
            full["step"] = step
            let json = try JSONSerialization.data(withJSONObject: full, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(json, to: (tmp as NSString).appendingPathComponent("state.json"))
            let final = file(name)
            try? fm.removeItem(atPath: final)
            try fm.moveItem(atPath: tmp, toPath: final)
            try AtomicFile.write(Data(name.utf8), to: file("latest"))
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw TrainingError("\(path): saving \(name) failed, previous checkpoints are intact (\(error))")
        }
        prune()
        // The plot is a convenience: failing to draw it never fails a checkpoint.
        try? writeCurves()
    }

    /// Redraws `curves.svg` from `metrics.jsonl` (atomically; nothing when there is no log yet).
    public func writeCurves() throws {
        let log = file("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: log) else { return }
        let svg = MetricsPlot.svg(series: try MetricsLog.read(log), title: (path as NSString).lastPathComponent)
        try AtomicFile.write(Data(svg.utf8), to: file("curves.svg"))
    }

    /// The newest complete checkpoint folder, if any.
    public var latest: String? { Self.latestCheckpoint(in: path) }

    /// The newest complete checkpoint folder of the run folder at `path`, read without creating
    /// or writing anything there.
    public static func latestCheckpoint(in path: String) -> String? {
        let pointer = (path as NSString).appendingPathComponent("latest")
        guard let data = FileManager.default.contents(atPath: pointer),
              let name = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !name.isEmpty else { return nil }
        let checkpoint = (path as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: checkpoint) ? checkpoint : nil
    }

    /// Reads a checkpoint's JSON state.
    public static func state(in checkpoint: String) throws -> [String: Any] {
        let p = (checkpoint as NSString).appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: p),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TrainingError("\(p): missing or not a JSON object")
        }
        return object
    }

    /// Reads a checkpoint's training state tensors (optimiser moments, EMA, schedule).
    public static func trainingState(in checkpoint: String) throws -> [String: Tensor] {
        try SafetensorsFile(path: (checkpoint as NSString).appendingPathComponent("training_state.safetensors")).allTensors()
    }

    private func prune() {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: path) else { return }
        let checkpoints = names.filter { $0.hasPrefix("checkpoint-") }.sorted()
        for old in checkpoints.dropLast(Swift.max(keep, 1)) { try? fm.removeItem(atPath: file(old)) }
    }

    /// Appends one JSON object to metrics.jsonl.
    public func log(_ values: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys]) else { return }
        let p = file("metrics.jsonl")
        if !FileManager.default.fileExists(atPath: p) { FileManager.default.createFile(atPath: p, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: p) else { return }
        handle.seekToEndOfFile()
        handle.write(data + Data("\n".utf8))
        handle.closeFile()
    }
}

/// Training progress reported to a callback; returning false stops training after a checkpoint.
public struct TrainingProgress: Sendable {
    public let step: Int
    public let totalSteps: Int
    public let values: [String: Double]
}
