import UniLIPCore

/// Parameters that share a learning rate and weight decay inside an optimiser.
public struct ParameterGroup {
    public var name: String
    public var parameters: [(String, Tensor)]
    /// The learning rate a schedule multiplies (PyTorch's `initial_lr`).
    public var baseLR: Float
    /// The learning rate the next step uses.
    public var lr: Float
    public var weightDecay: Float

    public init(name: String, parameters: [(String, Tensor)], lr: Float, weightDecay: Float) {
        self.name = name
        self.parameters = parameters
        self.baseLR = lr
        self.lr = lr
        self.weightDecay = weightDecay
    }

    /// Substrings that exclude a parameter from weight decay (the UniLIP training recipe).
    public static let noDecayMarkers = ["norm", "bias", "embed", "gamma", "ln"]

    /// True for parameters trained without weight decay: 1-D tensors and names containing
    /// norm, bias, embed, gamma or ln.
    public static func isNoDecay(_ name: String, _ tensor: Tensor) -> Bool {
        if tensor.rank <= 1 { return true }
        let lower = name.lowercased()
        return noDecayMarkers.contains { lower.contains($0) }
    }

    /// Splits trainable parameters (frozen ones are left out) into decay and no-decay groups.
    /// Parameters under each prefix in `scaled` (dotted, as in `Module.name(_:isUnder:)`) go
    /// into their own pair of groups at `lr · scale`, e.g. `[("encoder", 0.1)]`; the first
    /// matching prefix wins. Empty groups are dropped. Order: each prefix's decay then no-decay
    /// group, then the remaining decay and no-decay groups.
    public static func decaySplit(_ named: [(String, Tensor)], lr: Float, weightDecay: Float,
                                  scaled: [(prefix: String, scale: Float)] = []) -> [ParameterGroup] {
        var buckets = [[(String, Tensor)]](repeating: [], count: 2 * (scaled.count + 1))
        for (name, t) in named where t.requiresGrad {
            let slot = scaled.firstIndex { Module.name(name, isUnder: $0.prefix) } ?? scaled.count
            buckets[2 * slot + (isNoDecay(name, t) ? 1 : 0)].append((name, t))
        }
        var groups: [ParameterGroup] = []
        for slot in 0...scaled.count {
            let label = slot < scaled.count ? scaled[slot].prefix + "." : ""
            let groupLR = slot < scaled.count ? Float(Double(lr) * Double(scaled[slot].scale)) : lr
            if !buckets[2 * slot].isEmpty {
                groups.append(ParameterGroup(name: label + "decay", parameters: buckets[2 * slot],
                                             lr: groupLR, weightDecay: weightDecay))
            }
            if !buckets[2 * slot + 1].isEmpty {
                groups.append(ParameterGroup(name: label + "no_decay", parameters: buckets[2 * slot + 1],
                                             lr: groupLR, weightDecay: 0))
            }
        }
        return groups
    }
}

/// A missing or malformed entry in a saved training state.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
    public let key: String
    public let reason: String
    public init(key: String, _ reason: String) { self.key = key; self.reason = reason }
    public var description: String { "training state '\(key)': \(reason)" }
}

extension Dictionary where Key == String, Value == Tensor {
    func required(_ key: String, shape: [Int]? = nil) throws -> Tensor {
        guard let t = self[key] else { throw StateDictError(key: key, "missing") }
        if let shape, t.shape != shape {
            throw StateDictError(key: key, "shape \(t.shape), expected \(shape)")
        }
        return t
    }

    func requiredScalar(_ key: String) throws -> Float {
        let t = try required(key)
        guard t.count == 1 else { throw StateDictError(key: key, "shape \(t.shape), expected one value") }
        return t.pointer[0]
    }
}
