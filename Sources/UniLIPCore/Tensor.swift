import Foundation

/// A flat, 64-byte aligned buffer of Float32 values shared by tensors that view the same data
/// (for example a tensor and its reshape).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = StoragePool.allocate(byteCount: max(count, 1) * 4)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { StoragePool.release(UnsafeMutableRawPointer(pointer), byteCount: max(count, 1) * 4) }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }
}

/// An n-dimensional Float32 array on contiguous row-major storage, with reverse-mode autograd.
///
/// Tensors are immutable in normal use: every op returns a new tensor. Optimisers and loaders
/// write into `storage` in place, outside of any recorded graph.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    private var residentStorage: TensorStorage
    /// Set when the values stay in a compact stored dtype (frozen inference weights, see
    /// `store(_:)`); the tensor then has no Float32 storage and ops decode it per use.
    public private(set) var stored: StoredValues?
    /// When true, ops on this tensor are recorded and `backward()` fills `grad`.
    public var requiresGrad: Bool {
        didSet {
            if requiresGrad && stored != nil {
                preconditionFailure("tensor \(shape) holds stored values, which are frozen: it cannot take gradients")
            }
        }
    }
    /// Accumulated gradient of a leaf tensor after `backward()`.
    public var grad: Tensor?
    /// The op that produced this tensor, while its graph is alive.
    var gradFn: GradFn?

    public init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) <= storage.count, "shape \(shape) larger than storage")
        self.shape = shape
        self.residentStorage = storage
        self.requiresGrad = requiresGrad
    }

    /// A tensor over stored values (decoded per use; never takes gradients).
    public init(shape: [Int], stored: StoredValues) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == stored.count,
                     "shape \(shape) does not hold \(stored.count) stored values")
        self.shape = shape
        residentStorage = TensorStorage(count: 0)
        self.stored = stored
        requiresGrad = false
    }

    /// The Float32 storage. Stored-value tensors have none: ops that accept them decode with
    /// `decoded()` or `stored` (a missing call site fails here instead of reading garbage).
    public var storage: TensorStorage {
        if _slowPath(stored != nil) { storedAccessFailure() }
        return residentStorage
    }

    private func storedAccessFailure() -> Never {
        preconditionFailure("tensor \(shape) holds \(stored?.dtype.rawValue ?? "") stored values: decode it with decoded() first")
    }

    /// Keeps `values` instead of Float32 storage from now on, releasing the current storage; the
    /// tensor object (and so every module holding it) stays the same. For frozen weights only.
    public func store(_ values: StoredValues) {
        precondition(values.count == count, "store: \(values.count) values into shape \(shape)")
        precondition(!requiresGrad && gradFn == nil, "store: the tensor \(shape) takes gradients; freeze it first")
        stored = values
        residentStorage = TensorStorage(count: 0)
    }

    /// The values as resident Float32: this tensor, or for stored values a fresh decoded copy
    /// (its buffer comes from and returns to the storage pool).
    public func decoded() -> Tensor {
        guard let stored else { return self }
        let out = Tensor(uninitialized: shape)
        stored.decode(0..<stored.count, into: out.residentStorage.pointer)
        return out
    }

    /// An uninitialised tensor, for ops that write every element.
    public convenience init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: shape.reduce(1, *)))
    }

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: TensorStorage(zeros: shape.reduce(1, *)),
                  requiresGrad: requiresGrad)
    }

    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        let s = TensorStorage(count: shape.reduce(1, *))
        s.pointer.initialize(repeating: value, count: s.count)
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *),
                     "\(values.count) values do not fill shape \(shape)")
        let s = TensorStorage(count: values.count)
        values.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { s.pointer.initialize(from: base, count: values.count) }
        }
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    public convenience init(scalar: Float) { self.init([scalar], shape: []) }

    // MARK: Shape helpers

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }
    /// Row-major strides in elements.
    public var strides: [Int] { Shape.strides(shape) }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    /// True when the values are resident Float32 (not `stored`).
    public var isResident: Bool { stored == nil }
    public var isScalar: Bool { count == 1 }

    /// The size of `axis`, which may be negative (counted from the end).
    public func size(_ axis: Int) -> Int { shape[Shape.normalize(axis, rank: rank)] }

    /// A copy of the values as a Swift array.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item() on a tensor of shape \(shape)")
        return pointer[0]
    }

    /// Same data, no graph: gradients do not flow through the result.
    public func detached() -> Tensor {
        if let stored { return Tensor(shape: shape, stored: stored) }
        return Tensor(shape: shape, storage: residentStorage)
    }

    /// A deep copy of the values with no graph.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.pointer.update(from: pointer, count: count)
        return out
    }

    /// Overwrites this tensor's values with `other`'s (same element count), outside the graph.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}

/// Shape arithmetic shared by the ops.
public enum Shape {
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    public static func normalize(_ axis: Int, rank: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < max(rank, 1), "axis \(axis) out of range for rank \(rank)")
        return a
    }

    /// NumPy broadcasting of two shapes.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int] {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            precondition(da == db || da == 1 || db == 1, "cannot broadcast \(a) with \(b)")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides of `shape` seen inside `target` (zero on broadcast dimensions).
    public static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let offset = target.count - shape.count
        return (0..<target.count).map { i in
            i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
        }
    }
}
