import Foundation

/// One recorded op: its inputs and a closure mapping the output gradient to input gradients.
/// Closures capture detached tensors only, so a graph never keeps itself alive.
final class GradFn {
    let name: String
    let inputs: [Tensor]
    let backward: (Tensor) -> [Tensor?]

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether ops record a graph. Thread-local, so a no-grad scope on one thread (inference in a
/// server request) does not affect training on another.
public enum GradMode {
    private static let key = "unilip.gradmode.disabled"

    public static var isEnabled: Bool {
        Thread.current.threadDictionary[key] == nil
    }

    static func set(enabled: Bool) {
        if enabled {
            Thread.current.threadDictionary.removeObject(forKey: key)
        } else {
            Thread.current.threadDictionary[key] = true
        }
    }
}

/// Runs `body` without recording a graph.
@discardableResult
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GradMode.isEnabled
    GradMode.set(enabled: false)
    defer { GradMode.set(enabled: previous) }
    return try body()
}

extension Tensor {
    /// Attaches a backward closure to `output` when any input needs a gradient.
    /// Returns `output` for chaining. Ops call this once, after computing the forward value.
    @discardableResult
    public func recording(_ name: String, _ inputs: [Tensor],
                          _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        requiresGrad = true
        gradFn = GradFn(name: name, inputs: inputs, backward: backward)
        return self
    }

    /// True when this tensor was produced by a recorded op (not a leaf).
    public var isLeaf: Bool { gradFn == nil }

    /// Reverse-mode differentiation from this tensor. `seed` defaults to ones (a scalar loss).
    /// Leaf tensors with `requiresGrad` accumulate into `grad`. The graph is freed afterwards
    /// unless `retainGraph` is set.
    public func backward(_ seed: Tensor? = nil, retainGraph: Bool = false) {
        precondition(requiresGrad, "backward() on a tensor that does not require grad")
        let start = seed ?? Tensor(repeating: 1, shape: shape)
        precondition(start.shape == shape, "backward seed \(start.shape) for output \(shape)")

        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for input in node.gradFn?.inputs ?? [] where input.requiresGrad
                && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }

        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): start]
        withNoGrad {
            for node in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
                guard let fn = node.gradFn else {
                    node.grad = node.grad.map { $0 + g } ?? g.detached()
                    continue
                }
                let inputGrads = fn.backward(g)
                precondition(inputGrads.count == fn.inputs.count, "\(fn.name): gradient count")
                for (input, gi) in zip(fn.inputs, inputGrads) {
                    guard input.requiresGrad, let gi else { continue }
                    precondition(gi.shape == input.shape,
                                 "\(fn.name): gradient \(gi.shape) for input \(input.shape)")
                    let key = ObjectIdentifier(input)
                    grads[key] = grads[key].map { $0 + gi } ?? gi
                }
            }
        }
        if !retainGraph {
            for node in order where node.gradFn != nil { node.gradFn = nil }
        }
    }

    /// Sets `grad` to nil.
    public func zeroGrad() { grad = nil }
}
