import UniLIPCore

/// Keys and values of the tokens seen so far, per layer, for incremental decoding.
///
/// Each layer holds keys and values [B, Hkv, T, Dh]; a forward pass with the cache appends its
/// tokens, so the next pass only computes the new positions. The cache also keeps the key
/// padding of every cached token and each row's next rotary position. Intended for inference
/// (no gradients flow through cached tensors).
public final class KVCache {
    public private(set) var keys: [Tensor?]
    public private(set) var values: [Tensor?]
    /// Cached tokens per row (including padded ones).
    public private(set) var length: Int = 0
    /// [B, length]: 1 for real, 0 for padded tokens; nil while nothing was padded.
    public private(set) var keyPadding: Tensor?
    /// Per row, the position the next token takes (last position + 1); empty before the first pass.
    public private(set) var nextPositions: [Int] = []
    public private(set) var batch: Int = 0

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    public func reset() {
        for i in keys.indices { keys[i] = nil; values[i] = nil }
        length = 0
        keyPadding = nil
        nextPositions = []
        batch = 0
    }

    func check(batch b: Int, layers: Int) {
        precondition(keys.count == layers, "KVCache: made for \(keys.count) layers, model has \(layers)")
        precondition(length == 0 || batch == b, "KVCache: holds \(batch) rows, got \(b)")
    }

    /// The padding over cached plus new tokens, stored for the next pass. nil when nothing is padded.
    func appendPadding(_ new: Tensor?, batch b: Int, newTokens l: Int) -> Tensor? {
        var full: Tensor? = nil
        if new != nil || keyPadding != nil {
            let old = keyPadding ?? Tensor(repeating: 1, shape: [b, length])
            let add = new?.detached() ?? Tensor(repeating: 1, shape: [b, l])
            full = length == 0 ? add.copy() : Tensor.concat([old.detached(), add], axis: 1)
        }
        keyPadding = full
        return full
    }

    /// Records the new tokens' positions ([L] shared or [B·L]) and the new length.
    func advance(positions: [Int], batch b: Int, newTokens l: Int) {
        batch = b
        length += l
        if l == 0 { return }
        nextPositions = (0..<b).map { r in
            (positions.count == l ? positions[l - 1] : positions[r * l + l - 1]) + 1
        }
    }

    /// Appends keys and values [B, Hkv, L, Dh] for `layer` and returns the whole history.
    func append(layer: Int, keys k: Tensor, values v: Tensor) -> (Tensor, Tensor) {
        let nk: Tensor, nv: Tensor
        if let ok = keys[layer], let ov = values[layer] {
            nk = Tensor.concat([ok, k.detached()], axis: 2)
            nv = Tensor.concat([ov, v.detached()], axis: 2)
        } else {
            nk = k.detached()
            nv = v.detached()
        }
        keys[layer] = nk
        values[layer] = nv
        return (nk, nv)
    }
}
