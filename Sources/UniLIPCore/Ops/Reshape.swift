extension Tensor {
    /// The same data under a new shape (no copy). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let i = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape \(shape) to \(newShape)")
            target[i] = count / known
        }
        precondition(target.reduce(1, *) == count, "reshape \(shape) to \(newShape)")
        if let stored { return Tensor(shape: target, stored: stored) }
        let out = Tensor(shape: target, storage: storage)
        let source = shape
        return out.recording("reshape", [self]) { g in [g.reshaped(source)] }
    }

    public func reshaped(_ dims: Int...) -> Tensor { reshaped(dims) }

    /// Collapses all axes into one.
    public func flattened() -> Tensor { reshaped([count]) }
}
