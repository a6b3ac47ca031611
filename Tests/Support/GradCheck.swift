import UniLIPCore
import XCTest

/// Checks `f`'s analytic gradients against central finite differences.
///
/// The scalar probed is sum(f(x) · w) for fixed random weights w, so every output element
/// contributes. At most `maxProbes` elements of each input are probed (chosen at random).
public func checkGradients(_ inputs: [Tensor], eps: Float = 1e-2, atol: Float = 1e-2, rtol: Float = 1e-2,
                           maxProbes: Int = 48, seed: UInt64 = 7,
                           file: StaticString = #filePath, line: UInt = #line,
                           _ f: ([Tensor]) -> Tensor) {
    var rng = RandomGenerator(seed: seed)
    for x in inputs { x.requiresGrad = true; x.grad = nil }
    let y = f(inputs)
    let w = Tensor.normal(y.shape, rng: &rng)
    (y * w).sum().backward()

    func probe() -> Double {
        withNoGrad {
            let out = f(inputs)
            var s = 0.0
            for i in 0..<out.count { s += Double(out.pointer[i]) * Double(w.pointer[i]) }
            return s
        }
    }
    for (index, x) in inputs.enumerated() {
        guard let grad = x.grad else {
            XCTFail("input \(index) received no gradient", file: file, line: line)
            continue
        }
        XCTAssertEqual(grad.shape, x.shape, "gradient shape of input \(index)", file: file, line: line)
        let positions = x.count <= maxProbes ? Array(0..<x.count) : (0..<maxProbes).map { _ in rng.int(x.count) }
        for j in positions {
            let saved = x.pointer[j]
            x.pointer[j] = saved + eps
            let plus = probe()
            x.pointer[j] = saved - eps
            let minus = probe()
            x.pointer[j] = saved
            let numeric = Float((plus - minus) / Double(2 * eps))
            let analytic = grad.pointer[j]
            if Swift.abs(analytic - numeric) > atol + rtol * Swift.abs(numeric) {
                XCTFail("input \(index) element \(j): analytic \(analytic) vs numeric \(numeric)",
                        file: file, line: line)
                return
            }
        }
    }
}

/// Asserts two tensors have the same shape and close values: |a − b| ≤ atol + rtol·|b|.
public func assertClose(_ a: Tensor, _ b: Tensor, atol: Float = 1e-5, rtol: Float = 1e-4, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "shape \(message)", file: file, line: line)
    guard a.shape == b.shape else { return }
    var worst: Float = 0, at = -1
    for i in 0..<a.count {
        let d = Swift.abs(a.pointer[i] - b.pointer[i])
        let excess = d - (atol + rtol * Swift.abs(b.pointer[i]))
        if !(excess <= 0) && (at < 0 || !(excess <= worst)) { worst = excess; at = i }
    }
    if at >= 0 {
        XCTFail("\(message): element \(at) differs: \(a.pointer[at]) vs \(b.pointer[at]) (shape \(a.shape))",
                file: file, line: line)
    }
}

/// Random test input with a fixed seed.
public func randn(_ shape: Int..., seed: UInt64 = 1, scale: Float = 1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    return Tensor.normal(shape, std: scale, rng: &rng)
}
