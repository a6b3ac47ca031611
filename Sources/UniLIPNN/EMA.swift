import UniLIPCore

/// Exponential moving average of parameters. The k-th update (k = 0, 1, …) uses
/// `d = min(decay, (1 + k) / (10 + k))` and sets `shadow ← d · shadow + (1 − d) · param`,
/// so early averages follow the weights closely.
public final class EMA {
    public let decay: Float
    /// Updates applied so far.
    public private(set) var updates: Int = 0
    /// Averaged copies, by parameter name, in the source's order.
    public let shadow: [(String, Tensor)]
    private let sources: [Tensor]

    /// Tracks `named` (typically `module.namedParameters()`); the average starts as a copy.
    public init(_ named: [(String, Tensor)], decay: Float = 0.9999) {
        precondition(decay >= 0 && decay <= 1, "EMA: decay \(decay) outside [0, 1]")
        self.decay = decay
        sources = named.map(\.1)
        shadow = named.map { ($0.0, $0.1.copy()) }
    }

    public convenience init(_ module: Module, decay: Float = 0.9999) {
        self.init(module.namedParameters(), decay: decay)
    }

    /// The decay the next update uses.
    public var currentDecay: Float {
        Swift.min(decay, Float(Double(1 + updates) / Double(10 + updates)))
    }

    /// Folds the tracked parameters' current values into the average.
    public func update() {
        let d = currentDecay
        let w = 1 - d
        for (src, (_, avg)) in zip(sources, shadow) {
            let ps = src.pointer, pa = avg.pointer
            Parallel.forRange(avg.count, grain: Kernels.grain) { r in
                for i in r { pa[i] += w * (ps[i] - pa[i]) }
            }
        }
        updates += 1
    }

    /// Copies the averaged weights into the module's parameters of the same names
    /// (a module built like the tracked one, or the tracked one itself).
    public func copy(to module: Module) {
        let byName = Dictionary(module.namedParameters(), uniquingKeysWith: { a, _ in a })
        for (name, avg) in shadow {
            guard let p = byName[name] else { preconditionFailure("EMA.copy: module has no parameter \(name)") }
            precondition(p.shape == avg.shape, "EMA.copy: \(name) is \(p.shape), average \(avg.shape)")
            p.assign(avg)
        }
    }

    /// The averaged weights by name (copies), ready to save as a checkpoint.
    public func averagedParameters() -> [String: Tensor] {
        Dictionary(shadow.map { ($0.0, $0.1.copy()) }, uniquingKeysWith: { a, _ in a })
    }

    /// `ema.<name>` for each average plus `ema_updates`.
    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = ["ema_updates": Tensor(scalar: Float(updates))]
        for (name, t) in shadow { out["ema.\(name)"] = t.copy() }
        return out
    }

    /// Restores a `stateDict()`; nothing changes when it throws.
    public func loadStateDict(_ dict: [String: Tensor]) throws {
        let n = try dict.requiredScalar("ema_updates")
        guard n >= 0, n == n.rounded() else { throw StateDictError(key: "ema_updates", "not a count: \(n)") }
        let values = try shadow.map { try dict.required("ema.\($0.0)", shape: $0.1.shape) }
        for ((_, avg), v) in zip(shadow, values) { avg.assign(v) }
        updates = Int(n)
    }
}
