/// Tensor values kept in a compact stored dtype (BF16 or F16, typically the memory-mapped bytes
/// of a checkpoint) and decoded to Float32 only where an op reads them, so a model's weights
/// occupy their file size instead of twice it. Inference only: such tensors never take gradients.
public final class StoredValues: @unchecked Sendable {
    public let dtype: DType
    public let count: Int
    private let bytes: UnsafeRawPointer
    /// Keeps the memory behind `bytes` alive (for example the mapped file).
    private let owner: AnyObject

    /// `bytes` must hold `count` elements of `dtype` and stay valid while `owner` lives.
    public init(dtype: DType, bytes: UnsafeRawPointer, count: Int, owner: AnyObject) {
        precondition(count >= 0, "StoredValues: negative count \(count)")
        self.dtype = dtype
        self.bytes = bytes
        self.count = count
        self.owner = owner
    }

    /// Bytes held.
    public var byteCount: Int { count * dtype.byteSize }

    /// Decodes the elements `range` (flat, row-major) into `destination` as Float32.
    public func decode(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count,
                     "StoredValues: range \(range) outside 0..<\(count)")
        dtype.decode(bytes + range.lowerBound * dtype.byteSize, into: destination, count: range.count)
    }
}
