import UniLIPCore

/// A layer or model with explicitly named parameters, buffers and children.
///
/// Names are data, not reflection: a subclass assigns its stored properties, calls
/// `super.init()`, then registers each one under the key it has in checkpoints:
///
///     public let fc1: Linear
///     public let scale: Tensor
///     public init(rng: inout RandomGenerator) {
///         fc1 = Linear(4, 8, rng: &rng)
///         scale = Tensor(repeating: 1, shape: [8])
///         super.init()
///         child("fc1", fc1)
///         parameter("scale", scale)
///     }
///
/// `namedParameters()` then yields `fc1.weight`, `fc1.bias`, `scale` in registration order.
/// Parameters keep their identity for the life of the module; loaders and optimisers write
/// into their storage in place.
open class Module {
    public private(set) var training: Bool = true
    private var ownParameters: [(String, Tensor)] = []
    private var ownBuffers: [(String, Tensor)] = []
    private var ownChildren: [(String, Module)] = []

    public init() {}

    // MARK: Registration

    /// Registers a trainable tensor under `name` (marks it `requiresGrad`) and returns it.
    @discardableResult
    public func parameter(_ name: String, _ tensor: Tensor) -> Tensor {
        checkNewKey(name)
        tensor.requiresGrad = true
        ownParameters.append((name, tensor))
        return tensor
    }

    /// Registers a non-trainable tensor saved with the weights (for example fixed position
    /// embeddings) and returns it.
    @discardableResult
    public func buffer(_ name: String, _ tensor: Tensor) -> Tensor {
        checkNewKey(name)
        tensor.requiresGrad = false
        ownBuffers.append((name, tensor))
        return tensor
    }

    /// Registers a child module under `name` and returns it. The child takes this module's
    /// training mode.
    @discardableResult
    public func child<M: Module>(_ name: String, _ module: M) -> M {
        checkNewKey(name)
        precondition(module !== self, "module \(name) cannot be its own child")
        module.train(training)
        ownChildren.append((name, module))
        return module
    }

    private func checkNewKey(_ name: String) {
        precondition(!name.isEmpty && !name.contains("."),
                     "module key '\(name)' must be non-empty and contain no '.'")
        precondition(!ownParameters.contains { $0.0 == name } && !ownBuffers.contains { $0.0 == name }
                     && !ownChildren.contains { $0.0 == name },
                     "key '\(name)' registered twice in \(type(of: self))")
    }

    // MARK: Traversal

    /// Direct children in registration order.
    public var namedChildren: [(String, Module)] { ownChildren }

    /// This module's own parameters (not its children's), in registration order.
    public var ownNamedParameters: [(String, Tensor)] { ownParameters }

    /// Every module below and including this one, with dotted paths ("" for this one).
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (key, m) in ownChildren {
            out += m.namedModules(prefix: Self.join(prefix, key))
        }
        return out
    }

    /// Every parameter with its checkpoint-style dotted name (`encoder.layers.3.attn.qkv.weight`),
    /// own parameters first, then each child's in registration order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        collect(prefix: prefix, into: &out, parameters: true, buffers: false)
        return out
    }

    /// Every buffer with its dotted name.
    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        collect(prefix: prefix, into: &out, parameters: false, buffers: true)
        return out
    }

    /// Parameters and buffers together (what a checkpoint holds), module by module as in
    /// PyTorch's `state_dict()`.
    public func namedTensors(prefix: String = "") -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        collect(prefix: prefix, into: &out, parameters: true, buffers: true)
        return out
    }

    private func collect(prefix: String, into out: inout [(String, Tensor)], parameters: Bool, buffers: Bool) {
        if parameters { for (k, t) in ownParameters { out.append((Self.join(prefix, k), t)) } }
        if buffers { for (k, t) in ownBuffers { out.append((Self.join(prefix, k), t)) } }
        for (k, m) in ownChildren {
            m.collect(prefix: Self.join(prefix, k), into: &out, parameters: parameters, buffers: buffers)
        }
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// The parameters whose dotted name equals `prefix` or lies under it (`encoder` matches
    /// `encoder.x` but not `encoder2.x`).
    public func parameters(under prefix: String) -> [(String, Tensor)] {
        namedParameters().filter { Self.name($0.0, isUnder: prefix) }
    }

    /// The parameter or buffer with this full dotted name.
    public func tensor(named name: String) -> Tensor? {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let last = parts.popLast(), let node = module(named: parts.joined(separator: ".")) else {
            return nil
        }
        return node.ownParameters.first { $0.0 == last }?.1 ?? node.ownBuffers.first { $0.0 == last }?.1
    }

    /// The parameter with this full dotted name (not a buffer).
    public func parameter(named name: String) -> Tensor? {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let last = parts.popLast(), let node = module(named: parts.joined(separator: ".")) else {
            return nil
        }
        return node.ownParameters.first { $0.0 == last }?.1
    }

    /// The module at this dotted path ("" is this module).
    public func module(named path: String) -> Module? {
        if path.isEmpty { return self }
        var node: Module = self
        for p in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = node.ownChildren.first(where: { $0.0 == p })?.1 else { return nil }
            node = next
        }
        return node
    }

    /// Total number of parameter elements.
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.count } }

    /// Number of parameter elements that currently take gradients.
    public var trainableParameterCount: Int {
        namedParameters().reduce(0) { $0 + ($1.1.requiresGrad ? $1.1.count : 0) }
    }

    // MARK: Modes

    /// Sets training mode here and in every descendant.
    open func train(_ mode: Bool = true) {
        training = mode
        for (_, m) in ownChildren { m.train(mode) }
    }

    public func eval() { train(false) }

    /// Stops gradients to every parameter (recursively) and drops their gradients.
    public func freeze() { setRequiresGrad(false, under: "") }

    /// Lets every parameter take gradients again (recursively).
    public func unfreeze() { setRequiresGrad(true, under: "") }

    /// Freezes the parameters under a dotted prefix (`encoder` or `encoder.layers.0`).
    public func freeze(prefix: String) { setRequiresGrad(false, under: prefix) }

    public func unfreeze(prefix: String) { setRequiresGrad(true, under: prefix) }

    private func setRequiresGrad(_ value: Bool, under prefix: String) {
        var matched = false
        for (name, t) in namedParameters() where Self.name(name, isUnder: prefix) {
            t.requiresGrad = value
            if !value { t.grad = nil }
            matched = true
        }
        precondition(matched || prefix.isEmpty, "no parameter under '\(prefix)' in \(type(of: self))")
    }

    /// Clears the gradient of every parameter.
    public func zeroGrad() {
        for (_, t) in namedParameters() { t.grad = nil }
    }

    // MARK: Names

    static func join(_ prefix: String, _ key: String) -> String {
        prefix.isEmpty ? key : prefix + "." + key
    }

    /// True when `name` equals `prefix` or continues it at a '.' boundary. A prefix ending in
    /// '.' matches plainly; the empty prefix matches everything.
    public static func name(_ name: String, isUnder prefix: String) -> Bool {
        if prefix.isEmpty { return true }
        if prefix.hasSuffix(".") { return name.hasPrefix(prefix) }
        return name == prefix || name.hasPrefix(prefix + ".")
    }
}

/// A module that maps one tensor to one tensor, so it can sit in a `Sequential`.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}

/// Children named "0", "1", … (or explicit indices, allowing gaps). Holds any modules.
open class ModuleList: Module {
    public let modules: [Module]

    public init(_ modules: [Module]) {
        self.modules = modules
        super.init()
        for (i, m) in modules.enumerated() { child(String(i), m) }
    }

    /// Children at explicit indices, for checkpoint layouts with gaps (`mlp.0`, `mlp.1`, `mlp.3`).
    public init(indexed: [(Int, Module)]) {
        precondition(Set(indexed.map(\.0)).count == indexed.count, "ModuleList: repeated index")
        self.modules = indexed.map(\.1)
        super.init()
        for (i, m) in indexed { child(String(i), m) }
    }

    public var count: Int { modules.count }
    public subscript(_ i: Int) -> Module { modules[i] }
}

/// Applies unary layers in order; children are named by position ("0", "1", …), so a
/// parameterless activation at position 2 leaves a gap in the parameter names as in PyTorch's
/// `nn.Sequential`.
public final class Sequential: Module, UnaryLayer {
    public let layers: [any UnaryLayer]

    public init(_ layers: [any UnaryLayer]) {
        self.layers = layers
        super.init()
        for (i, m) in layers.enumerated() { child(String(i), m) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for layer in layers { h = layer(h) }
        return h
    }
}
