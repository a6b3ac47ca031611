import Foundation
import UniLIPCore
import XCTest

/// Golden values written by `Tools/reference/make_fixtures.py` (PyTorch), one safetensors file
/// per area under `Tests/Fixtures/`.
///
/// A case named K stores inputs `K.x0`, `K.x1`, …, the output `K.y`, the upstream gradient
/// `K.gy`, and the input gradients `K.gx0`, … for the inputs that take one.
public struct Fixtures {
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    public let tensors: [String: Tensor]
    public let area: String

    public init(_ area: String) throws {
        self.area = area
        let file = try SafetensorsFile(path: Self.directory.appendingPathComponent("\(area).safetensors").path)
        tensors = try file.allTensors()
    }

    public subscript(_ name: String) -> Tensor {
        guard let t = tensors[name] else { fatalError("fixture \(area)/\(name) missing; rerun make_fixtures.py") }
        return t.copy()
    }

    /// Inputs K.x0, K.x1, … in order.
    public func inputs(_ name: String) -> [Tensor] {
        var out: [Tensor] = []
        while let t = tensors["\(name).x\(out.count)"] { out.append(t.copy()) }
        return out
    }

    /// Runs `f` on case `name`'s inputs and compares the output and, when stored, every input
    /// gradient for the stored upstream gradient.
    public func check(_ name: String, atol: Float = 1e-5, rtol: Float = 1e-4,
                      file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
        let xs = inputs(name)
        XCTAssertFalse(xs.isEmpty, "fixture case \(name) has no inputs", file: file, line: line)
        for (i, x) in xs.enumerated() where tensors["\(name).gx\(i)"] != nil { x.requiresGrad = true }
        let y = f(xs)
        assertClose(y, self["\(name).y"], atol: atol, rtol: rtol, "\(name) forward", file: file, line: line)
        guard let gy = tensors["\(name).gy"], y.requiresGrad else { return }
        y.backward(gy.copy())
        for (i, x) in xs.enumerated() {
            guard let expected = tensors["\(name).gx\(i)"] else { continue }
            guard let g = x.grad else {
                XCTFail("\(name): input \(i) has no gradient", file: file, line: line)
                continue
            }
            assertClose(g, expected, atol: atol, rtol: rtol, "\(name) grad x\(i)", file: file, line: line)
        }
    }
}
