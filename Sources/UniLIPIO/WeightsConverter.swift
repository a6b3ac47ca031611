import Foundation
import UniLIPCore

/// Rewrites any checkpoint `Checkpoint` opens (safetensors, sharded, PyTorch .pth) as one
/// safetensors file.
public enum WeightsConverter {
    /// The dtype written when none is asked for: the stored one when every tensor shares a float
    /// dtype, otherwise F32.
    public static func defaultDType(_ checkpoint: Checkpoint) throws -> DType {
        let stored = Set(try checkpoint.names.map { try checkpoint.describe($0).dtypeName })
        if stored.count == 1, let only = stored.first, let dtype = DType(rawValue: only) { return dtype }
        return .f32
    }

    /// Converts `input` to `output`; returns the number of tensors and the dtype written. Every
    /// tensor must be F32, F16 or BF16; the error names the first that is not.
    @discardableResult
    public static func convert(input: String, output: String, key: String? = nil,
                               dtype: DType? = nil) throws -> (tensors: Int, dtype: DType) {
        let checkpoint = try Checkpoint(path: input, key: key)
        let target = try dtype ?? defaultDType(checkpoint)
        var tensors: [String: Tensor] = [:]
        for name in checkpoint.names { tensors[name] = try checkpoint.tensor(name) }
        var metadata = ["format": "pt", "source": (input as NSString).lastPathComponent]
        if let key = checkpoint.torch?.key ?? key { metadata["source_key"] = key }
        try SafetensorsWriter.write(tensors, to: output, dtype: target, metadata: metadata)
        return (tensors.count, target)
    }
}
